"""Autosave: the current ink is written a few seconds after each change.

The file is native JSON (``autosave.json``) in the application's data
directory (``QStandardPaths.AppDataLocation``), written atomically by
:func:`inkread.formats.write_ink`, so a crash loses at most the last few
seconds and never leaves a half-written file. A clean exit removes it; if
it is still there at the next start, the app offers to recover it.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import QObject, QStandardPaths, QTimer, Signal

from inkread.errors import InkreadError
from inkread.formats import read_ink, write_ink
from inkread.ink import Ink

log = logging.getLogger(__name__)

#: Milliseconds between a change and the autosave.
DELAY_MS = 3000
FILENAME = "autosave.json"


def default_dir() -> Path:
    """The per-user application data directory (created on demand)."""
    return Path(QStandardPaths.writableLocation(QStandardPaths.AppDataLocation))


class Autosaver(QObject):
    """Writes ``get_ink()`` to ``directory/autosave.json`` after changes.

    Signals:
        saved(str): the autosave file was written.
        failed(str): writing failed (one line).
    """

    saved = Signal(str)
    failed = Signal(str)

    def __init__(self, get_ink: Callable[[], Ink], directory: Optional[Path] = None,
                 delay_ms: int = DELAY_MS, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.get_ink = get_ink
        self.directory = Path(directory) if directory is not None else default_dir()
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(delay_ms)
        self.timer.timeout.connect(self.save_now)

    @property
    def path(self) -> Path:
        return self.directory / FILENAME

    def changed(self) -> None:
        """The ink changed: save after the delay (restarted by further changes)."""
        self.timer.start()

    def save_now(self) -> bool:
        """Write the autosave now; an empty page removes it instead."""
        self.timer.stop()
        ink = self.get_ink()
        if ink.is_empty:
            self.discard()
            return True
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_ink(ink, self.path, fmt="native")
        except (InkreadError, OSError) as exc:
            log.warning("autosave failed: %s", exc)
            self.failed.emit(str(exc))
            return False
        self.saved.emit(str(self.path))
        return True

    def pending(self) -> Optional[Ink]:
        """The ink left by a previous session, or None (unreadable files are set aside)."""
        if not self.path.is_file():
            return None
        try:
            ink = read_ink(self.path, fmt="native")
        except InkreadError as exc:
            log.warning("autosave unreadable, moved aside: %s", exc)
            os.replace(self.path, self.path.with_suffix(".bad.json"))
            return None
        return None if ink.is_empty else ink

    def discard(self) -> None:
        """Remove the autosave file (clean exit, or the user declined recovery)."""
        self.timer.stop()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot remove %s: %s", self.path, exc)
