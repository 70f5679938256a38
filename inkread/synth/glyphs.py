"""Single-stroke glyphs from the Hershey fonts, prepared to be written with a pen.

Two Hershey fonts look like pen strokes: ``rowmans`` (Roman simplex, print;
``futural`` has the same letters but a raised full stop) and ``scripts``
(Script simplex, joined lowercase; ``cursive`` is the same letters with
``futural``'s digits and punctuation). Their other glyphs are outlined (duplex)
or decorative, so a line in script style takes only its letters from
``scripts`` and digits and punctuation from ``rowmans``, as the ``cursive`` font
does.

Preparation, done once per process:

* coordinates move to font units with y down, the baseline at 0 and the
  glyph's left side bearing at x = 0;
* strokes that only double another stroke (the duplex parts of ``[``, ``]``,
  ``{``, ``}``) are dropped;
* straight strokes are turned to run top-down or left-to-right, as people
  draw them; dots go last (the stem of an ``i`` before its dot);
* each stroke is marked as a dot, a bar (the cross of ``t``, ``f``, ``x``,
  which writers may add after the word) or main;
* for each pair of consecutive strokes, whether the pen can go from one to the
  next without leaving visible ink (the connector retraces existing ink, or
  is very short): then a writer may keep the pen down.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

#: Every character the generator can write: printable ASCII.
SUPPORTED_CHARS = "".join(chr(c) for c in range(32, 127))

PRINT_FONT = "rowmans"
SCRIPT_FONT = "scripts"
#: Hershey font units per x-height of each font's lowercase (top of "x" to baseline).
X_HEIGHT_UNITS = {PRINT_FONT: 14.0, SCRIPT_FONT: 9.0}
_BASELINE = 9.0  # Hershey baseline, in font units, y down
_DENSE_STEP = 1.5  # max distance between glyph vertices, font units
_DELAYABLE = {"i": "dot", "j": "dot", "t": "bar", "f": "bar", "x": "bar"}


@dataclass(frozen=True)
class Glyph:
    """One character's strokes in font units (y down, baseline 0, left side at x 0).

    Attributes:
        char: the character.
        strokes: tuple of (n, 2) float64 arrays, in writing order.
        kinds: per stroke, "main", "dot" or "bar" (dot and bar may be delayed).
        retrace: per pair of consecutive strokes, True if the pen may stay down
            between them without drawing a visible connector.
        advance: horizontal advance, font units.
    """

    char: str
    strokes: tuple
    kinds: tuple
    retrace: tuple
    advance: float


def _dist_to_ink(pts: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """(P,) distance of each point to the nearest of the ``ink`` points (M, 2)."""
    if ink.size == 0:
        return np.full(len(pts), np.inf)
    d = pts[:, None, :] - ink[None, :, :]
    return np.sqrt((d ** 2).sum(-1)).min(1)


def _densify(stroke: np.ndarray, step: float = _DENSE_STEP) -> np.ndarray:
    """Insert vertices so that no segment is longer than ``step``."""
    if len(stroke) < 2:
        return stroke
    seg = np.diff(stroke, axis=0)
    n = np.maximum(1, np.ceil(np.hypot(seg[:, 0], seg[:, 1]) / step).astype(np.int64))
    idx = np.repeat(np.arange(len(seg)), n)
    frac = (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + 1) / np.repeat(n, n)
    return np.concatenate([stroke[:1], stroke[idx] + seg[idx] * frac[:, None]])


def _orient(stroke: np.ndarray) -> np.ndarray:
    """Straight strokes run top-down (steep) or left-to-right (flat)."""
    if len(stroke) != 2:
        return stroke
    dx, dy = stroke[1] - stroke[0]
    flip = dy < 0 if abs(dy) >= abs(dx) else dx < 0
    return stroke[::-1].copy() if flip else stroke


def _continue(strokes) -> list[np.ndarray]:
    """Reverse a stroke that ends where the previous one ended, so the pen goes on from there
    (the second arm of a V is drawn upwards)."""
    out: list[np.ndarray] = []
    for s in strokes:
        if out and len(s) > 1:
            end = out[-1][-1]
            if np.hypot(*(s[-1] - end)) <= 1.5 < np.hypot(*(s[0] - end)):
                s = s[::-1].copy()
        out.append(s)
    return out


def _is_dot(stroke: np.ndarray) -> bool:
    return float(np.ptp(stroke, axis=0).max()) <= 2.5


def _drop_doubles(strokes: list[np.ndarray]) -> list[np.ndarray]:
    """Remove strokes lying within one font unit of the strokes kept so far."""
    kept: list[np.ndarray] = []
    for s in strokes:
        dense = _densify(s, 0.5)
        others = np.concatenate([_densify(k, 0.5) for k in kept]) if kept else np.zeros((0, 2))
        if len(s) > 1 and not _is_dot(s) and _dist_to_ink(dense, others).max() <= 1.01:
            continue
        kept.append(s)
    return kept


def _retraces(strokes: list[np.ndarray]) -> tuple:
    """Whether moving from the end of stroke k to the start of k+1 stays on ink."""
    ink = np.concatenate([_densify(s, 0.5) for s in strokes])
    out = []
    for a, b in zip(strokes[:-1], strokes[1:]):
        gap = b[0] - a[-1]
        pts = a[-1] + gap * np.linspace(0, 1, 9)[:, None]
        short = float(np.hypot(*gap)) <= 1.5
        out.append(bool(short or _dist_to_ink(pts, ink).max() <= 1.2))
    return tuple(out)


def _prepare(char: str, raw_strokes: list, left: float, width: float) -> Glyph:
    strokes = [np.asarray(s, dtype=np.float64) - (left, _BASELINE) for s in raw_strokes if len(s)]
    strokes = _continue(s for s in [_orient(s) for s in _drop_doubles(strokes)])
    main = [s for s in strokes if not _is_dot(s)]
    dots = [s for s in strokes if _is_dot(s)]
    # a Hershey dot is a tiny polygon; a pen makes a short tick
    dots = [np.array([[-0.3, -0.5], [0.3, 0.5]]) + s.mean(axis=0) for s in dots]
    strokes = main + dots
    kinds = ["dot" if _is_dot(s) else "main" for s in strokes]
    if _DELAYABLE.get(char) == "bar" and len(strokes) > 1 and kinds[-1] == "main":
        kinds[-1] = "bar"
    retrace = _retraces(strokes) if len(strokes) > 1 else ()
    dense = tuple(_densify(s) for s in strokes)
    for s in dense:
        s.setflags(write=False)
    return Glyph(char, dense, tuple(kinds), retrace, float(width))


@functools.lru_cache(maxsize=None)
def load_font(name: str) -> dict[str, Glyph]:
    """All printable-ASCII glyphs of a Hershey font, prepared (cached per process)."""
    from HersheyFonts import HersheyFonts
    font = HersheyFonts()
    font.load_default_font(name)
    table = font.all_glyphs
    out = {}
    for char in SUPPORTED_CHARS:
        g = table[char]
        out[char] = _prepare(char, g.strokes, g.left_offset, g.char_width)
    log.debug("loaded Hershey font %s (%d glyphs)", name, len(out))
    return out


def glyph_for(char: str, script: bool, script_caps: bool) -> tuple[Glyph, bool]:
    """The glyph to write ``char`` in a print or script line, and whether it is a script glyph.

    Script lines take letters from the script font (capitals only when
    ``script_caps``) and everything else from the print font.
    """
    use_script = script and char.isalpha() and (char.islower() or script_caps)
    return load_font(SCRIPT_FONT if use_script else PRINT_FONT)[char], use_script
