"""Side-by-side statistics and a contact sheet: synthetic lines against real ones.

Run it again after changing the generator::

    python -m inkread.synth.stats --real iamondb:/root/.cache/inkread/IAM-OnDB@trainset \\
        --n 400 --sheet /tmp/synth-vs-real.png

The measures need no annotation beyond the text, so they apply to any
labelled line of ink. Heights are estimated from the ink itself, identically
for both sides: the line is detrended (least-squares fit of y on x) and the
*body height* ``h`` is the 10th-to-90th percentile spread of the detrended y
of all points, roughly the x-height plus part of the ascenders. Speeds and
widths are given in ``h`` so that device units do not matter.

The contact sheet contains the real ink: write it outside the repository
(IAM-OnDB's licence forbids redistributing it).
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from typing import Iterable, Optional, Sequence

import numpy as np

from ..ink import Ink

log = logging.getLogger(__name__)

#: name -> description, in report order.
MEASURES = {
    "points_per_char": "points per non-space character",
    "strokes_per_word": "pen-down strokes per word",
    "sec_per_char": "seconds per non-space character (first to last point)",
    "speed_h_per_s": "pen-down speed, body heights per second",
    "pen_down_frac": "fraction of the line's time with the pen down",
    "sample_hz": "within-stroke sampling rate, Hz",
    "step_h": "distance between consecutive points, body heights",
    "width_per_char_h": "line width per character (spaces included), body heights",
    "gap_s": "median pen-up time between strokes, s",
    "chars_per_line": "characters per line (spaces included)",
}


def body_height(ink: Ink) -> float:
    """Robust height of the writing: 10-90% spread of the detrended y of all points."""
    a = ink.to_array()
    x, y = a[:, 0], a[:, 1]
    if len(x) > 2 and np.ptp(x) > 0:
        slope, icpt = np.polyfit(x, y, 1)
        y = y - (slope * x + icpt)
    lo, hi = np.percentile(y, [10, 90])
    return max(float(hi - lo), 1e-9)


def _words(text: str) -> int:
    return max(1, sum(1 for w in text.split() if any(c.isalnum() for c in w)))


def line_stats(ink: Ink, text: str) -> dict[str, float]:
    """The :data:`MEASURES` of one line."""
    strokes = [s for s in ink.strokes if len(s)]
    nchar = max(1, sum(1 for c in text if not c.isspace()))
    h = body_height(ink)
    down_t = sum(float(s.t[-1] - s.t[0]) for s in strokes)
    steps = np.concatenate([np.hypot(np.diff(s.x), np.diff(s.y)) for s in strokes])
    inner = sum(len(s) - 1 for s in strokes)
    gaps = [float(b.t[0] - a.t[-1]) for a, b in zip(strokes, strokes[1:])]
    xmin, _, xmax, _ = ink.bbox()
    dur = max(ink.duration, 1e-9)
    return {
        "points_per_char": ink.num_points / nchar,
        "strokes_per_word": len(strokes) / _words(text),
        "sec_per_char": ink.duration / nchar,
        "speed_h_per_s": float(steps.sum()) / h / max(down_t, 1e-9),
        "pen_down_frac": down_t / dur,
        "sample_hz": inner / max(down_t, 1e-9),
        "step_h": float(np.median(steps)) / h if steps.size else 0.0,
        "width_per_char_h": (xmax - xmin) / h / max(1, len(text)),
        "gap_s": float(np.median(gaps)) if gaps else 0.0,
        "chars_per_line": float(len(text)),
    }


def summarize(rows: Sequence[dict[str, float]]) -> dict[str, tuple[float, float, float]]:
    """Per measure: (10th percentile, median, 90th percentile) over lines."""
    out = {}
    for key in MEASURES:
        vals = np.array([r[key] for r in rows], dtype=np.float64)
        out[key] = tuple(float(v) for v in np.percentile(vals, [10, 50, 90]))
    return out


def compare_table(named: dict[str, Sequence[dict[str, float]]]) -> str:
    """A plain-text (Markdown) table: one row per measure, one column per source."""
    sums = {name: summarize(rows) for name, rows in named.items()}
    head = "| measure | " + " | ".join(f"{n} median (p10-p90)" for n in named) + " |"
    lines = [head, "|---" * (len(named) + 1) + "|"]
    for key in MEASURES:
        cells = [f"{s[key][1]:.3g} ({s[key][0]:.3g}-{s[key][2]:.3g})" for s in sums.values()]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("lines: " + ", ".join(f"{n} {len(r)}" for n, r in named.items()))
    return "\n".join(lines)


def char_frequency_table(named: dict[str, Iterable[str]], top: int = 30) -> str:
    """Share of each character (per mille of non-space characters), most frequent first."""
    counts = {n: Counter(c for t in texts for c in t if not c.isspace()) for n, texts in named.items()}
    first = next(iter(counts.values()))
    keys = [c for c, _ in first.most_common()]
    keys += sorted({c for cnt in counts.values() for c in cnt} - set(keys))
    rows = []
    for c in keys[:top]:
        cells = [f"{1000 * cnt[c] / max(1, sum(cnt.values())):.1f}" for cnt in counts.values()]
        rows.append(f"{c!r}: " + " / ".join(cells))
    return "\n".join(rows)


# ------------------------------------------------------------- contact sheet
def _draw_line(draw, ink: Ink, box: tuple[int, int, int, int], width: int) -> None:
    x0, y0, x1, y1 = box
    a = ink.to_array()
    xmin, ymin = a[:, 0].min(), a[:, 1].min()
    span_x, span_y = max(np.ptp(a[:, 0]), 1e-9), max(np.ptp(a[:, 1]), 1e-9)
    scale = min((x1 - x0) / span_x, (y1 - y0) / span_y)
    for s in ink.strokes:
        pts = [(x0 + (px - xmin) * scale, y0 + (py - ymin) * scale) for px, py in zip(s.x, s.y)]
        if len(pts) == 1:
            pts = pts * 2
        draw.line(pts, fill=0, width=width)


def contact_sheet(columns: dict[str, Sequence[Ink]], path: str, row_px: int = 90,
                  col_px: int = 900, width: int = 2) -> None:
    """Draw each column's lines top to bottom, columns side by side, into a PNG."""
    from PIL import Image, ImageDraw
    rows = max(len(v) for v in columns.values())
    pad = 8
    img = Image.new("L", (len(columns) * (col_px + pad), 20 + rows * (row_px + pad)), 255)
    draw = ImageDraw.Draw(img)
    for c, (name, inks) in enumerate(columns.items()):
        cx = c * (col_px + pad)
        draw.text((cx + 4, 4), name, fill=0)
        for r, ink in enumerate(inks):
            top = 20 + r * (row_px + pad)
            draw.rectangle((cx, top - 2, cx + col_px, top + row_px + 2), outline=200)
            _draw_line(draw, ink, (cx + 4, top, cx + col_px - 4, top + row_px), width)
    img.save(path)


# ------------------------------------------------------------------- script
def _real_samples(spec: str, n: int, seed: int) -> list:
    from ..datasets import load_spec
    ds = load_spec(spec)
    idx = np.random.default_rng(seed).permutation(len(ds.samples))[:n]
    return [ds.samples[int(i)] for i in idx]


def main(argv: Optional[Sequence[str]] = None) -> int:
    from . import synth_samples
    p = argparse.ArgumentParser(prog="python -m inkread.synth.stats", description=__doc__.split("\n")[0])
    p.add_argument("--real", help="data spec of real lines, e.g. iamondb:ROOT@trainset")
    p.add_argument("--n", type=int, default=400, help="lines per side (default 400)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sheet", help="write a contact sheet PNG here (outside the repository)")
    p.add_argument("--sheet-rows", type=int, default=12)
    args = p.parse_args(argv)
    synth = [synth_samples(args.n, args.seed)[i] for i in range(args.n)]
    named = {"synthetic": [line_stats(s.ink, s.text) for s in synth]}
    texts = {"synthetic": [s.text for s in synth]}
    columns = {"synthetic": [s.ink for s in synth[:args.sheet_rows]]}
    if args.real:
        real = _real_samples(args.real, args.n, args.seed)
        named["real"] = [line_stats(s.ink, s.text) for s in real]
        texts["real"] = [s.text for s in real]
        columns["real"] = [s.ink for s in real[:args.sheet_rows]]
    print(compare_table(named))
    print()
    print("character shares, per mille (" + " / ".join(texts) + "):")
    print(char_frequency_table(texts))
    if args.sheet:
        contact_sheet(columns, args.sheet)
        print(f"contact sheet: {args.sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
