"""Pen dynamics: smooth the font's polygons, move the pen in time, sample like a digitizer.

Every step works on the whole line at once (all strokes concatenated), so a
line costs a few dozen numpy calls whatever its length.

* The pen-down polylines are resampled at a fine, even arc-length step and
  smoothed with a Gaussian (the Hershey polygons become curves; corners get
  the small radius a real pen tip makes).
* Speed follows the two-thirds power law of human movement, v = K *
  curvature^(-beta) with beta near 1/3, capped on straight runs, and ramps up
  and down over the first and last bit of each stroke.
* The pen is lifted between strokes for a base time plus the air distance at
  an air speed, with a pause before each word.
* A digitizer samples each stroke at a fixed rate from pen-down; positions
  get white device noise and are rounded to device units, times to 1 ms.
"""
from __future__ import annotations

import logging

import numpy as np

from .layout import Paths
from .style import Style

log = logging.getLogger(__name__)

_STEP = 0.04  # x-heights between points of the dense path
_MIN_STROKE_S = 0.05  # even a dot takes this long


def _starts(stroke: np.ndarray) -> np.ndarray:
    """(S+1,) offsets of each stroke in a flat array with non-decreasing stroke ids."""
    counts = np.bincount(stroke, minlength=int(stroke[-1]) + 1 if stroke.size else 0)
    return np.concatenate([[0], np.cumsum(counts)])


def resample(paths: Paths, step: float = _STEP) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Even arc-length resampling of every stroke.

    Returns:
        (pts (D, 2), stroke (D,), char (D,), off (S+1,)): a point's character
        is that of the nearest original vertex along the path; stroke s is
        ``pts[off[s]:off[s+1]]``.
    """
    pts, stroke = paths.pts, paths.stroke
    seg = np.hypot(*np.diff(pts, axis=0).T)
    same = stroke[1:] == stroke[:-1]
    seg = np.where(same, seg, 1.0)  # a unit jump between strokes keeps arc positions apart
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    off = _starts(stroke)
    a0, a1 = arc[off[:-1]], arc[off[1:] - 1]
    length = a1 - a0
    n = np.maximum(1, np.ceil(length / step).astype(np.int64) + 1)
    n = np.where(length > 0, n, 1)
    sid = np.repeat(np.arange(len(n)), n)
    k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    frac = k / np.maximum(np.repeat(n, n) - 1, 1)
    target = a0[sid] + frac * length[sid]
    out = np.stack([np.interp(target, arc, pts[:, 0]), np.interp(target, arc, pts[:, 1])], axis=1)
    vert = np.rint(np.interp(target, arc, np.arange(len(arc)))).astype(np.int64)
    return out, sid, paths.char[vert], np.concatenate([[0], np.cumsum(n)])


def smooth(pts: np.ndarray, off: np.ndarray, sigma_pts: float) -> np.ndarray:
    """Gaussian smoothing along each stroke, ends held by edge padding."""
    if sigma_pts <= 0.3 or len(pts) < 3:
        return pts
    r = int(np.ceil(2.5 * sigma_pts))
    kern = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma_pts) ** 2)
    kern /= kern.sum()
    n = np.diff(off)
    padded = n + 2 * r
    pstart = np.cumsum(padded) - padded
    k = np.arange(padded.sum()) - np.repeat(pstart, padded) - r
    idx = np.repeat(off[:-1], padded) + np.clip(k, 0, np.repeat(n - 1, padded))
    src = pts[idx]
    out = np.empty_like(pts)
    keep = (np.arange(len(n)).repeat(n), np.arange(n.sum()) - np.repeat(off[:-1], n))
    valid_pos = pstart[keep[0]] + keep[1]  # index in the 'valid' convolution output
    for d in range(2):
        conv = np.convolve(src[:, d], kern, mode="valid")
        out[:, d] = conv[valid_pos]
    return out


def speeds(pts: np.ndarray, stroke: np.ndarray, off: np.ndarray, style: Style, step: float) -> np.ndarray:
    """(D,) pen speed in x-heights per second at each point."""
    d = np.diff(pts, axis=0)
    a, b = d[:-1], d[1:]
    # (D-2,) turning angle at interior points
    turn = np.abs(np.arctan2(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0], (a * b).sum(1)))
    same = (stroke[2:] == stroke[1:-1]) & (stroke[1:-1] == stroke[:-2])
    curv = np.concatenate([[0.0], np.where(same, turn, 0.0), [0.0]]) / step
    curv = np.convolve(curv, np.ones(5) / 5.0, mode="same")  # a corner slows its neighbourhood
    v = style.speed * np.minimum(1.0, np.maximum(curv, 1e-3) ** -style.speed_curve)
    n = np.diff(off)
    pos = (np.arange(len(pts)) - np.repeat(off[:-1], n)) * step
    to_end = np.repeat(n - 1, n) * step - pos
    ramp = np.clip(np.minimum(pos, to_end) / style.ramp, 0.0, 1.0)
    return v * np.maximum(np.sqrt(ramp), 0.12)


def timing(pts: np.ndarray, stroke: np.ndarray, off: np.ndarray, new_word: np.ndarray, style: Style,
           rng: np.random.Generator, step: float = _STEP) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Time of every dense point, in seconds from the first pen-down.

    Returns:
        (t (D,), start (S,), duration (S,)) per point and per stroke.
    """
    v = speeds(pts, stroke, off, style, step)
    seg = np.hypot(*np.diff(pts, axis=0).T)
    dt = seg / (0.5 * (v[1:] + v[:-1]))
    same = stroke[1:] == stroke[:-1]
    dt = np.where(same, dt, 0.0)
    local = np.concatenate([[0.0], np.cumsum(dt)])
    local = local - np.repeat(local[off[:-1]], np.diff(off))
    dur = local[off[1:] - 1]
    stretch = np.maximum(1.0, max(_MIN_STROKE_S, 2.0 / style.rate_hz) / np.maximum(dur, 1e-9))
    local *= np.repeat(stretch, np.diff(off))
    dur = dur * stretch
    air = np.hypot(*(pts[off[1:-1]] - pts[off[1:-1] - 1]).T) if len(dur) > 1 else np.zeros(0)
    # now and then the writer stops to think or to look at the text (IAM-OnDB: 10% of gaps > 1.2 s)
    hesitate = rng.uniform(size=air.shape) < style.hesitation
    gaps = (style.gap * np.exp(0.4 * rng.normal(size=air.shape)) + air / style.air_speed
            + style.word_pause * new_word[1:len(dur)]
            + hesitate * np.exp(rng.normal(0.2, 0.6, size=air.shape)))
    start = np.concatenate([[0.0], np.cumsum(dur[:-1] + gaps)])
    return local + np.repeat(start, np.diff(off)), start, dur


def digitize(pts: np.ndarray, stroke: np.ndarray, char: np.ndarray, t: np.ndarray,
             start: np.ndarray, dur: np.ndarray, style: Style,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sample each stroke at the digitizer rate from its pen-down.

    Returns:
        (xy (N, 2) device units, t (N,) seconds, stroke (N,), char (N,)).
    """
    n = np.floor(dur * style.rate_hz + 1e-9).astype(np.int64) + 1
    sid = np.repeat(np.arange(len(n)), n)
    k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    ts = start[sid] + k / style.rate_hz
    xy = np.stack([np.interp(ts, t, pts[:, 0]), np.interp(ts, t, pts[:, 1])], axis=1)
    near = np.rint(np.interp(ts, t, np.arange(len(t)))).astype(np.int64)
    xy = xy * style.x_height + np.asarray(style.origin)
    xy += rng.normal(0.0, style.jitter, size=xy.shape)
    return np.rint(xy), np.round(ts, 3), sid, char[near]
