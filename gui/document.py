"""The ink being edited: strokes with ids, undo and redo per stroke, without Qt.

Every finished stroke gets a unique id, so results computed for a set of
strokes (a line's recognition) can be cached and recognised as stale by
their ids alone. Edits are whole strokes: adding one, erasing some, or
clearing the page; undo and redo step through them, and undo puts erased
strokes back in their place in the writing order. ``revision`` increases on every change and
is the generation counter the GUI compares recognition results against.
"""
from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from inkread.ink import Ink, Stroke

log = logging.getLogger(__name__)

_ids = itertools.count(1)


@dataclass
class _Edit:
    """One undoable step: strokes removed and strokes added (as (id, stroke) lists),
    and the stroke ids in writing order before it (undo restores that order)."""

    removed: list[tuple[int, Stroke]]
    added: list[tuple[int, Stroke]]
    before: list[int] = field(default_factory=list)


@dataclass
class InkDocument:
    """A page of strokes with an undo history.

    Attributes:
        ids: the id of each stroke, in writing order.
        strokes: the strokes, in writing order.
        template: an Ink whose text/writer/id/metadata are kept when saving.
        revision: increases on every change.
        saved_revision: the revision last saved or loaded (``modified`` compares them).
    """

    ids: list[int] = field(default_factory=list)
    strokes: list[Stroke] = field(default_factory=list)
    template: Ink = field(default_factory=Ink)
    revision: int = 0
    saved_revision: int = 0
    _undo: list[_Edit] = field(default_factory=list)
    _redo: list[_Edit] = field(default_factory=list)
    _truth: tuple[int, Optional[np.ndarray]] = (-1, None)

    # ---------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(self.strokes)

    @property
    def modified(self) -> bool:
        return self.revision != self.saved_revision

    @property
    def num_points(self) -> int:
        return int(sum(len(s) for s in self.strokes))

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def last_time(self) -> Optional[float]:
        """Time of the latest point, or None for an empty page."""
        ends = [float(s.t[-1]) for s in self.strokes if len(s)]
        return max(ends) if ends else None

    @property
    def pristine(self) -> bool:
        """True while the strokes are exactly those loaded (or none were)."""
        return self._truth[0] == self.revision or (self.revision == 0)

    def to_ink(self) -> Ink:
        """The page as an Ink (strokes shared, not copied).

        Text, writer, id and metadata come from the loaded file; per-point
        truth (``char_of_point``) only while the strokes are unchanged.
        """
        cop = self._truth[1] if self._truth[0] == self.revision else None
        return self.template.replace(strokes=list(self.strokes), char_of_point=cop)

    def point_offsets(self) -> np.ndarray:
        """(S+1,) flat index of each stroke's first point, and the total."""
        return np.concatenate([[0], np.cumsum([len(s) for s in self.strokes])]).astype(np.int64)

    # ---------------------------------------------------------------- changes
    def _apply(self, edit: _Edit) -> None:
        gone = {i for i, _ in edit.removed}
        kept = [(i, s) for i, s in zip(self.ids, self.strokes) if i not in gone]
        kept.extend(edit.added)
        self.ids = [i for i, _ in kept]
        self.strokes = [s for _, s in kept]
        self.revision += 1

    def _do(self, edit: _Edit) -> None:
        edit.before = list(self.ids)
        self._apply(edit)
        self._undo.append(edit)
        self._redo.clear()

    def add_stroke(self, stroke: Stroke) -> int:
        """Append a finished stroke (validated); returns its id."""
        stroke.check(len(self.strokes))
        sid = next(_ids)
        self._do(_Edit([], [(sid, stroke)]))
        return sid

    def erase(self, ids) -> bool:
        """Remove the strokes with these ids as one undoable step; False if none is here."""
        gone = set(ids)
        removed = [(i, s) for i, s in zip(self.ids, self.strokes) if i in gone]
        if not removed:
            return False
        self._do(_Edit(removed, []))
        return True

    def clear(self) -> bool:
        """Remove every stroke as one undoable step; False if already empty."""
        if not self.strokes:
            return False
        self._do(_Edit(list(zip(self.ids, self.strokes)), []))
        return True

    def undo(self) -> bool:
        if not self._undo:
            return False
        edit = self._undo.pop()
        self._apply(_Edit(edit.added, []))
        if edit.removed:  # back in their places: the writing order is the time order
            by_id = dict(zip(self.ids, self.strokes))
            by_id.update(edit.removed)
            self.ids = [i for i in edit.before if i in by_id]
            self.strokes = [by_id[i] for i in self.ids]
        self._redo.append(edit)
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        edit = self._redo.pop()
        self._apply(edit)
        self._undo.append(edit)
        return True

    def load(self, ink: Ink) -> None:
        """Replace the page by ``ink`` (history cleared, marked unmodified)."""
        ink = ink.validated()
        self.ids = [next(_ids) for _ in ink.strokes]
        self.strokes = list(ink.strokes)
        self.template = ink.replace(strokes=[], char_of_point=None)
        self._undo.clear()
        self._redo.clear()
        self.revision += 1
        self.saved_revision = self.revision
        self._truth = (self.revision, ink.char_of_point)

    def strokes_near(self, x: np.ndarray, y: np.ndarray, radius: float) -> list[int]:
        """Ids of the strokes that come within ``radius`` of the path (x, y), in ink units.

        Both are polylines (one point: a dot); the distance is between their segments,
        so a path that crosses a stroke between two far-apart points still touches it.
        """
        path = np.column_stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])
        if not len(path):
            return []
        r2 = radius * radius
        qa, qb = _segments(path)
        qlo, qhi = np.minimum(qa, qb) - radius, np.maximum(qa, qb) + radius
        hits = []
        for sid, s in zip(self.ids, self.strokes):
            if not len(s):
                continue
            pts = np.column_stack([s.x, s.y])
            near = np.all((qhi >= pts.min(0)) & (qlo <= pts.max(0)), axis=1)  # path segments in reach
            if near.any() and _segments_dist2(*_segments(pts), qa[near], qb[near]) <= r2:
                hits.append(sid)
        return hits

    def mark_saved(self) -> None:
        self.saved_revision = self.revision


def _segments(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of a polyline's segments; one point is one zero-length segment."""
    return (pts[:-1], pts[1:]) if len(pts) > 1 else (pts, pts)


def _point_seg_dist2(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) squared distances from points p (n, 2) to segments a-b (m, 2)."""
    d = b - a
    seg2 = np.maximum((d * d).sum(1), 1e-12)
    rel = p[:, None, :] - a[None, :, :]
    u = np.clip((rel * d[None]).sum(2) / seg2, 0.0, 1.0)
    off = rel - u[..., None] * d[None]
    return (off * off).sum(2)


def _segments_dist2(pa: np.ndarray, pb: np.ndarray, qa: np.ndarray, qb: np.ndarray) -> float:
    """Squared distance between two sets of segments: 0 where two cross, else the
    nearest end point of one set to a segment of the other."""
    best = min(_point_seg_dist2(np.vstack([pa, pb[-1:]]), qa, qb).min(),
               _point_seg_dist2(np.vstack([qa, qb]), pa, pb).min())
    if best == 0.0:
        return 0.0

    def cross(o, a, b):  # z of (a - o) x (b - o), broadcast over (n, m)
        return (a[..., 0] - o[..., 0]) * (b[..., 1] - o[..., 1]) - (a[..., 1] - o[..., 1]) * (b[..., 0] - o[..., 0])
    A, B = pa[:, None, :], pb[:, None, :]
    C, D = qa[None, :, :], qb[None, :, :]
    crossing = (np.sign(cross(A, B, C)) * np.sign(cross(A, B, D)) < 0) & \
               (np.sign(cross(C, D, A)) * np.sign(cross(C, D, B)) < 0)
    return 0.0 if crossing.any() else float(best)
