"""The ONNX Runtime engine computes what the torch model computes, and follows its weights."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from inkread import onnx_engine  # noqa: E402
from inkread.cli import main  # noqa: E402
from inkread.errors import OptionError  # noqa: E402
from inkread.formats import read_ink  # noqa: E402
from inkread.model import InkModel, ModelConfig  # noqa: E402
from inkread.onnx_engine import OnnxEngine, resolve_backend  # noqa: E402
from inkread.recognizer import Recognizer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

SHAPES = [
    dict(conv_channels=8, subsample=3, num_layers=2, hidden_size=6),
    dict(conv_channels=8, subsample=1, num_layers=1, hidden_size=5),
    dict(conv_channels=0, subsample=2, num_layers=2, hidden_size=4),
    dict(conv_channels=0, subsample=1, num_layers=3, hidden_size=3),
]


def _model(seed: int, **shape) -> InkModel:
    torch.manual_seed(seed)
    return InkModel(ModelConfig(input_size=4, num_classes=7, dropout=0.3, **shape)).eval()


def _batch(seed: int, lengths: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """A padded batch whose padding is garbage: the engine must not look at it."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(len(lengths), max(lengths), 4)).astype(np.float32)
    return x, np.array(lengths)


def _torch(model: InkModel, x: np.ndarray, lengths: np.ndarray):
    with torch.inference_mode():
        lp, out_len = model(torch.from_numpy(x), torch.from_numpy(lengths))
    return lp.numpy(), out_len.numpy()


@pytest.mark.parametrize("shape", SHAPES)
def test_padded_batch_matches_torch(shape):
    model = _model(1, **shape)
    x, lengths = _batch(2, [23, 7, 16, 1])
    lp, out_len = OnnxEngine(model, threads=1)(x, lengths)
    ref, ref_len = _torch(model, x, lengths)
    assert out_len.tolist() == ref_len.tolist()
    assert lp.shape == ref.shape
    for b, n in enumerate(out_len):
        np.testing.assert_allclose(lp[b, :n], ref[b, :n], atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES[:2])
def test_each_line_alone_equals_its_batch_row(shape):
    model = _model(3, **shape)
    eng = OnnxEngine(model, threads=1)
    x, lengths = _batch(4, [19, 5, 12])
    lp, out_len = eng(x, lengths)
    for b, n in enumerate(lengths):
        alone, alone_len = eng(x[b:b + 1, :n], lengths[b:b + 1])
        assert alone_len[0] == out_len[b]
        np.testing.assert_allclose(alone[0], lp[b, :out_len[b]], atol=1e-5)


def test_engine_follows_weight_changes():
    model = _model(5, **SHAPES[0])
    eng = OnnxEngine(model, threads=1)
    x, lengths = _batch(6, [12, 9])
    before, _ = eng(x, lengths)
    with torch.no_grad():
        model.head.bias[2] += 3.0  # in place, as fine-tuning in the same process does
    after, _ = eng(x, lengths)
    ref, _ = _torch(model, x, lengths)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after[0], ref[0], atol=1e-5)


def test_backend_names():
    assert resolve_backend("torch") == "torch"
    assert resolve_backend("onnx") == "onnx"
    assert resolve_backend("auto") == "onnx"
    with pytest.raises(OptionError, match="choose one of"):
        resolve_backend("tensorrt")


def test_missing_runtime(monkeypatch):
    monkeypatch.setattr(onnx_engine, "available", lambda: False)
    assert resolve_backend("auto") == "torch"
    with pytest.raises(OptionError, match="not installed"):
        resolve_backend("onnx")


def test_shipped_model_reads_the_sample_alike_on_both_engines():
    ink = read_ink(ROOT / "data" / "samples" / "hello.json")
    texts = {b: Recognizer.load(lm=None, backend=b, threads=1).recognize(ink, nbest=1, lm=False).text
             for b in ("onnx", "torch")}
    assert texts["onnx"] == texts["torch"] == "hello world"


def test_cli_refuses_an_unknown_backend(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["recognize", str(ROOT / "data" / "samples" / "hello.json"), "--backend", "gpu"])
    assert exc.value.code == 2
    assert "--backend" in capsys.readouterr().err


def test_graph_is_cached_and_a_damaged_cache_is_rewritten(tmp_path, monkeypatch):
    monkeypatch.setenv("INKREAD_ONNX_CACHE", str(tmp_path))
    model = _model(7, **SHAPES[0])
    x, lengths = _batch(8, [10, 4])
    first, _ = OnnxEngine(model, threads=1)(x, lengths)
    cached = list(tmp_path.glob("*.onnx"))
    assert len(cached) == 1 and cached[0].stat().st_size > 1000
    # A second engine reads the cache: writing the graph again would fail here.
    monkeypatch.setattr(onnx_engine, "build_graph", lambda *a: (_ for _ in ()).throw(AssertionError("rebuilt")))
    again, _ = OnnxEngine(model, threads=1)(x, lengths)
    np.testing.assert_array_equal(first, again)
    monkeypatch.undo()
    monkeypatch.setenv("INKREAD_ONNX_CACHE", str(tmp_path))
    cached[0].write_bytes(b"not a graph")
    mended, _ = OnnxEngine(model, threads=1)(x, lengths)
    np.testing.assert_array_equal(first, mended)
    assert cached[0].stat().st_size > 1000


def test_int8_lstms_stay_close_to_float():
    """int8 arithmetic: DynamicQuantizeLSTM nodes, outputs near the float network's, padding ignored."""
    import onnx
    torch.manual_seed(21)
    model = InkModel(ModelConfig(input_size=4, num_classes=7, hidden_size=24, num_layers=2,
                                 conv_channels=8, subsample=3)).eval()
    ops = [n.op_type for n in onnx_engine.build_graph(model, int8=True).graph.node]
    assert ops.count("DynamicQuantizeLSTM") == 2 and "LSTM" not in ops
    x, lengths = _batch(22, [60, 31, 9])
    lp, out_len = OnnxEngine(model, threads=1, int8=True)(x, lengths)
    ref, ref_len = _torch(model, x, lengths)
    assert out_len.tolist() == ref_len.tolist()
    diffs = [np.abs(lp[b, :n] - ref[b, :n]).max() for b, n in enumerate(out_len)]
    assert max(diffs) < 0.05, diffs   # log-probabilities of 7 classes, each about -1.9
    assert max(diffs) > 0             # and it is not the float graph
    # activations are quantised with one scale per call, so a line alone differs a little from its batch row
    alone, _ = OnnxEngine(model, threads=1, int8=True)(x[2:, :9], lengths[2:])
    np.testing.assert_allclose(alone[0, :out_len[2]], lp[2, :out_len[2]], atol=0.01)


def test_a_model_stored_in_int8_runs_in_int8(tmp_path, monkeypatch):
    """`inkread export --int8` files compute their LSTMs in int8 and still read the sample."""
    monkeypatch.setenv("INKREAD_ONNX_CACHE", str(tmp_path / "cache"))
    assert main(["export", str(ROOT / "models" / "default.pt"), "-o", str(tmp_path / "m8.pt"), "--int8"]) == 0
    ink = read_ink(ROOT / "data" / "samples" / "hello.json")
    r8 = Recognizer.load(tmp_path / "m8.pt", lm=None, backend="onnx", threads=1)
    assert r8.settings()["backend"] == "onnx-int8"
    assert r8.recognize(ink, nbest=1, lm=False).text == "hello world"
    assert Recognizer.load(tmp_path / "m8.pt", lm=None, backend="torch").settings()["backend"] == "torch"
    assert main(["export", str(tmp_path / "m8.pt"), "-o", str(tmp_path / "m16.pt"), "--half"]) == 0
    assert Recognizer.load(tmp_path / "m16.pt", lm=None, backend="onnx").settings()["backend"] == "onnx"
    float_key = onnx_engine.graph_key(r8.model)
    assert onnx_engine.graph_key(r8.model, int8=True) != float_key
