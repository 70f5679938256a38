"""Malformed and hostile files: every one gets a clear error naming the file and the place.

The corpus is generated here (no binary fixtures): per format, empty,
truncated, wrong types, NaN, huge numbers, wrong encoding, binary garbage,
XML entity attacks, and files over the limits.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

import inkread.formats as formats_pkg
from inkread.errors import FormatError, InkError, InkreadError
from inkread.formats import inkml, native, offsets, read_ink, unipen

GARBAGE = bytes(range(256)) * 4 + b"\x00\xff\xfe" * 50

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<ink><annotation type="truth">&lol3;</annotation><trace>0 0</trace></ink>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE ink [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ink><annotation type="truth">&xxe;</annotation><trace>0 0</trace></ink>"""


def nat(**over) -> bytes:
    doc = {"format": "inkread", "version": 1, "text": "ab",
           "strokes": [{"x": [0, 1, 2], "y": [0, 1, 0], "t": [0, 0.1, 0.2]}]}
    doc.update(over)
    return json.dumps(doc).encode()


def nat_stroke(**over) -> bytes:
    stroke = {"x": [0, 1, 2], "y": [0, 1, 0], "t": [0, 0.1, 0.2]}
    stroke.update(over)
    return nat(strokes=[{"x": [5], "y": [5], "t": [0]}, stroke])


def iam(points: str) -> bytes:
    return (f'<?xml version="1.0" encoding="ISO-8859-1"?><WhiteboardCaptureSession><StrokeSet>'
            f'<Stroke>{points}</Stroke></StrokeSet></WhiteboardCaptureSession>').encode("latin-1")


def npy(arr: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, **kw)
    return buf.getvalue()


def npy_header(shape: tuple, descr: str = "<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()  # magic and header, no data


GOOD_NPY = npy(np.array([[0, 1, 1], [1, 2, 2]], dtype=np.float64))
UNI_HEAD = ".COORD X Y\n.POINTS_PER_SECOND 100\n.PEN_DOWN\n"

# (case id, file name, content, message regex, place regex or None when the whole file is at fault)
CORPUS = [
    # ---- native JSON
    ("json-empty", "a.json", b"", "not valid JSON", "line 1, column 1"),
    ("json-truncated", "a.json", nat()[:-20], "not valid JSON", r"line 1, column \d+"),
    ("json-garbage", "a.json", GARBAGE, "not UTF-8", r"byte \d+"),
    ("json-latin1", "a.json", nat(text="caf\u00e9").replace(b"\\u00e9", b"\xe9"), "not UTF-8", "byte"),
    ("json-array-top", "a.json", b"[1, 2]", "not an object", None),
    # Finite but so far apart that the distances synthesized time is made of overflow.
    ("json-huge-coords", "a.json", b'{"format": "inkread", "version": 1, "strokes": [{"x": [1, 1e308, -1e308], '
     b'"y": [1, 2, 3]}]}', "x is out of range", "stroke 0, point 1"),
    ("json-version-str", "a.json", nat(version="1"), "must be an integer", "version"),
    ("json-version-0", "a.json", nat(version=0), "unknown format version", "version"),
    ("json-strokes-dict", "a.json", nat(strokes={"x": 1}), "must be a list", "strokes"),
    ("json-stroke-list", "a.json", nat(strokes=[[0, 1]]), "expected an object", r"strokes\[0\]"),
    ("json-x-missing", "a.json", nat(strokes=[{"y": [1]}]), "missing 'x'", r"strokes\[0\]"),
    ("json-x-string", "a.json", nat_stroke(x=[0, "1", 2]), "expected a number", r"strokes\[1\]\.x\[1\]"),
    ("json-x-bool", "a.json", nat_stroke(x=[0, True, 2]), "expected a number", r"strokes\[1\]\.x\[1\]"),
    ("json-x-nested", "a.json", nat_stroke(x=[[0], [1], [2]]), "expected a number", r"strokes\[1\]\.x\[0\]"),
    ("json-y-short", "a.json", nat_stroke(y=[0, 1]), "y has 2 values", r"strokes\[1\]"),
    ("json-nan", "a.json", nat_stroke(x=[0, float("nan"), 2]), "not a finite number", r"strokes\[1\]\.x\[1\]"),
    ("json-inf", "a.json", nat_stroke(t=[0, 1, float("inf")]), "not a finite number", r"strokes\[1\]\.t\[2\]"),
    ("json-1e999", "a.json", nat_stroke().replace(b'"y": [0, 1, 0]', b'"y": [0, 1, 1e999]'),
     "not a finite number", r"strokes\[1\]\.y\[2\]"),
    ("json-huge-int", "a.json", nat_stroke().replace(b'"x": [0, 1, 2]', b'"x": [0, 1, ' + b"9" * 400 + b"]"),
     "not a finite number", r"strokes\[1\]\.x\[2\]"),
    ("json-int-5000-digits", "a.json", nat().replace(b'"x": [0, 1, 2]', b'"x": [0, 1, ' + b"9" * 5000 + b"]"),
     "unreadable JSON value", None),
    ("json-backwards", "a.json", nat_stroke(t=[0, 0.2, 0.1]), "time goes backwards", "stroke 1, point 2"),
    ("json-mixed-t", "a.json", nat(strokes=[{"x": [0], "y": [0], "t": [0]}, {"x": [1], "y": [1]}]),
     "some strokes", "strokes"),
    ("json-text-number", "a.json", nat(text=5), "expected a string", "text"),
    ("json-metadata-list", "a.json", nat(metadata=[1]), "must be an object", "metadata"),
    ("json-deep", "a.json", b"[" * 200_000 + b"]" * 200_000, "nested too deeply", None),
    ("json-cop-float", "a.json", nat(char_of_point=[0, 0.5, 1]), "character index", r"char_of_point\[1\]"),
    # ---- InkML
    ("inkml-empty", "a.inkml", b"", "not well-formed", "line 1, column 0"),
    ("inkml-truncated", "a.inkml", b"<ink><trace>0 0, 1 1</tra", "not well-formed", r"line 1, column \d+"),
    ("inkml-garbage", "a.inkml", GARBAGE, "not well-formed", "line"),
    ("inkml-bad-utf8", "a.inkml", b'<?xml version="1.0" encoding="UTF-8"?><ink><trace>0 0\xff\xfe</trace></ink>',
     "not well-formed", "line 1"),
    ("inkml-unknown-codec", "a.inkml", b'<?xml version="1.0" encoding="no-such-codec"?><ink/>',
     "unreadable XML encoding", "XML declaration"),
    ("inkml-billion-laughs", "a.inkml", BILLION_LAUGHS, "refused unsafe XML", None),
    ("inkml-external-entity", "a.inkml", EXTERNAL_ENTITY, "refused unsafe XML", None),
    ("inkml-wrong-root", "a.inkml", b"<html><trace>0 0</trace></html>", "not <ink>", None),
    ("inkml-letters", "a.inkml", b"<ink><trace>0 0, 1 1, a b</trace></ink>", "bad trace value near 'a b'",
     "trace 0, point 2"),
    ("inkml-too-few", "a.inkml", b"<ink><trace>0 0, 1</trace><trace>0 0, 1 1, 2</trace></ink>",
     "point has 1 values", "trace 0, point 1"),
    ("inkml-diff-first", "a.inkml", b"<ink><trace>'1 '1, 2 2</trace></ink>", "no explicit value",
     "trace 0, point 0"),
    ("inkml-star-first", "a.inkml", b"<ink><trace>* 0, 2 2</trace></ink>", "no previous value", "trace 0, point 0"),
    ("inkml-nan", "a.inkml", b"<ink><trace>0 0, nan 1</trace></ink>", "not finite", "stroke 0, point 1"),
    ("inkml-1e999", "a.inkml", b"<ink><trace>0 0, 1e999 1</trace></ink>", "not finite", "stroke 0, point 1"),
    ("inkml-overflow", "a.inkml", b"<ink><trace>0 0, '1e308 0, \"1e308 0</trace></ink>", "not finite",
     "stroke 0, point 2"),
    ("inkml-huge-coords", "a.inkml", b"<ink><trace>0 0, 1 -1e200</trace></ink>", "y is out of range",
     "stroke 0, point 1"),
    # A long run of spaces once made the value regex backtrack quadratically (minutes).
    ("inkml-long-spaces", "a.inkml", b"<ink><trace>0 0, 1 1" + b" " * 200_000 + b"x</trace></ink>",
     "bad trace value near 'x'", "trace 0, point 1"),
    ("inkml-odd-values", "a.inkml", b"<ink><trace>0 0 1</trace></ink>", "do not divide", "trace 0"),
    ("inkml-time-units", "a.inkml", b'<ink><traceFormat><channel name="X"/><channel name="Y"/>'
     b'<channel name="T" units="fortnight"/></traceFormat><trace>0 0 0</trace></ink>',
     "unknown time units", "channel T"),
    ("inkml-time-backwards", "a.inkml", b'<ink><traceFormat><channel name="X"/><channel name="Y"/>'
     b'<channel name="T" units="s"/></traceFormat><trace>0 0 5, 1 1 4</trace></ink>',
     "time goes backwards", "stroke 0, point 1"),
    ("inkml-bad-cop", "a.inkml", b'<ink><annotation type="truth">a</annotation>'
     b'<annotation type="inkread:char_of_point">0 x</annotation><trace>0 0, 1 1</trace></ink>',
     "not a list of integers", "annotation inkread:char_of_point"),
    # ---- IAM-OnDB
    ("iam-empty", "a.xml", b"", "not well-formed", "line 1, column 0"),
    ("iam-truncated", "a.xml", iam('<Point x="1" y="2" time="0"/>')[:-30], "not well-formed", "line 1"),
    ("iam-garbage", "a.xml", GARBAGE, "not well-formed", "line"),
    ("iam-bad-utf8", "a.xml", iam('<Point x="1" y="2" time="0"/>').replace(b"ISO-8859-1", b"UTF-8")
     .replace(b'x="1"', b'x="\xff"'), "not well-formed", "line 1"),
    ("iam-billion-laughs", "a.xml", BILLION_LAUGHS.replace(b"<ink>", b"<WhiteboardCaptureSession>"),
     "refused unsafe XML", None),
    ("iam-missing-attr", "a.xml", iam('<Point x="1" y="2" time="0"/><Point x="1" time="0"/>'),
     "missing attribute 'y'", "stroke 0, point 1"),
    ("iam-not-number", "a.xml", iam('<Point x="1" y="abc" time="0"/>'), "is not a number", "stroke 0, point 0"),
    ("iam-nan", "a.xml", iam('<Point x="nan" y="2" time="0"/>'), "not a finite", "stroke 0, point 0"),
    ("iam-huge", "a.xml", iam('<Point x="1e300" y="2" time="0"/>'), "not a finite", "stroke 0, point 0"),
    ("iam-no-strokeset", "a.xml", b"<WhiteboardCaptureSession/>", "no <StrokeSet>", None),
    # ---- UNIPEN
    ("unipen-empty", "a.dat", b"", "no .PEN_DOWN", None),
    ("unipen-garbage", "a.dat", GARBAGE, "binary data", "byte 0"),
    ("unipen-data-first", "a.dat", b"1 2\n.PEN_DOWN\n1 2\n", "data before the first keyword", "line 1"),
    ("unipen-columns", "a.dat", (UNI_HEAD + "1 2\n1 2 3\n").encode(), "expected 2 values", "line 5"),
    ("unipen-letters", "a.dat", (UNI_HEAD + "1 2\n1 b\n").encode(), "'b' is not a number", "line 5"),
    ("unipen-nan", "a.dat", (UNI_HEAD + "nan 2\n").encode(), "not a finite", "line 4"),
    ("unipen-huge", "a.dat", (UNI_HEAD + "1e400 2\n").encode(), "not a finite", "line 4"),
    ("unipen-rate-zero", "a.dat", b".POINTS_PER_SECOND 0\n.PEN_DOWN\n1 2\n", "must be positive", "line 1"),
    ("unipen-rate-text", "a.dat", b".POINTS_PER_SECOND fast\n.PEN_DOWN\n1 2\n", "not a number", "line 1"),
    ("unipen-coord", "a.dat", b".COORD T P\n.PEN_DOWN\n1 2\n", "lacks X or Y", "line 1"),
    ("unipen-t-backwards", "a.dat", b".COORD X Y T\n.PEN_DOWN\n1 2 10\n1 2 5\n", "time goes backwards",
     "stroke 0, point 1"),
    ("unipen-segment", "a.dat", b".SEGMENT\n.PEN_DOWN\n1 2\n", "expected LEVEL", "line 1"),
    # ---- offsets .npy
    ("npy-empty", "a.npy", b"", "not a valid .npy", "header"),
    ("npy-garbage", "a.npy", GARBAGE, "not a valid .npy", "header"),
    ("npy-truncated", "a.npy", GOOD_NPY[:-5], "truncated", "data"),
    ("npy-padded", "a.npy", GOOD_NPY + b"\x00" * 8, "truncated or padded", "data"),
    ("npy-pickle", "a.npy", npy(np.array([[0, 1, None]], dtype=object), allow_pickle=True),
     "expected numbers", "header"),
    ("npy-strings", "a.npy", npy(np.array([["0", "1", "2"]])), "expected numbers", "header"),
    ("npy-complex", "a.npy", npy(np.zeros((2, 3), dtype=complex)), "expected numbers", "header"),
    ("npy-shape", "a.npy", npy(np.zeros((4, 2))), "expected \\(N, 3\\)", "header"),
    ("npy-3d", "a.npy", npy(np.zeros((2, 3, 3))), "expected \\(N, 3\\)", "header"),
    ("npy-huge-header", "a.npy", npy_header((10 ** 12, 3)), "over the 2000000-point limit", "header"),
    ("npy-lying-header", "a.npy", npy_header((1000, 3)) + b"\x00" * 48, "header announces 24000", "data"),
    ("npy-nan", "a.npy", npy(np.array([[0, 1, 1], [1, np.nan, 2]])), "dx is not finite", "row 1"),
    ("npy-pen", "a.npy", npy(np.array([[0, 1, 1], [2, 1, 2]])), "pen_lift is 2", "row 1"),
    ("npy-overflow", "a.npy", npy(np.array([[0, 1e308, 0], [1, 1e308, 0]])), "not finite", "stroke 0, point 1"),
]


@pytest.mark.parametrize("name,fname,content,message,where", CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_file_gets_a_clear_error(tmp_path, name, fname, content, message, where):
    path = tmp_path / fname
    path.write_bytes(content)
    with pytest.raises(InkreadError) as err:
        read_ink(path)
    exc = err.value
    assert isinstance(exc, (FormatError, InkError)), type(exc)
    assert exc.path == str(path)
    assert re.search(message, exc.message), exc.message
    if where is None:
        assert exc.where is None, exc.where
    else:
        assert exc.where and re.search(where, exc.where), exc.where
    text = str(exc)
    assert text.startswith(str(path)) and "\n" not in text


def test_xml_attacks_are_refused_by_name(tmp_path):
    (tmp_path / "bomb.inkml").write_bytes(BILLION_LAUGHS)
    with pytest.raises(FormatError, match="DTDs and entity declarations are not allowed"):
        read_ink(tmp_path / "bomb.inkml")


def test_deeply_nested_inkml_groups(tmp_path):
    depth = 20_000
    body = ('<traceGroup><annotation type="truth">x</annotation>' * depth + "<trace>0 0, 1 1</trace>"
            + "</traceGroup>" * depth)
    (tmp_path / "deep.inkml").write_text(f"<ink>{body}</ink>")
    assert read_ink(tmp_path / "deep.inkml").num_points == 2
    inner = inkml.read_units(tmp_path / "deep.inkml", "inner")
    assert len(inner) == 1 and inner[0].num_points == 2


def test_many_views_of_a_large_group_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(inkml, "MAX_GROUP_VISITS", 1000)
    traces = "".join(f"<trace>{i} 0, {i} 1</trace>" for i in range(50))
    views = "".join(f'<traceGroup><annotation type="truth">v{i}</annotation><traceView traceDataRef="#g"/>'
                    f"</traceGroup>" for i in range(100))
    (tmp_path / "v.inkml").write_text(f'<ink><traceGroup xml:id="g">{traces}</traceGroup>{views}</ink>')
    with pytest.raises(FormatError, match="refer to too many traces"):
        inkml.read_units(tmp_path / "v.inkml", "inner")


def test_files_over_the_size_limit_are_refused_before_parsing(tmp_path, monkeypatch):
    monkeypatch.setattr(formats_pkg, "MAX_FILE_BYTES", 100)
    path = tmp_path / "big.json"
    path.write_bytes(b" " * 101)
    with pytest.raises(FormatError, match="over the 100-byte limit") as err:
        read_ink(path)
    assert err.value.path == str(path)


@pytest.mark.parametrize("module,fname,content", [
    (native, "a.json", nat(strokes=[{"x": list(range(6)), "y": [0] * 6, "t": list(range(6))}])),
    (inkml, "a.inkml", b"<ink><trace>0 0, 1 1, 2 2</trace><trace>0 0, 1 1, 2 2</trace></ink>"),
    (unipen, "a.dat", (UNI_HEAD + "1 2\n" * 6).encode()),
    (offsets, "a.npy", npy(np.zeros((6, 3)))),
])
def test_point_limit(tmp_path, monkeypatch, module, fname, content):
    monkeypatch.setattr(module, "MAX_POINTS", 5)
    path = tmp_path / fname
    path.write_bytes(content)
    with pytest.raises(FormatError, match="5") as err:
        read_ink(path)
    assert err.value.where


@pytest.mark.parametrize("trace", ["0 0," * 10, "0 0 " * 10])
def test_inkml_point_limit_before_parsing_a_huge_trace(tmp_path, monkeypatch, trace):
    monkeypatch.setattr(inkml, "MAX_POINTS", 5)
    (tmp_path / "a.inkml").write_text(f"<ink><trace>{trace}</trace></ink>")
    with pytest.raises(FormatError, match="more than 5 points") as err:
        read_ink(tmp_path / "a.inkml")
    assert err.value.where == "trace 0"


def test_iamondb_point_limit(tmp_path, monkeypatch):
    from inkread.formats import iamondb
    monkeypatch.setattr(iamondb, "MAX_POINTS", 2)
    path = tmp_path / "a.xml"
    path.write_bytes(iam('<Point x="1" y="2" time="0"/>' * 3))
    with pytest.raises(FormatError, match="more than 2 points"):
        read_ink(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FormatError, match="no such file"):
        read_ink(tmp_path / "nope.json")
    with pytest.raises(FormatError, match="is a directory"):
        read_ink(tmp_path)
    if Path("/dev/zero").exists():
        with pytest.raises(FormatError, match="not a regular file"):
            read_ink("/dev/zero", "native")


def test_latin1_unipen_label_is_read(tmp_path):
    path = tmp_path / "a.dat"
    path.write_bytes(b'.SEGMENT WORD 0 ? "caf\xe9"\n' + UNI_HEAD.encode() + b"1 2\n")
    assert read_ink(path).text == "caf\u00e9"
