"""Ink -> feature matrix (T, F): normalisation, resampling, per-point features.

The recipe (after Carbune et al. 2020, "Fast multi-language LSTM-based
online handwriting recognition"):

1. Estimate the writing's height robustly (the spread of y over points
   resampled along the trajectory, so that a pen resting in place does not
   weigh more than a pen moving) and scale so that this height is 1.
2. Optionally remove slant by a shear estimated from down-strokes.
3. Resample every stroke to equidistant points, ``points_per_height`` per
   unit of height, keeping each stroke's first and last point.
4. Per resampled point: dx, dy (scaled by ``points_per_height`` so a regular
   step is about 1), dt relative to the line's median step (so the sampling
   rate and the writer's speed drop out; 0 when time is synthesized and
   ``use_time_if_synthesized`` is off), and a new-stroke flag.

:class:`Features` keeps, per frame, the fractional index of the original
point it was interpolated from (``src_pos``), so that anything computed per
frame (character spans, saliency) maps back to the original ink.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InkError
from .ink import Ink

log = logging.getLogger(__name__)


@dataclass
class FeatureConfig:
    """How ink becomes features; stored in every checkpoint.

    Attributes:
        points_per_height: resampling density per unit of normalised height.
        height_quantiles: y quantiles whose spread defines the unit height.
        slant_correction: shear the ink upright before resampling.
        use_time: include the dt channel.
        use_time_if_synthesized: keep dt for ink whose time was made up.
        dt_clip: upper clip of the relative dt channel.
    """

    points_per_height: float = 10.0
    height_quantiles: tuple[float, float] = (0.05, 0.95)
    slant_correction: bool = False
    use_time: bool = True
    use_time_if_synthesized: bool = False
    dt_clip: float = 8.0
    version: int = 1

    @property
    def num_features(self) -> int:
        return 4  # dx, dy, dt, new_stroke

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["height_quantiles"] = list(self.height_quantiles)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FeatureConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        if "height_quantiles" in d:
            d["height_quantiles"] = tuple(d["height_quantiles"])
        return cls(**d)


@dataclass
class Features:
    """Features of one ink.

    Attributes:
        x: (T, F) float32 features.
        src_pos: (T,) float64: fractional flat index into the original points.
        points: (T, 2) float64 normalised resampled coordinates (for display).
        scale: original units per normalised unit of height.
    """

    x: np.ndarray
    src_pos: np.ndarray
    points: np.ndarray
    scale: float


def _estimate_height(xy: np.ndarray, q: tuple[float, float]) -> float:
    """Spread of y over points spaced evenly along the trajectory."""
    seg = np.hypot(*np.diff(xy, axis=0).T)
    if xy.shape[0] < 2 or seg.sum() <= 0:
        return 1.0
    s = np.concatenate([[0.0], np.cumsum(seg)])
    even = np.linspace(0.0, s[-1], min(2000, max(50, xy.shape[0] * 2)))
    ys = np.interp(even, s, xy[:, 1])
    lo, hi = np.quantile(ys, q)
    h = float(hi - lo)
    if h <= 1e-9:
        h = float(np.ptp(xy[:, 0])) / 10.0  # a horizontal line: fall back to width
    return h if h > 1e-9 else 1.0


def _estimate_slant(work: np.ndarray) -> float:
    """dx/dy shear of down-strokes: length-weighted median over mostly vertical segments.

    Args:
        work: (N, 5) rows x, y, t, index, stroke id.
    """
    d = np.diff(work[:, :2], axis=0)
    same = work[1:, 4] == work[:-1, 4]
    ok = same & (d[:, 1] > 0) & (np.abs(d[:, 1]) > 2 * np.abs(d[:, 0]))
    v, w = d[ok, 0] / d[ok, 1], d[ok, 1]
    if w.sum() <= 0:
        return 0.0
    order = np.argsort(v)
    cw = np.cumsum(w[order])
    return float(v[order][np.searchsorted(cw, cw[-1] / 2)])


def _resample(arr: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Equidistant resampling of every stroke at once (vectorised over strokes).

    Args:
        arr: (N, 5) x, y, t, flat index of the original point, stroke id
            (non-decreasing).
        step: distance between resampled points.
    Returns:
        (M, 4) resampled x, y, t, src_pos; (M,) new-stroke flags. Each
        stroke keeps its first and last point.
    """
    sid = arr[:, 4].astype(np.int64)
    seg = np.hypot(*np.diff(arr[:, :2], axis=0).T)
    seg[sid[1:] != sid[:-1]] = 0.0
    s = np.concatenate([[0.0], np.cumsum(seg)])  # arc length, continuous over strokes
    first = np.flatnonzero(np.diff(sid, prepend=-1) != 0)
    last = np.append(first[1:] - 1, arr.shape[0] - 1)
    start, length = s[first], s[last] - s[first]
    n = np.maximum(np.round(length / step).astype(np.int64), 1)
    n[length <= 0] = 0  # a single point (or a dot): keep one point
    count = n + 1
    count[length <= 0] = 1
    k = np.repeat(np.arange(len(first)), count)
    j = np.arange(k.size) - np.repeat(np.cumsum(count) - count, count)
    frac = np.where(n[k] > 0, j / np.maximum(n[k], 1), 0.0)
    # Offset each stroke along a monotone axis so that interpolation never
    # blends two strokes: stroke k lives in [g0_k, g0_k + length_k].
    g0 = np.cumsum(np.concatenate([[0.0], length[:-1] + 1.0]))
    g = s - start[sid] + g0[sid]
    pos = g0[k] + frac * length[k]
    out = np.stack([np.interp(pos, g, arr[:, c]) for c in range(4)], axis=1)
    new_stroke = (j == 0).astype(np.float64)
    return out, new_stroke


def featurize(ink: Ink, cfg: FeatureConfig) -> Features:
    """Features of ``ink`` under ``cfg``.

    Raises:
        InkError: if the ink has no points.
    """
    ink.require_points()
    return featurize_array(ink.to_array(), cfg, ink.time_synthesized)


def featurize_array(arr: np.ndarray, cfg: FeatureConfig, time_synthesized: bool = False) -> Features:
    """Features of a flat (N, 4) x, y, t, pen_up array (see :meth:`Ink.to_array`)."""
    if arr.shape[0] == 0:
        raise InkError("ink has no points")
    sid = np.concatenate([[0.0], np.cumsum(arr[:-1, 3] > 0.5)])
    work = np.column_stack([arr[:, :3], np.arange(arr.shape[0], dtype=np.float64), sid])
    xy = work[:, :2]
    height = _estimate_height(xy, cfg.height_quantiles)
    origin = np.array([xy[:, 0].min(), np.median(xy[:, 1])])
    work[:, :2] = (xy - origin) / height
    if cfg.slant_correction:
        work[:, 0] -= _estimate_slant(work) * work[:, 1]
    pts, new_stroke = _resample(work, 1.0 / cfg.points_per_height)
    d = np.diff(pts[:, :2], axis=0, prepend=pts[:1, :2]) * cfg.points_per_height
    dt = _relative_dt(pts[:, 2], new_stroke, cfg, time_synthesized)
    x = np.column_stack([d, dt, new_stroke]).astype(np.float32)
    if not np.isfinite(x).all():
        raise InkError("features are not finite (degenerate ink)")
    return Features(x=x, src_pos=pts[:, 3], points=pts[:, :2], scale=height)


def _relative_dt(t: np.ndarray, new_stroke: np.ndarray, cfg: FeatureConfig,
                 synthesized: bool) -> np.ndarray:
    if not cfg.use_time or (synthesized and not cfg.use_time_if_synthesized):
        return np.zeros_like(t)
    dt = np.diff(t, prepend=t[:1])
    within = dt[new_stroke < 0.5]
    within = within[within > 0]
    ref = float(np.median(within)) if within.size else 1.0
    return np.clip(dt / max(ref, 1e-6), 0.0, cfg.dt_clip)
