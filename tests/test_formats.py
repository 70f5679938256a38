"""Ink file formats: round trips, detection, and each format's features."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from inkread.errors import FormatError
from inkread.formats import detect_format, formats, inkml, read_ink, unipen, write_ink
from inkread.formats import offsets as offsets_fmt
from inkread.ink import Ink, Stroke

from iam_fixtures import FIXTURES  # noqa: E402  (tests/fixtures with the fake IAM-OnDB lines written in)
SAMPLES = Path(__file__).parent.parent / "data" / "samples"


def rich_ink() -> Ink:
    """Ink with every optional field set, non-integer values, and a dot."""
    return Ink([Stroke([0.1, 1.5, 2.25], [3.0, 4.125, 5.0], [0.0, 0.011, 0.02], [0.2, 0.5, 0.75]),
                Stroke([7.0], [-8.5], [0.5], [1.0])],
               text="hi!", writer="w 1", id="sample-1", metadata={"a": [1, 2], "b": "x"},
               time_synthesized=True, char_of_point=np.array([0, 0, 1, -1]))


def assert_same_ink(a: Ink, b: Ink, exact: bool = True) -> None:
    check = np.testing.assert_array_equal if exact else (
        lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-9))
    assert len(a.strokes) == len(b.strokes)
    for sa, sb in zip(a.strokes, b.strokes):
        for name in ("x", "y", "t"):
            check(getattr(sa, name), getattr(sb, name))
        assert (sa.pressure is None) == (sb.pressure is None)
        if sa.pressure is not None:
            check(sa.pressure, sb.pressure)


# ------------------------------------------------------------ round trips
@pytest.mark.parametrize("suffix", [".json", ".inkml"])
def test_lossless_round_trip(tmp_path, suffix):
    ink = rich_ink()
    path = tmp_path / f"ink{suffix}"
    write_ink(ink, path)
    back = read_ink(path)
    assert_same_ink(ink, back)
    assert (back.text, back.writer, back.id, back.metadata) == (ink.text, ink.writer, ink.id, ink.metadata)
    assert back.time_synthesized is True
    np.testing.assert_array_equal(back.char_of_point, ink.char_of_point)


def test_offsets_round_trip_keeps_geometry_only(tmp_path):
    ink = rich_ink()
    write_ink(ink, tmp_path / "a.npy")
    back = read_ink(tmp_path / "a.npy")
    assert back.text is None and back.time_synthesized
    np.testing.assert_allclose(back.to_array()[:, [0, 1, 3]], ink.to_array()[:, [0, 1, 3]], atol=1e-12)
    arr = np.load(tmp_path / "a.npy", allow_pickle=False)
    assert arr.shape == (4, 3)
    assert list(arr[:, 0]) == [0, 0, 1, 1]                   # pen lifts on stroke ends
    np.testing.assert_allclose(arr[1], [0, 1.4, -1.125])     # dy points up


def test_unipen_dumps_reads_back(tmp_path):
    ink = Ink([Stroke([0, 10, 20], [30, 40, 52], [0, 0.01, 0.02]), Stroke([70], [80], [0.5])],
              text="hi there", writer="me")
    path = tmp_path / "a.upn"
    path.write_text(unipen.dumps(ink))
    back = read_ink(path)
    assert_same_ink(ink, back, exact=False)
    assert (back.text, back.writer, back.time_synthesized) == ("hi there", "me", False)


def test_writing_is_atomic_and_refuses_read_only_formats(tmp_path):
    with pytest.raises(FormatError, match="can be read but not written") as err:
        write_ink(rich_ink(), tmp_path / "x.xml")
    assert err.value.path == str(tmp_path / "x.xml")
    with pytest.raises(FormatError, match="unknown ink format"):
        write_ink(rich_ink(), tmp_path / "x.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_writing_ignores_the_old_content_of_the_target(tmp_path):
    target = tmp_path / "out.json"
    target.write_bytes((SAMPLES / "hello.unipen").read_bytes())   # sniffs as UNIPEN
    write_ink(rich_ink(), target)
    assert read_ink(target).text == "hi!" and detect_format(target).name == "native"


def test_native_writer_refuses_metadata_that_is_not_json(tmp_path):
    ink = rich_ink()
    ink.metadata = {"bad": object()}
    with pytest.raises(FormatError, match="metadata"):
        write_ink(ink, tmp_path / "a.json")
    assert not list(tmp_path.iterdir())


def test_inkml_writer_refuses_text_xml_cannot_hold(tmp_path):
    with pytest.raises(FormatError, match="control characters") as err:
        write_ink(Ink([Stroke([0], [0], [0])], text="a\x01b"), tmp_path / "a.inkml")
    assert str(tmp_path / "a.inkml") in str(err.value)


# ------------------------------------------------------------ detection
def test_every_format_is_registered():
    assert set(formats()) == {"native", "inkml", "iamondb", "unipen", "offsets"}


@pytest.mark.parametrize("src,name", [("hello.json", "native"), ("hello.inkml", "inkml"),
                                      ("hello.unipen", "unipen"), ("hello.npy", "offsets")])
def test_sniffing_without_a_suffix(tmp_path, src, name):
    dst = tmp_path / "noext"
    dst.write_bytes((SAMPLES / src).read_bytes())
    assert detect_format(dst).name == name
    assert read_ink(dst).num_points == read_ink(SAMPLES / src).num_points


def test_content_beats_a_misleading_suffix(tmp_path):
    (tmp_path / "a.xml").write_bytes((SAMPLES / "hello.inkml").read_bytes())
    assert detect_format(tmp_path / "a.xml").name == "inkml"
    assert read_ink(tmp_path / "a.xml").text == "hello world"
    assert detect_format(tmp_path / "new.xml").name == "iamondb"   # nothing to sniff: the suffix


def test_sniffing_iamondb_and_unknown(tmp_path):
    line = FIXTURES / "iamondb/lineStrokes/a01/a01-000/a01-000u-01.xml"
    (tmp_path / "line").write_bytes(line.read_bytes())
    assert detect_format(tmp_path / "line").name == "iamondb"
    (tmp_path / "junk.bin").write_bytes(b"hello")
    with pytest.raises(FormatError, match="unknown ink format"):
        read_ink(tmp_path / "junk.bin")
    with pytest.raises(FormatError, match="unknown format 'nope'"):
        read_ink(line, "nope")


# ------------------------------------------------------------ native
def test_native_refuses_future_versions_and_foreign_json(tmp_path):
    doc = {"format": "inkread", "version": 2, "strokes": []}
    (tmp_path / "v2.json").write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="newer inkread") as err:
        read_ink(tmp_path / "v2.json")
    assert err.value.where == "version"
    (tmp_path / "other.json").write_text('{"type": "FeatureCollection"}')
    with pytest.raises(FormatError, match="not an inkread ink file"):
        read_ink(tmp_path / "other.json")


def test_native_without_time_synthesizes_it(tmp_path):
    doc = {"format": "inkread", "version": 1, "text": "l", "strokes": [{"x": [0, 0], "y": [0, 10]}]}
    (tmp_path / "a.json").write_text(json.dumps(doc))
    ink = read_ink(tmp_path / "a.json")
    assert ink.time_synthesized and ink.strokes[0].t[1] > 0


def test_native_char_of_point_must_index_the_text(tmp_path):
    doc = {"format": "inkread", "version": 1, "text": "ab", "char_of_point": [0, 2],
           "strokes": [{"x": [0, 1], "y": [0, 1], "t": [0, 1]}]}
    (tmp_path / "a.json").write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="character index below 2") as err:
        read_ink(tmp_path / "a.json")
    assert err.value.where == "char_of_point[1]"


# ------------------------------------------------------------ InkML
def test_inkml_difference_encodings(tmp_path):
    # The spec's example: explicit, then first differences, then second differences
    # that stay in force for later points (with the no-space "3-5" form).
    text = """<ink xmlns="http://www.w3.org/2003/InkML">
      <trace>1125 18432,'23'43,"7"-8,3-5,+7-3,!1000 !2000</trace>
      <trace>1 2'3 4</trace></ink>"""
    (tmp_path / "d.inkml").write_text(text)
    ink = read_ink(tmp_path / "d.inkml")
    s = ink.strokes[0]
    np.testing.assert_array_equal(s.x, [1125, 1148, 1178, 1211, 1251, 1000])
    np.testing.assert_array_equal(s.y, [18432, 18475, 18510, 18540, 18567, 2000])
    # Without commas, points are cut by channel count; ' applies to X only.
    np.testing.assert_array_equal(ink.strokes[1].x, [1, 4])
    np.testing.assert_array_equal(ink.strokes[1].y, [2, 4])
    assert ink.time_synthesized


def test_inkml_contexts_units_and_intermittent_channels():
    ink = read_ink(FIXTURES / "inkml/sentence.inkml")
    s = ink.strokes[0]
    np.testing.assert_array_equal(s.x, [100, 105, 110, 115])
    np.testing.assert_array_equal(s.y, [200, 190, 180, 170])
    np.testing.assert_allclose(s.t, [0, 0.01, 0.02, 0.03])     # ms -> s
    assert not ink.time_synthesized and ink.writer == "anna"
    # The root has no label; its one outermost labelled group holds every trace.
    assert ink.text == "hi you"


def test_inkml_units_outer_and_inner():
    outer = inkml.read_units(FIXTURES / "inkml/sentence.inkml", "outer")
    assert [u.text for u in outer] == ["hi you"]
    assert outer[0].num_points == 9 and outer[0].id == "sentence:line1"
    inner = inkml.read_units(FIXTURES / "inkml/sentence.inkml", "inner")
    assert [(u.text, len(u.strokes), u.writer) for u in inner] == [("hi", 2, "anna"), ("you", 1, "anna")]


def test_inkml_crohme_style_references():
    path = FIXTURES / "inkml/crohme_like.inkml"
    ink = read_ink(path)
    assert ink.text == "$a+b$" and ink.writer == "w007" and ink.time_synthesized
    assert [u.text for u in inkml.read_units(path, "outer")] == ["$a+b$"]
    inner = inkml.read_units(path, "inner")
    assert [(u.text, len(u.strokes)) for u in inner] == [("a", 1), ("+", 2), ("b", 1)]
    # Units keep the synthesized times of the whole file.
    assert inner[1].strokes[0].t[0] == pytest.approx(ink.strokes[1].t[0])


def test_inkml_tablet_pc_dialect_ground_truth_labels():
    """ImadocSen-OnDB's layout: annotationXML "Ground truth" with <type> and <label>."""
    path = FIXTURES / "inkml/tablet_pc.inkml"
    outer = inkml.read_units(path, "outer")
    assert [(u.text, len(u.strokes), u.num_points) for u in outer] == [("an ox", 5, 21)]
    assert outer[0].time_synthesized and outer[0].writer is None  # a writer's <name> is not a writer id
    inner = inkml.read_units(path, "inner")
    assert [(u.text, len(u.strokes)) for u in inner] == [("an", 2), ("ox", 3)]
    ink = read_ink(path)
    assert ink.text == "an ox" and ink.num_points == 21


@pytest.mark.parametrize("annotation, text", [
    ('<annotation type="Ground Truth">go</annotation>', "go"),
    ('<annotation type="ground_truth">go</annotation>', "go"),
    ('<annotationXML type="truth"><type>Word</type><text>go</text></annotationXML>', "go"),
    ('<annotationXML type="Transcription">go on</annotationXML>', "go on"),
    ('<annotationXML type="Input zone"><label>not the truth</label></annotationXML>', None),
])
def test_inkml_truth_annotation_spellings(tmp_path, annotation, text):
    (tmp_path / "a.inkml").write_text(f"<ink>{annotation}<trace>0 0, 1 1</trace></ink>")
    assert read_ink(tmp_path / "a.inkml").text == text


def test_inkml_group_label_is_not_the_file_label_when_traces_lie_outside(tmp_path):
    (tmp_path / "a.inkml").write_text(
        '<ink><traceGroup><annotation type="truth">go</annotation><trace>0 0, 1 1</trace></traceGroup>'
        '<trace>5 5, 6 6</trace></ink>')
    assert read_ink(tmp_path / "a.inkml").text is None
    assert [u.text for u in inkml.read_units(tmp_path / "a.inkml")] == ["go"]


def test_inkml_unlabelled_file_has_no_units(tmp_path):
    (tmp_path / "u.inkml").write_text('<ink><trace>0 0, 1 1</trace></ink>')
    assert inkml.read_units(tmp_path / "u.inkml") == []
    assert read_ink(tmp_path / "u.inkml").num_points == 2


def test_inkml_time_without_units_is_guessed(tmp_path):
    body = ('<ink><traceFormat><channel name="X"/><channel name="Y"/><channel name="T"/></traceFormat>'
            '<trace>{}</trace></ink>')
    (tmp_path / "ms.inkml").write_text(body.format("0 0 1000, 1 1 1010, 2 2 1020"))
    (tmp_path / "s.inkml").write_text(body.format("0 0 1.0, 1 1 1.01, 2 2 1.02"))
    np.testing.assert_allclose(read_ink(tmp_path / "ms.inkml").strokes[0].t, [1.0, 1.01, 1.02])
    np.testing.assert_allclose(read_ink(tmp_path / "s.inkml").strokes[0].t, [1.0, 1.01, 1.02])


def test_inkml_written_file_is_standard(tmp_path):
    write_ink(rich_ink(), tmp_path / "a.inkml")
    from defusedxml import ElementTree
    root = ElementTree.parse(tmp_path / "a.inkml").getroot()
    ns = "{http://www.w3.org/2003/InkML}"
    assert root.tag == ns + "ink"
    assert [c.get("name") for c in root.find(ns + "traceFormat")] == ["X", "Y", "T", "F"]
    truth = [a.text for a in root.findall(ns + "annotation") if a.get("type") == "truth"]
    assert truth == ["hi!"]
    assert len(root.findall(ns + "trace")) == 2


# ------------------------------------------------------------ UNIPEN
def test_unipen_words_time_and_flip():
    ink = read_ink(FIXTURES / "unipen/words.dat")
    assert ink.text == "hello world" and ink.writer == "tester"
    assert [len(s) for s in ink.strokes] == [3, 2, 2]           # pen-up points skipped
    np.testing.assert_allclose(ink.strokes[0].y, [100, 60, 100])  # Y_DIM 500 - y
    np.testing.assert_allclose(ink.strokes[1].t, [0.05, 0.06])   # pen-up samples count for time
    np.testing.assert_allclose(ink.strokes[2].t, [0.27, 0.28])   # .DT 200 ms pause
    segs = ink.metadata["unipen_segments"]
    assert [(s["label"], s["quality"]) for s in segs] == [("world", "OK"), ("hello", "?")]
    assert ink.metadata["unipen_includes_not_read"] == ["../../etc/passwd"]


def test_unipen_without_rate_synthesizes_time(tmp_path):
    (tmp_path / "a.dat").write_text(".COORD X Y\n.PEN_DOWN\n0 0\n0 10\n.PEN_UP\n")
    ink = read_ink(tmp_path / "a.dat")
    assert ink.time_synthesized and ink.text is None
    np.testing.assert_allclose(ink.strokes[0].y, [10, 0])


# ------------------------------------------------------------ offsets
def test_offsets_reads_handwriting_synthesis_arrays(tmp_path):
    rows = np.array([[0, 5, 5], [1, 1, 1], [0, 10, 0], [1, 0, -2]], dtype=np.float32)
    np.save(tmp_path / "o.npy", rows)
    ink = read_ink(tmp_path / "o.npy")
    assert [len(s) for s in ink.strokes] == [2, 2]
    np.testing.assert_allclose(ink.to_array()[:, :2], [[5, -5], [6, -6], [16, -6], [16, -4]])
    assert ink.time_synthesized


def test_offsets_to_offsets_matches_the_layout():
    ink = Ink([Stroke([1, 2], [1, 3], [0, 1])])
    np.testing.assert_array_equal(offsets_fmt.to_offsets(ink), [[0, 1, -1], [1, 1, -2]])


# ------------------------------------------------------------ samples
def test_samples_agree_across_formats(tmp_path):
    ref = read_ink(SAMPLES / "hello.json")
    assert ref.text == "hello world" and ref.char_of_point is not None
    assert not ref.time_synthesized
    # The IAM-OnDB-layout sample is written here, not tracked (see data/README.md).
    sys.path.insert(0, str(SAMPLES.parent))
    from make_samples import write_iamondb_form
    write_iamondb_form(tmp_path / "iamondb", [ref])
    paths = [SAMPLES / n for n in ("hello.inkml", "hello.unipen", "hello.npy")]
    paths.append(tmp_path / "iamondb/lineStrokes/z01/z01-000/z01-000z-01.xml")
    for path in paths:
        ink, name = read_ink(path), path.name
        np.testing.assert_allclose(ink.to_array()[:, [0, 1, 3]], ref.to_array()[:, [0, 1, 3]],
                                   err_msg=name)
        if name != "hello.npy":
            assert ink.text == "hello world", name
            np.testing.assert_allclose(ink.to_array()[:, 2], ref.to_array()[:, 2], atol=1e-9, err_msg=name)
