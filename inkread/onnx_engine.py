"""Inference on ONNX Runtime: the same network as :class:`~inkread.model.InkModel`, faster per line.

On this CPU build of torch, a single line through the BiLSTM stack costs
about twice what ONNX Runtime needs: oneDNN re-lays out every weight
matrix on each call and builds a new primitive for each new length. This
module writes the network as an ONNX graph directly from the model's
weights (no tracing): the conv front end, one ONNX ``LSTM`` node per
bidirectional layer (``sequence_lens`` makes the backward direction start
at each line's own end, as :func:`~inkread.model.reverse_within_length`
does), the head and a log-softmax.

Training and saliency stay on torch; this is for recognition only. The
graph is rebuilt when the model's weights change in place (fine-tuning in
the same process), which is checked by the tensors' version counters.

Importing the ``onnx`` package costs about a second (its ml_dtypes
dependency, measured here), ten times what loading a model takes, so the
written graph is cached in ``$INKREAD_ONNX_CACHE`` (default
``~/.cache/inkread/onnx``) under a hash of the weights: only the first run
of a model pays for it. A damaged cache file is rewritten.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from .cache import prune, touch
from .errors import OptionError

if TYPE_CHECKING:
    from .model import InkModel

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnx", "torch")
OPSET = 17
# torch orders an LSTM's gates (input, forget, cell, output); ONNX (input, output, forget, cell).
_GATE_ORDER = (0, 3, 1, 2)


def available() -> bool:
    """True when onnx and onnxruntime can be imported."""
    # find_spec, not import: importing onnx costs a second, and it is only needed to write a graph
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def resolve_backend(name: str) -> str:
    """'auto' -> 'onnx' when ONNX Runtime is installed, else 'torch'.

    Raises:
        OptionError: an unknown name, or 'onnx' without ONNX Runtime.
    """
    if name not in BACKENDS:
        raise OptionError(f"backend {name!r}: choose one of {', '.join(BACKENDS)}")
    if name == "torch":
        return name
    if available():
        return "onnx"
    if name == "onnx":
        raise OptionError("backend 'onnx': onnx and onnxruntime are not installed "
                          "(pip install onnx onnxruntime, or use --backend torch)")
    return "torch"


def _gates(w: np.ndarray) -> np.ndarray:
    """(4H, ...) torch gate blocks -> ONNX order."""
    return np.concatenate([b for i in _GATE_ORDER for b in [np.split(w, 4)[i]]])


def _lstm_weights(layer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W (2, 4H, I), R (2, 4H, H), B (2, 8H) of one BiLSTMLayer, forward then backward."""
    W, R, B = [], [], []
    for lstm in (layer.fwd, layer.bwd):
        p = {k: v.detach().cpu().float().numpy() for k, v in lstm.named_parameters()}
        W.append(_gates(p["weight_ih_l0"]))
        R.append(_gates(p["weight_hh_l0"]))
        B.append(np.concatenate([_gates(p["bias_ih_l0"]), _gates(p["bias_hh_l0"])]))
    return np.stack(W), np.stack(R), np.stack(B)


def build_graph(model: "InkModel", int8: bool = False):
    """The ONNX model of ``model`` in eval mode.

    With ``int8``, the LSTM nodes become ONNX Runtime's
    ``DynamicQuantizeLSTM``: weights in int8 with a scale per gate row (the
    granularity ``inkread export --int8`` stores), and each step's input and
    state quantised to uint8 on the fly. The network ran 1.4-1.6x faster per
    line on one thread for the shipped models (models/README.md).

    Inputs: ``x`` (B, T, F) float32, zero beyond each line's length, after
    frame stacking when the model subsamples without a conv (see
    :meth:`OnnxEngine.prepare`); ``seq_lens`` (B,) int32 output-frame lengths.
    Output: ``log_probs`` (T', B, C) float32, time-major.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    cfg = model.cfg
    inits, nodes = [], []

    def const(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    h = "x"
    if model.front is not None:
        conv = model.front
        k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
        nodes.append(helper.make_node("Transpose", ["x"], ["x_bft"], perm=[0, 2, 1]))
        nodes.append(helper.make_node(
            "Conv", ["x_bft", const("conv_w", conv.weight.detach().numpy()),
                     const("conv_b", conv.bias.detach().numpy())], ["conv"],
            kernel_shape=[k], strides=[s], pads=[p, p]))
        nodes.append(helper.make_node("Relu", ["conv"], ["relu"]))
        nodes.append(helper.make_node("Transpose", ["relu"], ["h0"], perm=[2, 0, 1]))  # (T', B, C)
    else:
        nodes.append(helper.make_node("Transpose", ["x"], ["h0"], perm=[1, 0, 2]))
    h = "h0"
    for i, layer in enumerate(model.layers):
        W, R, B = _lstm_weights(layer)
        nodes.append(helper.make_node(
            "LSTM", [h, const(f"W{i}", W), const(f"R{i}", R), const(f"B{i}", B), "seq_lens"],
            [f"y{i}"], direction="bidirectional", hidden_size=cfg.hidden_size))
        # (T, 2, B, H) -> (T, B, 2, H) -> (T, B, 2H): forward units first, as torch.cat does
        nodes.append(helper.make_node("Transpose", [f"y{i}"], [f"yt{i}"], perm=[0, 2, 1, 3]))
        nodes.append(helper.make_node("Reshape", [f"yt{i}", const(f"shape{i}", np.array([0, 0, -1]))],
                                      [f"h{i + 1}"]))
        h = f"h{i + 1}"
    head_w = model.head.weight.detach().numpy().T  # (2H, C)
    nodes.append(helper.make_node("MatMul", [h, const("head_w", head_w)], ["logits0"]))
    nodes.append(helper.make_node("Add", ["logits0", const("head_b", model.head.bias.detach().numpy())],
                                  ["logits"]))
    nodes.append(helper.make_node("LogSoftmax", ["logits"], ["log_probs"], axis=-1))
    feat = cfg.input_size if model.front is not None else cfg.input_size * max(cfg.subsample, 1)
    graph = helper.make_graph(
        nodes, "inkread", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "T", feat]),
                           helper.make_tensor_value_info("seq_lens", TensorProto.INT32, ["B"])],
        [helper.make_tensor_value_info("log_probs", TensorProto.FLOAT, ["T_out", "B", cfg.num_classes])],
        initializer=inits)
    onx = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(onx)
    return _quantize_lstms(onx) if int8 else onx


def _quantize_lstms(onx):
    """``onx`` with its LSTM nodes in int8 arithmetic (ONNX Runtime's dynamic quantisation)."""
    import tempfile

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    root = logging.getLogger()
    level = root.level
    with tempfile.TemporaryDirectory(prefix="inkread-onnx-") as tmp:
        src, dst = Path(tmp) / "f32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(onx.SerializeToString())
        root.setLevel(logging.ERROR)  # its advice to pre-process the graph is for convolutional nets
        try:
            quantize_dynamic(src, dst, op_types_to_quantize=["LSTM"], per_channel=True,
                             weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
        return onnx.load(dst)


def cache_dir() -> Path:
    return Path(os.environ.get("INKREAD_ONNX_CACHE") or Path.home() / ".cache" / "inkread" / "onnx")


def graph_key(model: "InkModel", int8: bool = False) -> str:
    """Hash of what the graph is made of: this module's opset, the arithmetic, the config and every weight."""
    h = hashlib.sha256(json.dumps([OPSET, model.cfg.to_dict()] + (["int8"] if int8 else []),
                                  sort_keys=True).encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


def graph_bytes(model: "InkModel", int8: bool = False) -> bytes:
    """The serialised graph, from the cache when it holds this model's, else written and cached."""
    path = cache_dir() / f"{graph_key(model, int8)}.onnx"
    if path.is_file():
        touch(path)
        return path.read_bytes()
    data = build_graph(model, int8).SerializeToString()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        prune(path.parent)
    except OSError as exc:  # a read-only home is no reason to fail recognition
        log.info("ONNX graph not cached (%s)", exc)
    return data


def _weights_version(model: "InkModel") -> tuple:
    """Changes whenever a parameter is replaced or modified in place."""
    return tuple((id(p), p._version) for p in model.parameters())


class OnnxEngine:
    """Runs a model's forward pass (eval mode) on ONNX Runtime.

    Args:
        model: the :class:`~inkread.model.InkModel` whose weights to run.
        threads: intra-op threads (None = torch's current setting, so that
            ``torch.set_num_threads`` governs both engines alike).
        int8: run the LSTMs in int8 arithmetic (see :func:`build_graph`).
    """

    def __init__(self, model: "InkModel", threads: Optional[int] = None, int8: bool = False) -> None:
        self.model = model
        self.threads = threads
        self.int8 = int8
        self._session = None
        self._version: tuple = ()

    def session(self):
        """The ONNX Runtime session, (re)built when the weights changed."""
        import torch
        version = (_weights_version(self.model), int(self.threads or torch.get_num_threads()))
        if self._session is None or version != self._version:
            import onnxruntime as ort
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = version[1]
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            try:
                self._session = ort.InferenceSession(graph_bytes(self.model, self.int8), opts,
                                                     providers=["CPUExecutionProvider"])
            except Exception as exc:  # noqa: BLE001 - ORT raises its own types for a bad file
                log.warning("cached ONNX graph unusable (%s): writing it again", str(exc).splitlines()[0][:200])
                (cache_dir() / f"{graph_key(self.model, self.int8)}.onnx").unlink(missing_ok=True)
                self._session = ort.InferenceSession(graph_bytes(self.model, self.int8), opts,
                                                     providers=["CPUExecutionProvider"])
            self._version = version
            log.debug("ONNX Runtime session built (%d threads)", opts.intra_op_num_threads)
        return self._session

    def prepare(self, x: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Zero the padding (and stack frames when subsampling without a conv), as the model does.

        Returns:
            graph input (B, T, F') float32 and output lengths (B,) int64.
        """
        cfg = self.model.cfg
        s = max(cfg.subsample, 1)
        B, T, F = x.shape
        x = np.where(np.arange(T)[None, :, None] < lengths[:, None, None], x, 0).astype(np.float32)
        out_len = (lengths + s - 1) // s
        if self.model.front is None and s > 1:
            pad = (-T) % s
            x = np.pad(x, ((0, 0), (0, pad), (0, 0))).reshape(B, (T + pad) // s, F * s)
        return np.ascontiguousarray(x), out_len.astype(np.int64)

    def __call__(self, x: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log-probabilities of a padded batch.

        Args:
            x: (B, T, F) features, float32.
            lengths: (B,) valid input lengths.
        Returns:
            log_probs (B, T', C) float32 and out_lengths (B,) int64, as InkModel.forward.
        """
        lengths = np.asarray(lengths, dtype=np.int64)
        xin, out_len = self.prepare(np.asarray(x, dtype=np.float32), lengths)
        lp, = self.session().run(["log_probs"], {"x": xin, "seq_lens": out_len.astype(np.int32)})
        lp = lp[: int(out_len.max())]  # the conv's extra frame on padded batches, as forward() trims
        return np.ascontiguousarray(lp.transpose(1, 0, 2)), out_len
