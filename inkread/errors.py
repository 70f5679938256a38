"""Exceptions a user can cause: each names the file and the place.

The CLI catches :class:`InkreadError` and prints ``str(err)`` as one line,
exiting with status 2; nothing else in the library prints tracebacks for
user mistakes.
"""
from __future__ import annotations

import os
from typing import Optional


class InkreadError(Exception):
    """Base of all user-facing errors.

    Args:
        message: what is wrong, in plain words.
        path: the file concerned, if any.
        where: the place inside it (line, element, field, stroke/point index).
    """

    def __init__(self, message: str, path: Optional[os.PathLike | str] = None,
                 where: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        self.where = where

    def __str__(self) -> str:
        parts = [p for p in (self.path, self.where) if p]
        return ": ".join(parts + [self.message])


class InkError(InkreadError):
    """Ink that is not valid (NaN/inf coordinates, mismatched arrays, ...)."""


class FormatError(InkreadError):
    """A file that cannot be read or written in its format."""


class DataSpecError(InkreadError):
    """A data spec (``KIND:PATH[@SELECTOR]``) that cannot be resolved."""


class CheckpointError(InkreadError):
    """A model or LM file that is missing, foreign, corrupt or incompatible."""


class OptionError(InkreadError):
    """A command-line option with a bad value."""
