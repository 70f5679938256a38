"""Ink -> feature matrix (T, F): normalisation, resampling, per-point or per-curve features.

The recipe (after Carbune et al. 2020, "Fast multi-language LSTM-based
online handwriting recognition"):

1. Estimate the writing's height robustly (the spread of y over points
   resampled along the trajectory, so that a pen resting in place does not
   weigh more than a pen moving) and scale so that this height is 1.
2. Optionally remove slant by a shear estimated from down-strokes.
3. Resample every stroke to equidistant points, ``points_per_height`` per
   unit of height, keeping each stroke's first and last point.
4. ``curves="points"`` (the default; 4 features): per resampled point dx, dy
   (scaled by ``points_per_height`` so a regular step is about 1), dt
   relative to the line's median step (so the sampling rate and the
   writer's speed drop out; 0 when time is synthesized and
   ``use_time_if_synthesized`` is off), and a new-stroke flag.

   ``curves="bezier"`` (10 features, the paper's Bezier encoding): each
   stroke's resampled points are split greedily into pieces that one cubic
   Bezier curve fits: starting at a stroke's first point, a piece is
   extended point by point while the least-squares cubic through its end
   points (arc-length parameterisation: the resampled points are
   equidistant along the trajectory, so point k of a piece of L steps sits
   at u = k/L) stays within ``curve_tolerance`` (units of the normalised
   height) of every point of the piece, and at most ``curve_max_points``
   resampled points long. A piece of up to 4 points is fitted exactly.
   Every stroke also gets a pen-up frame first: the straight "curve" from
   the previous stroke's last point to its own first point (the line's
   first frame, with nothing before it, is all zeros but for its flag).
   Per frame, with end points p0, p3, control points p1, p2 and chord
   c = p3 - p0:

   ====  =====================================================================
   0, 1  dx, dy: the chord c (units of normalised height)
   2     dt: points mode's dt (relative to the median step, clipped)
         summed from p0 to p3 and divided by the curve's resampled steps,
         so about 1 at the line's typical speed; a pen-up frame (one step)
         has exactly points mode's dt of its stroke's first point
   3     pen-up / new-stroke flag (1 on the pen-up frame ending at a
         stroke's first point)
   4, 5  |p1 - p0| / |c| and |p3 - p2| / |c| (clipped to [0, 8]; 0 for a
         zero chord with the control points on it)
   6, 7  signed angles (radians) from c to p1 - p0 and from c to p3 - p2
   8, 9  g2, g3: the curve's time (cumulated as in channel 2, so 0 at p0
         and dt at p3) is fitted by least squares with the cubic
         ``dt*u + g2*4u(1-u) + g3*6*sqrt(3)*u(1-u)(1-2u)`` (each bump peaks
         at 1, so g2, g3 are in units of dt; clipped to +-2 ``dt_clip``; 0
         for curves of 1 step, and when time is off)
   ====  =====================================================================

:class:`Features` keeps, per frame, the fractional index of the original
point it ends at (``src_pos``) and that point's normalised coordinates
(``points``), so that anything computed per frame (character spans,
saliency) maps back to the original ink. In points mode a frame is one
resampled point; in Bezier mode it is the END point of the frame's curve,
so frame r covers the original points between frame r-1's end and frame
r's end (a pen-up frame ends at its stroke's first point). In both modes
channels 0, 1 are the difference of consecutive frames' ``points`` (times
``points_per_height`` in points mode; 0 for the first frame) and channel 3
is the new-stroke flag, which the saliency mapping relies on. There are never more Bezier frames than resampled
points.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .errors import InkError
from .ink import Ink

log = logging.getLogger(__name__)

CURVE_MODES = ("points", "bezier")
_RATIO_CLIP = 8.0  # Bezier channels 4, 5: control-arm length / chord length


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
        curves: ``"points"`` (one frame per resampled point, 4 features) or
            ``"bezier"`` (one frame per fitted cubic Bezier curve, 10
            features; see the module docstring).
        curve_tolerance: Bezier mode: the largest distance, in units of the
            normalised height, between a resampled point and its fitted curve.
        curve_max_points: Bezier mode: the most resampled points one curve
            spans, both end points included.
    """

    points_per_height: float = 10.0
    height_quantiles: tuple[float, float] = (0.05, 0.95)
    slant_correction: bool = False
    use_time: bool = True
    use_time_if_synthesized: bool = False
    dt_clip: float = 8.0
    version: int = 1
    # Added later; dicts from older checkpoints lack them and get points mode.
    curves: str = "points"
    curve_tolerance: float = 0.02
    curve_max_points: int = 16

    def __post_init__(self) -> None:
        if self.curves not in CURVE_MODES:
            raise ValueError(f"curves must be one of {', '.join(CURVE_MODES)}, not {self.curves!r}")
        if not (math.isfinite(self.curve_tolerance) and self.curve_tolerance > 0):
            raise ValueError(f"curve_tolerance must be a positive number, not {self.curve_tolerance!r}")
        if int(self.curve_max_points) != self.curve_max_points or self.curve_max_points < 2:
            raise ValueError(f"curve_max_points must be an integer >= 2, not {self.curve_max_points!r}")
        self.curve_max_points = int(self.curve_max_points)

    @property
    def num_features(self) -> int:
        if self.curves == "bezier":
            return 10  # dx, dy, dt, new_stroke, d1, d2, angle1, angle2, g2, g3
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
        src_pos: (T,) float64: fractional flat index into the original points
            of each frame's point (in Bezier mode: its curve's end point).
        points: (T, 2) float64 normalised coordinates of those points (for display).
        scale: original units per normalised unit of height.
    """

    x: np.ndarray
    src_pos: np.ndarray
    points: np.ndarray
    scale: float


def frame_point_range(src_pos: np.ndarray, first: int, last: int, subsample: int = 1,
                      curves: str = "points") -> tuple[int, int]:
    """Original point indices [lo, hi] behind output frames ``first..last``.

    Output frame j covers input frames [j*s, (j+1)*s) (s = ``subsample``);
    input frame r sits at fractional point position ``src_pos[r]``. In Bezier
    mode that position is the END of the frame's curve, which starts where
    the frame before it ended, so that earlier end is included too. Used by
    the recogniser's character spans and by saliency's character regions.
    """
    s = max(int(subsample), 1)
    lo_f = min(first * s, len(src_pos) - 1)
    hi_f = min((last + 1) * s, len(src_pos)) - 1
    if curves == "bezier" and lo_f > 0:
        lo_f -= 1
    return int(np.floor(src_pos[lo_f:hi_f + 1].min())), int(np.ceil(src_pos[lo_f:hi_f + 1].max()))


def _estimate_height(xy: np.ndarray, q: tuple[float, float]) -> float:
    """Spread of y over points spaced evenly along the trajectory."""
    seg = np.hypot(*np.diff(xy, axis=0).T)
    if xy.shape[0] < 2 or seg.sum() <= 0:
        return 1.0
    s = np.concatenate([[0.0], np.cumsum(seg)])
    even = np.linspace(0.0, s[-1], min(2000, max(50, xy.shape[0] * 2)))
    ys = np.sort(np.interp(even, s, xy[:, 1]))
    # np.quantile's linear rule by hand: its overhead was a third of featurising a line
    pos = np.asarray(q, dtype=np.float64) * (ys.size - 1)
    j = np.minimum(np.floor(pos).astype(np.int64), ys.size - 2)
    lo, hi = ys[j] + (pos - j) * (ys[j + 1] - ys[j])
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
    pts, new_stroke, height = resample_array(arr, cfg)
    if cfg.curves == "bezier":
        ends = fit_curves(pts[:, :2], new_stroke, cfg.curve_tolerance, cfg.curve_max_points)
        x = _bezier_features(pts, new_stroke, ends, cfg, time_synthesized)
        src_pos, points = pts[ends, 3], pts[ends, :2]
    else:
        d = np.diff(pts[:, :2], axis=0, prepend=pts[:1, :2]) * cfg.points_per_height
        dt = _relative_dt(pts[:, 2], new_stroke, cfg, time_synthesized)
        x = np.column_stack([d, dt, new_stroke]).astype(np.float32)
        src_pos, points = pts[:, 3], pts[:, :2]
    if not np.isfinite(x).all():
        raise InkError("features are not finite (degenerate ink)")
    return Features(x=x, src_pos=src_pos, points=points, scale=height)


def resample_array(arr: np.ndarray, cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray, float]:
    """Steps 1-3 of the recipe on a flat (N, 4) array: normalise and resample.

    Returns:
        (M, 4) resampled normalised x, y, t and src_pos; (M,) new-stroke
        flags; the height (original units per normalised unit).
    Raises:
        InkError: if the array has no points.
    """
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
    return pts, new_stroke, height


# ------------------------------------------------------------------ Bezier curves
@dataclass(frozen=True)
class _BezierMats:
    """Per piece length L (steps, 0..Lmax) linear maps of the piece's points.

    err_t[L]: (L+1, L+1) transposed map of points -> residuals of the
        least-squares cubic (row vectors times it).
    ctl[L]: (2, Lmax+1) points (zero-padded) -> deviations of p1, p2 from
        the straight line's control points (p0 + c/3, p3 - c/3).
    tim[L]: (2, Lmax+1) cumulative times (zero-padded) -> g2, g3.
    """

    err_t: tuple
    ctl: np.ndarray
    tim: np.ndarray


@functools.lru_cache(maxsize=16)
def _bezier_mats(lmax: int) -> _BezierMats:
    K = lmax + 1
    err = [np.zeros((1, 1))]
    ctl, tim = np.zeros((K, 2, K)), np.zeros((K, 2, K))
    for L in range(1, K):
        u = np.arange(L + 1) / L
        lin = np.zeros((L + 1, L + 1))
        lin[:, 0], lin[:, L] = 1.0 - u, u
        resid = np.eye(L + 1) - lin  # points minus the chord's uniform interpolation
        a = np.column_stack([3 * (1 - u) ** 2 * u, 3 * (1 - u) * u ** 2])  # Bernstein b1, b2
        ap = np.linalg.pinv(a, rcond=1e-10)  # minimum-norm for L < 3 (underdetermined)
        ctl[L, :, : L + 1] = ap @ resid
        err.append(np.ascontiguousarray(((np.eye(L + 1) - a @ ap) @ resid).T))
        v = np.column_stack([4 * u * (1 - u), 6 * math.sqrt(3) * u * (1 - u) * (1 - 2 * u)])
        tim[L, :, : L + 1] = np.linalg.pinv(v, rcond=1e-10) @ resid
    for m in err + [ctl, tim]:
        m.flags.writeable = False
    return _BezierMats(tuple(err), ctl, tim)


def fit_curves(xy: np.ndarray, new_stroke: np.ndarray, tolerance: float, max_points: int) -> np.ndarray:
    """Greedy split of resampled strokes into cubic Bezier pieces.

    Args:
        xy: (M, 2) resampled points (equidistant along each stroke).
        new_stroke: (M,) 1 at each stroke's first point.
        tolerance: largest allowed distance of a point from its fitted curve.
        max_points: the most points one piece spans (both ends included).
    Returns:
        (T,) increasing indices into ``xy``: the end point of every frame.
        Each stroke contributes its first point (the pen-up frame) and the
        end of each of its pieces; piece r runs from ``ends[r-1]`` to
        ``ends[r]``.
    """
    M = xy.shape[0]
    first = np.asarray(new_stroke) > 0.5
    first[:1] = True
    sid = np.cumsum(first) - 1
    f_idx = np.flatnonzero(first)
    last = np.append(f_idx[1:] - 1, M - 1)[sid]
    lmax = int(max_points) - 1
    mats = _bezier_mats(lmax)
    reach = np.minimum(last - np.arange(M), lmax)  # longest piece that stays in the stroke
    good = reach.copy()  # longest piece from each start that fits; up to 4 points fit exactly
    alive = np.flatnonzero(reach >= 4)
    pad = np.concatenate([xy, np.repeat(xy[-1:], lmax, axis=0)])
    windows = sliding_window_view(pad, lmax + 1, axis=0)  # (M, 2, lmax+1), a view
    tol2 = float(tolerance) ** 2
    for L in range(4, lmax + 1):  # extend all open pieces by one step at a time
        if not alive.size:
            break
        r = windows[alive, :, : L + 1].reshape(-1, L + 1) @ mats.err_t[L]  # residuals, (2a, L+1)
        r *= r
        bad = r.reshape(-1, 2, L + 1).sum(1).max(1) > tol2
        good[alive[bad]] = L - 1
        alive = alive[~bad & (reach[alive] > L)]
    out = []
    g, f = good.tolist(), first.tolist()
    i = 0
    while i < M:  # the greedy walk: one Python step per frame
        if f[i]:
            out.append(i)
        if g[i] > 0:
            i += g[i]
            out.append(i)
        else:
            i += 1
    return np.asarray(out, dtype=np.int64)


def bezier_control_points(xy: np.ndarray, ends: np.ndarray, max_points: int) -> np.ndarray:
    """(T, 4, 2) control points p0..p3 of the pieces ``ends[r-1] .. ends[r]``.

    Frame 0 (nothing before it) is the point ``xy[ends[0]]`` four times;
    pieces of one step (pen-up frames among them) are straight lines.
    """
    starts = np.concatenate([ends[:1], ends[:-1]])
    L = ends - starts
    mats = _bezier_mats(int(max_points) - 1)
    K = mats.ctl.shape[-1]
    idx = np.minimum(starts[:, None] + np.arange(K), xy.shape[0] - 1)
    dev = mats.ctl[L] @ xy[idx]  # (T, 2, 2): deviations of p1, p2 from the straight line's
    p0, p3 = xy[starts], xy[ends]
    c = p3 - p0
    return np.stack([p0, p0 + c / 3 + dev[:, 0], p3 - c / 3 + dev[:, 1], p3], axis=1)


def _bezier_features(pts: np.ndarray, new_stroke: np.ndarray, ends: np.ndarray, cfg: FeatureConfig,
                     synthesized: bool) -> np.ndarray:
    """(T, 10) float32 features of the pieces ending at ``ends`` (module docstring)."""
    cp = bezier_control_points(pts[:, :2], ends, cfg.curve_max_points)
    c, arm1, arm2 = cp[:, 3] - cp[:, 0], cp[:, 1] - cp[:, 0], cp[:, 3] - cp[:, 2]
    chord = np.hypot(c[:, 0], c[:, 1])
    denom = np.maximum(chord, 1e-9)
    d1 = np.minimum(np.hypot(arm1[:, 0], arm1[:, 1]) / denom, _RATIO_CLIP)
    d2 = np.minimum(np.hypot(arm2[:, 0], arm2[:, 1]) / denom, _RATIO_CLIP)

    def angle(v: np.ndarray) -> np.ndarray:  # signed angle from c to v; 0 if either is 0
        return np.arctan2(c[:, 0] * v[:, 1] - c[:, 1] * v[:, 0], c[:, 0] * v[:, 0] + c[:, 1] * v[:, 1])

    starts = np.concatenate([ends[:1], ends[:-1]])
    steps = np.maximum(ends - starts, 1)
    cum = np.cumsum(_relative_dt(pts[:, 2], new_stroke, cfg, synthesized))
    mats = _bezier_mats(cfg.curve_max_points - 1)
    K = mats.ctl.shape[-1]
    idx = np.minimum(starts[:, None] + np.arange(K), pts.shape[0] - 1)
    tau = (cum[idx] - cum[starts][:, None]) / steps[:, None]  # time along the piece, per step
    dt = (cum[ends] - cum[starts]) / steps
    shape = (mats.tim[ends - starts] @ tau[:, :, None])[:, :, 0]
    shape = np.clip(shape, -2 * cfg.dt_clip, 2 * cfg.dt_clip)
    return np.column_stack([c, dt, new_stroke[ends], d1, d2, angle(arm1), angle(arm2),
                            shape]).astype(np.float32)


def _relative_dt(t: np.ndarray, new_stroke: np.ndarray, cfg: FeatureConfig,
                 synthesized: bool) -> np.ndarray:
    if not cfg.use_time or (synthesized and not cfg.use_time_if_synthesized):
        return np.zeros_like(t)
    dt = np.diff(t, prepend=t[:1])
    within = dt[new_stroke < 0.5]
    within = within[within > 0]
    ref = float(np.median(within)) if within.size else 1.0
    return np.clip(dt / max(ref, 1e-6), 0.0, cfg.dt_clip)
