"""Recognizer on a tiny random-weight model: Result structure, char spans, loading, CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from inkread.cli import main
from inkread.errors import CheckpointError
from inkread.features import FeatureConfig
from inkread.ink import Ink
from inkread.lm import CharLM
from inkread.recognizer import CharSpan, Recognizer, Result

from engine_helpers import make_ink
from recog_helpers import ALPHABET, save_tiny_model, tiny_model, write_native_dir


@pytest.fixture
def rec():
    lm = CharLM.build(["ab ca", "bcd dab", "cdba bd", "dab bd"], order=3)
    return Recognizer(tiny_model(), ALPHABET, FeatureConfig(), lm=lm, beam=6)


def _check_spans(res: Result, num_points: int) -> None:
    assert len(res.chars) == len(res.text)
    prev_end = -1
    for i, span in enumerate(res.chars):
        assert isinstance(span, CharSpan)
        assert span.index == span.index_in_text == i and span.char == res.text[i]
        assert prev_end < span.frame_start <= span.frame_end
        prev_end = span.frame_end
        idx = span.point_indices
        assert idx.dtype == np.int64 and len(idx) >= 1
        assert idx.min() >= 0 and idx.max() < num_points
        assert np.all(np.diff(idx) == 1)  # a contiguous run of original points


@pytest.mark.parametrize("use_lm", [True, False])
def test_result_structure_and_consistent_spans(rec, use_lm):
    ink = make_ink("cdba")
    res = rec.recognize(ink, nbest=3, lm=use_lm)
    assert res.nbest and res.nbest[0][0] == res.text and res.score == res.nbest[0][1]
    scores = [s for _, s in res.nbest]
    assert scores == sorted(scores, reverse=True) and len(res.nbest) <= 3
    _check_spans(res, ink.num_points)
    assert set(res.ms) >= {"features", "network", "decode", "total"}
    json.dumps(res.to_dict())  # serialisable


def test_greedy_single_best_and_batch_agree(rec):
    inks = [make_ink(t) for t in ("ab", "cdba", "bd")]
    one = [rec.recognize(ink, nbest=1, lm=False) for ink in inks]
    many = rec.recognize_batch(inks, nbest=1, lm=False, batch_size=2)
    assert [r.text for r in one] == [r.text for r in many]
    for r, ink in zip(many, inks):
        _check_spans(r, ink.num_points)


def test_points_of_frames_follows_subsampling():
    r = Recognizer(tiny_model(subsample=2), ALPHABET, FeatureConfig())
    src = np.array([0.0, 0.5, 1.2, 2.0, 3.7, 4.0, 5.0])  # 7 input frames
    assert r.points_of_frames(0, 0, src, 6).tolist() == [0, 1]          # frames 0-1: 0.0..0.5
    assert r.points_of_frames(1, 1, src, 6).tolist() == [1, 2]          # frames 2-3: 1.2..2.0
    assert r.points_of_frames(2, 2, src, 6).tolist() == [3, 4]          # frames 4-5: 3.7..4.0
    assert r.points_of_frames(3, 3, src, 7).tolist() == [5]             # frame 6 only: 5.0
    assert r.points_of_frames(0, 3, src, 6).tolist() == list(range(6))


def test_points_of_frames_covers_a_bezier_curve_from_its_start():
    """A Bezier frame ends at its src_pos and starts at the previous frame's end."""
    r = Recognizer(tiny_model(subsample=1), ALPHABET, FeatureConfig(curves="bezier"))
    src = np.array([0.0, 3.0, 7.0, 8.0, 12.0])  # curve ends; frame 0 is the line's first point
    assert r.points_of_frames(0, 0, src, 13).tolist() == [0]
    assert r.points_of_frames(1, 1, src, 13).tolist() == [0, 1, 2, 3]       # the curve 0 -> 3
    assert r.points_of_frames(2, 3, src, 13).tolist() == [3, 4, 5, 6, 7, 8]  # curves 3 -> 7 -> 8
    assert r.points_of_frames(4, 4, src, 13).tolist() == list(range(8, 13))


def test_empty_ink_gives_empty_result(rec):
    res = rec.recognize(Ink([]))
    assert res.text == "" and res.chars == [] and res.nbest == []


def test_threads_option_restores_torch_setting():
    before = torch.get_num_threads()
    r = Recognizer(tiny_model(), ALPHABET, FeatureConfig(), threads=1)
    r.recognize(make_ink("ab"))
    assert torch.get_num_threads() == before


def test_load_model_and_lm_files(tmp_path):
    model = save_tiny_model(tmp_path / "m.pt")
    lm = CharLM.build(["ab ca", "bcd dab"], order=3)
    lm.meta["tuned"] = {"lm_weight": 0.3, "bonus": 1.5}
    lm.save(tmp_path / "lm.npz")
    r = Recognizer.load(model, lm=tmp_path / "lm.npz", threads=1)
    assert r.lm is not None and (r.lm_weight, r.bonus) == (0.3, 1.5)
    assert r.settings()["lm"] == str(tmp_path / "lm.npz")
    assert Recognizer.load(model, lm=None, lm_weight=0.9).lm is None
    assert r.recognize(make_ink("bd")).text == r.recognize(make_ink("bd")).text  # deterministic


def test_missing_default_model_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setenv("INKREAD_MODEL", str(tmp_path / "default.pt"))
    with pytest.raises(CheckpointError, match="inkread train") as exc:
        Recognizer.load()
    assert "default.pt" in str(exc.value)
    with pytest.raises(CheckpointError, match="no such language model"):
        Recognizer.load(save_tiny_model(tmp_path / "m.pt"), lm=tmp_path / "none.npz")


def test_cli_recognize(tmp_path, capsys):
    data = write_native_dir(tmp_path / "d")
    model = save_tiny_model(tmp_path / "m.pt")
    files = [str(data / "ab.json"), str(data / "cdba.json")]
    assert main(["recognize", *files, "--model", str(model), "--no-lm", "--json", "--nbest", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    obj = json.loads(lines[1])
    assert obj["file"] == files[1] and len(obj["chars"]) == len(obj["text"]) and obj["nbest"]
    assert main(["recognize", files[0], "--model", str(model), "--no-lm"]) == 0
    assert capsys.readouterr().out.count("\n") == 1
    assert main(["recognize", str(tmp_path / "nope.json"), "--model", str(model)]) == 2
    assert "nope.json" in capsys.readouterr().err


SHIPPED = Path(__file__).resolve().parent.parent / "models" / "default.pt"


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped default model in models/")
def test_shipped_default_model_reads_the_samples():
    """The shipped model loads as a self-describing file, fits the size budget and reads data/samples."""
    from inkread.evaluate import score
    from inkread.formats import read_ink
    rec = Recognizer.load(SHIPPED)
    assert 0.5e6 < rec.model.num_parameters() < 3e6
    assert SHIPPED.stat().st_size + (SHIPPED.parent / "lm-en.npz").stat().st_size < 10e6
    samples = sorted((SHIPPED.parent.parent / "data" / "samples").glob("hello.*"))
    assert len(samples) >= 4
    truth = read_ink(SHIPPED.parent.parent / "data" / "samples" / "hello.json").text
    refs = [truth] * len(samples)  # the same ink in every format; .npy offsets carry no label
    hyps = [rec.recognize(read_ink(path)).text for path in samples]
    assert score(refs, hyps).cer <= 0.3, list(zip(refs, hyps))


def test_nbest_shows_each_text_once_as_scoring_sees_it():
    """Beam search keeps "fox" and "fox " as two paths; the alternatives list shows one, the better.
    Spacing is merged as CER scoring merges it (``evaluate.normalize``)."""
    from inkread.decode import Hypothesis
    from inkread.recognizer import _distinct_nbest

    def hyp(text: str, score: float) -> Hypothesis:
        return Hypothesis(text, list(range(len(text))), score, [(i, i) for i in range(len(text))], score, 0.0)

    hyps = [hyp("the fox", 19.0), hyp("the for", 14.5), hyp("the fox ", 6.9), hyp(" the for", 3.2),
            hyp("the  fox", 2.0)]
    assert _distinct_nbest(hyps) == [("the fox", 19.0), ("the for", 14.5)]
    assert _distinct_nbest(hyps[2:]) == [("the fox ", 6.9), (" the for", 3.2)]


def test_recognize_lists_an_alternative_that_differs_in_spacing_once(rec, monkeypatch):
    """End to end: whatever the decoder returns, Result.nbest merges spacing variants."""
    real = rec.decoder(3, True)

    def with_spacing_variant(lp, out_len):
        return [[hs[0], hs[0]._replace(text=hs[0].text + " ", score=hs[0].score - 1.0)]
                for hs in real(lp, out_len)]

    monkeypatch.setattr(rec, "decoder", lambda nbest, lm: with_spacing_variant)
    res = rec.recognize(make_ink("cdba"), nbest=3)
    assert res.text and [t for t, _ in res.nbest] == [res.text]


def test_settle_memory_freezes_what_is_left_and_frees_an_old_model_frozen_before():
    import gc
    import weakref
    from inkread.recognizer import settle_memory

    class Model:  # stands in for a loaded model: objects in a reference cycle
        pass
    old = Model()
    old.me = old
    gone = weakref.ref(old)
    try:
        settle_memory()  # the first model loads: it is frozen with everything else
        assert gc.get_freeze_count() > 0
        del old  # another model replaces it: now garbage, but frozen garbage
        gc.collect()
        assert gone() is not None  # a plain collection cannot reach it
        settle_memory()  # the new model's load
        assert gone() is None and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def _two_line_page():
    """data/samples/hello.json written twice, the second copy a line lower and later."""
    from inkread.formats import read_ink
    from inkread.ink import Ink, Stroke
    one = read_ink(SHIPPED.parent.parent / "data" / "samples" / "hello.json")
    x0, y0, x1, y1 = one.bbox()
    t_end = max(s.t[-1] for s in one.strokes) + 1.0
    lower = [Stroke(s.x, s.y + 1.8 * (y1 - y0), s.t + t_end, s.pressure) for s in one.strokes]
    return one, Ink(strokes=list(one.strokes) + lower)


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped default model in models/")
def test_a_page_is_read_line_by_line(tmp_path, capsys):
    from inkread.evaluate import score
    from inkread.formats import write_ink
    one, page = _two_line_page()
    rec = Recognizer.load(SHIPPED, lm=None)
    lines = rec.recognize_page(page)
    assert [ln.strokes for ln, _ in lines] == [tuple(range(len(one.strokes))),
                                                tuple(range(len(one.strokes), 2 * len(one.strokes)))]
    assert score([one.text] * 2, [r.text for _, r in lines]).cer <= 0.3
    # character points are the page's: the second line's lie in the second copy
    second = [int(i) for c in lines[1][1].chars for i in c.point_indices]
    assert second and min(second) >= one.num_points and max(second) < page.num_points
    assert rec.recognize_page(page.replace(strokes=[])) == []

    write_ink(page, tmp_path / "page.json")
    f = str(tmp_path / "page.json")
    assert main(["recognize", f, "--model", str(SHIPPED), "--no-lm"]) == 0
    assert capsys.readouterr().out.splitlines() == [r.text for _, r in lines]
    assert main(["recognize", f, "--model", str(SHIPPED), "--no-lm", "--one-line"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    assert main(["recognize", f, f, "--model", str(SHIPPED), "--no-lm"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{f}\t{r.text}" for _ in (1, 2) for _, r in lines]
    assert main(["recognize", f, "--model", str(SHIPPED), "--no-lm", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["text"] == "\n".join(r.text for _, r in lines) and len(obj["lines"]) == 2
    assert obj["lines"][1]["strokes"][0] == len(one.strokes) and "chars" not in obj


def test_cli_recognize_reads_every_good_file_and_names_each_bad_one(tmp_path, capsys):
    from inkread.formats import write_ink
    data = write_native_dir(tmp_path / "d")
    model = save_tiny_model(tmp_path / "m.pt")
    write_ink(make_ink("bd"), tmp_path / "bd.inkml")
    (tmp_path / "bad.json").write_text('{"format": "inkread", "version": 1, "strokes": [{"x": ["nan?"]}]}')
    files = [str(data / "ab.json"), str(tmp_path / "bad.json"), str(tmp_path / "bd.inkml"), str(tmp_path / "nope.json")]
    assert main(["recognize", *files, "--model", str(model), "--no-lm"]) == 2
    out, err = capsys.readouterr()
    assert [ln.split("\t")[0] for ln in out.splitlines()] == [files[0], files[2]]
    errors = err.splitlines()
    assert len(errors) == 2 and "Traceback" not in err
    assert errors[0].startswith(f"inkread recognize: error: {files[1]}: strokes[0]") and errors[0].count("bad.json") == 1
    assert errors[1].startswith(f"inkread recognize: error: {files[3]}: ")
    assert main(["recognize", *files, "--model", str(model), "--no-lm", "--json"]) == 2
    out, err = capsys.readouterr()
    objs = [json.loads(ln) for ln in out.splitlines()]
    assert [o["file"] for o in objs] == files and len(err.splitlines()) == 2
    assert "text" in objs[0] and "text" in objs[2] and objs[1]["error"].startswith("strokes[0]")
    assert "error" in objs[3] and "text" not in objs[3]
    # no readable file: the errors alone, without loading the model
    assert main(["recognize", files[1], "--model", str(tmp_path / "none.pt")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "bad.json" in err and "none.pt" not in err


def test_cli_recognize_names_a_file_without_points_only_among_several(tmp_path, capsys):
    from inkread.formats import write_ink
    model = save_tiny_model(tmp_path / "m.pt")
    write_ink(Ink([]), tmp_path / "empty.json")
    f = str(tmp_path / "empty.json")
    assert main(["recognize", f, "--model", str(model), "--no-lm"]) == 0
    assert capsys.readouterr().out == "(no points)\n"
    assert main(["recognize", f, f, "--model", str(model), "--no-lm"]) == 0
    assert capsys.readouterr().out == f"{f}\t(no points)\n" * 2
