"""Synthetic handwriting: determinism, per-point truth, coverage, formats, data spec, CLI."""
from __future__ import annotations

import numpy as np
import pytest

from inkread.errors import DataSpecError, FormatError, OptionError
from inkread.synth import SUPPORTED_CHARS, Style, SynthSamples, generate_line, sample_style
from inkread.synth.text import check_text, random_text, read_text_file


def _arrays(ink):
    return ink.to_array(), ink.char_of_point


def _check_truth(ink) -> None:
    """char_of_point is valid, covers every non-space character, and runs forward."""
    text, cop = ink.text, ink.char_of_point
    assert cop is not None and cop.dtype.kind == "i"
    assert cop.shape == (ink.num_points,)
    assert cop.min() >= 0 and cop.max() < len(text)  # every synthetic point has a character
    counts = np.bincount(cop, minlength=len(text))
    for i, c in enumerate(text):
        if c == " ":
            assert counts[i] == 0, f"space at {i} has points"
        else:
            assert counts[i] > 0, f"character {c!r} at {i} of {text!r} has no points"
    # Only a delayed dot or cross goes back in the text, once per delayed stroke.
    backwards = int(np.sum(np.diff(cop) < 0))
    assert backwards <= sum(text.count(c) for c in "ijtfx")


def _check_valid(ink) -> None:
    a = ink.to_array()
    assert np.isfinite(a).all()
    for s in ink.strokes:
        assert len(s) >= 1
        assert np.all(np.diff(s.t) > 0)
    starts = [s.t[0] for s in ink.strokes]
    ends = [s.t[-1] for s in ink.strokes]
    assert all(b > e for e, b in zip(ends, starts[1:])), "strokes overlap in time"
    ink.validated()


def test_same_seed_same_line_and_different_seed_differs():
    a, b, c = generate_line(seed=5), generate_line(seed=5), generate_line(seed=6)
    assert a.text == b.text
    for x, y in zip(_arrays(a), _arrays(b)):
        np.testing.assert_array_equal(x, y)
    assert a.text != c.text or not np.array_equal(a.to_array(), c.to_array())


def test_sample_depends_only_on_seed_and_index():
    s = SynthSamples(10, seed=3)
    late_first = s[7]
    s[0], s[1]  # noqa: B018 - access others in between
    again = SynthSamples(10, seed=3)[7]
    assert late_first.text == again.text and late_first.id == again.id == "synth-3-000007"
    np.testing.assert_array_equal(late_first.ink.to_array(), again.ink.to_array())
    assert SynthSamples(10, seed=4)[7].text != late_first.text or \
        not np.array_equal(SynthSamples(10, seed=4)[7].ink.to_array(), late_first.ink.to_array())
    assert s[-1].id == s[9].id
    with pytest.raises(IndexError):
        s[10]


@pytest.mark.parametrize("seed", range(12))
def test_random_lines_are_valid_and_truthful(seed):
    ink = generate_line(seed=seed)
    assert ink.text and ink.text == ink.text.strip()
    _check_valid(ink)
    _check_truth(ink)


@pytest.mark.parametrize("script", [False, True])
def test_every_supported_character_renders(script):
    chars = SUPPORTED_CHARS.replace(" ", "")
    assert len(chars) == 94
    rng = np.random.default_rng(1)
    for start in range(0, len(chars), 24):
        text = " ".join(chars[start:start + 24])  # spaced, so each glyph stands alone too
        ink = generate_line(text, rng, sample_style(rng, script=script))
        _check_valid(ink)
        _check_truth(ink)
    word = generate_line(chars, rng, sample_style(rng, script=script))  # all touching
    _check_truth(word)


def test_script_word_is_one_stroke_plus_delayed_dots():
    style = sample_style(np.random.default_rng(0), script=True).replace(
        join_letters=1.0, join_in_glyph=1.0, delay=1.0)
    ink = generate_line("minimum", seed=2, style=style)
    # the joined body, then the two i-dots after the word
    assert len(ink.strokes) == 3
    cop = ink.char_of_point
    dot_chars = [int(cop[np.flatnonzero(ink.stroke_of_point() == k)[0]]) for k in (1, 2)]
    assert dot_chars == [1, 3]
    _check_truth(ink)


def test_print_word_without_delay_dots_each_i_in_place():
    style = sample_style(np.random.default_rng(0), script=False).replace(delay=0.0, join_in_glyph=1.0)
    ink = generate_line("ii", seed=2, style=style)
    assert np.all(np.diff(ink.char_of_point) >= 0)  # stem, dot, stem, dot
    assert len(ink.strokes) == 4


def test_y_grows_downward_and_time_is_sampled_at_the_rate():
    style = sample_style(np.random.default_rng(0), script=False).replace(
        slant=0.0, baseline_tilt=0.0, baseline_bend=0.0, baseline_wave=0.0, rate_hz=125.0, jitter=0.0)
    ink = generate_line("gl", seed=0, style=style)
    a, cop = ink.to_array(), ink.char_of_point
    g, l_ = a[cop == 0], a[cop == 1]
    assert g[:, 1].max() > l_[:, 1].max() + 0.3 * style.x_height  # descender below the baseline
    assert l_[:, 1].min() < g[:, 1].min() - 0.3 * style.x_height  # ascender above the x-height
    dts = np.concatenate([np.diff(s.t) for s in ink.strokes])
    assert np.all(np.abs(dts - 0.008) <= 0.0011)


def test_user_text_is_normalised_and_bad_characters_are_refused():
    ink = generate_line("\u201cCaf\u00e9\u201d \u2013 ok", seed=0)
    assert ink.text == '"Cafe" - ok'
    _check_truth(ink)
    with pytest.raises(OptionError, match="U\\+4E2D"):
        generate_line("bad \u4e2d", seed=0)
    with pytest.raises(OptionError, match="empty"):
        check_text("   ")


def test_text_file_lines_and_errors(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("one line\n\n" + " ".join(["word"] * 40) + "\n", encoding="utf-8")
    lines = read_text_file(f)
    assert lines[0] == "one line" and len(lines) == 4 and all(len(x) <= 80 for x in lines)
    f.write_text("fine\nnot \u4e2d fine\n", encoding="utf-8")
    with pytest.raises(FormatError) as exc:
        read_text_file(f)
    assert str(exc.value).startswith(f"{f}: line 2: ")
    with pytest.raises(FormatError, match="no such file"):
        read_text_file(tmp_path / "missing.txt")


def test_random_text_has_english_words_and_punctuation_attached():
    rng = np.random.default_rng(0)
    texts = [random_text(rng) for _ in range(200)]
    joined = " ".join(texts)
    assert " the " in f" {joined.lower()} "
    assert " ." not in joined and " ," not in joined  # punctuation written attached
    assert all(c in SUPPORTED_CHARS for c in joined)
    lengths = np.array([len(t) for t in texts])
    assert 20 <= np.median(lengths) <= 45


@pytest.mark.parametrize("fmt,suffix", [("native", ".json"), ("inkml", ".inkml")])
def test_round_trip_through_files_keeps_the_truth(tmp_path, fmt, suffix):
    formats = pytest.importorskip("inkread.formats")
    if fmt not in formats.formats():
        pytest.skip(f"format {fmt} not available yet")
    ink = generate_line(seed=11, id="x")
    path = tmp_path / f"line{suffix}"
    formats.write_ink(ink, path, fmt)
    back = formats.read_ink(path, fmt)
    assert back.text == ink.text
    np.testing.assert_array_equal(back.char_of_point, ink.char_of_point)
    np.testing.assert_allclose(back.to_array(), ink.to_array())


def test_synth_data_spec_is_lazy_and_labelled():
    from inkread.datasets import load_spec
    ds = load_spec("synth:7@3")
    assert len(ds) == 7 and not isinstance(ds.samples, list)
    s = ds.samples[2]
    assert s.text == s.ink.text and s.id == "synth-3-000002"
    _check_truth(s.ink)
    np.testing.assert_array_equal(s.ink.to_array(), SynthSamples(7, 3)[2].ink.to_array())
    assert [x.id for x in ds.samples[5:]] == ["synth-3-000005", "synth-3-000006"]
    for bad in ("synth:x", "synth:0", "synth:5@seed", "synth:5@-2"):
        with pytest.raises(DataSpecError):
            load_spec(bad)


def _synth_cli(argv):
    """Parse and run `inkread synth` with its own parser (cli.main also builds every other
    command's parser, some of which import torch)."""
    import argparse
    from inkread.commands import synth as cmd
    p = argparse.ArgumentParser(prog="inkread synth")
    cmd.configure(p)
    return cmd.run(p.parse_args(argv))


def test_cli_is_reproducible_across_workers(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _synth_cli(["--n", "6", "--out", str(a), "--seed", "9"]) == 0
    assert _synth_cli(["--n", "6", "--out", str(b), "--seed", "9", "--workers", "2"]) == 0
    names = sorted(p.name for p in a.iterdir())
    assert names == [f"synth-9-{i:06d}.json" for i in range(6)]
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes()
    assert "wrote 6 json files" in capsys.readouterr().out


def test_cli_errors_name_the_file_and_line(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("ok\n\u4e2d\n", encoding="utf-8")
    with pytest.raises(FormatError) as exc:
        _synth_cli(["--n", "2", "--out", str(tmp_path / "o"), "--text", str(f)])
    assert str(exc.value).startswith(f"{f}: line 2: ") and "\n" not in str(exc.value)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OptionError, match="not a folder"):
        _synth_cli(["--n", "2", "--out", str(tmp_path / "file")])
    with pytest.raises(SystemExit) as ex:
        _synth_cli(["--n", "0", "--out", str(tmp_path / "o")])
    assert ex.value.code == 2


def test_style_is_recorded_and_user_style_respected():
    style = Style(script=True, x_height=100.0, rate_hz=150.0)
    ink = generate_line("hello", seed=1, style=style)
    assert ink.metadata["source"] == "synth"
    assert ink.metadata["style"]["x_height"] == 100.0 and ink.metadata["style"]["script"] is True
    ymin, ymax = ink.bbox()[1], ink.bbox()[3]
    assert 1.2 * 100 < ymax - ymin < 4.0 * 100  # ascender to descender-free baseline, in device units


def test_stats_and_contact_sheet(tmp_path):
    from inkread.synth.stats import MEASURES, compare_table, contact_sheet, line_stats
    samples = SynthSamples(4, 0)
    rows = [line_stats(s.ink, s.text) for s in samples]
    assert set(rows[0]) == set(MEASURES)
    assert all(np.isfinite(v) and v >= 0 for r in rows for v in r.values())
    assert 60 <= np.median([r["sample_hz"] for r in rows]) <= 200
    table = compare_table({"a": rows, "b": rows})
    assert "points_per_char" in table and table.count("\n") >= len(MEASURES) + 1
    out = tmp_path / "sheet.png"
    contact_sheet({"a": [s.ink for s in samples]}, str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_reports_a_rate():
    from inkread.synth import bench_lines_per_second
    assert bench_lines_per_second(0.2) > 0


def test_pen_is_slow_at_stroke_ends_and_corners():
    style = sample_style(np.random.default_rng(0), script=False).replace(
        jitter=0.0, deform=0.0, char_variation=0.0, slant=0.0, x_height=200.0, rate_hz=200.0,
        join_in_glyph=1.0, baseline_bend=0.0, baseline_wave=0.0, size_drift=0.0)
    ink = generate_line("L", seed=0, style=style)
    assert len(ink.strokes) == 1  # stem and foot in one movement
    s = ink.strokes[0]
    step = np.hypot(np.diff(s.x), np.diff(s.y))  # distance per sample = speed
    corner = int(np.argmax(s.y - s.x))  # bottom-left
    fast = step.max()
    assert step[:2].mean() < 0.5 * fast and step[-2:].mean() < 0.5 * fast
    assert step[max(corner - 1, 0):corner + 1].mean() < 0.6 * fast
