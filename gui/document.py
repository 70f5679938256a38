"""The ink being edited: strokes with ids, undo and redo per stroke, without Qt.

Every finished stroke gets a unique id, so results computed for a set of
strokes (a line's recognition) can be cached and recognised as stale by
their ids alone. Edits are whole strokes: adding one, or clearing the page;
undo and redo step through them. ``revision`` increases on every change and
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
    """One undoable step: strokes removed and strokes added (as (id, stroke) lists)."""

    removed: list[tuple[int, Stroke]]
    added: list[tuple[int, Stroke]]


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
        self._apply(edit)
        self._undo.append(edit)
        self._redo.clear()

    def add_stroke(self, stroke: Stroke) -> int:
        """Append a finished stroke (validated); returns its id."""
        stroke.check(len(self.strokes))
        sid = next(_ids)
        self._do(_Edit([], [(sid, stroke)]))
        return sid

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
        # Undoing a clear must put the strokes back in their original order.
        self._apply(_Edit(edit.added, []))
        if edit.removed:
            restored = edit.removed + list(zip(self.ids, self.strokes))
            self.ids = [i for i, _ in restored]
            self.strokes = [s for _, s in restored]
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

    def mark_saved(self) -> None:
        self.saved_revision = self.revision
