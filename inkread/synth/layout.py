"""From text and style to pen-down paths: glyph placement, joins, delayed strokes, deformation.

The output is still geometry without time: a polyline per pen-down stroke in
x-height units (y down, baseline at 0), every vertex tagged with the index of
the character of ``text`` that produced it. :mod:`inkread.synth.dynamics`
then gives it time and samples it like a digitizer.

Writing order follows what people do: letters left to right; inside a glyph
the pen stays down where the next stroke starts on ink already drawn (the
stem and arch of an "n"); in script style consecutive lowercase letters are
joined; i/j dots and t/f/x crosses are, by the style's ``delay``, written after
the last character of the word, in order.

A connector that joins two characters (straight segment from one's exit to
the next one's entry) is split at its middle between the two characters.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .glyphs import PRINT_FONT, SCRIPT_FONT, X_HEIGHT_UNITS, glyph_for
from .style import Style

log = logging.getLogger(__name__)



@dataclass
class Paths:
    """Pen-down polylines of a line, flattened.

    Attributes:
        pts: (M, 2) float64 vertices, x-heights, y down, baseline 0.
        char: (M,) int64 index into the text of the character of each vertex.
        stroke: (M,) int64 pen-down stroke of each vertex (0, 1, ...; non-decreasing).
        new_word: (S,) bool, stroke s is the first one written after a space.
    """

    pts: np.ndarray
    char: np.ndarray
    stroke: np.ndarray
    new_word: np.ndarray


class _Pieces:
    """Accumulates glyph strokes in writing order."""

    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []
        self.chars: list[int] = []
        self.joined: list[bool] = []
        self.new_word: list[bool] = []
        self.last_char = -1
        self.last_kind = ""
        self.after_space = True

    def add(self, arr: np.ndarray, char: int, kind: str, joined: bool) -> None:
        self.arrays.append(arr)
        self.chars.append(char)
        self.joined.append(bool(joined and len(self.arrays) > 1))
        self.new_word.append(self.after_space and not joined)
        self.after_space = False
        self.last_char, self.last_kind = char, kind


def _over_the_top(start: np.ndarray, unit: float) -> np.ndarray:
    """Waypoint of a joining stroke into a letter that starts inside its bowl (a, c, d, g, o, q).

    The joining stroke rises to the x-height left of the start, as in cursive
    hands, instead of crossing the bowl.
    """
    return np.array([[0.55 * start[0] * unit, min(start[1] * unit, -1.0) - 0.05]])


def _place_glyph(pieces: _Pieces, pending: list, i: int, c: str, style: Style,
                 unit: float, u: np.ndarray, prev_script_letter: bool) -> tuple[bool, float]:
    """Emit the strokes of character ``i``.

    Returns:
        (whether it is a joinable script letter, its advance in font units).
    """
    glyph, is_script = glyph_for(c, style.script, style.script_caps)
    letter = is_script and c.islower()
    for k, (s, kind) in enumerate(zip(glyph.strokes, glyph.kinds)):
        local = s * unit
        if kind != "main" and c in "ijtfx" and u[k % 4] < style.delay:
            pending.append((local, i, kind))
            continue
        if k == 0:
            joined = (letter and prev_script_letter and pieces.last_char == i - 1
                      and pieces.last_kind == "main" and u[4] < style.join_letters)
            if joined and s[0, 0] > 0.25 * glyph.advance:
                local = np.vstack([_over_the_top(s[0], unit), local])
        else:
            joined = (kind == "main" and glyph.retrace[k - 1] and pieces.last_char == i
                      and pieces.last_kind == "main" and u[5 + k % 3] < style.join_in_glyph)
        pieces.add(local, i, kind, joined)
    return letter, glyph.advance


def layout(text: str, style: Style, rng: np.random.Generator) -> tuple[Paths, np.ndarray]:
    """Place the glyphs of ``text`` and decide the pen-down strokes.

    Returns:
        (paths in local glyph coordinates, origin): ``paths.pts`` are relative
        to each character's origin, ``origin`` is (len(text),) the x of each
        character's origin in x-heights (see :func:`deform`).
    """
    unit = 1.0 / X_HEIGHT_UNITS[SCRIPT_FONT if style.script else PRINT_FONT]
    rand = rng.uniform(size=(len(text), 8))
    spacing = rng.normal(0.0, style.char_space_jitter, size=len(text))
    origin = np.zeros(len(text))
    pieces, pending = _Pieces(), []
    pen_x, prev_letter = 0.0, False
    for i, c in enumerate(text):
        origin[i] = pen_x
        if c == " ":
            _flush(pieces, pending)
            pieces.after_space = True
            pen_x += style.word_space * (1.0 + spacing[i])
            prev_letter = False
            continue
        prev_letter, advance = _place_glyph(pieces, pending, i, c, style, unit, rand[i], prev_letter)
        pen_x += advance * unit * style.aspect + style.letter_space + spacing[i]
    _flush(pieces, pending)
    return _flatten(pieces), origin


def _flush(pieces: _Pieces, pending: list) -> None:
    for local, i, kind in pending:
        pieces.add(local, i, kind, False)
    pending.clear()


def _flatten(pieces: _Pieces) -> Paths:
    sizes = np.array([len(a) for a in pieces.arrays], dtype=np.int64)
    joined = np.array(pieces.joined, dtype=bool)
    stroke_of_piece = np.cumsum(~joined) - 1
    pts = np.concatenate(pieces.arrays) if pieces.arrays else np.zeros((0, 2))
    new_word = np.array(pieces.new_word, dtype=bool)[~joined]
    return Paths(pts, np.repeat(np.array(pieces.chars, dtype=np.int64), sizes),
                 np.repeat(stroke_of_piece, sizes), new_word)


def deform(paths: Paths, origin: np.ndarray, style: Style, rng: np.random.Generator) -> Paths:
    """Per-character smooth deformation, then the line's slant, size drift and baseline.

    Every character gets its own small scale, shear, vertical shift and a
    low-frequency sinusoidal warp (smooth, not noise); the zones above the
    x-height and below the baseline are scaled by the style's ascender and
    descender factors.
    """
    n = len(origin)
    g = rng.normal(size=(n, 4))
    f = rng.uniform(0.15, 0.6, size=(n, 2))
    ph = rng.uniform(0.0, 1.0, size=(n, 2))
    c = paths.char
    u, v = paths.pts[:, 0].copy(), paths.pts[:, 1].copy()
    v = np.where(v < -1.0, -1.0 + (v + 1.0) * style.ascender, v)
    v = np.where(v > 0.0, v * style.descender, v)
    var = style.char_variation
    per_char = np.concatenate([np.exp(var * g[:, [0, 3]]), var * g[:, 1:3], 2 * np.pi * f,
                               2 * np.pi * ph, origin[:, None]], axis=1)[c]  # (M, 9)
    scale, widen, shear, shift = per_char[:, 0], per_char[:, 1], per_char[:, 2], 0.5 * per_char[:, 3]
    du = style.deform * np.sin(per_char[:, 4] * v + per_char[:, 6])
    dv = style.deform * np.sin(per_char[:, 5] * u + per_char[:, 7])
    x = per_char[:, 8] + ((u + du) * widen * scale + shear * v) * style.aspect
    y = (v + dv) * scale + shift
    return _line_transform(paths, x, y, style, rng)


def _line_transform(paths: Paths, x: np.ndarray, y: np.ndarray, style: Style,
                    rng: np.random.Generator) -> Paths:
    """Size drift, slant and a tilted, bent, slowly wavering baseline."""
    lam, ph = rng.uniform(6.0, 20.0, size=2), rng.uniform(0.0, 2 * np.pi, size=2)
    width = max(float(x.max() - x.min()) if x.size else 1.0, 1.0)
    y = y * (1.0 + style.size_drift * np.sin(2 * np.pi * x / (2 * lam[0]) + ph[0]))
    x = x - style.slant * y
    xm = 2.0 * (x - x.min()) / width - 1.0 if x.size else x
    y = (y + style.baseline_tilt * x + style.baseline_bend * xm ** 2
         + style.baseline_wave * np.sin(2 * np.pi * x / lam[1] + ph[1]))
    return Paths(np.stack([x, y], axis=1), paths.char, paths.stroke, paths.new_word)
