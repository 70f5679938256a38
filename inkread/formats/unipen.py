"""UNIPEN 1.0 text files (``.dat``, ``.unipen``, ``.upn``): read as one Ink.

A UNIPEN file is a sequence of keywords, each a line starting with ``.``
and owning the lines up to the next keyword. What this reader uses:

* ``.COORD X Y [T] [P]``: the columns of each data line (default X Y);
  ``T`` is taken as milliseconds, ``P`` as pressure, others are dropped.
* ``.PEN_DOWN`` / ``.PEN_UP``: a component of pen-down (a stroke) or pen-up
  (hover, skipped but counted for time) points, one point per line.
* ``.POINTS_PER_SECOND r``: points are 1/r s apart, also across components;
  ``.DT ms`` adds a pause before the next component. Without T and without
  a rate, time is synthesized (and flagged).
* ``.Y_DIM``: UNIPEN's Y axis points up; y is flipped (``Y_DIM - y``, or the
  largest y when there is no ``.Y_DIM``) so that ink y grows downwards.
* ``.SEGMENT LEVEL DELINEATION [QUALITY] ["LABEL"]``: labels; the text is
  the label of the highest level in ``.HIERARCHY`` (else the coarsest
  level), words of one level joined by spaces in component order. Every
  segment is kept in ``metadata["unipen_segments"]``.
* ``.WRITER_ID`` gives the writer. ``.INCLUDE`` is not followed (it would
  read another file); it is noted in the metadata and otherwise ignored.

:func:`dumps` writes UNIPEN text (integer coordinates) for sample data and
tests; it is not registered as a writer because rounding loses precision.
"""
from __future__ import annotations

import io
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import FormatError, InkError
from ..ink import Ink, Stroke, synthesize_time
from . import MAX_POINTS, Format

log = logging.getLogger(__name__)

_KEYWORD = re.compile(r"^\.([A-Z][A-Z0-9_]*)\b[ \t]*(.*)$")
_SEGMENT = re.compile(r'^(\S+)\s+(\S+)(?:\s+([^"\s]+))?(?:\s+(.*))?$')
_SNIFF = re.compile(rb"(?m)^[ \t]*\.(COORD|PEN_DOWN|PEN_UP|VERSION|HIERARCHY|SEGMENT|X_DIM|Y_DIM|"
                    rb"POINTS_PER_SECOND|DATA_SOURCE|INCLUDE|COMMENT|WRITER_ID)\b")
MAX_COORD = 1e12


@dataclass
class _State:
    coord: list[str] = field(default_factory=lambda: ["X", "Y"])
    rate: Optional[float] = None
    y_dim: Optional[float] = None
    hierarchy: list[str] = field(default_factory=list)
    writer: Optional[str] = None
    components: list[tuple[bool, np.ndarray, float]] = field(default_factory=list)  # (down, pts, pause s)
    pause: float = 0.0
    segments: list[dict] = field(default_factory=list)
    includes: list[str] = field(default_factory=list)
    points: int = 0


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise FormatError("binary data (NUL byte), not a UNIPEN text file", path, f"byte {raw.index(0)}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # old UNIPEN files are 8-bit text


def _number(tok: str, path: Path, where: str) -> float:
    try:
        v = float(tok)
    except ValueError:
        raise FormatError(f"{tok[:20]!r} is not a number", path, where) from None
    if not math.isfinite(v) or abs(v) > MAX_COORD:
        raise FormatError(f"{tok[:20]!r} is not a finite coordinate", path, where)
    return v


def _blocks(text: str, path: Path):
    """(keyword, argument, [(line number, data line)], line number) in file order."""
    kw, arg, data, at = None, "", [], 0
    # Lines are taken one at a time (not splitlines()) so a file of millions of
    # tiny lines hits the point limit before it is all in memory as a list.
    for n, line in enumerate(io.StringIO(text, newline=None), 1):
        line = line.rstrip("\n")
        m = _KEYWORD.match(line)
        if m:
            if kw is not None:
                yield kw, arg, data, at
            kw, arg, data, at = m.group(1), m.group(2).strip(), [], n
        elif line.strip():
            if kw is None:
                raise FormatError(f"data before the first keyword: {line.strip()[:30]!r}", path, f"line {n}")
            data.append((n, line))
    if kw is not None:
        yield kw, arg, data, at


def _component(st: _State, data: list, path: Path) -> np.ndarray:
    ncol = len(st.coord)
    rows = []
    for n, line in data:
        toks = line.split()
        if len(toks) != ncol:
            raise FormatError(f"expected {ncol} values (.COORD {' '.join(st.coord)}), got {len(toks)}",
                              path, f"line {n}")
        rows.append([_number(t, path, f"line {n}") for t in toks])
        st.points += 1
        if st.points > MAX_POINTS:
            raise FormatError(f"more than {MAX_POINTS} points", path, f"line {n}")
    return np.asarray(rows, dtype=np.float64).reshape(-1, ncol)


def _segment(arg: str, at: int, path: Path) -> dict:
    m = _SEGMENT.match(arg)
    if not m:
        raise FormatError(f"expected LEVEL DELINEATION [QUALITY] [\"LABEL\"], got {arg[:40]!r}", path, f"line {at}")
    level, delin, quality, label = m.groups()
    if quality and quality.startswith('"'):
        quality, label = None, f"{quality} {label or ''}".strip()
    label = (label or "").strip()
    if len(label) >= 2 and label[0] == label[-1] == '"':
        label = label[1:-1]
    first = re.match(r"\d+", delin)
    return {"level": level, "delineation": delin, "quality": quality, "label": label,
            "first": int(first.group()) if first else 0, "line": at}


def _keyword(st: _State, kw: str, arg: str, data: list, at: int, path: Path) -> None:
    if kw in ("PEN_DOWN", "PEN_UP"):
        st.components.append((kw == "PEN_DOWN", _component(st, data, path), st.pause))
        st.pause = 0.0
    elif kw == "COORD":
        st.coord = arg.split() or ["X", "Y"]
        if "X" not in st.coord or "Y" not in st.coord:
            raise FormatError(f".COORD {arg!r} lacks X or Y", path, f"line {at}")
    elif kw in ("POINTS_PER_SECOND", "Y_DIM", "DT"):
        v = _number(arg.split()[0] if arg else "", path, f"line {at} (.{kw})")
        if kw == "POINTS_PER_SECOND":
            if v <= 0:
                raise FormatError(".POINTS_PER_SECOND must be positive", path, f"line {at}")
            st.rate = v
        elif kw == "Y_DIM":
            st.y_dim = v
        else:
            st.pause += max(v, 0.0) / 1000.0
    elif kw == "SEGMENT":
        st.segments.append(_segment(arg, at, path))
    elif kw == "HIERARCHY":
        st.hierarchy = arg.split()
    elif kw == "WRITER_ID":
        st.writer = arg or None
    elif kw == "INCLUDE":
        log.warning("%s:%d: .INCLUDE %s not followed", path, at, arg)
        st.includes.append(arg)


def _times(st: _State) -> Optional[list[np.ndarray]]:
    """Per-component times in seconds, or None when the file has no time."""
    if "T" in st.coord:
        col = st.coord.index("T")
        return [pts[:, col] / 1000.0 for _, pts, _ in st.components]
    if st.rate is None:
        return None
    out, t = [], 0.0
    for _, pts, pause in st.components:
        t += pause
        out.append(t + np.arange(len(pts)) / st.rate)
        t += len(pts) / st.rate
    return out


def _text(st: _State) -> Optional[str]:
    labelled = [s for s in st.segments if s["label"]]
    if not labelled:
        return None
    levels = list(dict.fromkeys(s["level"] for s in labelled))
    ranked = [lv for lv in st.hierarchy if lv in levels]
    level = ranked[0] if ranked else min(levels, key=lambda lv: sum(s["level"] == lv for s in labelled))
    chosen = sorted((s for s in labelled if s["level"] == level), key=lambda s: s["first"])
    return " ".join(s["label"] for s in chosen)


def _strokes(st: _State, path: Path) -> tuple[list[Stroke], bool]:
    times = _times(st)
    down = [(pts, times[i] if times else np.zeros(len(pts)))
            for i, (is_down, pts, _) in enumerate(st.components) if is_down and len(pts)]
    xi, yi = st.coord.index("X"), st.coord.index("Y")
    pi = st.coord.index("P") if "P" in st.coord else None
    ys = [pts[:, yi] for pts, _ in down]
    ref = st.y_dim if st.y_dim is not None else (max(float(y.max()) for y in ys) if ys else 0.0)
    strokes = [Stroke(pts[:, xi], ref - pts[:, yi], t, pts[:, pi] if pi is not None else None)
               for pts, t in down]
    return strokes, times is not None


def read(path: Path) -> Ink:
    st = _State()
    for kw, arg, data, at in _blocks(_decode(path), path):
        _keyword(st, kw, arg, data, at, path)
    if not st.components:
        raise FormatError("no .PEN_DOWN component: not UNIPEN ink", path)
    strokes, has_time = _strokes(st, path)
    meta = {"source": "unipen", "unipen_segments": [{k: s[k] for k in ("level", "delineation", "quality", "label")}
                                                    for s in st.segments]}
    if st.includes:
        meta["unipen_includes_not_read"] = st.includes
    ink = Ink(strokes=strokes, text=_text(st), writer=st.writer, metadata=meta)
    try:
        return ink.validated() if has_time else synthesize_time(ink)
    except InkError as exc:
        raise FormatError(exc.message, path, exc.where) from None


def dumps(ink: Ink, rate: Optional[float] = None) -> str:
    """UNIPEN text for ``ink`` (coordinates rounded to integers, y flipped up).

    Args:
        ink: the ink; its ``text`` becomes one ``.SEGMENT TEXT`` label.
        rate: points per second to declare; by default 1 / the median step.
    """
    ink = ink.copy().validated()
    ink.require_points()
    steps = np.concatenate([np.diff(s.t) for s in ink.strokes] + [np.zeros(0)])
    steps = steps[steps > 0]
    rate = rate or (float(round(1.0 / np.median(steps), 6)) if steps.size else 100.0)
    ymax = math.ceil(max(float(s.y.max()) for s in ink.strokes))
    xmax = math.ceil(max(float(s.x.max()) for s in ink.strokes))
    out = [".VERSION 1.0", ".COMMENT written by inkread", ".HIERARCHY TEXT", ".COORD X Y",
           f".X_DIM {xmax}", f".Y_DIM {ymax}", f".POINTS_PER_SECOND {rate:g}"]
    if ink.writer:
        out.append(f".WRITER_ID {ink.writer}")
    if ink.text:
        out.append(f'.SEGMENT TEXT 0-{len(ink.strokes) - 1} ? "{ink.text}"')
    prev_end = None
    for s in ink.strokes:
        if prev_end is not None:
            out.append(f".DT {max(0.0, (float(s.t[0]) - prev_end - 1.0 / rate) * 1000.0):.0f}")
        out.append(".PEN_DOWN")
        out.extend(f"{int(round(x))} {int(round(ymax - y))}" for x, y in zip(s.x, s.y))
        out.append(".PEN_UP")
        prev_end = float(s.t[-1])
    return "\n".join(out) + "\n"


def sniff(head: bytes) -> bool:
    return bool(_SNIFF.search(head))


FORMAT = Format("unipen", (".dat", ".unipen", ".upn"), read, None, sniff)
