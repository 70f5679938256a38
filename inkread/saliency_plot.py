"""The saliency figure: per-character heat maps and the rows of Graves's demo.

:func:`figure` stacks, top to bottom:

* a header (text, method, model);
* the ink with a heat overlay for one chosen character, or small multiples,
  one per character (|score| scaled to each character's maximum, drawn with
  :func:`inkread.render.draw`);
* with the demo rows (:func:`inkread.saliency.demo_rows`): the output
  probabilities over time (one line per shown class, darker = likelier),
  the selected memory cells over time (blue negative, red positive, each
  cell scaled to its own maximum), the writing, and the gradient magnitude
  along the writing. The first two rows run over output frames, the last two
  over the page; for a line written left to right they roughly align.

Only pillow and numpy are used (no plotting library).
"""
from __future__ import annotations

import logging
from typing import Any, Optional

import numpy as np

from . import render
from .ink import Ink

log = logging.getLogger(__name__)

BG = (255, 255, 255)
FG = (30, 30, 30)
LABEL_W = 70  # left margin for row labels in the demo rows
NEG, POS = np.array([33, 102, 172.0]), np.array([178, 24, 43.0])


def _font(size: int = 13) -> Any:
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pillow < 10.1 has only the bitmap font
        return ImageFont.load_default()


def _text_block(lines: list[str], width: int, size: int = 13) -> Any:
    from PIL import Image, ImageDraw
    font = _font(size)
    h = (size + 5) * len(lines) + 6
    img = Image.new("RGB", (width, h), BG)
    pen = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        pen.text((6, 4 + i * (size + 5)), line, fill=FG, font=font)
    return img


def _stack(images: list[Any], width: int) -> Any:
    from PIL import Image
    out = Image.new("RGB", (width, sum(im.height for im in images)), BG)
    y = 0
    for im in images:
        out.paste(im, (0, y))
        y += im.height
    return out


def heat_weights(scores: np.ndarray) -> np.ndarray:
    """(N,) scores of any sign -> (N,) display weights |s| / max |s| in [0, 1]."""
    mag = np.abs(np.asarray(scores, dtype=np.float64))
    top = mag.max() if mag.size else 0.0
    return mag / top if top > 0 else mag


def char_panel(ink: Ink, cs: Any, width: int) -> Any:
    """One character's heat map with its caption."""
    cap = (f"{cs.index}: {cs.char!r}  frames {cs.frame_span[0]}-{cs.frame_span[1]}  "
           f"top point {cs.top_point}  top stroke {int(np.argmax(np.abs(cs.stroke_scores)))}")
    img = render.draw(ink, width, weights=heat_weights(cs.point_scores), supersample=2)
    return _stack([_text_block([cap], width, 12), img], width)


def small_multiples(ink: Ink, chars: list, width: int, columns: int = 3) -> Any:
    """A grid of :func:`char_panel`, ``columns`` wide."""
    from PIL import Image
    cell = width // columns
    panels = [char_panel(ink, cs, cell) for cs in chars]
    if not panels:
        return _text_block(["(no characters recognised)"], width)
    rows = [panels[i:i + columns] for i in range(0, len(panels), columns)]
    heights = [max(p.height for p in r) for r in rows]
    out = Image.new("RGB", (width, sum(heights)), BG)
    y = 0
    for r, h in zip(rows, heights):
        for j, p in enumerate(r):
            out.paste(p, (j * cell, y))
        y += h
    return out


def _matrix_row(values: np.ndarray, labels: list[str], title: str, width: int, px: int,
                diverging: bool) -> Any:
    """(T, K) values as K horizontal lines of colour over time, labelled on the left."""
    from PIL import Image, ImageDraw
    v = np.asarray(values, dtype=np.float64).T  # (K, T)
    if diverging:
        v = v / np.maximum(np.abs(v).max(axis=1, keepdims=True), 1e-12)
        w = np.abs(v)[..., None]
        rgb = 255 * (1 - w) + np.where(v[..., None] < 0, NEG, POS) * w
    else:
        rgb = np.repeat(255 * (1 - np.clip(v, 0, 1))[..., None], 3, axis=-1)
    body = Image.fromarray(rgb.astype(np.uint8), "RGB").resize((width - LABEL_W, px * v.shape[0]),
                                                                Image.NEAREST)
    img = Image.new("RGB", (width, body.height), BG)
    img.paste(body, (LABEL_W, 0))
    pen, font = ImageDraw.Draw(img), _font(max(8, min(px, 12)))
    if px >= 8:
        for i, lab in enumerate(labels):
            pen.text((4, i * px), lab, fill=FG, font=font)
    return _stack([_text_block([title], width, 12), img], width)


def demo_panel(ink: Ink, rows: dict, width: int) -> Any:
    """Graves's demo rows: probabilities, memory cells, the writing, the gradient."""
    labels = ["blank" if not c else repr(c) for c in rows["labels"]]
    probs = _matrix_row(rows["probs"], labels, "output probabilities over time (darker = likelier)",
                        width, max(4, min(12, 240 // max(len(labels), 1))), diverging=False)
    cells = _matrix_row(rows["cells"], [str(i) for i in rows["cell_index"]],
                        "memory cells c_t, layer 1 forward LSTM (blue < 0 < red)", width, 8, diverging=True)
    writing = render.draw(ink, width, supersample=2)
    grad = render.draw(ink, width, weights=rows["grad"], supersample=2)
    return _stack([probs, cells, _text_block(["the writing"], width, 12), writing,
                   _text_block(["gradient magnitude along the writing (all recognised characters)"], width, 12),
                   grad], width)


def figure(ink: Ink, explanation: Any, rows: Optional[dict] = None, char: Optional[int] = None,
           width: int = 1200, model: str = "") -> Any:
    """The whole figure as a :class:`PIL.Image.Image`.

    Args:
        ink: the explained line.
        explanation: an :class:`~inkread.saliency.Explanation`.
        rows: :func:`~inkread.saliency.demo_rows` output, or None to leave the demo rows out.
        char: the index (in the explained text) of the one character to show
            large; None = small multiples of all explained characters.
    """
    head = [f"text: {explanation.text!r}",
            f"method: {explanation.method}   window: {explanation.window or 'exact'}   model: {model}"]
    parts = [_text_block(head, width, 14)]
    chosen = [c for c in explanation.chars if char is None or c.index == char]
    if char is not None and chosen:
        parts.append(char_panel(ink, chosen[0], width))
    else:
        parts.append(small_multiples(ink, chosen, width))
    if rows is not None:
        parts.append(demo_panel(ink, rows, width))
    return _stack(parts, width)
