"""Synthetic lines of online handwriting with per-point character truth.

:func:`generate_line` chains the stages: text (:mod:`.text`), a writer style
(:mod:`.style`), glyph layout and deformation (:mod:`.layout`), pen dynamics
and digitizing (:mod:`.dynamics`). :class:`SynthSamples` is the lazy sequence
behind the ``synth:N[@SEED]`` data spec: sample ``i`` depends only on
``(seed, i)``, so it is the same whichever process makes it and in whatever
order.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Optional, Union

import numpy as np

from ..ink import Ink, Stroke
from .dynamics import _STEP, digitize, resample, smooth, timing
from .layout import deform, layout
from .style import Style, sample_style
from .text import check_text, random_text

log = logging.getLogger(__name__)

SeedLike = Union[int, Sequence, np.random.Generator, None]


def make_rng(seed: SeedLike) -> np.random.Generator:
    """A generator from an int, a sequence of ints (e.g. (seed, index)) or a generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _to_ink(xy: np.ndarray, t: np.ndarray, stroke: np.ndarray, char: np.ndarray,
            text: str, style: Style, **kwargs) -> Ink:
    ends = np.cumsum(np.bincount(stroke)).tolist()
    x, y = xy[:, 0].copy(), xy[:, 1].copy()
    strokes = [Stroke(x[a:b], y[a:b], t[a:b]) for a, b in zip([0] + ends[:-1], ends)]
    style_dict = {f.name: getattr(style, f.name) for f in dataclasses.fields(style)}
    style_dict["origin"] = list(style.origin)
    meta = {"source": "synth", "style": style_dict}
    meta.update(kwargs.pop("metadata", {}))
    return Ink(strokes=strokes, text=text, metadata=meta, char_of_point=char.astype(np.int64), **kwargs)


def generate_line(text: Optional[str] = None, seed: SeedLike = 0, style: Optional[Style] = None,
                  **ink_fields) -> Ink:
    """Write one line of synthetic handwriting.

    Args:
        text: what to write (printable ASCII after :func:`~.text.normalize_text`);
            None draws English-like text from ``seed``.
        seed: an int, a sequence of ints, or a ``numpy.random.Generator``.
        style: the writer's style; None draws one from ``seed``.
        **ink_fields: passed to :class:`~inkread.ink.Ink` (id, writer, metadata).

    Returns:
        An :class:`~inkread.ink.Ink` in device units (y down) with ``text`` and
        ``char_of_point`` set: (N,) index into ``text`` for each point, -1 for none
        (spaces have no points).

    Raises:
        OptionError: if ``text`` is empty or holds a character without a glyph.
    """
    rng = make_rng(seed)
    text = random_text(rng) if text is None else check_text(text)
    style = sample_style(rng) if style is None else style
    paths, origin = layout(text, style, rng)
    paths = deform(paths, origin, style, rng)
    pts, stroke, char, off = resample(paths, _STEP)
    pts = smooth(pts, off, style.smooth / _STEP)
    t, start, dur = timing(pts, stroke, off, paths.new_word, style, rng, _STEP)
    xy, ts, sid, cop = digitize(pts, stroke, char, t, start, dur, style, rng)
    return _to_ink(xy, ts, sid, cop, text, style, **ink_fields)


class SynthSamples(Sequence):
    """A lazy sequence of ``n`` synthetic :class:`~inkread.datasets.Sample`.

    Item ``i`` is generated on access from the generator seeded with
    ``(seed, i)``; with ``texts``, it writes ``texts[i % len(texts)]``.
    """

    def __init__(self, n: int, seed: int = 0, texts: Optional[Sequence[str]] = None) -> None:
        self.n, self.seed = int(n), int(seed)
        self.texts = list(texts) if texts is not None else None

    def __len__(self) -> int:
        return self.n

    def sample_id(self, i: int) -> str:
        return f"synth-{self.seed}-{i:06d}"

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.n))]
        i = int(i)
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(f"synthetic sample {i} out of range 0..{self.n - 1}")
        from ..datasets import Sample
        text = self.texts[i % len(self.texts)] if self.texts else None
        sid = self.sample_id(i)
        ink = generate_line(text, (self.seed, i), id=sid, writer=sid,
                            metadata={"seed": self.seed, "index": i})
        return Sample(ink, ink.text, sid, sid)


def bench_lines_per_second(seconds: float = 3.0) -> float:
    """Synthetic lines generated per CPU second of one core, after a warm-up.

    Runs for about ``seconds`` of this process's CPU time (not wall-clock
    time, so that other processes on a shared machine do not count against
    it); generation is single-threaded numpy, so this is the rate per core.
    """
    generate_line(seed=0)  # loads the fonts and the word list
    n, t0 = 0, time.process_time()
    while time.process_time() - t0 < seconds:
        generate_line(seed=(12345, n))
        n += 1
    return n / max(time.process_time() - t0, 1e-9)
