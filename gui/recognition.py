"""Live recognition off the UI thread: debounce, worker pool, stale-result dropping.

After each pen-up the controller waits a short debounce interval and hands
the page to a one-thread :class:`QThreadPool`, which splits it into lines
(:func:`inkread.lines.group_lines`) and recognises them, so at most one recognition competes
with the UI for the CPU. Each request carries the document revision it was
made for; a result whose revision is no longer the document's is dropped
(the ink changed meanwhile and a newer request is on its way). Lines are
cached by the ids of their strokes, so writing on line 3 does not re-run
lines 1 and 2.

The recogniser (``inkread.recognizer.Recognizer``) is used only through
``recognize(ink, nbest=..., lm=...)`` and the documented Result fields, so a
stand-in object with the same shape works (the tests use one).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

from inkread.errors import InkreadError
from inkread.ink import Ink

from .document import InkDocument
from inkread.lines import Line, group_lines, line_ink
from .spans import char_regions

log = logging.getLogger(__name__)

#: Milliseconds between the last pen-up and the start of recognition.
DEBOUNCE_MS = 250


@dataclass
class LineResult:
    """The recognition of one line.

    Attributes:
        key: ids of the line's strokes (the cache key).
        text: the best hypothesis.
        nbest: (text, score) alternatives, best first.
        chars: (char, index in text, line-local point indices (n,)) per
            character of the best hypothesis: the ink it was read from
            (:func:`char_regions`).
        peaks: the decoder's own point indices per character (its frame span).
        frames: (first, last) output frame of each character, as the decoder gave them.
        ms: timings reported by the recogniser.
        chosen: index into ``nbest`` the user picked (0 = best).
    """

    key: tuple[int, ...]
    text: str
    nbest: list[tuple[str, float]]
    chars: list[tuple[str, int, np.ndarray]]
    ms: dict = field(default_factory=dict)
    chosen: int = 0
    peaks: list[np.ndarray] = field(default_factory=list)
    frames: list[tuple[int, int]] = field(default_factory=list)

    @property
    def shown_text(self) -> str:
        if 0 < self.chosen < len(self.nbest):
            return self.nbest[self.chosen][0]
        return self.text

    @classmethod
    def of(cls, key: tuple[int, ...], res: Any, ink: Ink) -> "LineResult":
        """From a recogniser Result for the line ``ink``."""
        spans = sorted(res.chars, key=lambda c: _index(c))
        n = ink.num_points
        peaks = []
        for c in spans:
            pts = np.unique(np.asarray(c.point_indices, dtype=np.int64))
            peaks.append(pts[(pts >= 0) & (pts < n)] if not c.char.isspace() else pts[:0])
        regions = char_regions(peaks, ink)
        chars = [(c.char, _index(c), r) for c, r in zip(spans, regions)]
        nbest = [(str(t), float(s)) for t, s in res.nbest] or [(res.text, 0.0)]
        frames = [(int(getattr(c, "frame_start", -1)), int(getattr(c, "frame_end", -1))) for c in spans]
        return cls(key, str(res.text), nbest, chars, dict(getattr(res, "ms", {}) or {}), 0, peaks,
                   frames)


def _index(span: Any) -> int:
    """A CharSpan's index in the text (``index``; ``index_in_text`` in the first contract)."""
    return int(getattr(span, "index", getattr(span, "index_in_text", -1)))


@dataclass
class PageResult:
    """Recognition of a whole page, line by line, top to bottom.

    Attributes:
        revision: the document revision it belongs to.
        lines: one :class:`LineResult` per line.
        layout: the page's :class:`~inkread.lines.Line` of each result.
        ms: wall-clock milliseconds of this request in the worker.
        rerun: how many lines were recognised (the rest came from the cache).
    """

    revision: int
    lines: list[LineResult]
    layout: list[Line]
    ms: float = 0.0
    rerun: int = 0

    @property
    def text(self) -> str:
        return "\n".join(r.shown_text for r in self.lines)

    def frames_of(self, line: int, index: int) -> Optional[tuple[int, int]]:
        """The decoder's output-frame span of a character, if known."""
        res = self.lines[line]
        for (_, i, _), span in zip(res.chars, res.frames):
            if i == index:
                return span
        return None

    def char_points(self, line: int, index: int) -> np.ndarray:
        """Page point indices of character ``index`` of line ``line`` (empty if unknown)."""
        res = self.lines[line]
        if res.chosen != 0:
            return np.zeros(0, dtype=np.int64)
        for _, i, pts in res.chars:
            if i == index:
                pts = pts[(pts >= 0) & (pts < len(self.layout[line].points))]
                return self.layout[line].points[pts]
        return np.zeros(0, dtype=np.int64)


class _Signals(QObject):
    done = Signal(int, object)               # revision, PageResult
    failed = Signal(int, str)
    loaded = Signal(object, str)             # recognizer, path label
    load_failed = Signal(str)
    explained = Signal(int, object, object)  # revision, request, levels or message


class _Job(QRunnable):
    """Recognise the lines of one request in a worker thread."""

    def __init__(self, fn: Callable[[], None]) -> None:
        super().__init__()
        self.fn = fn
        self.setAutoDelete(True)

    def run(self) -> None:
        self.fn()


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, InkreadError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class RecognitionController(QObject):
    """Schedules recognition of an :class:`InkDocument` and reports results.

    Signals:
        resultReady(PageResult): a fresh result for the current revision.
        failed(str): recognition raised (one line).
        modelLoaded(str): a recogniser is ready (its path or label).
        modelFailed(str): loading the model failed (one line).
        busyChanged(bool): a request is queued or running.
        explained(int, object, object): saliency result (revision, request, levels or error str).
    """

    resultReady = Signal(object)
    failed = Signal(str)
    modelLoaded = Signal(str)
    modelFailed = Signal(str)
    busyChanged = Signal(bool)
    explained = Signal(int, object, object)

    def __init__(self, doc_getter: Callable[[], InkDocument], parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._doc = doc_getter
        self.recognizer: Any = None
        self.nbest = 5
        self.use_lm: Optional[bool] = None
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(DEBOUNCE_MS)
        self.timer.timeout.connect(self.request_now)
        self._cache: dict[tuple[int, ...], LineResult] = {}
        self._latest = -1
        self._closing = False
        self.dropped = 0
        self.last: Optional[PageResult] = None
        self._sig = _Signals(self)
        self._sig.done.connect(self._on_done)
        self._sig.failed.connect(self._on_failed)
        self._sig.loaded.connect(self._on_loaded)
        self._sig.load_failed.connect(self.modelFailed)
        self._sig.explained.connect(self.explained)

    # ----------------------------------------------------------------- model
    def set_recognizer(self, recognizer: Any, label: str = "") -> None:
        """Use ``recognizer`` from now on (drops cached results)."""
        self.recognizer = recognizer
        self._cache.clear()
        self.modelLoaded.emit(label)
        self.schedule(0)

    def invalidate(self) -> None:
        """Forget cached lines (decoding settings changed) and recognise again."""
        self._cache.clear()
        self.schedule(0)

    def load_model(self, path: Optional[str]) -> None:
        """Load a model in the worker; ``None`` is the default model."""
        def work() -> None:
            try:
                from inkread.recognizer import Recognizer
                rec = Recognizer.load(path)
                rec.warm_up()  # build the engine here, not on the first stroke
                from inkread.recognizer import settle_memory
                settle_memory()
            except ImportError as exc:
                self._sig.load_failed.emit(f"the recognizer is not available in this build ({exc})")
            except Exception as exc:  # noqa: BLE001 - reported in the UI, not a crash
                self._sig.load_failed.emit(_error_text(exc))
            else:
                self._sig.loaded.emit(rec, str(path or "default model"))
        self.pool.start(_Job(work))

    def _on_loaded(self, rec: Any, label: str) -> None:
        if not self._closing:
            self.set_recognizer(rec, label)

    # ------------------------------------------------------------ scheduling
    def schedule(self, delay_ms: int = DEBOUNCE_MS) -> None:
        """(Re)start the debounce timer: recognition runs once the pen rests."""
        self.timer.start(max(0, delay_ms))

    def hold(self) -> None:
        """The pen is down: postpone recognition until the next pen-up."""
        self.timer.stop()

    def request_now(self) -> None:
        """Recognise the current document revision (grouping and recognition run in the worker)."""
        self.timer.stop()
        doc = self._doc()
        ink, ids, revision = doc.to_ink(), list(doc.ids), doc.revision
        self._latest = revision
        if ink.is_empty or self.recognizer is None:
            self._publish(PageResult(revision, [], group_lines(ink)))
            return
        job = (self.recognizer, revision, ink, ids, dict(self._cache), self.nbest, self.use_lm)
        self.busyChanged.emit(True)
        self.pool.start(_Job(lambda: self._work(*job)))

    def _work(self, rec: Any, revision: int, ink: Ink, ids: list[int], cache: dict,
              nbest: int, lm: Optional[bool]) -> None:
        """Worker thread: split into lines, recognise the uncached ones, unless gone stale."""
        t0, out, rerun = time.perf_counter(), [], 0
        kwargs = {"nbest": nbest} if lm is None else {"nbest": nbest, "lm": lm}
        try:
            layout = group_lines(ink)
            for line in layout:
                if revision != self._latest:
                    return  # the ink changed; a newer request follows
                key = tuple(ids[i] for i in line.strokes)
                if key in cache:
                    out.append(cache[key])
                    continue
                sub = line_ink(ink, line)
                out.append(LineResult.of(key, rec.recognize(sub, **kwargs), sub))
                rerun += 1
        except Exception as exc:  # noqa: BLE001 - any failure is shown, the UI keeps running
            log.debug("recognition failed", exc_info=True)
            self._sig.failed.emit(revision, _error_text(exc))
            return
        ms = (time.perf_counter() - t0) * 1000.0
        self._sig.done.emit(revision, PageResult(revision, out, layout, ms, rerun))

    def _on_done(self, revision: int, result: PageResult) -> None:
        self.busyChanged.emit(False)
        if self._closing or revision != self._doc().revision or revision != self._latest:
            self.dropped += 1
            log.debug("dropped a stale result for revision %d", revision)
            return
        if len(self._cache) > 256:  # lines long gone; keep the current ones
            self._cache.clear()
        for r in result.lines:
            self._cache[r.key] = r
        self._publish(result)

    def _on_failed(self, revision: int, message: str) -> None:
        self.busyChanged.emit(False)
        if revision == self._doc().revision and not self._closing:
            self.failed.emit(message)

    def _publish(self, result: PageResult) -> None:
        self.last = result
        self.resultReady.emit(result)

    # -------------------------------------------------------------- saliency
    def explain(self, request: Any, fn: Callable[[], Any]) -> None:
        """Run ``fn`` (a saliency computation) in the worker; emits ``explained``."""
        revision = self._doc().revision

        def work() -> None:
            if revision != self._doc().revision:
                return
            try:
                value = fn()
            except Exception as exc:  # noqa: BLE001 - shown in the saliency panel
                log.debug("saliency failed", exc_info=True)
                value = _error_text(exc)
            self._sig.explained.emit(revision, request, value)
        self.pool.start(_Job(work))

    def shutdown(self, wait_ms: int = 10000) -> None:
        """Stop scheduling, let running jobs see they are stale, and wait for them."""
        self._closing = True
        self.timer.stop()
        self._latest = -1
        self.pool.waitForDone(wait_ms)
