"""The GUI's bridge to :mod:`inkread.saliency`, without Qt.

Saliency is optional for the app: when the module (or a function of it) is
missing, :func:`unavailable` says why in one line and the GUI shows that
instead of a heat map. Everything the module returns is reduced here to the
few arrays the views draw, so a change of the library's return types touches
only this file:

* :func:`char_heat` -> (N,) scores over the line ink's flat points for one
  recognised character;
* :func:`demo_rows` -> :class:`DemoRows`, the data of Graves's figure rows
  (output probabilities over time, LSTM memory-cell states over time, the
  writing, and the gradient magnitude along the writing).
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from inkread.ink import Ink

log = logging.getLogger(__name__)

#: Attribution methods offered in the UI, in menu order, with their labels.
METHODS = {
    "gradient": "Gradient",
    "coordinates": "Pen-position gradient",
    "gradxinput": "Gradient x input",
    "integrated": "Integrated gradients",
    "smoothgrad": "SmoothGrad",
}


@dataclass
class DemoRows:
    """Data of the demo panel, on the model's output frame axis.

    Attributes:
        ink: the line's ink.
        probs: (T, K) probabilities of the K shown classes per output frame.
        labels: (K,) the shown classes' characters ("" for blank).
        cells: (T, H) LSTM memory-cell states (one layer) per output frame.
        frame_points: (T,) fractional flat point index each frame came from.
        grad: (N,) gradient magnitude per point of ``ink``.
    """

    ink: Ink
    probs: np.ndarray
    labels: list[str]
    cells: np.ndarray
    frame_points: np.ndarray
    grad: np.ndarray


def _module() -> Any:
    return importlib.import_module("inkread.saliency")


def unavailable() -> Optional[str]:
    """None when saliency can be computed, else the reason in one line."""
    try:
        mod = _module()
    except ImportError as exc:
        return f"saliency not available (inkread.saliency cannot be imported: {exc})"
    if not hasattr(mod, "explain"):
        return "saliency not available (inkread.saliency has no explain())"
    return None


def demo_unavailable() -> Optional[str]:
    """None when the demo rows can be computed, else the reason."""
    why = unavailable()
    if why:
        return why
    if not hasattr(_module(), "demo_rows"):
        return "demo not available (inkread.saliency has no demo_rows())"
    return None


def _pick(chars: list, index: int, char: Optional[str], frames: Optional[tuple[int, int]]) -> Any:
    """The explained character matching ours: same index and letter, else same letter
    with overlapping frames (explain() may decode a slightly different text)."""
    same = [c for c in chars if getattr(c, "index", None) == index
            and (char is None or getattr(c, "char", char) == char)]
    if same:
        return same[0]
    if frames is not None and char is not None:
        for c in chars:
            span = getattr(c, "frame_span", None)
            if getattr(c, "char", None) == char and span and span[0] <= frames[1] and frames[0] <= span[1]:
                return c
    raise ValueError(f"saliency has no character {char!r} at {index}")


def _scores_of(out: Any, index: int, n: int, char: Optional[str] = None,
               frames: Optional[tuple[int, int]] = None) -> np.ndarray:
    """Reduce explain()'s result to (n,) scores for character ``index``."""
    if hasattr(out, "chars"):
        out = _pick(list(out.chars), index, char, frames)
    for name in ("point_scores", "scores", "values"):
        if hasattr(out, name):
            out = getattr(out, name)
            break
    arr = np.asarray(out, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == n:
        arr = arr[index] if arr.shape[0] > 1 else arr[0]
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"saliency returned shape {arr.shape} for {n} points")
    return arr


def char_heat(recognizer: Any, ink: Ink, index: int, method: str = "gradient",
              char: Optional[str] = None, frames: Optional[tuple[int, int]] = None) -> np.ndarray:
    """Per-point attribution of one recognised character.

    Args:
        recognizer: the loaded recogniser (its model and feature config are used).
        ink: the line, as recognised.
        index: index of the character in the recognised text.
        method: a key of :data:`METHODS`.
        char, frames: the character and its output-frame span, to find it if
            the saliency module decodes the line slightly differently.
    Returns:
        (N,) float64 scores over the line's flat points (any sign).
    """
    out = _module().explain(recognizer, ink, method=method, chars=[index])
    return _scores_of(out, index, ink.num_points, char, frames)


def demo_rows(recognizer: Any, ink: Ink) -> DemoRows:
    """The demo panel's rows for one line (see :class:`DemoRows`)."""
    out = _module().demo_rows(recognizer, ink)
    get = out.get if isinstance(out, dict) else (lambda k, d=None: getattr(out, k, d))
    probs = np.asarray(get("probs"), dtype=np.float64)
    labels = list(get("labels", None) or [str(i) for i in range(probs.shape[1])])
    cells = np.asarray(get("cells"), dtype=np.float64)
    if cells.ndim == 3:  # (layers, T, H): show the last layer
        cells = cells[-1]
    frame_points = np.asarray(get("frame_points", get("src_pos", None)), dtype=np.float64)
    grad = np.asarray(get("grad", get("gradient", None)), dtype=np.float64)
    return DemoRows(ink, probs, labels, cells, frame_points.reshape(-1), grad.reshape(-1))
