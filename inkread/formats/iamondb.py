"""IAM-OnDB line files (``lineStrokes/**/<form>-NN.xml``) and their transcriptions.

A line file is a ``<WhiteboardCaptureSession>`` whose ``<StrokeSet>`` holds
``<Stroke>`` elements of ``<Point x y time>``. The transcription of line NN
lives in the form's ``ascii/<a>/<a-b>/<form>.txt``: after the ``CSR:`` line
and a blank line, line NN (1-based) is the text. IAM-OnDB is for
non-commercial research only; nothing of it is ever written into the project,
so this module reads it and does not write it.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException
from xml.etree.ElementTree import ParseError
from xml.parsers import expat as expat_errors

from ..errors import FormatError
from ..ink import Ink, Stroke
from . import MAX_POINTS, Format

log = logging.getLogger(__name__)

LINE_ID = re.compile(r"^(?P<form>[a-z]\d\d-\d\d\d[a-z]?)-(?P<line>\d\d)$")


def parse_xml(path: Path):
    """Parse XML safely (no entity expansion, no external entities, no DTD fetch)."""
    try:
        return SafeET.parse(str(path), forbid_dtd=True).getroot()
    except DefusedXmlException as exc:
        raise FormatError(f"refused unsafe XML: DTDs and entity declarations are not allowed "
                          f"({type(exc).__name__})", path) from None
    except ParseError as exc:
        line, col = getattr(exc, "position", (0, 0))
        why = expat_errors.ErrorString(exc.code) if getattr(exc, "code", None) else str(exc)
        raise FormatError(f"not well-formed XML ({why})", path, f"line {line}, column {col}") from None
    except (LookupError, UnicodeError) as exc:  # e.g. encoding="no-such-codec" in the declaration
        raise FormatError(f"unreadable XML encoding ({exc})", path, "XML declaration") from None
    except RecursionError:
        raise FormatError("XML nested too deeply", path) from None


def _float(el, attr: str, path: Path, where: str) -> float:
    raw = el.get(attr)
    if raw is None:
        raise FormatError(f"missing attribute {attr!r}", path, where)
    try:
        val = float(raw)
    except ValueError:
        raise FormatError(f"attribute {attr}={raw!r} is not a number", path, where) from None
    if not np.isfinite(val) or abs(val) > 1e12:
        raise FormatError(f"attribute {attr}={raw!r} is not a finite coordinate", path, where)
    return val


def read_strokes(path: Path) -> list[Stroke]:
    """The strokes of a lineStrokes file, times made relative to the first point."""
    root = parse_xml(path)
    if root.tag != "WhiteboardCaptureSession":
        raise FormatError(f"root element is <{root.tag}>, not <WhiteboardCaptureSession>", path)
    sset = root.find("StrokeSet")
    if sset is None:
        raise FormatError("no <StrokeSet>", path)
    strokes, total = [], 0
    for si, sel in enumerate(sset.findall("Stroke")):
        pts = []
        for pi, pel in enumerate(sel.findall("Point")):
            where = f"stroke {si}, point {pi}"
            pts.append((_float(pel, "x", path, where), _float(pel, "y", path, where),
                        _float(pel, "time", path, where)))
        total += len(pts)
        if total > MAX_POINTS:
            raise FormatError(f"more than {MAX_POINTS} points", path, f"stroke {si}")
        if pts:
            a = np.asarray(pts)
            # Timestamps have 10 ms resolution and repeat; keep them monotonic.
            a[:, 2] = np.maximum.accumulate(a[:, 2])
            strokes.append(Stroke(a[:, 0], a[:, 1], a[:, 2]))
    if strokes:
        t0 = min(float(s.t[0]) for s in strokes)
        for s in strokes:
            s.t = s.t - t0
    return strokes


def read_transcriptions(ascii_path: Path) -> list[str]:
    """The CSR lines of a form's ascii file (index 0 is line 01)."""
    try:
        text = ascii_path.read_text(encoding="iso-8859-1")
    except OSError as exc:
        raise FormatError(f"cannot read transcription ({exc.strerror})", ascii_path) from None
    lines = text.splitlines()
    try:
        start = next(i for i, ln in enumerate(lines) if ln.strip() == "CSR:")
    except StopIteration:
        raise FormatError("no 'CSR:' section", ascii_path) from None
    body = lines[start + 1:]
    while body and not body[0].strip():
        body = body[1:]
    while body and not body[-1].strip():
        body = body[:-1]
    return [ln.strip() for ln in body]


def ascii_path_for(line_path: Path, form: str) -> Path:
    """lineStrokes/a01/a01-020/a01-020x-01.xml -> ascii/a01/a01-020/a01-020x.txt"""
    root = line_path.parents[3]
    return root / "ascii" / line_path.parent.parent.name / line_path.parent.name / f"{form}.txt"


def read(path: Path) -> Ink:
    strokes = read_strokes(path)
    ink = Ink(strokes=strokes, id=path.stem, metadata={"source": "iamondb"})
    m = LINE_ID.match(path.stem)
    if m and len(path.parents) >= 4:
        form = m.group("form")
        ink.writer = None
        ink.metadata["form"] = form
        apath = ascii_path_for(path, form)
        if apath.exists():
            lines = read_transcriptions(apath)
            n = int(m.group("line"))
            if 1 <= n <= len(lines):
                ink.text = lines[n - 1]
    return ink.validated()


def sniff(head: bytes) -> bool:
    return b"<WhiteboardCaptureSession" in head


FORMAT = Format("iamondb", (".xml",), read, None, sniff)
