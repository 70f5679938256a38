"""From the decoder's character spans to the ink each character was read from, without Qt."""
from __future__ import annotations

import numpy as np

from inkread.ink import Ink


def char_regions(peaks: list[np.ndarray], ink: Ink) -> list[np.ndarray]:
    """Grow each character's decoder span into the stretch of ink it was read from.

    CTC emits a character on one or two output frames, so its span covers
    only a few points. The ink between two characters' spans is split at
    the midpoint (in writing order), and each character keeps the part that
    lies on the strokes its span touches: delayed strokes (i-dots, t-bars
    written after the word) then do not stretch the last letter's box over
    the whole word.

    Args:
        peaks: per character, in text order, the (K,) sorted flat point
            indices of its span (empty for characters without points).
        ink: the line the indices refer to.
    Returns:
        Per character, the (M,) flat point indices of its region (empty stays empty).
    """
    n = ink.num_points
    stroke = ink.stroke_of_point()
    live = [k for k, p in enumerate(peaks) if len(p)]
    out = [np.zeros(0, dtype=np.int64) for _ in peaks]
    for j, k in enumerate(live):
        lo = 0 if j == 0 else (int(peaks[live[j - 1]].max()) + int(peaks[k].min()) + 1) // 2
        hi = n if j == len(live) - 1 else (int(peaks[k].max()) + int(peaks[live[j + 1]].min()) + 1) // 2
        lo, hi = min(lo, int(peaks[k].min())), max(hi, int(peaks[k].max()) + 1)
        span = np.arange(lo, hi)
        out[k] = span[np.isin(stroke[span], stroke[peaks[k]])]
    return out
