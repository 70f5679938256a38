"""Synthetic online handwriting with per-point character truth.

Lines are written with single-stroke Hershey glyphs by a randomly drawn
writer (slant, size, spacing, baseline, joins, delayed dots and crosses,
smooth deformation) and pen dynamics (two-thirds-law speed, digitizer
sampling, device noise). Every point knows the character that produced it
(``Ink.char_of_point``).

Public API::

    from inkread.synth import generate_line, synth_samples
    ink = generate_line("Hello world.", seed=3)     # Ink with text, char_of_point
    samples = synth_samples(1000, seed=1)           # lazy Sequence of Sample

The data spec ``synth:N[@SEED]`` gives the same samples to training and
``inkread data``. This package imports no heavy module until a line is made:
it is imported whenever a data spec is parsed.
"""
from __future__ import annotations

import logging
from typing import Optional

from ..datasets import Dataset, register
from ..errors import DataSpecError
from .generator import SynthSamples, bench_lines_per_second, generate_line, make_rng
from .glyphs import SUPPORTED_CHARS
from .style import Style, sample_style

log = logging.getLogger(__name__)

__all__ = ["generate_line", "synth_samples", "bench_lines_per_second", "SynthSamples",
           "Style", "sample_style", "SUPPORTED_CHARS", "make_rng"]


def synth_samples(n: int, seed: int = 0, texts=None) -> SynthSamples:
    """``n`` lazily generated samples; item i depends only on (seed, i)."""
    return SynthSamples(n, seed, texts)


@register("synth")
def _load_synth(path: str, sel: Optional[str], spec: str) -> Dataset:
    """``synth:N[@SEED]``: N synthetic lines, generated when accessed."""
    try:
        n = int(path)
    except ValueError:
        raise DataSpecError(f"synth: N must be a whole number of lines, not {path!r}", spec) from None
    try:
        seed = int(sel) if sel else 0
    except ValueError:
        raise DataSpecError(f"synth: SEED must be a whole number, not {sel!r}", spec) from None
    if n < 1 or seed < 0:
        raise DataSpecError("synth: N must be at least 1 and SEED not negative", spec)
    return Dataset(spec, SynthSamples(n, seed))
