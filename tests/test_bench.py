"""`inkread bench` on a tiny model and a couple of lines: the report's structure, not its times."""
from __future__ import annotations

import json

import pytest

from inkread import bench
from inkread.cli import main
from inkread.datasets import load_spec
from inkread.features import FeatureConfig
from inkread.lm import CharLM
from inkread.recognizer import Recognizer

from recog_helpers import ALPHABET, save_tiny_model, tiny_model, write_native_dir

STAGES = ("features", "network", "greedy", "beam", "total_greedy", "total_beam")


def _check_line_stats(row: dict, lines: int) -> None:
    for stage in STAGES:
        st = row[stage]
        assert st["n"] == lines
        assert 0 <= st["median_ms"] <= st["p95_ms"]


def test_bench_run_report(tmp_path):
    samples = list(load_spec(f"native:{write_native_dir(tmp_path / 'd')}"))
    lm = CharLM.build(["ab ca", "bcd dab"], order=3)
    rec = Recognizer(tiny_model(), ALPHABET, FeatureConfig(), lm=lm)
    r = bench.run(rec, samples, lines=2, beam=4, train_batch=2, all_threads=2, extras=False, data="test",
                  train_threads=1)
    assert r["lines"] == 2 and r["model"]["parameters"] > 0
    assert r["backend"] == "onnx"  # the default engine when ONNX Runtime is installed
    for key in ("per_line", "per_line_torch"):  # torch is timed beside it in the same run
        assert set(r[key]) == {"1", "2"}
        for row in r[key].values():
            _check_line_stats(row, 2)
    t = r["train"]
    assert t["batch"] == 2 and t["threads"] == 1 and t["step_s"] > 0 and t["bare_lstm_step_s"] > 0
    assert t["padded_input_frames"] >= t["input_frames"] > 0
    assert t["step_over_bare_lstm"] == t["step_s"] / t["bare_lstm_step_s"]
    assert r["peak_rss_mb"] > 10
    import torch
    mc = r["machine"]  # what the times depend on besides the code
    assert mc["capability"] == torch.backends.cpu.get_cpu_capability() and mc["cores"] >= 1 and mc["cpu"]
    text = bench.format_report(r)
    assert f"machine: {mc['cpu']}, {mc['capability']}, {mc['cores']} cores" in text
    assert "onnx, 1 thr" in text and "torch, 2 thr" in text and "train step" in text and "peak memory" in text
    from inkread.train import bf16_native
    assert ("step_bf16_s" in t) == bf16_native()  # timed where `train --bf16` would be faster
    if bf16_native():
        assert t["step_bf16_s"] > 0 and "train step in bfloat16" in text
    json.dumps(r)


def test_optional_benchmarks_absent_or_failing_do_not_break():
    assert bench._optional("inkread.no_such_module", "bench") is None
    assert bench._optional("inkread.evaluate", "no_such_function") is None
    assert bench._optional("inkread.evaluate", "score", ["a"], []).startswith("failed: ValueError")


def test_cli_bench_json(tmp_path, capsys):
    data = write_native_dir(tmp_path / "d")
    model = save_tiny_model(tmp_path / "m.pt")
    assert main(["bench", "--model", str(model), "--data", f"native:{data}", "--lines", "2",
                 "--train-batch", "2", "--threads", "1", "--no-extras", "--no-lm", "--json",
                 "--backend", "torch"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["lines"] == 2 and list(r["per_line"]) == ["1"] and r["lm"] is None
    assert r["backend"] == "torch" and "per_line_torch" not in r
    _check_line_stats(r["per_line"]["1"], 2)
    assert r["model"]["trained"] is True  # a model file with training metadata
    assert main(["bench", "--model", str(model), "--data", f"native:{tmp_path / 'empty'}"]) == 2


def test_bench_of_an_int8_model_times_the_float_graph_beside_it(tmp_path):
    samples = list(load_spec(f"native:{write_native_dir(tmp_path / 'd')}"))
    rec = Recognizer(tiny_model(), ALPHABET, FeatureConfig(), meta={"weights_dtype": "int8"}, backend="onnx")
    r = bench.run(rec, samples, lines=2, beam=4, train_batch=0, all_threads=1, extras=False, data="test")
    assert r["backend"] == "onnx-int8"
    for key in ("per_line", "per_line_onnx", "per_line_torch"):
        _check_line_stats(r[key]["1"], 2)
    text = bench.format_report(r)
    assert "onnx-int8, 1 thr" in text and "onnx, 1 thr" in text and "torch, 1 thr" in text


def test_every_timed_pass_meets_the_lm_cold(tmp_path, monkeypatch):
    """The LM caches the contexts it has scored; without a reset the engines timed after the
    first would decode lines the LM already knows, and their beam search would look faster."""
    samples = list(load_spec(f"native:{write_native_dir(tmp_path / 'd')}"))
    lm = CharLM.build(["ab ca", "bcd dab"], order=3)
    rec = Recognizer(tiny_model(), ALPHABET, FeatureConfig(), lm=lm, lm_weight=1.0)
    seen, decoders = [], []
    real = bench.bench_lines

    def spy(r, inks, threads, beam_decoder):
        seen.append(len(lm._tables) + len(lm._cache) + len(lm._vcache))
        decoders.append(beam_decoder)
        out = real(r, inks, threads, beam_decoder)
        assert lm._tables  # the pass did use the LM, so the next one has something to forget
        return out

    monkeypatch.setattr(bench, "bench_lines", spy)
    bench.run(rec, samples, lines=2, beam=4, train_batch=0, all_threads=2, extras=False)
    assert len(seen) == 4  # onnx and torch, 1 and 2 threads
    assert seen == [0, 0, 0, 0]
    assert len({id(d) for d in decoders}) == 4  # and each pass its own decoder cache


def test_clear_cache_forgets_and_scores_the_same():
    lm = CharLM.build(["ab ca", "bcd dab"], order=3)
    state = lm.advance(lm.start(), lm.ids("b")[0])
    hs = lm.context_keys(state)
    token = lm.ids("c")[0]
    before = (lm.log_dist(state).tolist(), lm.logprob_in(lm.context_table(hs), token))
    assert lm._tables and lm._cache
    lm.clear_cache()
    assert not (lm._tables or lm._cache or lm._vcache)
    assert (lm.log_dist(state).tolist(), lm.logprob_in(lm.context_table(hs), token)) == before


def test_bench_help_says_torch_is_timed_beside_the_engine_asked(capsys):
    """--backend onnx still prints a torch row: on purpose, the yardstick of the same run, and the help says so."""
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "torch is always timed beside another engine" in text and "yardstick" in text
