"""inkread's own JSON format (``.json``): lossless, versioned, documented.

Schema, version 1 (see data/README.md for the full description)::

    {
      "format": "inkread",            required, exactly this string
      "version": 1,                   required, integer
      "id": "hello",                  optional string
      "text": "hello",                optional string: the transcription
      "writer": "w042",               optional string
      "time_synthesized": false,      optional bool (default false)
      "metadata": {...},              optional object, free-form JSON
      "strokes": [                    required list (may be empty)
        {"x": [..], "y": [..],        required numbers, same length N
         "t": [..],                   seconds; optional, but then in no stroke
         "pressure": [..]}            optional
      ],
      "char_of_point": [..]           optional ints over all points in order:
                                      index into text, -1 for none
    }

A file of a newer version is refused (not guessed at); unknown keys are
ignored so that version 1 readers can read files that only add fields.
Numbers are written in Python's shortest round-trip form, so reading back a
written file reproduces every float64 exactly.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import FormatError, InkError
from ..ink import Ink, Stroke, synthesize_time
from . import MAX_POINTS, Format

log = logging.getLogger(__name__)

MAGIC = "inkread"
VERSION = 1
_TOP_KEYS = {"format", "version", "id", "text", "writer", "time_synthesized", "metadata",
             "strokes", "char_of_point"}


# ---------------------------------------------------------------- reading
def _load_json(path: Path) -> Any:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text (bad byte 0x{raw[exc.start]:02x})", path,
                          f"byte {exc.start}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"not valid JSON ({exc.msg})", path,
                          f"line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise FormatError("JSON nested too deeply", path) from None
    except ValueError as exc:  # e.g. an integer literal of thousands of digits
        raise FormatError(f"unreadable JSON value ({exc})", path) from None


def _numbers(value: Any, path: Path, where: str) -> np.ndarray:
    """A flat list of JSON numbers -> float64 array, refusing strings, bools and nesting."""
    if not isinstance(value, list):
        raise FormatError(f"expected a list of numbers, got {type(value).__name__}", path, where)
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise FormatError(f"expected a number, got {json.dumps(v)[:40]}", path, f"{where}[{i}]")
    try:
        arr = np.array(value, dtype=np.float64)
    except OverflowError:
        arr = np.array([float(v) if abs(v) < 1e308 else np.inf for v in value], dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise FormatError(f"not a finite number ({value[bad[0]]})", path, f"{where}[{bad[0]}]")
    return arr


def _optional_str(doc: dict, key: str, path: Path) -> Optional[str]:
    v = doc.get(key)
    if v is not None and not isinstance(v, str):
        raise FormatError(f"expected a string, got {type(v).__name__}", path, key)
    return v


def _check_header(doc: Any, path: Path) -> None:
    if not isinstance(doc, dict):
        raise FormatError(f"top level is a JSON {type(doc).__name__}, not an object", path)
    if doc.get("format") != MAGIC:
        raise FormatError(f"not an inkread ink file (\"format\" is {json.dumps(doc.get('format'))[:40]}, "
                          f"expected \"{MAGIC}\")", path, "format")
    ver = doc.get("version")
    if isinstance(ver, bool) or not isinstance(ver, int):
        raise FormatError(f"\"version\" must be an integer, got {json.dumps(ver)[:40]}", path, "version")
    if ver > VERSION:
        raise FormatError(f"format version {ver} was written by a newer inkread; this one reads "
                          f"version {VERSION} only (upgrade inkread)", path, "version")
    if ver < 1:
        raise FormatError(f"unknown format version {ver}", path, "version")


def _read_stroke(sd: Any, path: Path, where: str) -> tuple[Stroke, bool]:
    """(stroke, has_time) from one stroke object."""
    if not isinstance(sd, dict):
        raise FormatError(f"expected an object with x, y, t, got {type(sd).__name__}", path, where)
    for key in ("x", "y"):
        if key not in sd:
            raise FormatError(f"missing {key!r}", path, where)
    x = _numbers(sd["x"], path, f"{where}.x")
    y = _numbers(sd["y"], path, f"{where}.y")
    has_t = sd.get("t") is not None
    t = _numbers(sd["t"], path, f"{where}.t") if has_t else np.zeros(len(x))
    p = _numbers(sd["pressure"], path, f"{where}.pressure") if sd.get("pressure") is not None else None
    for name, arr in (("y", y), ("t", t), ("pressure", p)):
        if arr is not None and len(arr) != len(x):
            raise FormatError(f"{name} has {len(arr)} values but x has {len(x)}", path, where)
    return Stroke(x, y, t, p), has_t


def _read_strokes(doc: dict, path: Path) -> tuple[list[Stroke], bool]:
    raw = doc.get("strokes")
    if not isinstance(raw, list):
        raise FormatError("\"strokes\" must be a list of stroke objects", path, "strokes")
    strokes, timed, total = [], set(), 0
    for i, sd in enumerate(raw):
        s, has_t = _read_stroke(sd, path, f"strokes[{i}]")
        total += len(s)
        if total > MAX_POINTS:
            raise FormatError(f"more than {MAX_POINTS} points", path, f"strokes[{i}]")
        if len(s):
            timed.add(has_t)
        strokes.append(s)
    if len(timed) > 1:
        raise FormatError("some strokes have \"t\" and others do not", path, "strokes")
    return strokes, timed != {False}


def _read_char_of_point(doc: dict, text: Optional[str], npoints: int, path: Path) -> Optional[np.ndarray]:
    raw = doc.get("char_of_point")
    if raw is None:
        return None
    arr = _numbers(raw, path, "char_of_point")
    if len(arr) != npoints:
        raise FormatError(f"has {len(arr)} values for {npoints} points", path, "char_of_point")
    nchars = len(text or "")
    bad = np.flatnonzero((arr != np.round(arr)) | (arr < -1) | (arr >= nchars))
    if bad.size:
        raise FormatError(f"{arr[bad[0]]:g} is not -1 or a character index below {nchars}",
                          path, f"char_of_point[{bad[0]}]")
    return arr.astype(np.int64)


def read(path: Path) -> Ink:
    doc = _load_json(path)
    _check_header(doc, path)
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        log.debug("%s: ignoring unknown keys %s", path, sorted(unknown))
    text = _optional_str(doc, "text", path)
    meta = doc.get("metadata") or {}
    if not isinstance(meta, dict):
        raise FormatError("\"metadata\" must be an object", path, "metadata")
    synth = doc.get("time_synthesized", False)
    if not isinstance(synth, bool):
        raise FormatError("\"time_synthesized\" must be true or false", path, "time_synthesized")
    strokes, has_time = _read_strokes(doc, path)
    ink = Ink(strokes=strokes, text=text, writer=_optional_str(doc, "writer", path),
              id=_optional_str(doc, "id", path), metadata=meta, time_synthesized=synth)
    ink.char_of_point = _read_char_of_point(doc, text, ink.num_points, path)
    try:
        ink = ink.validated() if has_time else synthesize_time(ink)
    except InkError as exc:
        raise FormatError(exc.message, path, exc.where) from None
    return ink


# ---------------------------------------------------------------- writing
def _num(v: float) -> str:
    # Integral values as ints keep files small; everything else in repr's
    # shortest round-trip form, so float64 survives exactly.
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def _array(arr: np.ndarray) -> str:
    return "[" + ",".join(_num(float(v)) for v in arr) + "]"


def _stroke_json(s: Stroke) -> str:
    parts = [f'"x":{_array(s.x)}', f'"y":{_array(s.y)}', f'"t":{_array(s.t)}']
    if s.pressure is not None:
        parts.append(f'"pressure":{_array(s.pressure)}')
    return "{" + ",".join(parts) + "}"


def dumps(ink: Ink) -> str:
    """The native JSON text of ``ink``: a header, then one line per stroke."""
    ink = ink.copy().validated()
    head = {"format": MAGIC, "version": VERSION}
    for key in ("id", "text", "writer"):
        if getattr(ink, key) is not None:
            head[key] = getattr(ink, key)
    head["time_synthesized"] = bool(ink.time_synthesized)
    try:
        head["metadata"] = json.loads(json.dumps(ink.metadata, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise FormatError(f"metadata is not plain JSON ({exc})", where="metadata") from None
    lines = [json.dumps(head, ensure_ascii=False)[:-1] + ',\n "strokes": [']
    if ink.strokes:
        lines.append(",\n".join("  " + _stroke_json(s) for s in ink.strokes))
    tail = " ]"
    if ink.char_of_point is not None:
        tail += ',\n "char_of_point": [' + ",".join(str(int(c)) for c in ink.char_of_point) + "]"
    lines.append(tail + "\n}\n")
    return "\n".join(lines)


def write(ink: Ink, path: Path) -> None:
    path.write_text(dumps(ink), encoding="utf-8")


def sniff(head: bytes) -> bool:
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{") and b'"inkread"' in head


FORMAT = Format("native", (".json",), read, write, sniff)
