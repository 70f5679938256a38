"""Drawing ink to PNG (pillow, antialiased) and SVG, optionally coloured per point.

:func:`draw` returns a :class:`PIL.Image.Image`, :func:`to_svg` an SVG
string, :func:`save` writes either by suffix. All take ``colors`` (one RGB
per point, in the flat point order of :meth:`Ink.to_array`) or ``weights``
(one value in [0, 1] per point, mapped through :func:`heat_colors`), which
is how saliency heat maps are overlaid on the ink: each segment gets the
mean colour of its two end points.

Pillow draws lines without antialiasing, so the PNG is drawn at
``supersample`` times the size and reduced with a Lanczos filter.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .errors import FormatError, OptionError
from .ink import Ink

log = logging.getLogger(__name__)

DEFAULT_WIDTH = 800
MAX_SIDE = 10_000
MAX_SUPERSAMPLED = 8_000
# weight 0 -> pale grey, 0.5 -> orange, 1 -> dark red
HEAT_STOPS = np.array([[205, 205, 205], [245, 150, 30], [180, 0, 20]], dtype=np.float64)

Color = Sequence[int]


@dataclass(frozen=True)
class View:
    """Maps ink coordinates to pixels: px = x * scale + ox, py = y * scale + oy."""

    scale: float
    ox: float
    oy: float
    width: int
    height: int
    line_width: float

    def apply(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x * self.scale + self.ox, y * self.scale + self.oy


def fit(ink: Ink, width: int = DEFAULT_WIDTH, height: Optional[int] = None,
        line_width: Optional[float] = None) -> View:
    """The view that fits ``ink`` into ``width`` (and ``height``, else by aspect ratio, at most 2x width)."""
    ink.require_points()
    if not 8 <= width <= MAX_SIDE or (height is not None and not 8 <= height <= MAX_SIDE):
        raise OptionError(f"image size must be 8..{MAX_SIDE} pixels (got {width}x{height})")
    x0, y0, x1, y1 = ink.bbox()
    w, h = max(x1 - x0, 1e-9), max(y1 - y0, 1e-9)
    margin = max(4.0, 0.04 * width)
    if x1 - x0 <= 0 and y1 - y0 <= 0:
        scale = 1.0
    else:
        scale = (width - 2 * margin) / w if x1 > x0 else math.inf
        limit = (height or 2 * width) - 2 * margin
        scale = min(scale, limit / h if y1 > y0 else math.inf)
    if height is None:
        height = int(min(MAX_SIDE, max(16, math.ceil(h * scale + 2 * margin))))
    ox = (width - w * scale) / 2 - x0 * scale if x1 > x0 else width / 2 - x0 * scale
    oy = (height - h * scale) / 2 - y0 * scale if y1 > y0 else height / 2 - y0 * scale
    if line_width is None:
        line_width = float(np.clip(0.025 * min(h * scale, height), 1.5, 6.0))
    return View(scale, ox, oy, width, height, line_width)


def heat_colors(weights: np.ndarray) -> np.ndarray:
    """(N,) weights in [0, 1] (NaN counts as 0) -> (N, 3) uint8 RGB on a grey-orange-red scale."""
    w = np.nan_to_num(np.asarray(weights, dtype=np.float64).reshape(-1), nan=0.0)
    pos = np.clip(w, 0.0, 1.0) * (len(HEAT_STOPS) - 1)
    lo = np.minimum(pos.astype(int), len(HEAT_STOPS) - 2)
    frac = (pos - lo)[:, None]
    rgb = HEAT_STOPS[lo] * (1 - frac) + HEAT_STOPS[lo + 1] * frac
    return np.round(rgb).astype(np.uint8)


def point_colors(ink: Ink, colors: Optional[np.ndarray] = None,
                 weights: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
    """(N, 3) uint8 per-point colours from ``colors`` (uint8 or floats in [0, 1]) or ``weights``."""
    if colors is None and weights is None:
        return None
    n = ink.num_points
    if colors is None:
        colors = heat_colors(weights)
    arr = np.asarray(colors)
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] not in (3, 4):
        raise ValueError(f"expected ({n}, 3) per-point colours, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        arr = np.round(np.clip(arr, 0.0, 1.0) * 255)
    return arr[:, :3].astype(np.uint8)


def _strokes_px(ink: Ink, view: View, factor: float = 1.0):
    """Per non-empty stroke: (px, py) pixel arrays and the slice of flat point indices."""
    start = 0
    for s in ink.strokes:
        n = len(s)
        if n:
            px, py = view.apply(s.x, s.y)
            yield px * factor, py * factor, slice(start, start + n)
        start += n


def draw(ink: Ink, width: int = DEFAULT_WIDTH, height: Optional[int] = None, *,
         colors: Optional[np.ndarray] = None, weights: Optional[np.ndarray] = None,
         color: Color = (0, 0, 0), background: Color = (255, 255, 255),
         line_width: Optional[float] = None, supersample: int = 4):
    """Render ``ink`` to an RGB :class:`PIL.Image.Image`.

    Args:
        ink: the ink (must have points).
        width, height: image size; height follows the aspect ratio when None.
        colors: optional (N, 3) per-point colours; overrides ``color``.
        weights: optional (N,) per-point weights in [0, 1], drawn as a heat scale.
        color, background: RGB of the ink and the paper.
        line_width: pen width in output pixels (default: from the ink's height).
        supersample: drawing scale factor for antialiasing.
    """
    from PIL import Image, ImageDraw
    view = fit(ink, width, height, line_width)
    per_point = point_colors(ink, colors, weights)
    f = max(1, min(supersample, MAX_SUPERSAMPLED // max(view.width, view.height)))
    img = Image.new("RGB", (view.width * f, view.height * f), tuple(background))
    pen = ImageDraw.Draw(img)
    lw = max(1.0, view.line_width * f)
    r = lw / 2
    for px, py, sl in _strokes_px(ink, view, f):
        if per_point is None:
            fill = tuple(int(c) for c in color)
            if len(px) > 1:
                pen.line(list(zip(px.tolist(), py.tolist())), fill=fill, width=round(lw), joint="curve")
            for i in (0, len(px) - 1):  # round caps
                pen.ellipse([px[i] - r, py[i] - r, px[i] + r, py[i] + r], fill=fill)
            continue
        cols = per_point[sl].astype(np.int32)
        for i in range(len(px)):
            fill = tuple(int(c) for c in cols[i])
            if i + 1 < len(px):
                seg = tuple(int(c) for c in (cols[i] + cols[i + 1]) // 2)
                pen.line([(px[i], py[i]), (px[i + 1], py[i + 1])], fill=seg, width=round(lw))
            pen.ellipse([px[i] - r, py[i] - r, px[i] + r, py[i] + r], fill=fill)
    if f > 1:
        img = img.resize((view.width, view.height), Image.LANCZOS)
    return img


def _hex(c) -> str:
    return "#%02x%02x%02x" % tuple(int(v) for v in c[:3])


def to_svg(ink: Ink, width: int = DEFAULT_WIDTH, height: Optional[int] = None, *,
           colors: Optional[np.ndarray] = None, weights: Optional[np.ndarray] = None,
           color: Color = (0, 0, 0), background: Optional[Color] = (255, 255, 255),
           line_width: Optional[float] = None) -> str:
    """SVG text of ``ink``; same arguments as :func:`draw` (background None = transparent)."""
    view = fit(ink, width, height, line_width)
    per_point = point_colors(ink, colors, weights)
    lw = f"{view.line_width:.2f}"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{view.width}" height="{view.height}" '
           f'viewBox="0 0 {view.width} {view.height}">']
    if background is not None:
        out.append(f'<rect width="100%" height="100%" fill="{_hex(background)}"/>')
    out.append(f'<g fill="none" stroke="{_hex(color)}" stroke-width="{lw}" '
               f'stroke-linecap="round" stroke-linejoin="round">')
    for px, py, sl in _strokes_px(ink, view):
        pts = [f"{a:.2f},{b:.2f}" for a, b in zip(px, py)]
        if per_point is None:
            if len(pts) == 1:
                pts = pts * 2  # a dot: a zero-length line drawn with round caps
            out.append(f'<polyline points="{" ".join(pts)}"/>')
            continue
        cols = per_point[sl].astype(np.int32)
        if len(pts) == 1:
            out.append(f'<line x1="{px[0]:.2f}" y1="{py[0]:.2f}" x2="{px[0]:.2f}" y2="{py[0]:.2f}" '
                       f'stroke="{_hex(cols[0])}"/>')
        for i in range(len(pts) - 1):
            out.append(f'<line x1="{px[i]:.2f}" y1="{py[i]:.2f}" x2="{px[i + 1]:.2f}" y2="{py[i + 1]:.2f}" '
                       f'stroke="{_hex((cols[i] + cols[i + 1]) // 2)}"/>')
    out.append("</g></svg>\n")
    return "\n".join(out)


def save(ink: Ink, path: os.PathLike | str, width: int = DEFAULT_WIDTH, **kwargs) -> None:
    """Write ``ink`` as PNG or SVG by the suffix of ``path`` (atomically).

    Raises:
        OptionError: for another suffix or a bad size.
        FormatError: when the file cannot be written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise OptionError(f"cannot render to {suffix or 'a file without suffix'!r}: use .png or .svg", path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        if suffix == ".svg":
            tmp.write_text(to_svg(ink, width, **kwargs), encoding="utf-8")
        else:
            draw(ink, width, **kwargs).save(tmp, format="PNG")
        os.replace(tmp, path)
    except OSError as exc:
        raise FormatError(f"cannot write ({exc.strerror or exc})", path) from None
    finally:
        if tmp.exists():
            tmp.unlink()
