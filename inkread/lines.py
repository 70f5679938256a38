"""Grouping strokes into text lines, without Qt.

A page written on the canvas may hold several lines; the recogniser reads one
line at a time. :func:`group_lines` follows the pen through the page in
writing order, because people write lines one after the other, and uses
position to decide where a line ends:

1. Strokes are split into *body* strokes and *marks* (dots, accents,
   commas: shorter than 0.35 median stroke heights), attached last.
2. Each body stroke joins the line of the stroke before it when it simply
   continues it (overlaps it vertically and starts near its right end or
   across it, as a B's bowls are drawn around its stem, or sits right above
   or below it, as the bowl of a P sits on its stem), or
   goes on to the right without a big vertical jump. Otherwise it joins the
   line whose horizontally nearest strokes are within ``join`` median
   stroke heights above or below it (nearest strokes, not the whole line,
   so baselines that drift or slope across the page are followed), and a
   carriage return (the pen goes back left and lands below its line)
   starts a new line.
3. A line that began while an older one was still being written (the older
   one was taken up again afterwards) is folded into it: it was a delayed
   stroke, such as a t-bar, not a new line. A line that lies within the
   height of a longer one is folded into it too.
4. A mark joins the locally nearest line; near-ties go to the line of the
   stroke written just before it, as people dot their i's after the word.

Measured on pages put together from IAM-OnDB line files of the same form
(the line files keep the whiteboard positions): 720 of 775 trainset pages
exactly right, 88 of 137,412 strokes in a wrong line. On the trainset lines
placed six to a page as ``gui/screenshots/canvas_eval.py`` writes them on
the canvas (x-height 17 px, whole pixels), 857 of 894 pages exactly right.
Most misses are one line cut in two. The parameters were first chosen on
60 such form pages and on stacked synthetic lines (``inkread.synth``), and
the later ones on testset_v's pages, then checked on trainset's.

Lines are returned top to bottom; strokes inside a line keep writing order,
which is the order the recogniser was trained on.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from inkread.ink import Ink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StrokeBox:
    """Vertical summary of one stroke.

    Attributes:
        top, bottom: y extent (y grows downwards).
        center: median y of the points, robust to long tails.
        left, right: x extent.
    """

    top: float
    bottom: float
    center: float
    left: float = 0.0
    right: float = 0.0

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray) -> "StrokeBox":
        return cls(float(np.min(y)), float(np.max(y)), float(np.median(y)),
                   float(np.min(x)), float(np.max(x)))


@dataclass(frozen=True)
class Line:
    """One text line of a page.

    Attributes:
        strokes: indices into the page's strokes, in writing order.
        points: (N_line,) flat point indices of the page (as in Ink.to_array())
            of the line's points, in the line's own flat order; entry k is the
            page index of the line ink's point k.
    """

    strokes: tuple[int, ...]
    points: np.ndarray


def _body_mask(boxes: Sequence[StrokeBox], mark_ratio: float) -> np.ndarray:
    heights = np.array([b.height for b in boxes])
    ref = float(np.median(heights))
    if ref <= 0:
        return np.ones(len(boxes), dtype=bool)
    body = heights >= mark_ratio * ref
    return body if body.any() else np.ones(len(boxes), dtype=bool)


def _follows(a: StrokeBox, b: StrokeBox, scale: float) -> bool:
    """True if ``b``, written right after ``a``, continues a's line."""
    overlap = min(a.bottom, b.bottom) - max(a.top, b.top)
    across = min(a.right, b.right) - max(a.left, b.left)
    if overlap < 0.25 * max(min(a.height, b.height), 1e-9):
        # Stacked parts of one letter (a P's stem, then its bowl above it):
        # the boxes overlap across and meet, or nearly, from above or below.
        return across >= 0 and overlap >= -0.25 * scale
    # Side by side, or one across the other (a B's bowls drawn around its stem).
    return across >= 0 or a.left - scale <= b.left <= a.right + 3.0 * scale


def _offset(box: StrokeBox, members: list[StrokeBox], k: int = 3) -> float:
    """Signed vertical offset (down > 0) of ``box`` from the ``k`` horizontally nearest members."""
    gaps = np.array([max(0.0, m.left - box.right, box.left - m.right) for m in members])
    near = np.argsort(gaps, kind="stable")[:k]
    return box.center - float(np.median([members[j].center for j in near]))


def _local_offset(box: StrokeBox, members: list[StrokeBox], k: int = 3) -> float:
    """|vertical offset| of ``box`` from the ``k`` horizontally nearest strokes of a line."""
    return abs(_offset(box, members, k))


def _returns_below(prev: StrokeBox, box: StrokeBox, line: list[int],
                   boxes: Sequence[StrokeBox], scale: float, back: float = 2.0) -> bool:
    """A carriage return: the pen went ``back`` heights left and down, below its line."""
    if box.left >= prev.left - back * scale:
        return False
    return _offset(box, [boxes[j] for j in line]) > 0.8 * scale


def _nearest_line(box: StrokeBox, lines: list[list[int]], boxes: Sequence[StrokeBox],
                  k: int = 3) -> tuple[int, np.ndarray]:
    offsets = np.array([_local_offset(box, [boxes[j] for j in line], k) for line in lines])
    return int(np.argmin(offsets)), offsets


def _attach_mark(i: int, boxes: Sequence[StrokeBox], lines: list[list[int]],
                 line_of: dict[int, int], scale: float) -> int:
    """The line of mark ``i``: the locally nearest; near-ties go to the previous stroke's line."""
    best, offsets = _nearest_line(boxes[i], lines, boxes, k=2)
    order = np.argsort(offsets, kind="stable")
    if len(order) > 1 and offsets[order[1]] - offsets[best] <= 0.25 * scale:
        before = [line_of[j] for j in range(i - 1, -1, -1) if j in line_of]
        if before and before[0] in (best, int(order[1])):
            return before[0]
    return best


def _merge_interrupted(lines: list[list[int]], boxes: Sequence[StrokeBox], scale: float,
                       reach: float = 2.5) -> list[list[int]]:
    """Fold a line into an older one that was resumed after it began.

    People write lines one after the other. When line A is taken up again
    after line B began, B is almost always a delayed stroke of A (a t-bar or
    apostrophe too big to count as a mark) rather than a new line.
    """
    merged = True
    while merged:
        merged = False
        for b, line_b in enumerate(lines):
            first = line_b[0]
            hosts = [a for a, line_a in enumerate(lines) if a != b and len(line_a) > len(line_b)
                     and line_a[0] < first < line_a[-1]]
            if not hosts:
                continue
            offset = {a: float(np.median([_local_offset(boxes[i], [boxes[j] for j in lines[a]])
                                          for i in line_b])) for a in hosts}
            host = min(offset, key=offset.get)
            if offset[host] <= reach * scale:
                lines[host] = sorted(lines[host] + line_b)
                del lines[b]
                merged = True
                break
    return lines


def _merge_inside(lines: list[list[int]], boxes: Sequence[StrokeBox],
                  inside: float = 0.5) -> list[list[int]]:
    """Fold a line into a longer one that spans it from top to bottom.

    A line's span runs from the median top to the median bottom of its
    strokes. When at least ``inside`` of a shorter line's height lies within
    a longer line's span, it was a piece of that line cut off by a jump of
    the baseline or a gap (a quotation mark, a word after a long space), not
    a line of its own: lines of a page lie one below the other.
    """
    merged = True
    while merged and len(lines) > 1:
        merged = False
        spans = [(float(np.median([boxes[j].top for j in ln])),
                  float(np.median([boxes[j].bottom for j in ln]))) for ln in lines]
        order = sorted(range(len(lines)), key=lambda k: len(lines[k]))
        for b in order:
            top, bottom = min(boxes[j].top for j in lines[b]), max(boxes[j].bottom for j in lines[b])
            height = max(bottom - top, 1e-9)
            fits = [a for a in range(len(lines)) if a != b and len(lines[a]) >= len(lines[b])
                    and min(bottom, spans[a][1]) - max(top, spans[a][0]) >= inside * height]
            if fits:
                a = max(fits, key=lambda a: min(bottom, spans[a][1]) - max(top, spans[a][0]))
                lines[a] = sorted(lines[a] + lines[b])
                del lines[b]
                merged = True
                break
    return lines


def _choose_line(prev: StrokeBox, box: StrokeBox, prev_line: int, lines: list[list[int]],
                 boxes: Sequence[StrokeBox], scale: float, join: float) -> int:
    """The line of a body stroke, given the one written before it; len(lines) = a new line."""
    if _follows(prev, box, scale):
        return prev_line
    best, offsets = _nearest_line(box, lines, boxes)
    # Writing that goes on to the right stays on its line even when the baseline
    # jumps, unless another line fits it clearly better. A stroke that starts
    # past the previous one's right end (the next word) may jump further than
    # one that starts above or below it.
    onward = prev.left - scale <= box.left <= prev.right + 6.0 * scale and not _returns_below(
        prev, box, lines[prev_line], boxes, scale, back=0.0)
    reach = 3.5 if box.left > prev.right else 2.5
    if onward and offsets[prev_line] <= reach * scale and (
            best == prev_line or offsets[best] > offsets[prev_line] - 0.5 * scale):
        return prev_line
    if offsets[best] > join * scale:
        return len(lines)
    if best == prev_line and _returns_below(prev, box, lines[best], boxes, scale):
        return len(lines)
    return best


def group_boxes(boxes: Sequence[StrokeBox], join: float = 1.4,
                mark_ratio: float = 0.35) -> list[list[int]]:
    """Group strokes into lines from their extents and writing order.

    Args:
        boxes: one :class:`StrokeBox` per stroke, in writing order.
        join: a stroke that does not simply continue the previous one joins
            the line whose horizontally nearest strokes are at most ``join``
            median stroke heights above or below it; otherwise it starts a line.
        mark_ratio: strokes shorter than this fraction of the median height
            are marks (dots, accents) attached afterwards.
    Returns:
        Lines top to bottom, each a list of stroke indices in writing order.
    """
    if not boxes:
        return []
    body = _body_mask(boxes, mark_ratio)
    scale = max(float(np.median([boxes[i].height for i in np.flatnonzero(body)])), 1e-9)
    lines: list[list[int]] = []
    line_of: dict[int, int] = {}
    prev = None
    for i in map(int, np.flatnonzero(body)):
        target = 0 if prev is None else _choose_line(boxes[prev], boxes[i], line_of[prev],
                                                     lines, boxes, scale, join)
        if target == len(lines):
            lines.append([])
        lines[target].append(i)
        line_of[i] = target
        prev = i
    lines = _merge_interrupted(lines, boxes, scale)
    lines = _merge_inside(lines, boxes)
    line_of = {i: k for k, line in enumerate(lines) for i in line}
    for i in map(int, np.flatnonzero(~body)):
        line_of[i] = _attach_mark(i, boxes, lines, line_of, scale)
    order = sorted(range(len(lines)), key=lambda k: np.median([boxes[j].center for j in lines[k]]))
    return [sorted(j for j, ln in line_of.items() if ln == k) for k in order]


def group_lines(ink: Ink, join: float = 1.4, mark_ratio: float = 0.35) -> list[Line]:
    """Split a page of ink into text lines.

    Args:
        ink: the page; strokes in writing order (empty strokes are ignored).
        join, mark_ratio: see :func:`group_boxes`.
    Returns:
        Lines top to bottom, with their strokes and their flat point indices.
    """
    sizes = [len(s) for s in ink.strokes]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    kept = [i for i, n in enumerate(sizes) if n]
    boxes = [StrokeBox.of(ink.strokes[i].x, ink.strokes[i].y) for i in kept]
    out = []
    for group in group_boxes(boxes, join, mark_ratio):
        strokes = tuple(kept[g] for g in group)
        points = np.concatenate([np.arange(starts[s], starts[s + 1]) for s in strokes])
        out.append(Line(strokes, points))
    return out


def line_ink(ink: Ink, line: Line, id: Optional[str] = None) -> Ink:
    """The ink of one line: the page's strokes of ``line``, in writing order."""
    return Ink(strokes=[ink.strokes[i] for i in line.strokes], id=id,
               time_synthesized=ink.time_synthesized)
