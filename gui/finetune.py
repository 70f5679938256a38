"""Fine-tuning on the user's lines in the background (Settings > Fine-tune on my writing).

The training itself is :func:`inkread.finetune.fine_tune`, run on a plain
Python thread (torch releases the GIL while it computes, so the canvas stays
live); its progress and end arrive as Qt signals on the UI thread. Stopping
asks the loop to end after the current step; the model trained so far is
then written, and used only if the user did not close the window.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, Signal

from inkread.errors import InkreadError

log = logging.getLogger(__name__)


class FineTuner(QObject):
    """One fine-tune at a time, off the UI thread.

    Signals:
        progress(steps done, steps in all)
        finished(FineTuneResult)
        failed(one-line message)
    """

    progress = Signal(int, int)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._busy = False
        # Connected first, so it runs on the UI thread before anyone else hears of the end.
        self.finished.connect(self._ended)
        self.failed.connect(self._ended)

    @property
    def running(self) -> bool:
        """From start() until the UI thread has received the end (not the thread's own exit,
        which comes a moment after it reported)."""
        return self._busy

    def _ended(self, *_: object) -> None:
        self._busy = False

    def start(self, lines: str, base: Optional[str], models_dir: Path) -> Path:
        """Fine-tune ``base`` (None: the default model) on the lines in ``lines``; returns the output path.

        When ``base`` is itself a fine-tune, training starts from the model it came from:
        fine-tuning again on more lines replaces the last fine-tune rather than stacking on it.
        """
        if self.running:
            raise RuntimeError("a fine-tune is already running")
        out, n = models_dir / time.strftime("mine-%Y%m%d-%H%M%S.pt"), 1
        while out.exists():
            n += 1
            out = out.with_name(f"{out.stem.split('+')[0]}+{n}.pt")
        self._stop.clear()
        self._busy = True
        self._thread = threading.Thread(target=self._work, args=(lines, base, out), daemon=True,
                                        name="inkread-finetune")
        self._thread.start()
        return out

    def stop(self, wait: float = 0.0) -> None:
        """Ask the fine-tune to end after its current step (and wait up to ``wait`` seconds)."""
        self._stop.set()
        if wait and self._thread is not None:
            self._thread.join(wait)

    def _work(self, lines: str, base: Optional[str], out: Path) -> None:
        from inkread.finetune import fine_tune

        def step(done: int, total: int) -> bool:
            self.progress.emit(done, total)
            return self._stop.is_set()

        try:
            result = fine_tune([lines], out, base, from_original=True, on_step=step)
        except InkreadError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # a bug, not the user's input: keep the app alive and say so
            log.exception("fine-tuning failed")
            self.failed.emit(f"unexpected error: {type(exc).__name__}: {exc}")
        else:
            self.finished.emit(result)
