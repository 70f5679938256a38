"""`inkread info | render | convert`, and the render module they use."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inkread import render
from inkread.cli import main
from inkread.errors import InkError, OptionError
from inkread.formats import read_ink, write_ink
from inkread.ink import Ink, Stroke

SAMPLES = Path(__file__).parent.parent / "data" / "samples"
SAMPLE_FILES = ["hello.json", "hello.inkml", "hello.unipen", "hello.npy"]


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc: int, err: str, *needles: str) -> None:
    assert rc == 2
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)


# ------------------------------------------------------------ info
@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_info_on_every_sample(capsys, name):
    rc, out, err = run(capsys, "info", str(SAMPLES / name))
    assert rc == 0 and err == ""
    fields = dict(line.split(":", 1) for line in out.splitlines())
    assert fields["points"].strip() == str(read_ink(SAMPLES / name).num_points)
    assert fields["text"].strip() in ("'hello world'", "-")
    synthesized = name.endswith(".npy")
    assert fields["time"].strip().startswith("synthesized" if synthesized else "recorded")


def test_info_json(capsys):
    rc, out, _ = run(capsys, "info", "--json", str(SAMPLES / "hello.json"))
    info = json.loads(out)
    assert rc == 0 and info["format"] == "native" and info["char_truth"] is True
    assert info["strokes"] == 8 and len(info["bbox"]) == 4 and info["time_synthesized"] is False


def test_info_forced_format_and_errors(capsys, tmp_path):
    rc, _, err = run(capsys, "info", "--from", "inkml", str(SAMPLES / "hello.json"))
    assert_one_line_error(rc, err, "hello.json", "line 1, column 0", "not well-formed XML")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "inkread", "version": 1, "strokes": [{"x": [1, "a"], "y": [1, 2]}]}')
    rc, _, err = run(capsys, "info", str(bad))
    assert_one_line_error(rc, err, f"inkread info: error: {bad}: strokes[0].x[1]: expected a number")
    rc, _, err = run(capsys, "info", str(tmp_path / "missing.inkml"))
    assert_one_line_error(rc, err, "missing.inkml", "no such file")


# ------------------------------------------------------------ render
@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_render_png_of_every_sample(capsys, tmp_path, name):
    out_png = tmp_path / "o.png"
    rc, out, _ = run(capsys, "render", str(SAMPLES / name), "-o", str(out_png), "--width", "300")
    assert rc == 0 and "wrote" in out
    img = np.asarray(Image.open(out_png).convert("L"))
    assert img.shape[1] == 300 and 16 <= img.shape[0] <= 600
    dark = (img < 128).mean()
    assert 0.005 < dark < 0.3, dark           # ink drawn, not a blank or black page
    greys = np.unique(img)
    assert len(greys) > 10                    # antialiased edges, not just black and white


def test_render_svg(capsys, tmp_path):
    rc, _, _ = run(capsys, "render", str(SAMPLES / "hello.json"), "-o", str(tmp_path / "o.svg"))
    svg = (tmp_path / "o.svg").read_text()
    assert rc == 0 and svg.startswith("<svg") and svg.count("<polyline") == 8
    from defusedxml import ElementTree
    assert ElementTree.fromstring(svg).get("width") == "800"


def test_render_errors(capsys, tmp_path):
    src = str(SAMPLES / "hello.json")
    rc, _, err = run(capsys, "render", src, "-o", str(tmp_path / "o.jpg"))
    assert_one_line_error(rc, err, "o.jpg", "use .png or .svg")
    rc, _, err = run(capsys, "render", src, "-o", str(tmp_path / "no" / "dir" / "o.png"))
    assert_one_line_error(rc, err, "o.png", "cannot write")
    empty = tmp_path / "empty.json"
    write_ink(Ink(), empty)
    rc, _, err = run(capsys, "render", str(empty), "-o", str(tmp_path / "o.png"))
    assert_one_line_error(rc, err, str(empty), "no points")
    with pytest.raises(SystemExit) as exc:
        main(["render", src, "-o", str(tmp_path / "o.png"), "--width", "5"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--width" in err and "outside 8..10000" in err


# ------------------------------------------------------------ convert
def test_convert_chain_is_lossless(capsys, tmp_path):
    rc, out, err = run(capsys, "convert", str(SAMPLES / "hello.json"), str(tmp_path / "a.inkml"))
    assert rc == 0 and "inkml, 8 strokes" in out and err == ""
    rc, _, _ = run(capsys, "convert", str(tmp_path / "a.inkml"), str(tmp_path / "b"), "--to", "native")
    assert rc == 0
    a, b = read_ink(SAMPLES / "hello.json"), read_ink(tmp_path / "b", "native")
    np.testing.assert_array_equal(a.to_array(), b.to_array())
    np.testing.assert_array_equal(a.char_of_point, b.char_of_point)
    assert (a.text, a.writer, a.metadata) == (b.text, b.writer, b.metadata)


def test_convert_reports_what_a_format_drops(capsys, tmp_path):
    rc, _, err = run(capsys, "convert", str(SAMPLES / "hello.unipen"), str(tmp_path / "a.npy"))
    assert rc == 0 and "offsets cannot hold the text, writer, time; dropped" in err


def test_convert_errors(capsys, tmp_path):
    src = str(SAMPLES / "hello.json")
    rc, _, err = run(capsys, "convert", src, str(tmp_path / "a.xml"))
    assert_one_line_error(rc, err, "a.xml", "can be read but not written")
    rc, _, err = run(capsys, "convert", src, str(tmp_path / "a.out"), "--to", "pdf")
    assert_one_line_error(rc, err, "unknown format 'pdf'")
    rc, _, err = run(capsys, "convert", src, str(tmp_path / "a.txt"))
    assert_one_line_error(rc, err, "a.txt", "unknown ink format")
    garbage = tmp_path / "g.inkml"
    garbage.write_bytes(b"<ink><trace>1 2, 3</trace></ink>")
    rc, _, err = run(capsys, "convert", str(garbage), str(tmp_path / "x.json"))
    assert_one_line_error(rc, err, "g.inkml: trace 0, point 1: point has 1 values")
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("command", ["info", "render", "convert"])
def test_help(capsys, command):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: inkread " + command in capsys.readouterr().out


# ------------------------------------------------------------ render API
def test_weights_colour_the_ink(tmp_path):
    ink = read_ink(SAMPLES / "hello.json")
    weights = (ink.char_of_point == 0).astype(float)      # the "h" is hot
    img = np.asarray(render.draw(ink, 400, weights=weights)).astype(int)
    reddish = (img[..., 0] > 150) & (img[..., 1] < 90)
    assert reddish.any()
    cols = np.flatnonzero(reddish.any(axis=0))
    assert cols.max() < 400 * 0.3                          # only the first letter is red
    svg = render.to_svg(ink, 400, weights=weights)
    assert "#b40014" in svg and "#cdcdcd" in svg           # the hot and cold ends of the scale


def test_heat_colors_and_point_colors():
    np.testing.assert_array_equal(render.heat_colors([0, 1, np.nan, 5]),
                                  [[205, 205, 205], [180, 0, 20], [205, 205, 205], [180, 0, 20]])
    ink = Ink([Stroke([0, 1], [0, 1], [0, 1])])
    np.testing.assert_array_equal(render.point_colors(ink, colors=np.array([[0, 0.5, 1.0], [1, 1, 1]])),
                                  [[0, 128, 255], [255, 255, 255]])
    with pytest.raises(ValueError, match="per-point colours"):
        render.point_colors(ink, colors=np.zeros((3, 3)))


def test_degenerate_inks_render():
    dot = Ink([Stroke([5], [5], [0])])
    img = np.asarray(render.draw(dot, 64).convert("L"))
    assert img.shape == (16, 64) and img.min() < 128
    line = Ink([Stroke([0, 100], [3, 3], [0, 1])])
    assert render.draw(line, 100).size[0] == 100
    assert "<polyline" in render.to_svg(dot, 64)
    with pytest.raises(InkError, match="no points"):
        render.draw(Ink(), 100)
    with pytest.raises(OptionError, match="8..10000"):
        render.draw(dot, 20_000)


# ------------------------------------------------------------ option ranges (every command)
@pytest.mark.parametrize("argv, option, message", [
    (["eval", "--data", "synth:2@1", "--lm-weight", "nan"], "--lm-weight", "'nan' is not a finite number"),
    (["eval", "--data", "synth:2@1", "--scale", "inf"], "--scale", "'inf' is not a finite number"),
    (["eval", "--data", "synth:2@1", "--scale", "0"], "--scale", "0 is not above 0"),
    (["eval", "--data", "synth:2@1", "--rate", "-5"], "--rate", "-5 is not at least 0"),
    (["recognize", "x.json", "--bonus", "inf"], "--bonus", "not a finite number"),
    (["recognize", "x.json", "--oov-penalty", "-1"], "--oov-penalty", "-1 is not at least 0"),
    (["lm", "tune", "--data", "synth:2@1", "--lm", "x.npz", "--beam", "0"], "--beam", "0 is not at least 1"),
    (["lm", "tune", "--data", "synth:2@1", "--lm", "x.npz", "--weights", "0.5,nan"], "--weights",
     "item 2: 'nan' is not a finite number"),
    (["lm", "tune", "--data", "synth:2@1", "--lm", "x.npz", "--limit", "-4"], "--limit", "-4 is not at least 0"),
    (["lm", "build", "t.txt", "-o", "x.npz", "--order", "0"], "--order", "0 is outside 1..10"),
    (["lm", "build", "t.txt", "-o", "x.npz", "--min-counts", "1,-1"], "--min-counts", "item 2"),
    (["lm", "build", "t.txt", "-o", "x.npz", "--wrap", "-1"], "--wrap", "-1 is not at least 0"),
    (["bench", "--train-batch", "-3"], "--train-batch", "-3 is not at least 0"),
    (["data", "synth:2@1", "--show-skipped", "-1"], "--show-skipped", "-1 is not at least 0"),
    (["synth", "--n", "0", "--out", "d"], "--n", "0 is not at least 1"),
    (["saliency", "x.json", "--steps", "0"], "--steps", "0 is not at least 1"),
])
def test_a_number_out_of_range_is_one_line_naming_the_option(capsys, argv, option, message):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"argument {option}" in err and message in err, err


@pytest.mark.parametrize("kind", ["missing folder", "a folder", "a file as run folder"])
def test_an_output_that_cannot_be_written_is_one_line_before_any_work(capsys, tmp_path, kind):
    """Every command that writes a model, an LM, a run or an error table says so at once."""
    from recog_helpers import save_tiny_model, write_native_dir
    lines = write_native_dir(tmp_path / "lines")
    model = save_tiny_model(tmp_path / "m.pt")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "text.txt").write_text("some text to build a language model from\n" * 20)
    bad = {"missing folder": "/proc/no-such-folder/out", "a folder": str(tmp_path),
           "a file as run folder": str(tmp_path / "afile")}[kind]
    files = [["finetune", str(lines), "--model", str(model), "-o", bad],
             ["export", str(model), "-o", bad],
             ["average", str(model), str(model), "-o", bad],
             ["lm", "build", str(tmp_path / "text.txt"), "-o", bad],
             ["eval", "--model", str(model), "--data", f"native:{lines}", "--errors", bad]]
    run = [["train", "--train", f"native:{lines}", "--out", bad, "--epochs", "1"]]
    commands = {"missing folder": files + run, "a folder": files, "a file as run folder": run}[kind]
    for argv in commands:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and bad in err and "Traceback" not in err, (argv, err)
    assert (tmp_path / "afile").read_text() == "x"


# ------------------------------------------------------------ data
def test_data_names_each_skipped_file_once(capsys, tmp_path):
    write_ink(read_ink(SAMPLES / "hello.json"), tmp_path / "good.json")
    (tmp_path / "garbage.json").write_text("{not json")
    rc, out, err = run(capsys, "data", f"native:{tmp_path}")
    assert rc == 0 and "samples:     1" in out and "skipped:     1" in out
    line = [t for t in out.splitlines() if "garbage.json" in t]
    assert len(line) == 1 and line[0].count("garbage.json") == 1 and "not valid JSON" in line[0], out
