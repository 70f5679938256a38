"""Stroke and Ink: the one place that knows what valid online handwriting is.

An :class:`Ink` is a list of :class:`Stroke`; a stroke is the points written
between a pen-down and the next pen-up. Every stroke holds float64 arrays
``x``, ``y`` (any unit, y grows downwards as on screens and whiteboards) and
``t`` (seconds), plus optional ``pressure``.

Validation policy (documented in data/README.md):

* NaN or infinite coordinates, times or pressures raise :class:`InkError`
  naming the stroke and point.
* Empty strokes (no points) are dropped by :meth:`Ink.validated`; an ink with
  no points at all is valid as a value (the GUI starts empty) but
  :meth:`Ink.require_points` refuses it where a recogniser needs ink.
* Time that goes backwards inside a stroke is refused; strokes whose start
  times are out of order (as in a few IAM-OnDB lines) are kept in file order.

Sources without time get synthesized time (:func:`synthesize_time`): a
constant pen speed inside strokes and a fixed gap between strokes, so that t
is monotonic and consistent; ``Ink.time_synthesized`` flags it.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from .errors import InkError

log = logging.getLogger(__name__)

#: Columns of the flat array layout produced by :meth:`Ink.to_array`.
ARRAY_COLUMNS = ("x", "y", "t", "pen_up")


def _as_float_array(values: Any, name: str, where: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InkError(f"{name} is not numeric ({exc})", where=where) from None
    return arr


#: the largest coordinate magnitude accepted: beyond it, distances between points overflow
MAX_COORD = 1e12


@dataclass
class Stroke:
    """One pen-down..pen-up trace.

    Attributes:
        x, y: coordinates, shape (N,).
        t: time in seconds, shape (N,), non-decreasing.
        pressure: optional pen pressure, shape (N,), any non-negative scale.
    """

    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    pressure: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        self.x = _as_float_array(self.x, "x", "stroke")
        self.y = _as_float_array(self.y, "y", "stroke")
        self.t = _as_float_array(self.t, "t", "stroke")
        if self.pressure is not None:
            self.pressure = _as_float_array(self.pressure, "pressure", "stroke")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def check(self, index: int = 0) -> None:
        """Raise :class:`InkError` if the arrays disagree or hold NaN/inf."""
        where = f"stroke {index}"
        n = len(self)
        for name in ("y", "t", "pressure"):
            arr = getattr(self, name)
            if arr is not None and arr.shape[0] != n:
                raise InkError(f"{name} has {arr.shape[0]} values but x has {n}", where=where)
        for name in ("x", "y", "t", "pressure"):
            arr = getattr(self, name)
            if arr is None:
                continue
            bad = np.flatnonzero(~np.isfinite(arr))
            if bad.size:
                raise InkError(f"{name} is not finite ({arr[bad[0]]})", where=f"{where}, point {bad[0]}")
            if name in ("x", "y"):
                far = np.flatnonzero(np.abs(arr) > MAX_COORD)
                if far.size:  # finite, but distances between such points overflow
                    raise InkError(f"{name} is out of range ({arr[far[0]]:g}; coordinates lie within "
                                   f"±{MAX_COORD:g})", where=f"{where}, point {far[0]}")
        if n > 1:
            back = np.flatnonzero(np.diff(self.t) < 0)
            if back.size:
                raise InkError("time goes backwards", where=f"{where}, point {back[0] + 1}")

    def copy(self) -> "Stroke":
        return Stroke(self.x.copy(), self.y.copy(), self.t.copy(),
                      None if self.pressure is None else self.pressure.copy())


@dataclass
class Ink:
    """A piece of online handwriting, with optional label and truth.

    Attributes:
        strokes: the strokes in writing order.
        text: the transcription, if known.
        writer: writer id, if known.
        id: sample id (file stem, IAM line id, ...).
        metadata: free-form JSON-serialisable metadata.
        time_synthesized: True when the source had no timestamps and ``t`` was
            made up by :func:`synthesize_time`.
        char_of_point: optional (N,) int array over all points in order: the
            index into ``text`` of the character that produced each point, -1
            for none (synthetic ink carries it; saliency is measured against it).
    """

    strokes: list[Stroke] = field(default_factory=list)
    text: Optional[str] = None
    writer: Optional[str] = None
    id: Optional[str] = None
    metadata: dict = field(default_factory=dict)
    time_synthesized: bool = False
    char_of_point: Optional[np.ndarray] = None

    # ----------------------------------------------------------------- basics
    def __len__(self) -> int:
        return len(self.strokes)

    @property
    def num_points(self) -> int:
        return int(sum(len(s) for s in self.strokes))

    @property
    def is_empty(self) -> bool:
        return self.num_points == 0

    def bbox(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) over all points; raises on empty ink."""
        self.require_points()
        xs = np.concatenate([s.x for s in self.strokes if len(s)])
        ys = np.concatenate([s.y for s in self.strokes if len(s)])
        return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())

    @property
    def duration(self) -> float:
        """Seconds from the first to the last point (0 for empty ink)."""
        ts = [s.t for s in self.strokes if len(s)]
        if not ts:
            return 0.0
        return float(max(t.max() for t in ts) - min(t.min() for t in ts))

    def require_points(self, where: str = "ink") -> None:
        if self.is_empty:
            raise InkError("ink has no points", where=where)

    def replace(self, **changes: Any) -> "Ink":
        return dataclasses.replace(self, **changes)

    def copy(self) -> "Ink":
        return self.replace(strokes=[s.copy() for s in self.strokes],
                            metadata=dict(self.metadata),
                            char_of_point=None if self.char_of_point is None
                            else self.char_of_point.copy())

    # ------------------------------------------------------------- validation
    def validated(self) -> "Ink":
        """Check every stroke and return the ink with empty strokes dropped.

        Raises:
            InkError: naming the stroke and point of the first bad value.
        """
        for i, s in enumerate(self.strokes):
            s.check(i)
        if self.char_of_point is not None:
            cop = np.asarray(self.char_of_point, dtype=np.int64).reshape(-1)
            if cop.shape[0] != self.num_points:
                raise InkError(f"char_of_point has {cop.shape[0]} values for {self.num_points} points")
            self.char_of_point = cop
        if any(len(s) == 0 for s in self.strokes):
            self.strokes = [s for s in self.strokes if len(s)]
        return self

    # ------------------------------------------------------------ numpy views
    def to_array(self) -> np.ndarray:
        """Flat (N, 4) float64 array: x, y, t, pen_up_after (1 on a stroke's last point)."""
        strokes = [s for s in self.strokes if len(s)]
        if not strokes:
            return np.zeros((0, 4))
        # one concatenate per column: a per-stroke stack costs more than featurising (live recognition)
        out = np.empty((sum(len(s) for s in strokes), 4))
        for c, name in enumerate(("x", "y", "t")):
            out[:, c] = np.concatenate([getattr(s, name) for s in strokes])
        out[:, 3] = 0.0
        out[np.cumsum([len(s) for s in strokes]) - 1, 3] = 1.0
        return out

    @classmethod
    def from_array(cls, arr: np.ndarray, **kwargs: Any) -> "Ink":
        """Inverse of :meth:`to_array`; a trailing stroke without pen-up is closed."""
        arr = np.asarray(arr, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] < 4:
            raise InkError(f"expected an (N, 4) array, got shape {arr.shape}")
        ends = list(np.flatnonzero(arr[:, 3] > 0.5) + 1)
        if not ends or ends[-1] != arr.shape[0]:
            ends.append(arr.shape[0])
        strokes, start = [], 0
        for end in ends:
            if end > start:
                seg = arr[start:end]
                strokes.append(Stroke(seg[:, 0], seg[:, 1], seg[:, 2]))
            start = end
        return cls(strokes=strokes, **kwargs).validated()

    def stroke_of_point(self) -> np.ndarray:
        """(N,) int: the stroke index of each point."""
        return np.repeat(np.arange(len(self.strokes)), [len(s) for s in self.strokes])

    @classmethod
    def from_strokes(cls, strokes: Iterable[Sequence[Sequence[float]]], **kwargs: Any) -> "Ink":
        """Build from nested lists of (x, y) or (x, y, t) points; time is synthesized when absent."""
        out, has_t = [], True
        for pts in strokes:
            a = np.asarray(pts, dtype=np.float64).reshape(-1, np.shape(pts)[-1] if len(pts) else 2)
            has_t = has_t and a.shape[1] >= 3
            out.append(Stroke(a[:, 0], a[:, 1], a[:, 2] if a.shape[1] >= 3 else np.zeros(len(a))))
        ink = cls(strokes=out, **kwargs)
        return synthesize_time(ink) if not has_t else ink.validated()


def synthesize_time(ink: Ink, speed: Optional[float] = None, gap: float = 0.15,
                    rate: float = 100.0) -> Ink:
    """Give ink without timestamps a consistent, flagged time axis.

    Points inside a stroke are spaced by their distance at a constant pen
    speed (by default one bounding-box height per 0.5 s, or a twentieth of
    the width for inks flatter than that, but at least one sample interval of
    ``1/rate`` per point so dt is never zero), strokes are separated by
    ``gap`` seconds.

    Returns:
        A new Ink with ``time_synthesized=True``.
    """
    strokes = [s for s in ink.strokes if len(s)]
    if not strokes:
        return ink.replace(strokes=[], time_synthesized=True)
    for i, s in enumerate(ink.strokes):
        Stroke(s.x, s.y, np.zeros(len(s))).check(i)
    if speed is None:
        ys = np.concatenate([s.y for s in strokes])
        xs = np.concatenate([s.x for s in strokes])
        # A flat ink (a dash, an underline) has almost no height: a twentieth of
        # the width keeps its duration sane; text lines are never that flat.
        extent = max(float(ys.max() - ys.min()), float(xs.max() - xs.min()) / 20, 1e-6)
        speed = extent / 0.5
    t0, new = 0.0, []
    for s in strokes:
        step = np.hypot(np.diff(s.x), np.diff(s.y)) / speed
        step = np.maximum(step, 1.0 / rate)
        t = t0 + np.concatenate([[0.0], np.cumsum(step)])
        new.append(Stroke(s.x.copy(), s.y.copy(), t, None if s.pressure is None else s.pressure.copy()))
        t0 = float(t[-1]) + gap
    return ink.replace(strokes=new, time_synthesized=True).validated()


def resample_rate(ink: Ink, rate: float) -> Ink:
    """The same pen paths as sampled by a digitizer at ``rate`` Hz.

    Each stroke is linearly interpolated at ``t0, t0 + 1/rate, ...`` and its
    last point kept, so a slow device (mouse events, a 60 Hz tracker) and a
    fast one (a 200 Hz tablet) can be imitated from the same ink. The
    per-point character truth does not survive resampling and is dropped.
    """
    if not rate > 0:
        raise InkError(f"sampling rate must be positive, not {rate}")
    new = []
    for s in ink.strokes:
        if len(s) < 2 or s.t[-1] <= s.t[0]:
            new.append(s.copy())
            continue
        t = np.arange(s.t[0], s.t[-1], 1.0 / rate)
        t = np.append(t, s.t[-1]) if t[-1] < s.t[-1] else t
        p = None if s.pressure is None else np.interp(t, s.t, s.pressure)
        new.append(Stroke(np.interp(t, s.t, s.x), np.interp(t, s.t, s.y), t, p))
    return ink.replace(strokes=new, char_of_point=None).validated()
