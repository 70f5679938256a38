"""CER/WER on hand-made references and hypotheses; `inkread eval` end to end on a tiny model."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from inkread.cli import main
from inkread.datasets import load_spec
from inkread.errors import OptionError
from inkread.features import FeatureConfig
from inkread.evaluate import EDIT_KINDS, edit_kind, evaluate, normalize, score, tune, write_errors
from inkread.lm import CharLM
from inkread.recognizer import Recognizer

from recog_helpers import ALPHABET, save_tiny_model, tiny_model, write_native_dir


def test_cer_wer_on_hand_made_pairs():
    s = score(["the cat", "a dog"], ["the bat", "a dog ran"])
    # chars: 1 substitution + 4 insertions over 7 + 5 reference characters
    assert (s.char_errors, s.ref_chars) == (5, 12)
    assert s.cer == pytest.approx(5 / 12)
    # words: 1 substitution + 1 insertion over 2 + 2 reference words
    assert (s.word_errors, s.ref_words) == (2, 4)
    assert s.wer == pytest.approx(0.5)
    assert s.samples == 2


def test_perfect_and_empty():
    assert score(["abc"], ["abc"]).cer == 0.0
    s = score(["abc def"], [""])
    assert s.cer == 1.0 and s.wer == 1.0
    assert score([], []).cer == 0.0


def test_whitespace_is_normalised():
    s = score(["  Mr .  Foot "], ["Mr . Foot"])
    assert s.char_errors == 0 and s.ref_chars == len("Mr . Foot")


def test_edits_by_kind_and_most_frequent():
    # "Mr . Foot ' s" read as "Mr. foot's": three spaces lost, a case change; 'x' read as 'k'
    s = score(["Mr . Foot ' s line", "box", "a,b"], ["Mr. foot's line", "bok", "a.b!"])
    assert s.char_errors == 4 + 1 + 2
    assert dict(s.edit_kinds) == {"spaces": 3, "case": 1, "letters": 1, "punctuation": 2}
    assert sum(s.edit_kinds.values()) == s.char_errors
    assert s.top_confusions(2) == [(" ", "", 3), ("", "!", 1)]
    d = s.to_dict()
    assert d["edit_kinds"] == {"letters": 1, "case": 1, "spaces": 3, "punctuation": 2, "digits": 0}
    assert d["confusions"][0] == [" ", "", 3] and len(d["confusions"]) == 5
    json.dumps(d)  # counters with tuple keys would not serialise
    assert [edit_kind(*p) for p in [("1", "l"), ("", "7"), ("\t", ""), ("é", "e"), ("E", "e")]] == \
        ["digits", "digits", "spaces", "letters", "case"]
    assert set(EDIT_KINDS) >= set(s.edit_kinds)


def test_crossed_out_marks_keep_and_drop():
    refs, hyps = ["peers into # existence", "no marks"], ["peers into existence", "no marks"]
    keep = score(refs, hyps, "keep")
    assert keep.crossed_out_lines == 1 and keep.crossed_out_marks == 1
    assert keep.char_errors == 2 and keep.word_errors == 1   # '#' and its space; one word
    drop = score(refs, hyps, "drop")
    assert drop.char_errors == 0 and drop.word_errors == 0
    assert drop.ref_words == keep.ref_words - 1
    assert drop.crossed_out_lines == 1  # still reported
    assert normalize("a #x b", "drop") == "a b"
    with pytest.raises(OptionError):
        normalize("a", "ignore")


def test_mismatched_lists_refused():
    with pytest.raises(ValueError):
        score(["a"], [])


def test_write_errors_tsv(tmp_path):
    path = tmp_path / "e.tsv"
    write_errors(path, [("l1", "a\tb", "a b", 1, 1), ("l2", 'say "x"', "say x", 2, 1)])
    rows = list(csv.reader(path.open(encoding="utf-8"), delimiter="\t"))
    assert rows[0] == ["id", "reference", "hypothesis", "char_errors", "word_errors"]
    assert rows[1] == ["l1", "a\tb", "a b", "1", "1"] and rows[2][1] == 'say "x"'


def test_evaluate_tiny_model(tmp_path):
    ds = load_spec(f"native:{write_native_dir(tmp_path / 'd')}")
    rec = Recognizer(tiny_model(), ALPHABET, FeatureConfig())
    ev = evaluate(rec, ds, limit=4, batch_size=3)
    assert ev.scores.samples == 4 and len(ev.rows) == 4
    d = ev.to_dict()
    for key in ("cer", "wer", "samples", "seconds", "ref_chars", "char_errors"):
        assert key in d
    ids, refs, hyps = zip(*[(r[0], r[1], r[2]) for r in ev.rows])
    assert score(list(refs), list(hyps)).char_errors == ev.scores.char_errors


def test_tune_returns_greedy_then_sorted_settings(tmp_path):
    ds = load_spec(f"native:{write_native_dir(tmp_path / 'd')}")
    lm = CharLM.build(["ab ca", "bcd dab", "cdba bd"], order=3)
    rec = Recognizer(tiny_model(), ALPHABET, FeatureConfig(), lm=lm, beam=4)
    rows = tune(rec, list(ds), weights=[0.0, 1.0], bonuses=[0.0, 2.0])
    assert rows[0]["lm_weight"] is None and len(rows) == 5
    cers = [r["cer"] for r in rows[1:]]
    assert cers == sorted(cers)


def test_cli_eval_json_and_errors(tmp_path, capsys):
    data = write_native_dir(tmp_path / "d")
    model = save_tiny_model(tmp_path / "m.pt")
    errors = tmp_path / "errors.tsv"
    assert main(["eval", "--data", f"native:{data}", "--model", str(model), "--no-lm", "--json",
                 "--errors", str(errors), "--limit", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["samples"] == 5 and 0 <= out["cer"] and out["seconds"] > 0 and "wer" in out
    assert len(errors.read_text(encoding="utf-8").splitlines()) == 6
    assert main(["eval", "--data", f"native:{data}", "--model", str(model), "--no-lm"]) == 0
    text = capsys.readouterr().out
    assert "CER:" in text and "WER:" in text and "crossed-out" in text
    if out["char_errors"]:  # the tiny model's errors, by kind and the most frequent
        assert "edits:" in text and "top edits:" in text
    assert sum(out["edit_kinds"].values()) == out["char_errors"]


def test_cli_eval_bad_inputs_one_line_errors(tmp_path, capsys):
    data = write_native_dir(tmp_path / "d")
    assert main(["eval", "--data", f"native:{data}", "--model", str(tmp_path / "none.pt")]) == 2
    err = capsys.readouterr().err
    assert "none.pt" in err and len(err.strip().splitlines()) == 1
    assert main(["eval", "--data", "native:" + str(tmp_path / "nowhere"),
                 "--model", str(save_tiny_model(tmp_path / "m.pt"))]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_cli_lm_tune_writes_best_setting(tmp_path, capsys):
    data = write_native_dir(tmp_path / "d")
    model = save_tiny_model(tmp_path / "m.pt")
    lm_path = tmp_path / "lm.npz"
    CharLM.build(["ab ca", "bcd dab", "cdba bd"], order=3).save(lm_path)
    assert main(["lm", "tune", "--data", f"native:{data}", "--model", str(model), "--lm", str(lm_path),
                 "--weights", "0,0.5", "--bonuses", "0,1", "--beam", "4", "--write", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["rows"]) == 5 and out["written"]
    tuned = CharLM.load(lm_path).meta["tuned"]
    assert (tuned["lm_weight"], tuned["bonus"]) == (out["best"]["lm_weight"], out["best"]["bonus"])
    rec = Recognizer.load(model, lm=lm_path)
    assert (rec.lm_weight, rec.bonus) == (tuned["lm_weight"], tuned["bonus"])
    assert main(["lm", "tune", "--data", f"native:{data}", "--model", str(model),
                 "--lm", str(tmp_path / "none.npz")]) == 2
    assert "none.npz" in capsys.readouterr().err


def test_perturbations_imitate_other_devices():
    from inkread.evaluate import perturb
    from engine_helpers import make_ink
    ink = make_ink("abd")  # sampled at 100 Hz
    slow = perturb(ink, rate=50.0)
    assert [len(s) for s in slow.strokes] == [(len(s) + 1) // 2 + (len(s) % 2 == 0) for s in ink.strokes]
    for a, b in zip(ink.strokes, slow.strokes):
        assert (a.x[0], a.y[0], a.t[-1], a.x[-1]) == (b.x[0], b.y[0], b.t[-1], b.x[-1])
    assert slow.char_of_point is None and not slow.time_synthesized
    big = perturb(ink, scale=3.0, drop_time=True)
    assert big.time_synthesized and big.num_points == ink.num_points
    assert big.bbox() == tuple(3.0 * v for v in ink.bbox())
    with pytest.raises(Exception, match="rate"):
        perturb(ink, rate=-1.0)
    # A coarse grid, as a Tablet PC's pixels under small writing: every coordinate on it,
    # points kept (repeated where the pen moved less than a step), nothing moved more than half a step.
    coarse = perturb(ink, grid=0.1)
    from inkread.features import _estimate_height
    step = 0.1 * _estimate_height(ink.to_array()[:, :2], FeatureConfig().height_quantiles)
    xy, cxy = ink.to_array()[:, :2], coarse.to_array()[:, :2]
    assert cxy.shape == xy.shape and np.abs(cxy - xy).max() <= step / 2 + 1e-9
    np.testing.assert_allclose(cxy / step, np.round(cxy / step), atol=1e-9)
    assert len(np.unique(cxy, axis=0)) < len(np.unique(xy, axis=0))
    assert perturb(ink, grid=0.0) is ink
    with pytest.raises(ValueError, match="grid"):
        perturb(ink, grid=-0.1)


def test_cli_eval_robustness_options(tmp_path, capsys):
    data = write_native_dir(tmp_path / "d")
    model = save_tiny_model(tmp_path / "m.pt")
    assert main(["eval", "--data", f"native:{data}", "--model", str(model), "--no-lm", "--json",
                 "--drop-time", "--rate", "60", "--scale", "0.5", "--grid", "0.05"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["perturbation"] == {"drop_time": True, "rate": 60.0, "scale": 0.5, "grid": 0.05}
    with pytest.raises(SystemExit) as stop:  # refused while parsing, before any data is read
        main(["eval", "--data", f"native:{data}", "--model", str(model), "--scale", "0"])
    assert stop.value.code == 2 and "--scale" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["eval", "--data", f"native:{data}", "--model", str(model), "--grid", "2"])
    assert stop.value.code == 2 and "--grid" in capsys.readouterr().err


def _errors_file(path, rows):
    write_errors(path, [(i, r, h, 0, 0) for i, r, h in rows])  # edit columns are counted again
    return str(path)


def test_compare_counts_lines_and_the_bootstrap_interval_excludes_zero_only_for_a_real_gain(tmp_path):
    from inkread.evaluate import compare, read_errors
    refs = [(f"l{k}", "the quick fox", "the quick fox") for k in range(40)]
    a = [(i, r, "tha quick fix") for i, r, _ in refs]  # 2 errors a line
    b = [(i, r, "the quick fix") if k % 4 else (i, r, "tha quick fix") for k, (i, r, _) in enumerate(refs)]
    pa, pb = _errors_file(tmp_path / "a.tsv", a), _errors_file(tmp_path / "b.tsv", b)
    assert read_errors(pa) == a
    c = compare(read_errors(pa), read_errors(pb), draws=2000)
    assert (c.lines, c.ref_chars, c.errors_a, c.errors_b) == (40, 40 * 13, 80, 50)
    assert (c.better, c.worse, c.difference) == (30, 0, -30)
    lo, hi = c.interval
    assert lo <= -30 <= hi < 0  # B is better on 30 of 40 lines and never worse
    same = compare(a, list(reversed(a)), draws=500)  # order does not matter: lines pair by id
    assert (same.difference, same.better, same.worse, same.interval) == (0, 0, 0, (0.0, 0.0))
    # one line better, one worse by as much: no difference shown
    mixed = [(i, r, "the quick fox") if k == 0 else (i, r, "tha quicc fixx") if k == 1 else (i, r, h)
             for k, (i, r, h) in enumerate(a)]
    m = compare(a, mixed, draws=2000)
    assert m.difference == 0 and m.better == 1 and m.worse == 1 and m.interval[0] < 0 < m.interval[1]
    part = compare(a[:10], b, draws=0)
    assert (part.lines, part.only_a, part.only_b) == (10, 0, 30)


def test_compare_refuses_other_data_and_malformed_files_in_one_line(tmp_path, capsys):
    a = _errors_file(tmp_path / "a.tsv", [("l1", "a cat", "a cot"), ("l2", "dog", "dog")])
    other = _errors_file(tmp_path / "o.tsv", [("l1", "a hat", "a hat")])
    assert main(["compare", a, other]) == 2
    err = capsys.readouterr().err.strip()
    assert "'l1' has different references" in err and len(err.splitlines()) == 1
    disjoint = _errors_file(tmp_path / "d.tsv", [("x9", "dog", "dog")])
    assert main(["compare", a, disjoint]) == 2
    assert "no line id in common" in capsys.readouterr().err
    bad = tmp_path / "bad.tsv"
    for text, where in [("not a header\n", "line 1"), ("id\treference\thypothesis\nl1\tonly two\n", "line 2"),
                        ("id\treference\thypothesis\nl1\ta\tb\nl1\ta\tb\n", "line 3")]:
        bad.write_text(text, encoding="utf-8")
        assert main(["compare", a, str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert f"bad.tsv: {where}:" in err and len(err.splitlines()) == 1
    assert main(["compare", a, str(tmp_path / "missing.tsv")]) == 2
    assert "missing.tsv: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["compare", a, a, "--draws", "-1"])
    assert "--draws" in capsys.readouterr().err


def test_cli_compare_prints_the_verdict(tmp_path, capsys):
    refs = [f"line {k} of text" for k in range(30)]
    a = _errors_file(tmp_path / "a.tsv", [(f"i{k}", r, r.replace("t", "l")) for k, r in enumerate(refs)])
    b = _errors_file(tmp_path / "b.tsv", [(f"i{k}", r, r if k else r + " .") for k, r in enumerate(refs)])
    assert main(["compare", a, b, "--draws", "1000"]) == 0
    out = capsys.readouterr().out
    # A misreads two t's a line (60 letters); B gets them right but adds " ." to the first line
    assert "B better on 29 lines, worse on 0" in out and "B is better" in out
    assert "by kind:   letters 60 -> 0 (-60), spaces 0 -> 1 (+1), punctuation 0 -> 1 (+1)" in out
    assert main(["compare", b, a, "--json", "--draws", "1000"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["difference"] == 58 and d["interval"][0] > 0 and d["errors_a"] == 2
    assert d["kinds_a"] == {"letters": 0, "case": 0, "spaces": 1, "punctuation": 1, "digits": 0}
    assert d["kinds_b"]["letters"] == 60


def test_frame_agreement_counts_characters_written_at_the_same_frame():
    from inkread.evaluate import frame_agreement

    def onehot(labels, classes=4):
        return np.log(np.eye(classes)[labels] * 0.97 + 0.01)
    a = [onehot([0, 1, 0, 2, 0, 0]), onehot([3, 0, 0])]
    assert frame_agreement(a, a) == 1.0
    late = [onehot([0, 0, 1, 0, 2, 0]), onehot([0, 3, 0])]  # every character a frame later
    assert frame_agreement(a, late) == 0.0
    half = [onehot([0, 1, 0, 0, 2, 0]), onehot([3, 0, 0])]  # one of three a frame later
    assert frame_agreement(a, half) == pytest.approx(2 / 3)
    blank = [onehot([0] * 6), onehot([0] * 3)]  # the smaller of the two directions
    assert frame_agreement(a, blank) == 0.0 and frame_agreement(blank, blank) == 1.0
    assert frame_agreement([a[0][:4], None], [a[0], a[1]]) == 1.0  # lengths cut to the shorter


def test_ensemble_reads_the_renormalised_mean_of_the_networks(tmp_path, capsys, monkeypatch, caplog):
    """`eval --ensemble`: the network output is the mean of both models' log-probabilities per
    frame, renormalised; reading a model with itself changes nothing; a model that reads other
    frames is refused in one line naming it."""
    import numpy as np
    import torch
    from inkread.checkpoint import save
    from inkread.features import featurize
    ds = load_spec(f"native:{write_native_dir(tmp_path / 'd')}")
    a, b = save_tiny_model(tmp_path / "a.pt", seed=1), save_tiny_model(tmp_path / "b.pt", seed=2)
    feats = [featurize(s.ink, FeatureConfig()).x for s in list(ds)[:3]]
    ra, rb = (Recognizer.load(p, lm=None, backend="torch") for p in (a, b))
    lpa, lens = ra.emissions(feats)
    lpb, _ = rb.emissions(feats)
    ra.join(rb)
    lp, lens2 = ra.emissions(feats)
    assert torch.equal(lens, lens2)
    torch.testing.assert_close(lp, ((lpa + lpb) / 2).log_softmax(-1))
    assert np.allclose(lp.exp().sum(-1).numpy(), 1.0, atol=1e-5)
    assert ra.settings()["ensemble"] == [str(b)]

    for ens, same in ((str(a), True), (str(b), None)):
        caplog.clear()
        with caplog.at_level("WARNING", logger="inkread.commands.eval"):
            assert main(["eval", "--data", ds.spec, "--model", str(a), "--no-lm",
                         "--backend", "torch", "--json", "--ensemble", ens]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["ensemble"] == [ens]
        if same:  # a model read with itself reads as it does alone, and agrees with itself
            assert "writes the same character" not in caplog.text
            assert main(["eval", "--data", ds.spec, "--model", str(a), "--no-lm", "--backend", "torch",
                         "--json"]) == 0
            alone = json.loads(capsys.readouterr().out)
            assert alone["char_errors"] == out["char_errors"] and "ensemble" not in alone
    import inkread.evaluate as ev
    monkeypatch.setattr(ev, "frame_agreement", lambda x, y: 0.5)  # as r18 and r26 (0.67)
    with caplog.at_level("WARNING", logger="inkread.commands.eval"):
        assert main(["eval", "--data", ds.spec, "--model", str(a), "--no-lm", "--ensemble", str(b)]) == 0
    assert f"--ensemble {b}: writes the same character at the same frame as {a} only 50%" in caplog.text
    assert "their mean drops characters" in caplog.text
    capsys.readouterr()
    other = tiny_model(seed=3, subsample=3)
    save(tmp_path / "c.pt", other, ALPHABET, FeatureConfig(), meta={})
    assert main(["eval", "--data", ds.spec, "--model", str(a), "--no-lm", "--ensemble",
                 str(tmp_path / "c.pt")]) == 2
    err = capsys.readouterr().err
    assert "c.pt" in err and "subsamples by 3, not 2" in err and len(err.strip().splitlines()) == 1


def test_cli_eval_names_the_skipped_files_and_why(tmp_path, capsys, caplog):
    data = write_native_dir(tmp_path / "d")
    (data / "garbage.json").write_text("{not json")
    for i in range(11):
        (data / f"empty{i:02}.json").write_text("")
    model = save_tiny_model(tmp_path / "m.pt")
    assert main(["eval", "--data", f"native:{data}", "--model", str(model), "--no-lm"]) == 0
    assert "(6 samples scored, 12 skipped)" in capsys.readouterr().out
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 11 and warned[-1] == "... and 2 more skipped", warned
    assert warned[0] == f"skipped {data / 'empty00.json'}: line 1, column 1: not valid JSON (Expecting value)"
    assert all(w.count(".json") == 1 for w in warned[:-1])  # each file named once
    caplog.clear()
    assert main(["eval", "--data", f"native:{data}", "--model", str(model), "--no-lm", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["skipped"] == 12 and len(out["skipped_items"]) == 12
    assert {"name": str(data / "garbage.json"),
            "reason": "line 1, column 2: not valid JSON (Expecting property name enclosed in double quotes)"} \
        in out["skipped_items"]
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "garbage.json").write_text("{not json")
    assert main(["eval", "--data", f"native:{only_bad}", "--model", str(model)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1 skipped: " in err and err.count("garbage.json") == 1, err
