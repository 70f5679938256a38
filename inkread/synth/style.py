"""A synthetic writer's style: everything drawn once per line and kept for the whole line.

Lengths are in x-heights (the height of a lowercase "x") unless named
otherwise; angles in radians; times in seconds.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Optional

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class Style:
    """How one synthetic writer writes one line.

    Attributes:
        script: cursive letters (Hershey Script) instead of print (Hershey Roman).
        script_caps: in script style, capitals in script too (else printed).
        x_height: device units per x-height (the unit of the output coordinates).
        slant: shear of upright strokes, positive leans right.
        aspect: horizontal stretch of the glyphs.
        letter_space: extra space between letters (may be negative: tight).
        word_space: space between words.
        ascender: scale of the zone above the x-height (capitals, ascenders, digits).
        descender: scale of the zone below the baseline.
        baseline_tilt: slope of the baseline (dy/dx), y down.
        baseline_bend: curvature of the baseline (y offset at the line's ends, x-heights).
        baseline_wave: amplitude of a slow baseline drift.
        size_drift: relative amplitude of a slow change of size along the line.
        deform: strength of the smooth per-character deformation.
        char_variation: spread of each character's own size, width, shear and height.
        char_space_jitter: per-character spacing noise (standard deviation).
        join_in_glyph: probability of keeping the pen down where a glyph retraces.
        join_letters: in script style, probability of joining consecutive letters.
        delay: probability that an i/j dot or t/f/x cross is written after the word.
        smooth: radius of the smoothing that rounds the font's polygon corners.
        speed: pen speed on straight runs, x-heights per second.
        speed_curve: exponent of the slow-down in curves (two-thirds law: 1/3).
        ramp: distance over which the pen accelerates and brakes at stroke ends.
        rate_hz: digitizer sampling rate.
        gap: base pen-up time between strokes.
        air_speed: pen speed in the air between strokes, x-heights per second.
        word_pause: extra pen-up time before a word.
        hesitation: probability that a pen-up lasts about a second longer (a pause).
        jitter: device noise, standard deviation in device units.
        origin: position of the line's start in device units (x, y).
    """

    script: bool = False
    script_caps: bool = False
    x_height: float = 40.0
    slant: float = 0.15
    aspect: float = 1.0
    letter_space: float = 0.0
    word_space: float = 1.0
    ascender: float = 1.0
    descender: float = 1.0
    baseline_tilt: float = 0.0
    baseline_bend: float = 0.0
    baseline_wave: float = 0.0
    size_drift: float = 0.0
    deform: float = 0.05
    char_variation: float = 0.06
    char_space_jitter: float = 0.05
    join_in_glyph: float = 0.8
    join_letters: float = 0.9
    delay: float = 0.3
    smooth: float = 0.05
    speed: float = 10.0
    speed_curve: float = 1.0 / 3.0
    ramp: float = 0.25
    rate_hz: float = 120.0
    gap: float = 0.12
    air_speed: float = 12.0
    word_pause: float = 0.08
    hesitation: float = 0.08
    jitter: float = 0.4
    origin: tuple = (100.0, 100.0)

    def replace(self, **changes) -> "Style":
        return dataclasses.replace(self, **changes)


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def sample_style(rng: np.random.Generator, script: Optional[bool] = None) -> Style:
    """Draw a writer's style for one line.

    Args:
        rng: the line's random generator.
        script: force script (True) or print (False) style; None draws it.
    """
    u = rng.uniform(size=32)
    n = rng.normal(size=32)
    script = bool(u[0] < 0.4) if script is None else script
    return Style(
        script=script,
        script_caps=bool(u[1] < 0.5),
        x_height=_loguniform(rng, 40.0, 250.0),
        slant=float(np.clip(0.12 + 0.15 * n[0], -0.25, 0.55)),
        aspect=float(np.exp(0.12 * n[1])),
        letter_space=float(rng.uniform(-0.1, 0.15) if script else rng.uniform(-0.35, 0.1)),
        word_space=float(rng.uniform(0.9, 2.0) if script else rng.uniform(0.6, 1.6)),
        ascender=float(rng.uniform(0.5, 0.9) if script else rng.uniform(0.8, 1.25)),
        descender=float(rng.uniform(0.6, 1.0) if script else rng.uniform(0.8, 1.2)),
        baseline_tilt=float(0.02 * n[2]),
        baseline_bend=float(0.3 * n[3]),
        baseline_wave=float(abs(0.15 * n[4])),
        size_drift=float(u[2] * 0.12),
        deform=float(rng.uniform(0.03, 0.14)),
        char_variation=float(rng.uniform(0.03, 0.1)),
        char_space_jitter=float(rng.uniform(0.02, 0.1)),
        join_in_glyph=float(rng.uniform(0.65, 1.0)),
        join_letters=float(rng.uniform(0.35, 0.9)),
        delay=float(rng.uniform(0.3, 0.95) if script else rng.uniform(0.0, 0.4)),
        smooth=float(rng.uniform(0.03, 0.08)),
        speed=_loguniform(rng, 7.5, 17.0),
        speed_curve=float(rng.uniform(0.25, 0.4)),
        ramp=float(rng.uniform(0.15, 0.35)),
        rate_hz=_loguniform(rng, 60.0, 200.0),
        gap=_loguniform(rng, 0.04, 0.14),
        air_speed=float(rng.uniform(8.0, 18.0)),
        word_pause=float(rng.uniform(0.02, 0.15)),
        hesitation=float(rng.uniform(0.0, 0.2)),
        jitter=float(rng.uniform(0.15, 0.6)),
        origin=(float(rng.uniform(0, 1000)), float(rng.uniform(0, 1000))),
    )
