"""Training: overfitting, exact resume after kill -9, torchrun DDP on CPU."""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from inkread.checkpoint import load
from inkread.features import FeatureConfig
from inkread.formats import write_ink
from inkread.model import ModelConfig
from inkread.train import TrainConfig, build_run, fit, greedy_texts, make_batch, validate

from engine_helpers import TEXTS, make_ink, tiny_dataset

TINY = ModelConfig(hidden_size=32, num_layers=1, conv_channels=16, subsample=2, dropout=0.0)


def test_tiny_model_overfits_to_cer_zero(tmp_path):
    torch.set_num_threads(1)
    cfg = TrainConfig(epochs=300, lr=1e-2, warmup_steps=10, min_lr_ratio=1.0, augment=False,
                      patience=1000, checkpoint_minutes=100, batch_frames=100000, seed=3)
    ds = tiny_dataset()
    run = build_run([ds], [1.0], ds, tmp_path / "run", TINY, FeatureConfig(points_per_height=6), cfg)
    result = fit(run)
    v = validate(run.model, run.val, run.fcfg, run.alphabet, cfg)
    assert v["val_cer"] == 0.0, v["examples"]
    assert result["best_val_cer"] == 0.0 and result["step"] <= 300
    best = load(tmp_path / "run" / "best.pt")
    assert best.alphabet.chars == "abcd" and best.meta["steps"] > 0
    assert (tmp_path / "run" / "metrics.csv").read_text().startswith("epoch,")


def test_nan_batch_is_skipped_not_fatal(tmp_path):
    ds = tiny_dataset()
    cfg = TrainConfig(epochs=1, augment=False, checkpoint_minutes=100)
    run = build_run([ds], [1.0], None, tmp_path / "r", TINY, FeatureConfig(), cfg)
    with torch.no_grad():
        next(run.model.parameters()).fill_(float("nan"))
    out = fit(run)
    assert run.skipped_batches >= 1 and out["step"] >= 1


def _write_data(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i, t in enumerate(TEXTS * 2):
        write_ink(make_ink(t, t0=i), root / f"line{i:02d}.json")
    return root


def _train_cmd(data: Path, out: Path, epochs: int) -> list[str]:
    return [sys.executable, "-m", "inkread", "train", "--train", f"native:{data}", "--val", f"native:{data}",
            "--out", str(out), "--hidden-size", "16", "--num-layers", "1", "--conv-channels", "8",
            "--epochs", str(epochs), "--batch-frames", "300", "--checkpoint-minutes", "0.0001",
            "--threads", "1", "--seed", "5"]


def _fingerprint(path: Path) -> dict:
    return {k: v.clone() for k, v in load(path).model.state_dict().items()}


def test_resume_after_kill9_continues_exactly(tmp_path):
    data = _write_data(tmp_path / "data")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    ref = tmp_path / "ref"
    subprocess.run(_train_cmd(data, ref, 4), check=True, capture_output=True, env=env, timeout=300)
    run = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(data, run, 4), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    while time.time() < deadline:  # kill once a mid-run checkpoint exists
        last = run / "last.pt"
        if last.exists() and proc.poll() is None:
            try:
                st = load(last).train_state
            except Exception:
                st = None
            if st and st["step"] >= 3:
                break
        time.sleep(0.05)
    killed_mid_run = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if not killed_mid_run:
        pytest.skip("the run finished before it could be killed (machine too fast)")
    st = load(run / "last.pt").train_state
    assert 0 < st["step"]
    subprocess.run([sys.executable, "-m", "inkread", "train", "--resume", str(run)], check=True,
                   capture_output=True, env=env, timeout=300)
    a, b = _fingerprint(ref / "last.pt"), _fingerprint(run / "last.pt")
    assert load(run / "last.pt").train_state["step"] == load(ref / "last.pt").train_state["step"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


@pytest.mark.skipif(shutil.which("torchrun") is None and not Path(sys.executable).with_name("torchrun").exists(),
                    reason="torchrun not installed")
def test_torchrun_two_processes_identical_weights(tmp_path):
    data = _write_data(tmp_path / "data")
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    cmd = [torchrun, "--nproc_per_node", "2", "--standalone", "-m"] + \
        _train_cmd(data, tmp_path / "ddp", 2)[2:]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    prints = dict(re.findall(r"rank (\d) final weights sha1 ([0-9a-f]+)", p.stderr))
    assert set(prints) == {"0", "1"}, p.stderr[-2000:]
    assert prints["0"] == prints["1"]
    assert (tmp_path / "ddp" / "last.pt").exists()


def test_init_fine_tunes_from_a_model(tmp_path):
    """--init takes the model's weights, alphabet and settings; model options are ignored."""
    from inkread.checkpoint import save
    from inkread.cli import main
    from recog_helpers import ALPHABET, tiny_model, write_native_dir
    data = write_native_dir(tmp_path / "lines")
    base = tiny_model(seed=5)
    save(tmp_path / "base.pt", base, ALPHABET, FeatureConfig(), meta={})
    rc = main(["train", "--init", str(tmp_path / "base.pt"), "--train", f"native:{data}",
               "--out", str(tmp_path / "ft"), "--epochs", "1", "--lr", "1e-12", "--warmup-steps", "1",
               "--conv-channels", "99", "--no-augment"])
    assert rc == 0
    ft = load(tmp_path / "ft" / "last.pt")
    assert ft.alphabet.chars == ALPHABET.chars and ft.model.cfg == base.cfg
    assert ft.train_state["specs"]["init"] == str(tmp_path / "base.pt")
    for (k, a), b in zip(base.state_dict().items(), ft.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k
    assert main(["train", "--init", str(tmp_path / "nope.pt"), "--train", f"native:{data}",
                 "--out", str(tmp_path / "x")]) == 2


def test_init_may_change_dropout_only(tmp_path):
    """A fine-tune may regularise harder: --dropout is taken, shape options are not."""
    from inkread.checkpoint import save
    from inkread.cli import main
    from recog_helpers import ALPHABET, tiny_model, write_native_dir
    data = write_native_dir(tmp_path / "lines")
    base = tiny_model(seed=6)
    save(tmp_path / "base.pt", base, ALPHABET, FeatureConfig(), meta={})
    assert main(["train", "--init", str(tmp_path / "base.pt"), "--train", f"native:{data}",
                 "--out", str(tmp_path / "ft"), "--epochs", "1", "--dropout", "0.45",
                 "--num-layers", "4", "--no-augment"]) == 0
    cfg = load(tmp_path / "ft" / "last.pt").model.cfg
    assert cfg.dropout == 0.45 and cfg.num_layers == base.cfg.num_layers
    assert dataclasses.replace(cfg, dropout=base.cfg.dropout) == base.cfg


def test_widen_state_keeps_what_the_network_computes():
    """Grown layers give the old outputs exactly; the added units are live, not dead."""
    from inkread.model import InkModel, widen_state
    torch.manual_seed(11)
    small = InkModel(ModelConfig(hidden_size=6, num_layers=2, conv_channels=5, subsample=2)).eval()
    torch.manual_seed(12)
    big = InkModel(ModelConfig(hidden_size=9, num_layers=2, conv_channels=5, subsample=2)).eval()
    fresh = {k: v.clone() for k, v in big.state_dict().items()}
    big.load_state_dict(widen_state(small.state_dict(), 6, big.state_dict(), 9))
    x, lengths = torch.randn(3, 40, 4), torch.tensor([40, 31, 7])
    a, la, ha = small(x, lengths, return_hidden=True)
    b, lb, hb = big(x, lengths, return_hidden=True)
    assert torch.equal(la, lb)
    assert torch.allclose(a, b, atol=1e-6)
    # the old units' states are where they were: forward units first, backward after H'
    assert torch.allclose(hb[1][..., :6], ha[1][..., :6], atol=1e-6)
    assert torch.allclose(hb[1][..., 9:15], ha[1][..., 6:12], atol=1e-6)
    # the added units compute something (random incoming weights), and nothing reads them yet
    assert hb[1][..., 6:9].abs().max() > 1e-3
    assert big.head.weight[:, 6:9].abs().max() == 0 and big.head.weight[:, 15:].abs().max() == 0
    old_rows = [k * 9 + i for k in range(4) for i in range(6)]  # the old units' rows of gates i, f, g, o
    assert big.layers[1].fwd.weight_ih_l0[old_rows][:, 6:9].abs().max() == 0
    assert big.layers[1].fwd.weight_hh_l0[old_rows][:, 6:9].abs().max() == 0
    # the added units' own rows keep the fresh initialisation
    assert torch.equal(big.layers[0].fwd.weight_hh_l0[6:9], fresh["layers.0.fwd.weight_hh_l0"][6:9])
    with pytest.raises(ValueError, match="shrink"):
        widen_state(big.state_dict(), 9, small.state_dict(), 6)


def test_init_with_a_larger_hidden_size_grows_the_model(tmp_path):
    """`train --init M --hidden-size H` starts from M's function in a wider network; never narrower."""
    from inkread.checkpoint import save
    from inkread.cli import main
    from inkread.features import featurize
    from recog_helpers import ALPHABET, tiny_model, write_native_dir
    data = write_native_dir(tmp_path / "lines")
    base = tiny_model(seed=7)
    save(tmp_path / "base.pt", base, ALPHABET, FeatureConfig(), meta={})
    assert main(["train", "--init", str(tmp_path / "base.pt"), "--train", f"native:{data}",
                 "--out", str(tmp_path / "ft"), "--epochs", "1", "--lr", "1e-12", "--warmup-steps", "1",
                 "--hidden-size", "12", "--no-augment"]) == 0
    grown = load(tmp_path / "ft" / "last.pt")
    assert grown.model.cfg == dataclasses.replace(base.cfg, hidden_size=12)
    assert grown.train_state["specs"]["grown_from_hidden"] == base.cfg.hidden_size
    ink = make_ink("abc")
    x = torch.from_numpy(featurize(ink, FeatureConfig()).x).unsqueeze(0)
    L = torch.tensor([x.shape[1]])
    assert torch.allclose(base(x, L)[0], grown.model.eval()(x, L)[0], atol=1e-4)
    assert main(["train", "--init", str(tmp_path / "base.pt"), "--train", f"native:{data}",
                 "--out", str(tmp_path / "x"), "--hidden-size", "4"]) == 2


def test_warp_x_is_monotone_and_keeps_the_extent():
    from inkread.train import warp_x
    rng = np.random.default_rng(3)
    x = np.sort(rng.uniform(-2.0, 9.0, 400))
    w = warp_x(x, rng)
    assert np.all(np.diff(w) >= 0)  # letters keep their left-to-right order
    assert w[0] == pytest.approx(x[0]) and w[-1] == pytest.approx(x[-1])
    assert np.abs(w - x).max() > 0.05  # it does move things
    assert np.array_equal(warp_x(np.full(5, 1.5), rng), np.full(5, 1.5))  # a vertical stroke stays


def test_keep_epochs_then_average(tmp_path):
    """--keep-epochs keeps the last epochs' models; `inkread average` makes their mean."""
    from inkread.cli import main
    ds = tiny_dataset()
    cfg = TrainConfig(epochs=3, keep_epochs=2, augment=False, checkpoint_minutes=100, lr=1e-2, warmup_steps=1)
    run = build_run([ds], [1.0], ds, tmp_path / "run", TINY, FeatureConfig(points_per_height=6), cfg)
    fit(run)
    kept = sorted(p.name for p in (tmp_path / "run").glob("epoch*.pt"))
    assert kept == ["epoch002.pt", "epoch003.pt"]
    a, b = (load(tmp_path / "run" / k) for k in kept)
    assert a.meta["val"]["epoch"] == 2 and b.meta["val"]["epoch"] == 3
    assert main(["average", *(str(tmp_path / "run" / k) for k in kept), "-o", str(tmp_path / "avg.pt")]) == 0
    avg = load(tmp_path / "avg.pt")
    assert avg.meta["averaged_from"][1].endswith("epoch003.pt") and "val" not in avg.meta
    for (k, x), y, z in zip(a.model.state_dict().items(), b.model.state_dict().values(),
                            avg.model.state_dict().values()):
        assert torch.allclose(z, (x + y) / 2, atol=1e-6), k
    assert not torch.equal(a.model.head.weight, b.model.head.weight)  # the mean is not a copy


def test_average_refuses_models_that_do_not_match(tmp_path, capsys):
    from inkread.checkpoint import save
    from inkread.cli import main
    from recog_helpers import ALPHABET, tiny_model
    save(tmp_path / "a.pt", tiny_model(seed=1), ALPHABET, FeatureConfig(), meta={})
    save(tmp_path / "b.pt", tiny_model(seed=2, subsample=3), ALPHABET, FeatureConfig(), meta={})
    assert main(["average", str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), "-o", str(tmp_path / "c.pt")]) == 2
    err = capsys.readouterr().err
    assert "b.pt" in err and "model_config" in err and not (tmp_path / "c.pt").exists()
    assert main(["average", str(tmp_path / "a.pt"), "-o", str(tmp_path / "c.pt")]) == 2
    # dropout acts only in training: two runs that differ in it alone average fine
    other = tiny_model(seed=3)
    other.cfg = dataclasses.replace(other.cfg, dropout=0.4)
    save(tmp_path / "d.pt", other, ALPHABET, FeatureConfig(), meta={})
    assert main(["average", str(tmp_path / "a.pt"), str(tmp_path / "d.pt"), "-o", str(tmp_path / "e.pt")]) == 0
    assert load(tmp_path / "e.pt").model.cfg.dropout == 0.0  # the first file's
    # the output may not be one of the inputs (an epoch's checkpoint would be lost)
    before = (tmp_path / "d.pt").read_bytes()
    assert main(["average", str(tmp_path / "a.pt"), str(tmp_path / "d.pt"), "-o", str(tmp_path / "d.pt")]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err and (tmp_path / "d.pt").read_bytes() == before


def test_export_half_halves_the_file_and_keeps_the_outputs(tmp_path, capsys):
    """`inkread export --half` stores float16 weights; loading gives float32 and nearly the same outputs."""
    from inkread.checkpoint import save
    from inkread.cli import main
    from recog_helpers import ALPHABET, tiny_model
    model = tiny_model(seed=4)
    save(tmp_path / "full.pt", model, ALPHABET, FeatureConfig(), meta={"note": "kept"},
         train_state={"step": 7, "blob": torch.zeros(4000)})
    assert main(["export", str(tmp_path / "full.pt"), "-o", str(tmp_path / "half.pt"), "--half"]) == 0
    assert "float16" in capsys.readouterr().out
    raw = torch.load(tmp_path / "half.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in raw["state_dict"].values() if v.is_floating_point())
    assert "train_state" not in raw
    half = load(tmp_path / "half.pt")
    assert half.meta["weights_dtype"] == "float16" and half.meta["note"] == "kept"
    assert all(p.dtype == torch.float32 for p in half.model.parameters())
    for (k, a), b in zip(model.state_dict().items(), half.model.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-4), k
    assert any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                     half.model.state_dict().values()))  # rounded
    x, lengths = torch.randn(2, 40, model.cfg.input_size), torch.tensor([40, 31])
    with torch.no_grad():
        full_lp, _ = model(x, lengths)
        half_lp, _ = half.model(x, lengths)
    assert (full_lp - half_lp).abs().max() < 1e-2
    # float32 export drops the training state and the float16 mark
    assert main(["export", str(tmp_path / "half.pt"), "-o", str(tmp_path / "back.pt")]) == 0
    assert "weights_dtype" not in load(tmp_path / "back.pt").meta
    back = torch.load(tmp_path / "back.pt", weights_only=True)["state_dict"]
    nbytes = [sum(v.numel() * v.element_size() for v in sd.values()) for sd in (raw["state_dict"], back)]
    assert nbytes[0] * 2 == nbytes[1]  # every weight of this model is floating point


def test_export_refuses_overflow_and_overwriting(tmp_path, capsys):
    from inkread.checkpoint import save
    from inkread.cli import main
    from recog_helpers import ALPHABET, tiny_model
    model = tiny_model()
    save(tmp_path / "m.pt", model, ALPHABET, FeatureConfig(), meta={})
    assert main(["export", str(tmp_path / "m.pt"), "-o", str(tmp_path / "m.pt"), "--half"]) == 2
    assert "overwrite" in capsys.readouterr().err
    with torch.no_grad():
        model.head.weight[0, 0] = 1e6  # beyond float16's 65504
    save(tmp_path / "big.pt", model, ALPHABET, FeatureConfig(), meta={})
    assert main(["export", str(tmp_path / "big.pt"), "-o", str(tmp_path / "out.pt"), "--half"]) == 2
    err = capsys.readouterr().err
    assert "float16" in err and "head.weight" in err and "Traceback" not in err
    assert not (tmp_path / "out.pt").exists()


def test_export_int8_quarters_the_matrices_and_keeps_the_outputs(tmp_path, capsys):
    """`inkread export --int8`: int8 matrices with a scale per row; loading gives float32, close outputs."""
    from inkread.checkpoint import INT8_SCALE, save
    from inkread.cli import main
    from recog_helpers import ALPHABET, tiny_model
    model = tiny_model(seed=5)
    save(tmp_path / "full.pt", model, ALPHABET, FeatureConfig(), meta={})
    assert main(["export", str(tmp_path / "full.pt"), "-o", str(tmp_path / "q.pt"), "--int8"]) == 0
    assert "int8" in capsys.readouterr().out
    raw = torch.load(tmp_path / "q.pt", weights_only=True)["state_dict"]
    matrices = [k for k, v in model.state_dict().items() if v.dim() >= 2]
    assert matrices and all(raw[k].dtype == torch.int8 and raw[k + INT8_SCALE].shape == (raw[k].shape[0],)
                            for k in matrices)
    assert all(raw[k].dtype == torch.float16 for k, v in model.state_dict().items() if v.dim() < 2)
    q = load(tmp_path / "q.pt")
    assert q.meta["weights_dtype"] == "int8"
    assert all(p.dtype == torch.float32 for p in q.model.parameters())
    for k in matrices:  # rounding error at most half a step of the row's scale
        w, wq = model.state_dict()[k], q.model.state_dict()[k]
        step = w.reshape(w.shape[0], -1).abs().amax(1) / 127
        err = (w - wq).reshape(w.shape[0], -1).abs().amax(1)
        assert torch.all(err <= step / 2 + 1e-7), k
    x, lengths = torch.randn(2, 40, model.cfg.input_size), torch.tensor([40, 31])
    with torch.no_grad():
        diff = (model(x, lengths)[0] - q.model(x, lengths)[0]).abs().max()
    assert 0 < diff < 0.05


def test_damaged_int8_file_is_named_not_a_traceback(tmp_path):
    from inkread.checkpoint import INT8_SCALE, save
    from inkread.errors import CheckpointError
    from recog_helpers import ALPHABET, tiny_model
    save(tmp_path / "q.pt", tiny_model(), ALPHABET, FeatureConfig(), meta={}, weights="int8")
    obj = torch.load(tmp_path / "q.pt", weights_only=True)
    key = next(k for k in obj["state_dict"] if k.endswith(INT8_SCALE))
    del obj["state_dict"][key]
    torch.save(obj, tmp_path / "cut.pt")
    with pytest.raises(CheckpointError, match="cut.pt.*lacks a float scale"):
        load(tmp_path / "cut.pt")
    with pytest.raises(CheckpointError, match="unknown weights storage"):
        save(tmp_path / "x.pt", tiny_model(), ALPHABET, FeatureConfig(), weights="int4")


def _line_of_words() -> np.ndarray:
    """Three 'words' of two strokes each, then an i-dot over the first word written last."""
    rows = []
    t = 0.0

    def stroke(x0, x1, y0, y1, n=12):
        nonlocal t
        for k in range(n):
            u = k / (n - 1)
            rows.append([x0 + (x1 - x0) * u, y0 + (y1 - y0) * np.sin(np.pi * u), t, float(k == n - 1)])
            t += 0.01

    for w in range(3):
        left = w * 3.0
        stroke(left, left + 0.9, 0.0, 1.0)
        stroke(left + 1.0, left + 2.0, 0.0, -0.6)
    stroke(1.4, 1.45, 1.5, 1.55, n=3)  # the dot, written after the line
    return np.array(rows)


def test_word_groups_finds_the_words_and_puts_a_late_dot_in_its_word():
    from inkread.words import word_groups
    groups = word_groups(_line_of_words())
    assert [sorted(g.tolist()) for g in groups] == [[0, 1, 6], [2, 3], [4, 5]]


def test_jitter_words_moves_each_word_as_a_whole_and_keeps_their_order():
    from inkread.words import jitter_words, word_groups
    arr = _line_of_words()
    out = jitter_words(arr, np.random.default_rng(5), gap_spread=0.5, shift=0.2, scale=0.2)
    assert out.shape == arr.shape
    assert np.array_equal(out[:, 2:], arr[:, 2:])  # times and pen lifts are kept
    stroke_of = np.repeat(np.arange(7), [12, 12, 12, 12, 12, 12, 3])
    prev_right, offsets = -np.inf, []
    for g in word_groups(arr):
        pts = np.isin(stroke_of, g)
        a, b = arr[pts, :2], out[pts, :2]
        # one scale and one offset per word: a similarity without rotation
        f = np.ptp(b[:, 0]) / np.ptp(a[:, 0])
        assert np.allclose(b - b[0], (a - a[0]) * f, atol=1e-9)
        assert 0.8 < f < 1.25 and not np.isclose(f, 1.0)
        assert b[:, 0].min() > prev_right  # words keep their order and do not run together
        prev_right = b[:, 0].max()
        offsets.append(b[0, 1] - a[0, 1] * f)
    assert np.ptp(offsets) > 0.01  # the words do not all move alike
    assert np.array_equal(jitter_words(arr[:0], np.random.default_rng(0)), arr[:0])


def test_word_jitter_option_is_stored_and_used(tmp_path):
    """--word-jitter reaches the training config; with 0 (the default) lines are not regrouped."""
    from unittest import mock

    from inkread.cli import main
    from recog_helpers import write_native_dir
    data = write_native_dir(tmp_path / "lines")
    import inkread.train as tr
    with mock.patch.object(tr, "jitter_words", wraps=tr.jitter_words) as spy:
        assert main(["train", "--train", f"native:{data}", "--out", str(tmp_path / "r"), "--epochs", "1",
                     "--hidden-size", "8", "--num-layers", "1", "--conv-channels", "0", "--subsample", "1",
                     "--word-jitter", "1.0", "--threads", "1"]) == 0
        used = spy.call_count
    ts = load(tmp_path / "r" / "last.pt").train_state
    assert ts["train_config"]["word_jitter"] == 1.0 and used > 0
    items = build_run([f"native:{data}"], [1.0], None, tmp_path / "q", TINY, FeatureConfig(),
                      TrainConfig(epochs=1)).sources[0]
    with mock.patch.object(tr, "jitter_words") as never:
        make_batch(items, FeatureConfig(), np.random.default_rng(0), TrainConfig())
    assert never.call_count == 0


def _words_line(words: list[str], shift: float = 0.0, gap: float = 2.0) -> np.ndarray:
    """A flat ink array: one hump per letter (letters 0.1 apart), words ``gap`` apart."""
    rows, t, x = [], 0.0, 0.0
    for w in words:
        for k in range(len(w)):
            for j in range(12):
                u = j / 11
                rows.append([x + 0.9 * u, shift + np.sin(np.pi * u) * (1 if k % 2 else -1), t, float(j == 11)])
                t += 0.01
            x += 1.0
        x += gap - 0.1
        t += 0.3
    return np.array(rows)


def test_word_bank_writes_new_lines_of_one_writers_words_each_as_it_was_written():
    from inkread.words import WordBank
    a, b = _words_line(["ab", "c", "dab"]), _words_line(["cd", "ba"], shift=5.0)
    miscounted = _words_line(["ab", "cd"])
    bank = WordBank([(a, "ab c dab", "w1", False, 30.0), (b, "cd ba", "w2", False, 20.0),
                     (miscounted, "ab c d", "w1", False, 20.0)])
    assert (bank.lines_seen, bank.lines_used, len(bank), len(bank.writers)) == (3, 2, 5, 2)
    cut = {w.text: w for _, v in bank.writers for w in v["words"]}
    assert cut["dab"].frames == pytest.approx(30.0 * 36 / 72)
    rng, texts = np.random.default_rng(3), set()
    for _ in range(30):
        arr, text, synth, frames = bank.line(rng)
        tokens = text.split(" ")
        assert set(tokens) <= {"ab", "c", "dab"} or set(tokens) <= {"cd", "ba"}  # one writer's words
        assert len(set(tokens)) == len(tokens) and not synth
        assert len(arr) == sum(len(cut[t].arr) for t in tokens)
        assert frames == pytest.approx(sum(cut[t].frames for t in tokens))
        assert np.all(np.diff(arr[:, 2]) > 0) and arr[-1, 3] == 1
        start, right = 0, -np.inf
        for t in tokens:  # in order of time and of x, each word as it was cut, at one scale
            w = cut[t].arr
            seg = arr[start:start + len(w)]
            start += len(w)
            assert seg[:, 0].min() > right
            right = seg[:, 0].max()
            scale = np.ptp(seg[:, 0]) / np.ptp(w[:, 0])
            assert np.allclose(seg[:, :2] - seg[0, :2], (w[:, :2] - w[0, :2]) * scale)
            assert np.array_equal(seg[:, 3], w[:, 3])
        texts.add(text)
    assert len(texts) > 5  # new orders and lengths


def test_word_bank_skips_a_line_whose_words_are_unsure():
    from inkread.words import WordBank, _strokes_and_height
    _, h = _strokes_and_height(_words_line(["ab", "cd"]))
    unsure = _words_line(["ab", "cd"], gap=0.35 * h)  # two words at a split of 0.3, one at 0.4
    clear = _words_line(["ab", "cd"], gap=0.5 * h)
    assert WordBank([(unsure, "ab cd", "w", False, 10.0)]).lines_used == 0
    assert WordBank([(clear, "ab cd", "w", False, 10.0)]).lines_used == 1
    with pytest.raises(ValueError, match="empty"):
        WordBank([]).line(np.random.default_rng(0))


def test_ranked_split_judges_word_gaps_within_the_line_and_keeps_punctuation_with_its_word():
    from inkread.words import WordBank, _strokes_and_height, cut_words
    _, h = _strokes_and_height(_words_line(["ab", "cd"]))
    tight = _words_line(["ab", "cd", "e"], gap=0.35 * h)  # word gaps near the fixed threshold, letter gaps 0.1
    assert WordBank([(tight, "ab cd e", "w", False, 10.0)]).lines_used == 0
    bank = WordBank([(tight, "ab cd e", "w", False, 10.0)], rule="ranked")
    assert [w.text for w in bank.writers[0][1]["words"]] == ["ab", "cd", "e"]
    assert [len(w.arr) for w in bank.writers[0][1]["words"]] == [24, 24, 12]
    comma = _words_line(["abx", "cd"], gap=0.5 * h)  # IAM-OnDB writes the comma as a token of its own
    sid, _ = _strokes_and_height(comma)
    assert cut_words(comma, sid, h, "ab , cd", "fixed") is None
    cut = cut_words(comma, sid, h, "ab , cd", "ranked")
    assert [t for _, t in cut] == ["ab ,", "cd"] and [len(g) for g, _ in cut] == [3, 2]
    quote = _words_line(["xab", "cd"], gap=0.5 * h)
    assert [t for _, t in cut_words(quote, sid, h, '" ab cd', "ranked")] == ['" ab', "cd"]
    # a gap inside a word as wide as the one between words: which is which is unsure
    even = _words_line(["a", "b", "cd"], gap=0.5 * h)
    sid, _ = _strokes_and_height(even)
    assert cut_words(even, sid, h, "ab cd", "ranked") is None
    assert cut_words(even, sid, h, "a b c d e", "ranked") is None  # more words than strokes
    with pytest.raises(ValueError, match="word split rule"):
        WordBank([], rule="widest")


def test_word_mix_option_adds_lines_of_recombined_words(tmp_path, capsys):
    from inkread.cli import main
    from inkread.ink import Ink
    from inkread.train import epoch_items
    from recog_helpers import write_native_dir
    data = tmp_path / "words"
    data.mkdir()
    lines = [["ab", "c", "dab"], ["cd", "ba", "a"], ["bad", "cab"], ["d", "bc", "a", "b"]]
    for i, words in enumerate(lines):
        write_ink(Ink.from_array(_words_line(words), text=" ".join(words)), data / f"l{i}.json")
    args = ["train", "--train", f"native:{data}", "--out", str(tmp_path / "r"), "--epochs", "1",
            "--hidden-size", "8", "--num-layers", "1", "--conv-channels", "0", "--subsample", "1",
            "--threads", "1", "--word-mix", "1.5"]
    assert main(args) == 0
    ts = load(tmp_path / "r" / "last.pt").train_state
    assert ts["train_config"]["word_mix"] == 1.5 and ts["train_config"]["word_split"] == "fixed"
    run = build_run([f"native:{data}"], [1.0], None, tmp_path / "q", TINY, FeatureConfig(),
                    TrainConfig(word_mix=1.5))
    items = epoch_items(run, 0)
    assert len(items) == 4 + 6
    originals = {" ".join(w) for w in lines}
    for it in items[4:]:  # words of one line (no writer is named), each once, in an order of their own
        tokens = it.text.split(" ")
        assert len(set(tokens)) == len(tokens) and any(set(tokens) <= set(w) for w in lines)
        assert it.ids == run.alphabet.encode(it.text) and it.approx_len > 0
    assert any(it.text not in originals for it in items[4:])
    assert [it.text for it in epoch_items(run, 0)] == [it.text for it in items]  # the same on resume
    one_word = write_native_dir(tmp_path / "one")  # no line has two words
    assert main(["train", "--train", f"native:{one_word}", "--out", str(tmp_path / "s"), "--word-mix", "1"]) == 2
    err = capsys.readouterr().err
    assert "--word-mix: no line of" in err and "Traceback" not in err


@pytest.mark.parametrize("option", [
    ["--lr", "-1"], ["--lr", "nan"], ["--epochs", "0"], ["--hidden-size", "0"], ["--num-layers", "0"],
    ["--dropout", "1.5"], ["--subsample", "0"], ["--batch-frames", "0"], ["--max-batch", "0"],
    ["--clip", "-1"], ["--warmup-steps", "-5"], ["--word-jitter", "2"], ["--word-mix", "-1"],
    ["--drop-time-prob", "-0.1"], ["--word-split", "widest"],
    ["--patience", "0"], ["--keep-epochs", "-2"], ["--points-per-height", "0"], ["--min-lr-ratio", "3"],
    ["--weights", "1,x"], ["--weights", "0,1"], ["--weights", "1,-1"],
])
def test_train_rejects_an_option_out_of_range_in_one_line(tmp_path, capsys, option):
    from inkread.cli import main
    from recog_helpers import write_native_dir
    data = write_native_dir(tmp_path / "lines")
    args = ["train", "--train", f"native:{data}", "--out", str(tmp_path / "r"), "--threads", "1"]
    if option[0] == "--weights":
        args += ["--train", f"native:{data}"]
    with pytest.raises(SystemExit) as stop:
        main(args + option)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert option[0] in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()  # nothing was started


def test_resume_checks_its_overrides_too(tmp_path, capsys):
    from inkread.cli import main
    with pytest.raises(SystemExit) as stop:
        main(["train", "--resume", str(tmp_path / "nowhere"), "--lr", "0"])
    assert stop.value.code == 2
    assert "--lr: 0 is not above 0" in capsys.readouterr().err


def test_a_new_run_into_a_run_folder_is_refused_in_one_line(tmp_path, capsys):
    """`train --out DIR` where DIR holds a run: training anew would append to its metrics.csv and
    replace last.pt while keeping the other run's best.pt; it is refused, naming --resume."""
    from inkread.cli import main
    from recog_helpers import write_native_dir
    data = write_native_dir(tmp_path / "lines")
    run = tmp_path / "r"
    run.mkdir()
    (run / "metrics.csv").write_text("epoch,step\n1,10\n")
    assert main(["train", "--train", f"native:{data}", "--out", str(run), "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{run}: already holds a run (metrics.csv): continue it with --resume {run}" in err
    assert len(err.splitlines()) == 1 and (run / "metrics.csv").read_text() == "epoch,step\n1,10\n"
    assert sorted(p.name for p in run.iterdir()) == ["metrics.csv"]
    (tmp_path / "empty").mkdir()  # an empty folder, or one holding other files, is fine to train into
    assert main(["train", "--train", f"native:{data}", "--out", str(tmp_path / "empty"), "--epochs", "1",
                 "--hidden-size", "8", "--num-layers", "1", "--conv-channels", "4", "--threads", "1"]) == 0


def test_bf16_option_runs_the_forward_pass_in_bfloat16_and_is_kept_on_resume(tmp_path):
    """--bf16 is stored in the run, survives --resume, trains to a finite loss, and puts the
    network's layers (not the loss) in bfloat16; without it everything stays float32."""
    from inkread.cli import main
    from inkread.train import resume_run, train_autocast
    from recog_helpers import write_native_dir
    data = write_native_dir(tmp_path / "lines")
    common = ["--hidden-size", "8", "--num-layers", "1", "--conv-channels", "4", "--threads", "1"]
    assert main(["train", "--train", f"native:{data}", "--out", str(tmp_path / "r"), "--epochs", "1",
                 "--bf16", *common]) == 0
    ts = load(tmp_path / "r" / "last.pt").train_state
    assert ts["train_config"]["bf16"] is True
    run, _ = resume_run(tmp_path / "r", {})
    assert run.cfg.bf16 is True
    rows = (tmp_path / "r" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 2 and np.isfinite(float(rows[1].split(",")[3]))  # train_loss
    assert main(["train", "--train", f"native:{data}", "--out", str(tmp_path / "f"), "--epochs", "1",
                 *common]) == 0
    assert load(tmp_path / "f" / "last.pt").train_state["train_config"]["bf16"] is False
    # a second new run into a run's folder is refused (it would mix the two), before any training
    before = {p.name: p.read_bytes() for p in (tmp_path / "f").iterdir() if p.is_file()}
    assert main(["train", "--train", f"native:{data}", "--out", str(tmp_path / "f"), "--epochs", "1",
                 *common]) == 2
    assert {p.name: p.read_bytes() for p in (tmp_path / "f").iterdir() if p.is_file()} == before

    model = run.model.train()
    b = make_batch(run.sources[0][:3], run.fcfg, None, run.cfg)
    for bf16, dtype in ((True, torch.bfloat16), (False, torch.float32)):
        with train_autocast(dataclasses.replace(run.cfg, bf16=bf16)):
            lp, _, hidden = model(b["x"], b["lengths"], return_hidden=True)
        assert hidden[0].dtype == dtype and lp.dtype == torch.float32


def _kd_on_first_batch(run) -> float:
    from inkread.train import distill_loss
    b = make_batch(run.sources[0], run.fcfg, None, run.cfg)
    run.model.eval()
    with torch.no_grad():
        lp, olen = run.model(b["x"], b["lengths"])
        kd = distill_loss(run.teachers, b["x"], b["lengths"], lp, olen, b["target_lengths"], run.cfg)
    run.model.train()
    return float(kd)


def test_distill_teaches_the_network_its_teachers_mean_distribution(tmp_path):
    """--distill 1 with two teachers: the KL from their ensemble to the network falls to a
    fraction of where it started; the teachers are stored by path and reloaded on resume."""
    from inkread.checkpoint import save
    from inkread.train import resume_run
    from recog_helpers import ALPHABET, tiny_model, write_native_dir
    data = write_native_dir(tmp_path / "lines")
    paths = []
    for seed in (11, 12):
        paths.append(str(tmp_path / f"t{seed}.pt"))
        save(paths[-1], tiny_model(seed=seed), ALPHABET, FeatureConfig(), meta={})
    cfg = TrainConfig(epochs=60, lr=1e-2, warmup_steps=5, augment=False, checkpoint_minutes=100, seed=2,
                      batch_frames=100000, teachers=",".join(paths), distill=1.0, patience=1000)
    run = build_run([f"native:{data}"], [1.0], None, tmp_path / "r", tiny_model(seed=13).cfg, FeatureConfig(),
                    cfg, alphabet=ALPHABET.chars)
    assert len(run.teachers) == 2 and not any(t.model.training for t in run.teachers)
    before = _kd_on_first_batch(run)
    fit(run)
    after = _kd_on_first_batch(run)
    assert before > 0.05 and after < 0.2 * before, (before, after)
    resumed, _ = resume_run(tmp_path / "r", {})
    assert len(resumed.teachers) == 2 and resumed.cfg.teachers == ",".join(paths)
    assert _kd_on_first_batch(resumed) == pytest.approx(after, rel=1e-4)


def test_teachers_that_write_at_other_frames_are_named_once(caplog):
    """Two teachers whose characters fall on other frames: their mean drops characters, so the
    run says so (once), naming both; teachers that agree pass quietly."""
    from types import SimpleNamespace
    from inkread.train import _check_teachers

    def lp(labels):
        return torch.log(torch.eye(4)[labels] * 0.97 + 0.01)[None]  # (1, T, C)
    a, late = lp([0, 1, 0, 2, 0, 0]), lp([0, 0, 1, 0, 2, 0])
    run = SimpleNamespace(cfg=SimpleNamespace(teachers="/m/r18.pt,/m/r26.pt"), teachers_checked=False)
    with caplog.at_level("WARNING", logger="inkread.train"):
        _check_teachers(run, [a, a.clone()], torch.tensor([6]))
        assert run.teachers_checked and not caplog.records
        _check_teachers(run, [a, late], torch.tensor([6]))
    assert "/m/r26.pt writes the same character at the same frame as /m/r18.pt only 0%" in caplog.text


def test_teachers_run_on_onnx_runtime_in_their_files_arithmetic(tmp_path):
    """A teacher reads a batch on ONNX Runtime as torch reads it: the same log-probabilities
    for a float file, and int8 arithmetic, close to torch's, for a file stored in int8."""
    from inkread.checkpoint import save
    from inkread.train import Teacher
    from recog_helpers import ALPHABET, tiny_model, write_native_dir
    data = write_native_dir(tmp_path / "lines")
    model = tiny_model(seed=5)
    gen = torch.Generator().manual_seed(5)
    for prm in model.parameters():  # weights of a trained model's size, not the init's small ones
        prm.data.normal_(0, 0.3, generator=gen)
    save(tmp_path / "f.pt", model, ALPHABET, FeatureConfig(), meta={})
    save(tmp_path / "q.pt", model, ALPHABET, FeatureConfig(), meta={}, weights="int8")
    run = build_run([f"native:{data}"], [1.0], None, tmp_path / "r", model.cfg, FeatureConfig(),
                    TrainConfig(augment=False), alphabet=ALPHABET.chars)
    b = make_batch(run.sources[0], run.fcfg, None, run.cfg)
    for name, int8 in (("f.pt", False), ("q.pt", True)):
        teacher = Teacher(load(tmp_path / name))
        assert teacher.engine is not None and teacher.engine.int8 is int8
        ort = teacher(b["x"], b["lengths"])
        teacher.engine = None
        with torch.no_grad():
            ref = teacher(b["x"], b["lengths"])
        assert ort.shape == ref.shape and ort.dtype == torch.float32
        mask = torch.arange(ref.shape[1])[None, :] < ((b["lengths"] + 1) // 2)[:, None]
        kl = (ref.exp() * (ref - ort)).sum(-1)[mask]
        if int8:
            assert 0 < float(kl.mean()) < 0.01, float(kl.mean())
        else:
            assert float((ort - ref).abs()[mask].max()) < 1e-4


def test_distill_options_are_checked_in_one_line(tmp_path, capsys):
    from inkread.checkpoint import save
    from inkread.cli import main
    from recog_helpers import ALPHABET, tiny_model, write_native_dir
    data = write_native_dir(tmp_path / "lines")
    save(tmp_path / "s.pt", tiny_model(seed=1), ALPHABET, FeatureConfig(), meta={})
    save(tmp_path / "t3.pt", tiny_model(seed=2, subsample=3), ALPHABET, FeatureConfig(), meta={})
    base = ["train", "--init", str(tmp_path / "s.pt"), "--train", f"native:{data}", "--epochs", "1"]
    for extra, message in (
            (["--distill", "0.5"], "--distill W (above 0) and --teachers M1,M2,... go together"),
            (["--teachers", str(tmp_path / "s.pt")], "go together"),
            (["--teachers", str(tmp_path / "t3.pt"), "--distill", "0.5"],
             f"--teachers {tmp_path / 't3.pt'}: it subsamples by 3, not 2"),
            (["--teachers", str(tmp_path / "none.pt"), "--distill", "0.5"], "none.pt"),
            (["--teachers", str(tmp_path / "s.pt"), "--distill", "2"], "--distill")):
        out = tmp_path / f"o{len(extra)}{extra[-1][-3:]}"
        try:
            code = main(base + ["--out", str(out)] + extra)
        except SystemExit as stop:  # argparse: a value out of range
            code = stop.code
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err, (extra, err)


def test_distill_from_the_command_line_stores_the_teachers_by_absolute_path(tmp_path, monkeypatch):
    from inkread.checkpoint import save
    from inkread.cli import main
    from recog_helpers import ALPHABET, tiny_model, write_native_dir
    data = write_native_dir(tmp_path / "lines")
    save(tmp_path / "s.pt", tiny_model(seed=1), ALPHABET, FeatureConfig(), meta={})
    save(tmp_path / "t.pt", tiny_model(seed=2), ALPHABET, FeatureConfig(), meta={})
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--init", "s.pt", "--train", f"native:{data}", "--out", "r", "--epochs", "1",
                 "--teachers", "t.pt, s.pt", "--distill", "0.3", "--threads", "1"]) == 0
    tc = load(tmp_path / "r" / "last.pt").train_state["train_config"]
    assert tc["teachers"] == f"{tmp_path / 't.pt'},{tmp_path / 's.pt'}" and tc["distill"] == 0.3


_TINY_OPTS = ["--hidden-size", "8", "--num-layers", "1", "--conv-channels", "4", "--threads", "1"]


def test_resume_refuses_data_model_and_feature_options_and_names_what_changed(tmp_path, capsys, caplog):
    """--resume rebuilds the run from its checkpoint: an option that would be ignored there is
    refused in one line, naming it; optimisation options apply and are logged when they differ."""
    from inkread.cli import main
    from recog_helpers import write_native_dir
    data = write_native_dir(tmp_path / "lines")
    run = tmp_path / "r"
    assert main(["train", "--train", f"native:{data}", "--out", str(run), "--epochs", "1", *_TINY_OPTS]) == 0
    assert load(run / "last.pt").feature_config == FeatureConfig()  # unset feature options: the defaults
    capsys.readouterr()
    before = (run / "last.pt").read_bytes()
    assert main(["train", "--resume", str(run), "--epochs", "2", "--hidden-size", "64", "--train",
                 f"native:{data}", "--points-per-height", "5", "--slant-correction", "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"{run}: --resume keeps the run's data, model and features" in err
    assert err.endswith("drop --train, --out, --hidden-size, --points-per-height, --slant-correction"), err
    assert (run / "last.pt").read_bytes() == before
    with caplog.at_level("INFO", logger="inkread"):
        assert main(["train", "--resume", str(run), "--epochs", "2", "--lr", "3e-4", "--threads", "1"]) == 0
    assert "resuming with lr 0.0003 (the run had 0.002)" in caplog.text
    assert "resuming with epochs 2 (the run had 1)" in caplog.text and "resuming with threads" not in caplog.text
    ts = load(run / "last.pt").train_state
    assert ts["epoch"] == 2 and ts["train_config"]["lr"] == 3e-4
    assert main(["train", "--train", f"native:{data}", "--out", str(tmp_path / "p"), "--epochs", "1",
                 "--points-per-height", "5", "--slant-correction", *_TINY_OPTS]) == 0
    assert load(tmp_path / "p" / "last.pt").feature_config == FeatureConfig(points_per_height=5,
                                                                             slant_correction=True)


def test_synthetic_ink_alone_trains_with_its_generators_alphabet_or_the_given_one(tmp_path):
    from inkread.cli import main
    from inkread.datasets import Dataset
    from inkread.errors import OptionError
    from inkread.synth import SUPPORTED_CHARS
    common = ["--epochs", "1", "--batch-frames", "4000", *_TINY_OPTS]
    assert main(["train", "--train", "synth:6@1", "--val", "synth:2@2", "--out", str(tmp_path / "s"),
                 *common]) == 0
    ld = load(tmp_path / "s" / "last.pt")
    assert ld.alphabet.chars == SUPPORTED_CHARS and ld.train_state["step"] >= 1
    assert main(["train", "--train", "synth:6@1", "--out", str(tmp_path / "a"), "--alphabet",
                 SUPPORTED_CHARS[::-1], *common]) == 0
    assert load(tmp_path / "a" / "last.pt").alphabet.chars == SUPPORTED_CHARS[::-1]
    lazy = Dataset("gen:tiny", tuple(tiny_dataset()))  # generated, but by no generator inkread knows
    with pytest.raises(OptionError, match="gen:tiny: .*pass --alphabet"):
        build_run([lazy], [1.0], None, tmp_path / "g", TINY, FeatureConfig(), TrainConfig())
    run = build_run([lazy], [1.0], None, tmp_path / "g", TINY, FeatureConfig(), TrainConfig(), alphabet="abcd")
    with pytest.raises(OptionError, match="--alphabet: .*duplicate"):
        build_run([lazy], [1.0], None, tmp_path / "g", TINY, FeatureConfig(), TrainConfig(), alphabet="abca")
    from inkread.train import epoch_items
    assert sorted(it.text for it in epoch_items(run, 0)) == sorted(s.text for s in tiny_dataset())


def test_a_failed_train_removes_the_out_folder_it_made_and_nothing_else(tmp_path, capsys):
    from inkread.cli import main
    out = tmp_path / "new"
    assert main(["train", "--train", f"native:{tmp_path / 'missing'}", "--out", str(out)]) == 2
    assert "missing" in capsys.readouterr().err and not out.exists()
    # fails in training (no synthetic line is written in the alphabet "q"), after fit made the folder
    assert main(["train", "--train", "synth:2", "--alphabet", "q", "--out", str(out), "--epochs", "1",
                 *_TINY_OPTS]) == 2
    assert "no line can be trained on" in capsys.readouterr().err and not out.exists()
    kept = tmp_path / "kept"
    kept.mkdir()  # a folder the user made stays, empty or not
    assert main(["train", "--train", f"native:{tmp_path / 'missing'}", "--out", str(kept)]) == 2
    assert kept.is_dir()
    (kept / "notes.txt").write_text("mine")
    assert main(["train", "--train", f"native:{tmp_path / 'missing'}", "--out", str(kept / "sub")]) == 2
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]


def test_train_without_val_prints_a_json_result(tmp_path, capsys):
    import json
    from inkread.cli import main
    from recog_helpers import write_native_dir
    data = write_native_dir(tmp_path / "lines")
    assert main(["train", "--train", f"native:{data}", "--out", str(tmp_path / "r"), "--epochs", "1",
                 *_TINY_OPTS]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]

    def no_constant(name):
        raise AssertionError(f"not JSON: {name} in {last}")
    result = json.loads(last, parse_constant=no_constant)
    assert result["best_val_cer"] is None and result["epoch"] == 1
