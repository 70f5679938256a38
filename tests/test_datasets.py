"""Data specs: the iamondb kind on a hand-made fake layout (with its cache), native, inkml."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from inkread import datasets
from inkread.datasets import load_spec, parse_spec
from inkread.errors import DataSpecError
from inkread.formats import read_ink, write_ink
from inkread.ink import Ink, Stroke

from iam_fixtures import FIXTURES  # noqa: E402  (tests/fixtures with the fake IAM-OnDB lines written in)
REAL_IAM = Path(os.environ.get("INKREAD_IAMONDB", Path.home() / ".cache/inkread/IAM-OnDB"))


@pytest.fixture
def iam_root(tmp_path, monkeypatch) -> Path:
    """A private copy of the fake IAM-OnDB (tests change files) and a private cache."""
    root = tmp_path / "IAM-OnDB"
    shutil.copytree(FIXTURES / "iamondb", root)
    monkeypatch.setenv("INKREAD_CACHE", str(tmp_path / "cache"))
    return root


def test_iamondb_split_texts_and_points(iam_root):
    ds = load_spec(f"iamondb:{iam_root}@trainset")
    assert [(s.id, s.text, s.ink.num_points) for s in ds] == [
        ("a01-000u-01", "Ink is fun", 9), ("a01-000u-02", "so are tests .", 6)]
    assert ds.skipped == []
    line2 = ds.samples[1].ink
    assert line2.strokes[0].x[0] == 1300          # out-of-order start times stay in file order
    np.testing.assert_allclose(line2.strokes[1].t, [0, 0.01, 0.02], atol=1e-6)  # relative to the first point
    assert ds.samples[0].ink.metadata["form"] == "a01-000u"


def test_iamondb_selectors_and_skips(iam_root):
    val = load_spec(f"iamondb:{iam_root}@testset_v")
    assert [s.text for s in val] == ["zig zag"]
    assert val.skipped == [("b01-001-02", "no transcription line for this file")]
    assert len(load_spec(f"iamondb:{iam_root}")) == 3
    assert len(load_spec(f"iamondb:{iam_root}@trainset,testset_v")) == 3


def test_iamondb_cache_is_reused_and_invalidated(iam_root, monkeypatch, tmp_path):
    calls = []
    real_parse = datasets._iam_parse_all

    def counting(files):
        calls.append(len(files))
        return real_parse(files)

    monkeypatch.setattr(datasets, "_iam_parse_all", counting)
    first = load_spec(f"iamondb:{iam_root}@trainset")
    assert calls == [2] and len(list((tmp_path / "cache").glob("iamondb-*.npz"))) == 1
    second = load_spec(f"iamondb:{iam_root}@trainset")
    assert calls == [2], "second load must come from the cache"
    np.testing.assert_allclose(second.samples[0].ink.to_array(), first.samples[0].ink.to_array())

    line = iam_root / "lineStrokes/a01/a01-000/a01-000u-01.xml"
    line.write_text(line.read_text().replace(
        '<Point x="1040" y="1100" time="100.04"/>',
        '<Point x="1040" y="1100" time="100.04"/>\n      <Point x="1050" y="1060" time="100.05"/>'))
    third = load_spec(f"iamondb:{iam_root}@trainset")
    assert calls == [2, 2], "a changed line file must invalidate the cache"
    assert third.samples[0].ink.num_points == 10

    text = iam_root / "ascii/a01/a01-000/a01-000u.txt"
    text.write_text(text.read_text().replace("Ink is fun", "Ink is fine"))
    assert load_spec(f"iamondb:{iam_root}@trainset").samples[0].text == "Ink is fine"
    assert calls == [2, 2, 2]


def test_iamondb_spec_errors(iam_root, tmp_path):
    with pytest.raises(DataSpecError, match="split 'testset_q' not found"):
        load_spec(f"iamondb:{iam_root}@testset_q")
    with pytest.raises(DataSpecError, match="not an IAM-OnDB root"):
        load_spec(f"iamondb:{tmp_path}")


def test_iamondb_line_file_read_directly():
    ink = read_ink(FIXTURES / "iamondb/lineStrokes/b01/b01-001/b01-001-01.xml")
    assert ink.text == "zig zag" and ink.num_points == 4 and ink.id == "b01-001-01"
    assert read_ink(FIXTURES / "iamondb/lineStrokes/b01/b01-001/b01-001-02.xml").text is None


def test_native_spec_skips_unlabelled_and_broken(tmp_path):
    ink = Ink([Stroke([0, 1], [0, 1], [0, 0.1])], text="a", writer="w9")
    write_ink(ink, tmp_path / "a.json")
    (tmp_path / "sub").mkdir()
    write_ink(ink.replace(text=None), tmp_path / "sub" / "b.json")
    (tmp_path / "c.json").write_text(json.dumps({"format": "inkread", "version": 9, "strokes": []}))
    ds = load_spec(f"native:{tmp_path}")
    assert [(s.text, s.id, s.writer) for s in ds] == [("a", "a", "w9")]
    reasons = dict(ds.skipped)
    assert reasons[str(tmp_path / "sub" / "b.json")] == "no text label"
    assert "newer inkread" in reasons[str(tmp_path / "c.json")]


def test_inkml_spec_outer_and_inner():
    outer = load_spec(f"inkml:{FIXTURES / 'inkml'}")
    assert sorted(s.text for s in outer) == ["$a+b$", "an ox", "hi you"]
    inner = load_spec(f"inkml:{FIXTURES / 'inkml'}@inner")
    assert sorted(s.text for s in inner) == ["+", "a", "an", "b", "hi", "ox", "you"]
    with pytest.raises(DataSpecError, match="'outer' or 'inner'"):
        load_spec(f"inkml:{FIXTURES / 'inkml'}@middle")


def test_ids_that_repeat_across_folders_become_paths(tmp_path):
    """sentence1 in every writer's folder: `eval --errors` and `compare` need the lines apart."""
    ink = Ink([Stroke([0.0, 1.0, 2.0], [0.0, 1.0, 0.0], [0.0, 0.01, 0.02])], text="go")
    for w in ("wA", "wB"):
        (tmp_path / w).mkdir()
        write_ink(ink, tmp_path / w / "sentence1.inkml")
        write_ink(ink.replace(id=None), tmp_path / w / "sentence1.json")
    write_ink(ink, tmp_path / "wA" / "other.inkml")
    assert sorted(s.id for s in load_spec(f"inkml:{tmp_path}")) == ["other", "wA/sentence1", "wB/sentence1"]
    assert sorted(s.id for s in load_spec(f"native:{tmp_path}")) == ["wA/sentence1", "wB/sentence1"]
    units = sorted(s.id for s in load_spec(f"inkml:{FIXTURES / 'inkml'}@inner"))
    assert units == sorted(set(units)) and "sentence:w1" in units  # unique ids are left alone


def test_parse_spec_errors(tmp_path):
    assert parse_spec("native:/x/y@sel") == ("native", "/x/y", "sel")
    with pytest.raises(DataSpecError, match="not KIND:PATH"):
        parse_spec("nocolon")
    with pytest.raises(DataSpecError, match="unknown data kind 'zip'"):
        parse_spec("zip:/x")
    with pytest.raises(DataSpecError, match="no path"):
        parse_spec("native:")
    with pytest.raises(DataSpecError, match="no such file or folder"):
        load_spec(f"native:{tmp_path / 'missing'}")


@pytest.mark.skipif(not (REAL_IAM / "lineStrokes/a01/a01-000/a01-000u-01.xml").is_file(),
                    reason=f"IAM-OnDB not found at {REAL_IAM} (set INKREAD_IAMONDB); fake-layout tests cover the code")
def test_real_iamondb_line_if_present():
    ink = read_ink(REAL_IAM / "lineStrokes/a01/a01-000/a01-000u-01.xml")
    assert ink.text and ink.num_points > 100 and not ink.time_synthesized
