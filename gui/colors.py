"""Colour maps for heat overlays and character boxes, without Qt."""
from __future__ import annotations

import numpy as np

# Anchors of a perceptually ordered dark-to-bright map (close to matplotlib's
# "inferno"), so heat reads the same in colour and in grey.
_HEAT = np.array([
    [0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99],
    [212, 72, 66], [245, 125, 21], [250, 193, 39], [252, 255, 164],
], dtype=np.float64)

#: Distinct colours for the boxes of neighbouring characters (RGB).
PALETTE = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
    (148, 103, 189), (140, 86, 75), (227, 119, 194), (23, 190, 207),
)


def normalise(values: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the 99th percentile of |values| (one outlier must not blank the rest).

    Args:
        values: (N,) scores, any sign (magnitudes are shown).
    Returns:
        (N,) float64 in [0, 1]; zeros when every value is 0 or not finite.
    """
    v = np.abs(np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0))
    if v.size == 0:
        return v
    top = float(np.percentile(v, 99))
    if top <= 0:
        top = float(v.max())
    return np.clip(v / top, 0.0, 1.0) if top > 0 else np.zeros_like(v)


def heat_rgb(level: np.ndarray) -> np.ndarray:
    """(N,) levels in [0, 1] -> (N, 3) uint8 RGB on the heat map."""
    level = np.clip(np.asarray(level, dtype=np.float64), 0.0, 1.0) * (len(_HEAT) - 1)
    lo = np.floor(level).astype(np.int64).clip(0, len(_HEAT) - 2)
    frac = (level - lo)[:, None]
    rgb = _HEAT[lo] * (1 - frac) + _HEAT[lo + 1] * frac
    return np.round(rgb).astype(np.uint8)


def diverging_rgb(values: np.ndarray) -> np.ndarray:
    """(N,) values in [-1, 1] -> (N, 3) uint8: blue for negative, white at 0, red for positive."""
    v = np.clip(np.asarray(values, dtype=np.float64), -1.0, 1.0)[:, None]
    white = np.array([255.0, 255.0, 255.0])
    red = np.array([178.0, 24.0, 43.0])
    blue = np.array([33.0, 102.0, 172.0])
    rgb = np.where(v >= 0, white + (red - white) * v, white + (blue - white) * (-v))
    return np.round(rgb).astype(np.uint8)


def cells_rgb(cells: np.ndarray) -> np.ndarray:
    """(H, T) memory-cell states -> (H, T, 3) uint8, each cell scaled by its own largest |value|.

    Cell states are unbounded, and one cell that counts through the line can
    be ten times larger than the rest; a common scale would leave the others
    white. Per cell, each row shows its own course over time (as the CLI's
    figure does, ``inkread.saliency_plot``).
    """
    c = np.asarray(cells, dtype=np.float64)
    scale = np.maximum(np.abs(c).max(axis=1, keepdims=True), 1e-12) if c.size else 1.0
    return diverging_rgb((c / scale).reshape(-1)).reshape(*c.shape, 3)
