"""Reading and writing ink files: one module per format, chosen by suffix or sniffing.

Each format module defines a :class:`Format` instance named ``FORMAT`` with
``read(path) -> Ink`` and optionally ``write(ink, path)`` and
``sniff(head: bytes) -> bool``. :func:`read_ink` picks the format from the
suffix, falling back to sniffing the first bytes; every failure is a
:class:`~inkread.errors.FormatError` naming the file and the place.

Limits against hostile input (documented in data/README.md): files larger
than :data:`MAX_FILE_BYTES` are refused before parsing, and no reader builds
more than :data:`MAX_POINTS` points.
"""
from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ..errors import FormatError, InkreadError
from ..ink import Ink

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_POINTS = 2_000_000

# name -> module; each module defines FORMAT. Order matters for sniffing.
_MODULES = {
    "native": "inkread.formats.native",
    "inkml": "inkread.formats.inkml",
    "iamondb": "inkread.formats.iamondb",
    "unipen": "inkread.formats.unipen",
    "offsets": "inkread.formats.offsets",
}


@dataclass(frozen=True)
class Format:
    """A file format: its name, suffixes and functions."""

    name: str
    suffixes: tuple[str, ...]
    read: Callable[[Path], Ink]
    write: Optional[Callable[[Ink, Path], None]] = None
    sniff: Optional[Callable[[bytes], bool]] = None


def formats() -> dict[str, Format]:
    """All formats whose modules import, by name."""
    out = {}
    for name, mod in _MODULES.items():
        try:
            out[name] = importlib.import_module(mod).FORMAT
        except ModuleNotFoundError as exc:  # a format module not written yet
            if exc.name != mod:
                raise
    return out


def _check_size(path: Path) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise FormatError("no such file", path) from None
    except OSError as exc:
        raise FormatError(f"cannot read ({exc.strerror})", path) from None
    if path.is_dir():
        raise FormatError("is a directory, not an ink file", path)
    if not path.is_file():  # a device or FIFO could be read forever
        raise FormatError("not a regular file", path)
    if size > MAX_FILE_BYTES:
        raise FormatError(f"file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit", path)


def detect_format(path: os.PathLike | str, fmt: Optional[str] = None) -> Format:
    """The format for ``path``: named, by suffix, or by sniffing its first bytes."""
    path = Path(path)
    table = formats()
    if fmt is not None:
        if fmt not in table:
            raise FormatError(f"unknown format {fmt!r} (known: {', '.join(table)})", path)
        return table[fmt]
    suffix = "".join(path.suffixes[-1:]).lower()
    by_suffix = [f for f in table.values() if suffix in f.suffixes]
    head = b""
    try:
        if path.is_file():
            with open(path, "rb") as fh:
                head = fh.read(4096)
    except OSError:
        pass  # reading proper reports it
    # The suffix decides unless its format's sniffer rejects the content and
    # another format's accepts it (an InkML file named .xml, say).
    candidates = by_suffix if len(by_suffix) != 1 or not head else by_suffix + list(table.values())
    for f in (candidates or table.values()):
        if f.sniff is not None and f.sniff(head):
            return f
    if by_suffix:
        return by_suffix[0]
    raise FormatError(f"unknown ink format (suffix {suffix or 'none'!r}; "
                      f"known: {', '.join(s for f in table.values() for s in f.suffixes)})", path)


def format_for_writing(path: os.PathLike | str, fmt: Optional[str] = None) -> Format:
    """The format to write ``path`` in: ``fmt``, else the suffix (an existing file's content is ignored)."""
    path = Path(path)
    table = formats()
    if fmt is not None:
        return detect_format(path, fmt)
    suffix = path.suffix.lower()
    for f in table.values():
        if suffix in f.suffixes and f.write is not None:
            return f
    for f in table.values():
        if suffix in f.suffixes:
            return f
    raise FormatError(f"unknown ink format (suffix {suffix or 'none'!r}; writable: "
                      f"{', '.join(s for f in table.values() if f.write for s in f.suffixes)})", path)


def read_ink(path: os.PathLike | str, fmt: Optional[str] = None) -> Ink:
    """Read one ink file.

    Raises:
        FormatError: naming the file and the place of the first problem.
    """
    path = Path(path)
    _check_size(path)
    f = detect_format(path, fmt)
    try:
        ink = f.read(path)
    except InkreadError as exc:
        if exc.path is None:
            exc.path = str(path)
        raise
    except (UnicodeDecodeError, ValueError, OverflowError, MemoryError, RecursionError) as exc:
        raise FormatError(f"not a valid {f.name} file ({type(exc).__name__}: {exc})", path) from None
    if ink.id is None:
        ink.id = path.stem
    return ink


def write_ink(ink: Ink, path: os.PathLike | str, fmt: Optional[str] = None) -> None:
    """Write ``ink`` in the format given by ``fmt`` or the suffix, atomically."""
    path = Path(path)
    f = format_for_writing(path, fmt)
    if f.write is None:
        raise FormatError(f"format {f.name} can be read but not written", path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        f.write(ink, tmp)
        os.replace(tmp, path)
    except InkreadError as exc:
        if exc.path is None:
            exc.path = str(path)
        raise
    except OSError as exc:
        raise FormatError(f"cannot write ({exc.strerror or exc})", path) from None
    finally:
        if tmp.exists():
            tmp.unlink()
