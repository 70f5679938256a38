"""argparse types shared by the commands: a value out of range is one clear line, not a traceback.

Each factory returns a parser for ``type=``; argparse turns its
ArgumentTypeError into ``inkread CMD: error: argument --OPT: MESSAGE``.
"""
from __future__ import annotations

import argparse
import math
from typing import Callable, Optional


def _problem(v: float, least: Optional[float], most: Optional[float], above: Optional[float]) -> Optional[str]:
    if least is not None and most is not None and not least <= v <= most:
        return f"{v:g} is outside {least:g}..{most:g}"
    if least is not None and v < least:
        return f"{v:g} is not at least {least:g}"
    if most is not None and v > most:
        return f"{v:g} is more than {most:g}"
    if above is not None and not v > above:
        return f"{v:g} is not above {above:g}"
    return None


def whole(least: Optional[int] = None, most: Optional[int] = None) -> Callable[[str], int]:
    """A whole number in [least, most] (either bound may be left open)."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        msg = _problem(v, least, most, None)
        if msg:
            raise argparse.ArgumentTypeError(msg)
        return v
    return parse


def number(least: Optional[float] = None, most: Optional[float] = None,
           above: Optional[float] = None) -> Callable[[str], float]:
    """A finite number in [least, most], or above ``above``."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        msg = _problem(v, least, most, above)
        if msg:
            raise argparse.ArgumentTypeError(msg)
        return v
    return parse


def listed(item: Callable[[str], float], what: str) -> Callable[[str], list]:
    """A comma-separated list whose every item passes ``item``; the message names the item."""
    def parse(text: str) -> list:
        out = []
        for k, part in enumerate(p for p in text.split(",") if p.strip()):
            try:
                out.append(item(part.strip()))
            except argparse.ArgumentTypeError as exc:
                raise argparse.ArgumentTypeError(f"{text!r}: item {k + 1}: {exc}") from None
        if not out:
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of {what}")
        return out
    return parse
