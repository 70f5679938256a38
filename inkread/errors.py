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

    @property
    def detail(self) -> str:
        """The place and the message without the file, for lists that name each file already."""
        return ": ".join(p for p in (self.where, self.message) if p)


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


def check_writable(path: os.PathLike | str, folder: bool = False) -> None:
    """Make sure ``path`` can be written: a file (or with ``folder``, a folder), its parents made.

    Commands call it before long work (training, evaluation), so a bad output option
    costs nothing and reads as one line.

    Raises:
        OptionError: the path is a folder where a file is wanted (or the reverse), or its
            folder cannot be made or written in.
    """
    from pathlib import Path
    path = Path(path)
    try:
        exists, is_dir = path.exists(), path.is_dir()
    except OSError as exc:  # a name too long, a loop of links: stat itself fails
        raise OptionError(f"cannot write here ({exc.strerror or exc})", path) from None
    if folder and exists and not is_dir:
        raise OptionError("is a file; name a folder", path)
    if not folder and is_dir:
        raise OptionError("is a folder; name a file", path)
    target = path if folder else path.parent
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OptionError(f"cannot make the folder {target} ({exc.strerror or exc})", path) from None
    if not os.access(target, os.W_OK):
        raise OptionError(f"cannot write in {target} (permission denied)", path)
    # Try it: root passes os.access in read-only places such as /proc, and a name can be too long.
    try:
        if folder:
            import tempfile
            with tempfile.TemporaryFile(dir=target):
                pass
        elif not exists:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            os.unlink(path)
        elif not os.access(path, os.W_OK):
            raise OptionError("cannot write the file (permission denied)", path)
    except OSError as exc:
        raise OptionError(f"cannot write here ({exc.strerror or exc})", path) from None
