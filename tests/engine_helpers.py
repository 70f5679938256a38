"""Tiny hand-made handwriting for engine tests: each letter is a distinct shape."""
from __future__ import annotations

import numpy as np

from inkread.datasets import Dataset, Sample
from inkread.ink import Ink, Stroke

TEXTS = ["ab", "ca", "bcd", "dab", "cdba", "bd"]


def _shape(ch: str, x0: float) -> list[np.ndarray]:
    u = np.linspace(0, 1, 24)
    if ch == "a":  # circle
        return [np.column_stack([x0 + 0.4 + 0.4 * np.cos(2 * np.pi * u), 0.5 + 0.4 * np.sin(2 * np.pi * u)])]
    if ch == "b":  # vertical bar
        return [np.column_stack([x0 + 0.4 + 0 * u, u])]
    if ch == "c":  # zigzag
        return [np.column_stack([x0 + 0.8 * u, 0.5 + 0.4 * np.sign(np.sin(6 * np.pi * u)) * np.abs(np.sin(6 * np.pi * u))])]
    if ch == "d":  # cross, two strokes
        return [np.column_stack([x0 + 0.8 * u, u]), np.column_stack([x0 + 0.8 * u, 1 - u])]
    raise ValueError(ch)


def make_ink(text: str, t0: float = 0.0) -> Ink:
    strokes, t, cop = [], t0, []
    for i, ch in enumerate(text):
        for pts in _shape(ch, 1.2 * i):
            n = len(pts)
            strokes.append(Stroke(pts[:, 0] * 100, pts[:, 1] * 100, t + np.arange(n) * 0.01))
            t += n * 0.01 + 0.1
            cop.extend([i] * n)
    return Ink(strokes, text=text, id=text, char_of_point=np.array(cop)).validated()


def tiny_dataset(spec: str = "test:tiny") -> Dataset:
    return Dataset(spec, [Sample(make_ink(t), t, t, None) for t in TEXTS])
