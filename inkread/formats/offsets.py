"""Offset arrays (``.npy``) as used by handwriting-synthesis projects.

The file is a NumPy ``.npy`` array of shape (N, 3), rows
``[pen_lift, dx, dy]``: the offset of each point from the previous one (the
first from the origin), and ``pen_lift = 1`` on the last point of a stroke.
Following those projects (which negate IAM-OnDB's y when they build the
arrays), dy points up; the reader negates it so that ink y grows downwards,
and the writer negates it back.

The format has no time, text or writer: reading synthesizes time (flagged),
writing drops everything but the geometry. Files are loaded without pickle,
and the header's shape is checked against the limits and the file size
before any data is read.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from ..errors import FormatError, InkError
from ..ink import Ink, synthesize_time
from . import MAX_POINTS, Format

log = logging.getLogger(__name__)

MAGIC = b"\x93NUMPY"


def _header(fh, path: Path) -> tuple[tuple, bool, np.dtype]:
    try:
        version = np.lib.format.read_magic(fh)
        with warnings.catch_warnings():  # numpy warns about Python 2 style headers
            warnings.simplefilter("ignore")
            if version == (1, 0):
                return np.lib.format.read_array_header_1_0(fh)
            if version == (2, 0):
                return np.lib.format.read_array_header_2_0(fh)
    except Exception as exc:  # noqa: BLE001 - numpy's header parser raises many types (ValueError,
        # EOFError, SyntaxError, tokenize.TokenError, ...); all mean a broken header here.
        raise FormatError(f"not a valid .npy file ({type(exc).__name__}: {exc})", path, "header") from None
    raise FormatError(f"unsupported .npy version {version[0]}.{version[1]}", path, "header")


def _load(path: Path) -> np.ndarray:
    """The (N, 3) array, read without pickle and without trusting the header."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        shape, fortran, dtype = _header(fh, path)
        if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None:
            raise FormatError(f"array has dtype {dtype}, expected numbers", path, "header")
        if len(shape) != 2 or shape[1] != 3:
            raise FormatError(f"array has shape {shape}, expected (N, 3) rows [pen_lift, dx, dy]",
                              path, "header")
        if shape[0] > MAX_POINTS:
            raise FormatError(f"{shape[0]} points, over the {MAX_POINTS}-point limit", path, "header")
        need = shape[0] * 3 * dtype.itemsize
        if size - fh.tell() != need:
            raise FormatError(f"data is {size - fh.tell()} bytes, the header announces {need} "
                              f"(truncated or padded file)", path, "data")
        data = np.frombuffer(fh.read(need), dtype=dtype)
    return data.reshape(shape, order="F" if fortran else "C").astype(np.float64)


def read(path: Path) -> Ink:
    arr = _load(path)
    bad = np.argwhere(~np.isfinite(arr))
    if bad.size:
        r, c = bad[0]
        raise FormatError(f"{('pen_lift', 'dx', 'dy')[c]} is not finite ({arr[r, c]})", path, f"row {r}")
    bad = np.flatnonzero((arr[:, 0] != 0) & (arr[:, 0] != 1))
    if bad.size:
        raise FormatError(f"pen_lift is {arr[bad[0], 0]:g}, not 0 or 1 (rows must be [pen_lift, dx, dy])",
                          path, f"row {bad[0]}")
    with np.errstate(over="ignore", invalid="ignore"):
        xy = np.cumsum(arr[:, 1:], axis=0)
    flat = np.column_stack([xy[:, 0], -xy[:, 1], np.zeros(len(arr)), arr[:, 0]])
    try:
        ink = Ink.from_array(flat, metadata={"source": "offsets"})
        return synthesize_time(ink)
    except InkError as exc:
        raise FormatError(exc.message, path, exc.where) from None


def to_offsets(ink: Ink) -> np.ndarray:
    """(N, 3) float64 rows [pen_lift, dx, dy] (dy up) for ``ink``."""
    a = ink.copy().validated().to_array()  # (N, 4) x, y, t, pen_up
    xy = np.column_stack([a[:, 0], -a[:, 1]])
    d = np.diff(xy, axis=0, prepend=np.zeros((1, 2)))
    return np.column_stack([a[:, 3], d])


def write(ink: Ink, path: Path) -> None:
    with open(path, "wb") as fh:  # a file object: np.save would append ".npy" to a path
        np.save(fh, to_offsets(ink), allow_pickle=False)


def sniff(head: bytes) -> bool:
    return head.startswith(MAGIC)


FORMAT = Format("offsets", (".npy",), read, write, sniff)
