"""W3C InkML (``.inkml``): reading with difference encodings and trace groups, writing.

Reading follows the InkML Recommendation (2011) where it matters for
handwriting:

* ``<traceFormat>`` channels: X, Y, T (time) and F (force, kept as pressure);
  other regular channels are read and dropped, intermittent channels are
  allowed and ignored. A trace finds its format through ``contextRef`` (a
  ``<context>`` with a ``<traceFormat>``, ``traceFormatRef`` or
  ``inkSourceRef``), a root-level ``<context>`` seen before it, or else the
  document's first ``<traceFormat>``; with none at all it is X Y.
* Trace values: points separated by commas; values by white space or by
  nothing where a sign or prefix makes it unambiguous ("1 2'3 4",
  "3-5"); prefixes ``!`` explicit, ``'`` first difference, ``"`` second
  difference, each sticking to its channel until changed; ``T``/``F`` for
  booleans; ``*`` and ``?`` repeat the channel's previous value.
* Truth labels: ``<annotation type="truth">`` (or ``"transcription"``, or
  ``"Ground truth"``: types compare without case, spaces, ``-`` or ``_``),
  or an ``<annotationXML>`` of such a type (its ``<label>``, ``<truth>``,
  ``<transcription>`` or ``<text>`` element when it has one, as
  ImadocSen-OnDB's ``<type>Sentence</type><label>...</label>``, else all its
  text) or holding a ``<truth>`` or ``<transcription>`` element; CROHME's
  container label "Segmentation" is not a label. A file whose root has no
  label but whose one outermost labelled group holds every trace takes that
  group's label (:func:`read`).
* Units: ``<traceGroup>`` and ``<traceView>`` (``traceDataRef`` to a trace
  or group id) nest; :func:`read_units` returns the outermost or innermost
  labelled ones. ``from``/``to`` ranges of a traceView are not applied (the
  whole trace is used).
* Time: the T channel's ``units`` (s, ms, us, ns) scales it to seconds;
  without units, a median step of one or more is taken as milliseconds.
  Files without T get :func:`~inkread.ink.synthesize_time` and the flag.

Writing produces the standard namespace, a ``<traceFormat>`` with X Y T
(T in seconds) and F when every stroke has pressure, the label as
``<annotation type="truth">`` and the writer as ``type="writer"``; inkread's
own fields (id, metadata, time flag, per-point character truth) go in
annotations whose types start with ``inkread:``, which other tools ignore.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from ..errors import FormatError, InkError
from ..ink import Ink, Stroke, synthesize_time
from . import MAX_POINTS, Format
from .iamondb import parse_xml

log = logging.getLogger(__name__)

NS = "http://www.w3.org/2003/InkML"
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"
TRUTH_TYPES = ("truth", "transcription", "ground truth")  # compared by _kind
LABEL_TAGS = ("label", "truth", "transcription", "text")  # the label inside a truth annotationXML
NOT_A_LABEL = ("Segmentation",)  # CROHME's container group
MAX_GROUP_VISITS = 20_000_000     # elements visited while collecting the traces of all units
TIME_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0, "ms": 1e-3,
              "us": 1e-6, "\u00b5s": 1e-6, "ns": 1e-9, "min": 60.0}

# One value, matched after skipping white space by hand: a leading \s* here would
# make failed matches backtrack quadratically over long runs of spaces.
_TOKEN = re.compile(r"""(?:([!'"])\s*)?(?:([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|([TF*?]))""")
_SPACE = re.compile(r"\s*")
_PLAIN = re.compile(r"""[!'"TF*?#]|[\d.][-+]""")
_XML_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _xml_id(el) -> Optional[str]:
    return el.get(XML_ID) or el.get("id")


# ------------------------------------------------------------ trace format
@dataclass
class _Channels:
    """Regular channel names in order, the number of intermittent ones, T units."""

    names: list[str]
    intermittent: int = 0
    t_units: Optional[str] = None


_DEFAULT = _Channels(["X", "Y"])


def _channels(tf) -> _Channels:
    names, n_int, t_units = [], 0, None
    for ch in tf:
        tag = _local(ch.tag)
        if tag == "channel":
            names.append(ch.get("name", ""))
            if ch.get("name") == "T":
                t_units = ch.get("units")
        elif tag == "intermittentChannels":
            n_int += sum(1 for c in ch if _local(c.tag) == "channel")
    return _Channels(names, n_int, t_units) if names else _DEFAULT


class _Formats:
    """Resolves the trace format of each trace (contexts, references, default)."""

    def __init__(self, root, ids: dict) -> None:
        self.ids = ids
        self.memo: dict[int, Optional[_Channels]] = {}
        first = next((el for el in root.iter() if _local(el.tag) == "traceFormat"), None)
        self.current = _channels(first) if first is not None else _DEFAULT

    def _ref(self, ref: Optional[str]):
        return self.ids.get(ref.lstrip("#")) if ref else None

    def of_context(self, ctx, depth: int = 0) -> Optional[_Channels]:
        """The channels a <context> (or <inkSource>) defines, if any (memoized per element)."""
        if ctx is None or depth > 8:
            return None
        if id(ctx) not in self.memo:
            self.memo[id(ctx)] = None  # in progress: a reference cycle ends here
            self.memo[id(ctx)] = self._resolve(ctx, depth)
        return self.memo[id(ctx)]

    def _resolve(self, ctx, depth: int) -> Optional[_Channels]:
        for ch in ctx:
            if _local(ch.tag) == "traceFormat":
                return _channels(ch)
            if _local(ch.tag) == "inkSource":
                got = self.of_context(ch, depth + 1)
                if got:
                    return got
        tf = self._ref(ctx.get("traceFormatRef"))
        if tf is not None and _local(tf.tag) == "traceFormat":
            return _channels(tf)
        for attr in ("inkSourceRef", "contextRef"):
            got = self.of_context(self._ref(ctx.get(attr)), depth + 1)
            if got:
                return got
        return None

    def for_trace(self, trace) -> _Channels:
        return self.of_context(self._ref(trace.get("contextRef"))) or self.current


# ------------------------------------------------------------ trace values
def _tokens(text: str, path: Path, where: str,
            limit: Optional[int] = None) -> list[tuple[str, Optional[str], Optional[str]]]:
    out, pos, end = [], 0, len(text)
    while True:
        pos = _SPACE.match(text, pos).end()
        if pos >= end:
            return out
        m = _TOKEN.match(text, pos)
        if m is None:
            raise FormatError(f"bad trace value near {text[pos:pos + 20]!r}", path, where)
        out.append(m.groups())
        pos = m.end()
        if limit is not None and len(out) > limit:
            raise FormatError(f"more than {MAX_POINTS} points", path, where)


def _split_points(text: str, nreg: int, path: Path, where: str) -> list[list]:
    """Token lists per point; traces without commas are grouped by channel count."""
    if "," in text:
        pts = [_tokens(p, path, f"{where}, point {i}") for i, p in enumerate(text.split(","))]
        if pts and not pts[-1]:
            pts.pop()  # a trailing comma
        return pts
    toks = _tokens(text, path, where, limit=(MAX_POINTS + 1) * nreg)
    if len(toks) % nreg:
        raise FormatError(f"{len(toks)} values do not divide into points of {nreg} channels", path, where)
    return [toks[i:i + nreg] for i in range(0, len(toks), nreg)]


def _decode(points: list[list], fmt: _Channels, path: Path, where: str) -> np.ndarray:
    """Apply the explicit/first/second-difference prefixes: (N, channels) float64."""
    nreg = len(fmt.names)
    out = np.empty((len(points), nreg))
    mode, prev, vel = [0] * nreg, [None] * nreg, [0.0] * nreg
    for i, toks in enumerate(points):
        if not nreg <= len(toks) <= nreg + fmt.intermittent:
            raise FormatError(f"point has {len(toks)} values, the trace format has {nreg} channels "
                              f"({' '.join(fmt.names)})", path, f"{where}, point {i}")
        for c, (pref, num, sym) in enumerate(toks[:nreg]):
            if pref:
                mode[c] = "!'\"".index(pref)
            if sym in ("*", "?"):
                if prev[c] is None:
                    raise FormatError(f"{sym!r} with no previous value", path, f"{where}, point {i}")
                val, m = prev[c], 0
            else:
                val, m = (1.0 if sym == "T" else 0.0) if sym else float(num), mode[c]
            if m and prev[c] is None:
                raise FormatError("difference-encoded value with no explicit value before it",
                                  path, f"{where}, point {i}")
            if m == 0:
                vel[c] = val - prev[c] if prev[c] is not None else 0.0
                prev[c] = val
            else:
                vel[c] = val if m == 1 else vel[c] + val
                prev[c] = prev[c] + vel[c]
            out[i, c] = prev[c]
    return out


def _trace_values(text: str, fmt: _Channels, path: Path, where: str) -> np.ndarray:
    nreg = len(fmt.names)
    if not _PLAIN.search(text):  # plain explicit numbers: the fast path
        pts = [p.split() for p in text.split(",")]
        if pts and not pts[-1]:
            pts.pop()
        if all(len(p) == nreg for p in pts):
            try:
                return np.array(pts, dtype=np.float64).reshape(-1, nreg)
            except ValueError:
                pass  # fall through to the exact parser for a precise message
    return _decode(_split_points(text, nreg, path, where), fmt, path, where)


# ------------------------------------------------------------ whole document
@dataclass
class _Doc:
    root: object
    strokes: list[Stroke]          # one per pen-down trace, document order (may be empty)
    trace_index: dict[int, int]    # id(trace element) -> index into strokes
    ids: dict[str, object]         # xml:id -> element
    synthesized: bool


def _stroke(vals: np.ndarray, fmt: _Channels, t_scale: float) -> Stroke:
    col = {n: i for i, n in reversed(list(enumerate(fmt.names)))}
    n = len(vals)
    x = vals[:, col["X"]] if "X" in col else np.zeros(n)
    y = vals[:, col["Y"]] if "Y" in col else np.zeros(n)
    t = vals[:, col["T"]] * t_scale if "T" in col else np.zeros(n)
    p = vals[:, col["F"]] if "F" in col else None
    return Stroke(x, y, t, p)


def _read_traces(root, path: Path, ids: dict) -> tuple[list, dict, list[_Channels]]:
    formats = _Formats(root, ids)
    top = {id(el) for el in root}
    raw, index, fmts, total = [], {}, [], 0
    for el in root.iter():
        tag = _local(el.tag)
        if tag == "context" and id(el) in top:
            formats.current = formats.of_context(el) or formats.current
        if tag != "trace" or el.get("type") == "penUp":
            continue
        fmt = formats.for_trace(el)
        where = f"trace {len(raw)}" + (f" (id {_xml_id(el)})" if _xml_id(el) else "")
        text = el.text or ""
        if total + text.count(",") + 1 > MAX_POINTS + 1:  # refuse before splitting a huge trace
            raise FormatError(f"more than {MAX_POINTS} points", path, where)
        vals = _trace_values(text, fmt, path, where)
        total += len(vals)
        if total > MAX_POINTS:
            raise FormatError(f"more than {MAX_POINTS} points", path, where)
        index[id(el)] = len(raw)
        raw.append(vals)
        fmts.append(fmt)
    return raw, index, fmts


def _time_scale(raw: list[np.ndarray], fmts: list[_Channels], path: Path) -> float:
    units = {f.t_units for f in fmts if "T" in f.names}
    if not units:
        return 1.0
    known = {u for u in units if u is not None}
    if known:
        u = known.pop()
        if u not in TIME_UNITS:
            raise FormatError(f"unknown time units {u!r} (known: {', '.join(TIME_UNITS)})", path, "channel T")
        return TIME_UNITS[u]
    steps = [np.diff(v[:, f.names.index("T")]) for v, f in zip(raw, fmts) if "T" in f.names and len(v) > 1]
    steps = np.concatenate(steps) if steps else np.zeros(0)
    steps = steps[steps > 0]
    if steps.size and np.median(steps) >= 1.0:
        log.info("%s: T channel has no units and steps of %g; taking milliseconds", path, np.median(steps))
        return 1e-3
    return 1.0


def _parse(path: Path) -> _Doc:
    root = parse_xml(path)
    if _local(root.tag) != "ink":
        raise FormatError(f"root element is <{_local(root.tag)}>, not <ink>", path)
    ids = {}
    for el in root.iter():
        i = _xml_id(el)
        if i:
            ids.setdefault(i, el)
    raw, index, fmts = _read_traces(root, path, ids)
    scale = _time_scale(raw, fmts, path)
    strokes = [_stroke(v, f, scale) for v, f in zip(raw, fmts)]
    has_t = any("T" in f.names for f in fmts)
    if has_t and not all("T" in f.names for f in fmts):
        raise FormatError("some traces have a T channel and others do not", path)
    try:
        if not has_t:
            strokes = _synthesize(strokes)
        for i, s in enumerate(strokes):
            s.check(i)
    except InkError as exc:
        raise FormatError(exc.message, path, exc.where) from None
    return _Doc(root, strokes, index, ids, bool(raw) and not has_t)


def _synthesize(strokes: list[Stroke]) -> list[Stroke]:
    """synthesize_time over the non-empty strokes, keeping every index in place."""
    timed = iter(synthesize_time(Ink(strokes=[s for s in strokes if len(s)])).strokes)
    return [next(timed) if len(s) else s for s in strokes]


# ------------------------------------------------------------ labels, units
def _kind(name: Optional[str]) -> str:
    """An annotation type or tag as compared: "Ground truth", "ground_truth" -> "groundtruth"."""
    return re.sub(r"[\s_-]+", "", name or "").lower()


def _annotation(el, types: tuple[str, ...]) -> Optional[str]:
    types = tuple(_kind(t) for t in types)
    for ch in el:
        tag = _local(ch.tag)
        if tag == "annotation" and _kind(ch.get("type")) in types:
            return (ch.text or "").strip() or None
        if tag == "annotationXML":
            if _kind(ch.get("type")) in types:
                inner = next((sub for sub in ch.iter() if sub is not ch
                              and _kind(_local(sub.tag)) in LABEL_TAGS), ch)
                return "".join(inner.itertext()).strip() or None
            for sub in ch.iter():
                if _kind(_local(sub.tag)) in types:
                    return "".join(sub.itertext()).strip() or None
    return None


def _label(el) -> Optional[str]:
    text = _annotation(el, TRUTH_TYPES)
    return None if text in NOT_A_LABEL else text


def _group_traces(doc: _Doc, group, budget: list[int], path: Path) -> list[int]:
    """Indices of the traces a group holds, directly, nested or by traceDataRef.

    ``budget`` counts elements visited over all groups of a file, so that many
    views of one large group cannot make the work quadratic.
    """
    found, seen, stack = set(), set(), [group]
    while stack:
        el = stack.pop()
        if id(el) in seen:
            continue
        seen.add(id(el))
        for sub in el.iter():
            budget[0] -= 1
            if budget[0] < 0:
                raise FormatError("trace groups and views refer to too many traces", path,
                                  f"traceGroup {_xml_id(group) or ''}".strip())
            if id(sub) in doc.trace_index:
                found.add(doc.trace_index[id(sub)])
            ref = sub.get("traceDataRef") if _local(sub.tag) == "traceView" else None
            if ref and ref.lstrip("#") in doc.ids:
                stack.append(doc.ids[ref.lstrip("#")])
    return sorted(found)


def _labelled_groups(doc: _Doc) -> list[tuple[object, Optional[int]]]:
    """(element, index of nearest labelled ancestor) for the root and every labelled group."""
    out: list[tuple[object, Optional[int]]] = []
    stack = [(doc.root, None)]
    while stack:
        el, anc = stack.pop()
        if el is doc.root or _local(el.tag) in ("traceGroup", "traceView"):
            if _label(el):
                out.append((el, anc))
                anc = len(out) - 1
        children = [c for c in el if _local(c.tag) in ("traceGroup", "traceView")]
        stack.extend((c, anc) for c in reversed(children))
    return out


def read_units(path: Path, level: str = "outer") -> list[Ink]:
    """The labelled units of an InkML file, each an Ink with ``text`` set.

    Args:
        path: the file.
        level: "outer" for the outermost labelled groups (the whole file when
            the root is labelled), "inner" for the innermost ones (words of a
            sentence, symbols of a formula).

    Returns:
        Inks in document order; an empty list when nothing is labelled.
    """
    if level not in ("outer", "inner"):
        raise ValueError(f"level must be 'outer' or 'inner', not {level!r}")
    path = Path(path)
    doc = _parse(path)
    groups = _labelled_groups(doc)
    parents = {a for _, a in groups if a is not None}
    if level == "outer":
        chosen = [g for g, a in groups if a is None]
    else:
        chosen = [g for k, (g, _) in enumerate(groups) if k not in parents]
    writer = _annotation(doc.root, ("writer",))
    units, budget = [], [MAX_GROUP_VISITS]
    for k, g in enumerate(chosen):
        idx = _group_traces(doc, g, budget, path)
        strokes = [doc.strokes[i].copy() for i in idx if len(doc.strokes[i])]
        if not strokes:
            log.info("%s: labelled group %s has no points; skipped", path, _xml_id(g) or k)
            continue
        uid = path.stem if g is doc.root else f"{path.stem}:{_xml_id(g) or k}"
        units.append(Ink(strokes=strokes, text=_label(g), writer=_annotation(g, ("writer",)) or writer,
                         id=uid, time_synthesized=doc.synthesized,
                         metadata={"source": "inkml", "unit": level}).validated())
    return units


def _whole_file_label(doc: _Doc, path: Path) -> Optional[str]:
    """The label of the one outermost labelled group when it holds every non-empty trace."""
    outer = [g for g, a in _labelled_groups(doc) if a is None]
    if len(outer) != 1 or outer[0] is doc.root:
        return None
    held = set(_group_traces(doc, outer[0], [MAX_GROUP_VISITS], path))
    if any(len(s) and i not in held for i, s in enumerate(doc.strokes)):
        return None
    return _label(outer[0])


def read(path: Path) -> Ink:
    doc = _parse(path)
    root = doc.root
    ink = Ink(strokes=doc.strokes, text=_label(root) or _whole_file_label(doc, path),
              writer=_annotation(root, ("writer",)),
              id=_annotation(root, ("id", "inkread:id")), metadata={"source": "inkml"},
              time_synthesized=doc.synthesized)
    _read_inkread_annotations(root, ink, path)
    try:
        return ink.validated()
    except InkError as exc:
        raise FormatError(exc.message, path, exc.where) from None


def _read_inkread_annotations(root, ink: Ink, path: Path) -> None:
    meta = _annotation(root, ("inkread:metadata",))
    if meta:
        try:
            ink.metadata = json.loads(meta)
        except ValueError:
            raise FormatError("annotation is not JSON", path, "annotation inkread:metadata") from None
        if not isinstance(ink.metadata, dict):
            raise FormatError("annotation is not a JSON object", path, "annotation inkread:metadata")
    if _annotation(root, ("inkread:time_synthesized",)) == "true":
        ink.time_synthesized = True
    cop = _annotation(root, ("inkread:char_of_point",))
    if cop:
        try:
            arr = np.array([int(v) for v in cop.split()], dtype=np.int64)
        except (ValueError, OverflowError):
            raise FormatError("not a list of integers", path, "annotation inkread:char_of_point") from None
        n = ink.num_points
        if len(arr) != n or (n and (arr.min() < -1 or arr.max() >= len(ink.text or ""))):
            raise FormatError(f"does not fit {n} points and text of {len(ink.text or '')} characters",
                              path, "annotation inkread:char_of_point")
        ink.char_of_point = arr


# ------------------------------------------------------------ writing
def _num(v: float) -> str:
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def _text(s: str, what: str) -> str:
    if _XML_BAD_CHARS.search(s):
        raise FormatError(f"{what} holds control characters that XML cannot represent", where=what)
    return escape(s).replace("\r", "&#13;")


def _annotation_xml(kind: str, value: str) -> str:
    return f"  <annotation type={quoteattr(kind)}>{_text(value, kind)}</annotation>\n"


def dumps(ink: Ink) -> str:
    """InkML text of ``ink`` (namespace, traceFormat X Y T [F], truth annotation, traces)."""
    ink = ink.copy().validated()
    pressure = bool(ink.strokes) and all(s.pressure is not None for s in ink.strokes)
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n', f'<ink xmlns="{NS}">\n', "  <traceFormat>\n"]
    for name in ("X", "Y", "T", "F")[:4 if pressure else 3]:
        units = ' units="s"' if name == "T" else ""
        out.append(f'    <channel name="{name}" type="decimal"{units}/>\n')
    out.append("  </traceFormat>\n")
    for kind, value in (("truth", ink.text), ("writer", ink.writer), ("inkread:id", ink.id)):
        if value is not None:
            out.append(_annotation_xml(kind, value))
    out.append(_annotation_xml("inkread:metadata", json.dumps(ink.metadata, allow_nan=False)))
    if ink.time_synthesized:
        out.append(_annotation_xml("inkread:time_synthesized", "true"))
    if ink.char_of_point is not None:
        out.append(_annotation_xml("inkread:char_of_point", " ".join(str(int(c)) for c in ink.char_of_point)))
    for s in ink.strokes:
        cols = [s.x, s.y, s.t] + ([s.pressure] if pressure else [])
        pts = ", ".join(" ".join(_num(float(c[i])) for c in cols) for i in range(len(s)))
        out.append(f"  <trace>{pts}</trace>\n")
    out.append("</ink>\n")
    return "".join(out)


def write(ink: Ink, path: Path) -> None:
    try:
        text = dumps(ink)
    except (TypeError, ValueError) as exc:
        raise FormatError(f"metadata is not plain JSON ({exc})", path, "metadata") from None
    path.write_text(text, encoding="utf-8")


_SNIFF = re.compile(rb"<(?:[\w.-]{1,64}:)?ink[\s>/]")


def sniff(head: bytes) -> bool:
    return bool(_SNIFF.search(head))


FORMAT = Format("inkml", (".inkml",), read, write, sniff)
