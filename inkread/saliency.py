"""Per-character saliency: which points of the ink drove each recognised character.

For every recognised character (its class ``c`` and the output frames
``[a, b]`` the decoder emits it in) the target is the character's
log-probability over its frames, ``sum_{t=a..b} log p_t(c)``; its
attribution to the input features ``x`` (T, F) is mapped back to the
original ink points.

Methods (:data:`METHODS`):

* ``gradient``: |d target / d (dx, dy)| per frame, the L2 norm over the two
  pen-motion channels (Graves's demo: the gradient carried back to the
  pen's x and y inputs). Non-negative.
* ``coordinates``: the same gradient carried one step further, to the
  positions of the resampled pen points: the features are deltas,
  d_r = ppH (p_r - p_{r-1}), so d target / d p_r = ppH (g_r - g_{r+1}) with
  g the gradient of the (dx, dy) channels; its L2 norm per resampled point
  (without the constant factor ppH) is
  spread over the original points of the stroke by the same hat weights as
  below. It asks "which pen positions, if moved, change the character", and
  is sharper than ``gradient`` where the stroke is smooth (neighbouring
  deltas' gradients cancel). Non-negative.
* ``gradxinput``: sum over all channels of gradient * input. Signed.
* ``integrated``: integrated gradients (Sundararajan et al. 2017) from the
  all-zero baseline, i.e. a pen that does not move (dx = dy = dt = 0, no
  new-stroke flags: the whole line collapsed onto one point); midpoint rule
  with ``steps`` points; summed over channels. Signed; with ``window=None``
  the scores sum to target(x) - target(baseline) up to the quadrature error.
* ``smoothgrad``: the mean over ``nsamples`` noisy copies of the ``gradient``
  map, with Gaussian noise on dx, dy of ``noise`` times their standard
  deviation over the line (Smilkov et al. 2017). Non-negative.

From frames to points. The features are deltas: frame t's (dx, dy) is the
segment from resampled point t-1 to t, so a frame's score is split equally
between those two points; the first frame of a stroke (whose delta is the
pen-up jump that places the stroke) goes to the stroke's first point.
Resampled point r sits at fractional original index ``src_pos[r]``; its
score is spread over the original points of its stroke with the weights of
the piecewise-linear "hat" function of the resampled grid (so every original
point between two resampled ones receives a share) plus linear
interpolation at ``src_pos[r]`` (so sparse originals still receive it), the
weights normalised per resampled point. Scores are therefore conserved (a
character's point scores sum to its frame scores) and every original point
has a positive weight from at least one frame.

The "most salient" point or stroke is the one of largest |score|, for the
signed methods too (:attr:`CharSaliency.top_point`, figures, faithfulness).

Speed. The exact gradient (the default, ``window=None``) runs one forward
pass of the line, recomputes every LSTM's gates from its recorded states,
and then carries all characters back at once as rows of a hand-written
backward recurrence (:func:`exact_char_gradients`): one small matrix product
per step and direction, plus one large product per layer for the input
gradients; only the conv front end goes through autograd. It agrees with
autograd to float32 rounding and is 1.5-2.8 times faster than autograd on
K copies of the line, which must repeat the forward pass per row. The cost
is still K backward passes of the line for K characters: that is what exact
per-character maps cost.

``window=W`` instead gives each character a batch row holding only the
output frames ``[a - W, b + W]``, started from the exact recorded states of
both directions at the window's edges: the row's outputs equal the full
line's, and its gradient is exact inside the window and zero outside (the
part that flows through the states at the edges is cut). It is not neutral:
on 20 IAM-OnDB lines (522 characters) only 79% of a character's exact
gradient mass lies within 16 frames of its span (89% within 32), and the
cut moves saliency towards the character's own frames, which flatters the
faithfulness figures (synthetic ink, IAM-trained model, 30 lines: pointing
0.86 exact, 0.89 with window 16, 0.96 with window 4), so it is a speed
option, not the reference.

Faithfulness (:func:`faithfulness`) is measured on synthetic ink, whose
points know their character. The pointing game and the mass on the
character's own points mostly reward locality: a map that is 1 under the
character's frames and 0 elsewhere, or the same method on re-initialised
weights, scores as high or higher (``control=True`` reports both). The
deletion check's "context" figure is the one that separates a trained
network's maps from those references: erasing the piece *outside* the
character that the map ranks highest should lower the character's
probability more than the references' choice does.
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from .errors import OptionError
from .ink import Ink

log = logging.getLogger(__name__)

METHODS = ("gradient", "coordinates", "gradxinput", "integrated", "smoothgrad")
#: Methods whose (K, T) scores index resampled points rather than frames.
POINT_METHODS = ("coordinates",)
ALIASES = {"grad": "gradient", "gxi": "gradxinput", "gradient_x_input": "gradxinput",
           "coord": "coordinates", "pen": "coordinates", "positions": "coordinates",
           "ig": "integrated", "integrated_gradients": "integrated", "sg": "smoothgrad"}
#: Output frames each side of a character's span that its gradient is carried
#: through; None = the whole line (exact). Truncation is faster but biases the
#: maps towards the character's own frames (see the module docstring).
DEFAULT_WINDOW: Optional[int] = None
POSITION_CHANNELS = (0, 1)  # dx, dy in features.featurize
ROW_CHUNK = 48  # batch rows per backward pass (bounds memory for long lines / window=None)


@dataclass
class CharSaliency:
    """Attribution of one recognised character.

    Attributes:
        char: the character.
        index: its index in the explained text.
        frame_span: (first, last) output frame the decoder emits it in.
        point_scores: (N,) float64 score per original point (flat order of
            :meth:`Ink.to_array`).
        stroke_scores: (S,) float64 sums of ``point_scores`` per stroke of the ink.
        token: its class id.
    """

    char: str
    index: int
    frame_span: tuple[int, int]
    point_scores: np.ndarray
    stroke_scores: np.ndarray
    token: int = 0

    @property
    def top_point(self) -> int:
        """Flat index of the most salient point (largest |score|)."""
        return int(np.argmax(np.abs(self.point_scores)))


@dataclass
class Explanation:
    """Saliency of a line.

    Attributes:
        text: the decoded text whose characters are explained.
        chars: one :class:`CharSaliency` per explained character.
        method: the attribution method.
        window: output frames each side of a span (None = exact).
        ms: milliseconds spent (features+forward+decode, attribution, mapping).
    """

    text: str
    chars: list[CharSaliency]
    method: str = "gradient"
    window: Optional[int] = DEFAULT_WINDOW
    ms: dict = field(default_factory=dict)

    def to_dict(self, digits: int = 6) -> dict:
        """Plain JSON-ready dict (scores rounded to ``digits`` significant digits)."""
        def r(a: np.ndarray) -> list:
            return [float(f"{v:.{digits}g}") for v in np.asarray(a, dtype=np.float64)]
        return {"text": self.text, "method": self.method, "window": self.window, "ms": self.ms,
                "chars": [{"char": c.char, "index": c.index, "frames": list(c.frame_span),
                           "top_point": c.top_point, "point_scores": r(c.point_scores),
                           "stroke_scores": r(c.stroke_scores)} for c in self.chars]}


# ------------------------------------------------------------------ model access
@dataclass
class Engine:
    """What saliency needs from a model: network, feature settings, labels, decoder."""

    model: Any
    feature_config: Any
    alphabet: Any = None
    decoder: Any = None
    path: Optional[str] = None

    def label(self, token: int) -> str:
        if self.alphabet is not None and 0 < token <= len(self.alphabet.chars):
            return self.alphabet.chars[token - 1]
        return "?" if token else ""


def resolve(obj: Any = None, lm: bool = True) -> Engine:
    """An :class:`Engine` from a Recognizer, a checkpoint Loaded, an InkModel, a path or None.

    Args:
        obj: a :class:`~inkread.recognizer.Recognizer` (its decoder is used,
            with its LM when ``lm``), a :class:`~inkread.checkpoint.Loaded`,
            an :class:`~inkread.model.InkModel` (default feature settings, no
            alphabet), a model file path, or None for the default model.
        lm: decode with the recogniser's language model if it has one.
    Raises:
        CheckpointError: a missing or bad model file (also the default one).
    """
    from .decode import GreedyDecoder
    from .features import FeatureConfig
    if isinstance(obj, Engine):
        return obj
    if obj is None or isinstance(obj, (str, bytes)) or hasattr(obj, "__fspath__"):
        from .recognizer import Recognizer
        obj = Recognizer.load(obj, lm="default" if lm else None)
    if hasattr(obj, "decoder") and hasattr(obj, "feature_config"):  # a Recognizer
        return Engine(obj.model, obj.feature_config, obj.alphabet, obj.decoder(1, lm=lm),
                      getattr(obj, "path", None))
    if hasattr(obj, "model") and hasattr(obj, "feature_config"):  # a checkpoint.Loaded
        return Engine(obj.model, obj.feature_config, obj.alphabet, GreedyDecoder(obj.alphabet),
                      getattr(obj, "path", None))
    if hasattr(obj, "cfg") and hasattr(obj, "layers"):  # a bare InkModel
        labels = [""] + ["?"] * (obj.cfg.num_classes - 1)
        return Engine(obj, FeatureConfig(), None, GreedyDecoder(labels))
    raise TypeError(f"cannot explain with a {type(obj).__name__}")


def usable_methods(engine: Engine) -> tuple[str, ...]:
    """The methods that apply to this engine's features (``coordinates`` needs delta features)."""
    curves = getattr(engine.feature_config, "curves", "points")
    return METHODS if curves == "points" else tuple(m for m in METHODS if m not in POINT_METHODS)


def _require_usable(engine: Engine, methods: Sequence[str]) -> None:
    bad = [m for m in methods if m not in usable_methods(engine)]
    if bad:
        raise OptionError(f"saliency method {bad[0]!r} needs a model whose features are pen-motion deltas "
                          f"(this one uses {getattr(engine.feature_config, 'curves', '?')!r} features); "
                          f"choose from {', '.join(usable_methods(engine))}")


def canonical_method(name: str) -> str:
    """The method's canonical name; OptionError for an unknown one."""
    key = name.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in METHODS:
        raise OptionError(f"unknown saliency method {name!r}: choose from {', '.join(METHODS)}")
    return key


@contextlib.contextmanager
def _eval_mode(model: Any) -> Iterator[None]:
    """Dropout off while explaining; the caller's mode is restored after."""
    was = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was)


# ------------------------------------------------------------------ frames -> points
@dataclass
class PointMap:
    """Sparse linear map from per-frame scores (T,) to per-point scores (N,).

    Attributes:
        rows, cols, vals: COO entries: frame ``rows[e]`` gives ``vals[e]`` of its
            score to original point ``cols[e]``; each frame's values sum to 1.
        num_points: N.
    """

    rows: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    num_points: int

    def apply(self, frame_scores: np.ndarray) -> np.ndarray:
        """(K, T) frame scores -> (K, N) point scores (sums are conserved)."""
        fs = np.asarray(frame_scores, dtype=np.float64)
        out = np.zeros((self.num_points, fs.shape[0]))
        np.add.at(out, self.cols, self.vals[:, None] * fs[:, self.rows].T)
        return out.T


def point_map(src_pos: np.ndarray, new_stroke: np.ndarray, pen_up: np.ndarray) -> PointMap:
    """The frame-to-point map of one featurised ink (see the module docstring).

    Args:
        src_pos: (T,) fractional original index of each resampled point.
        new_stroke: (T,) 1 where a resampled stroke starts.
        pen_up: (N,) the ink's pen-up-after flags (column 3 of :meth:`Ink.to_array`).
    """
    T = len(src_pos)
    first = (np.asarray(new_stroke) > 0.5) | (np.arange(T) == 0)
    # delta features -> resampled points: half to each end of the segment
    seg_r = np.concatenate([np.flatnonzero(first), np.flatnonzero(~first), np.flatnonzero(~first) - 1])
    seg_f = np.concatenate([np.flatnonzero(first), np.flatnonzero(~first), np.flatnonzero(~first)])
    seg_v = np.concatenate([np.ones(first.sum()), np.full(2 * (~first).sum(), 0.5)])
    pr, pc, pv = _resampled_to_points(np.asarray(src_pos, dtype=np.float64), first, np.asarray(pen_up))
    # compose frame -> resampled point -> original point
    order = np.argsort(pr, kind="stable")
    pr, pc, pv = pr[order], pc[order], pv[order]
    start = np.searchsorted(pr, np.arange(T))
    count = np.bincount(pr, minlength=T)
    reps = count[seg_r]
    idx = np.repeat(start[seg_r], reps) + (np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps))
    return PointMap(np.repeat(seg_f, reps), pc[idx], np.repeat(seg_v, reps) * pv[idx], len(pen_up))


def resampled_point_map(src_pos: np.ndarray, new_stroke: np.ndarray, pen_up: np.ndarray) -> PointMap:
    """The resampled-point-to-original-point map (hat weights; see the module docstring)."""
    T = len(src_pos)
    first = (np.asarray(new_stroke) > 0.5) | (np.arange(T) == 0)
    rows, cols, vals = _resampled_to_points(np.asarray(src_pos, dtype=np.float64), first, np.asarray(pen_up))
    return PointMap(rows, cols, vals, len(pen_up))


def _resampled_to_points(q: np.ndarray, first: np.ndarray, pen_up: np.ndarray):
    """COO (resampled row, original point, weight) with weights summing to 1 per row."""
    N, T = len(pen_up), len(q)
    sid_pt = np.concatenate([[0], np.cumsum(pen_up[:-1] > 0.5)]).astype(np.int64)
    sid_rs = np.cumsum(first) - 1
    r0 = np.flatnonzero(first)  # first resampled row of each stroke
    r1 = np.append(r0[1:] - 1, T - 1)
    i = np.arange(N)
    k = sid_pt
    lo, hi = r0[k], np.maximum(r0[k], r1[k] - 1)
    j = np.clip(np.searchsorted(q, i, side="right") - 1, lo, hi)
    nxt = np.minimum(j + 1, r1[k])
    gap = q[nxt] - q[j]
    w = np.where(gap > 1e-12, np.clip((i - q[j]) / np.where(gap > 1e-12, gap, 1.0), 0.0, 1.0), 0.0)
    single = r1[k] == r0[k]  # one resampled point for the whole stroke: all its points share it
    w[single] = 0.0
    rows = [j, nxt, np.arange(T), np.arange(T)]
    f0 = np.floor(q).astype(np.int64)
    frac = q - f0
    cols = [i, i, f0, np.minimum(f0 + 1, N - 1)]
    vals = [1.0 - w, w, 1.0 - frac, frac]
    # the interpolation may not cross into another stroke (it cannot: src_pos stays in its stroke)
    rows, cols, vals = (np.concatenate(a) for a in (rows, cols, vals))
    keep = (vals > 0) & (sid_pt[cols] == sid_rs[rows])
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    vals = vals / np.bincount(rows, vals, minlength=T)[rows]
    return rows, cols, vals


def stroke_sums(point_scores: np.ndarray, ink: Ink) -> np.ndarray:
    """(K, N) point scores -> (K, S) sums per stroke of ``ink`` (empty strokes give 0)."""
    sop = ink.stroke_of_point()
    ps = np.atleast_2d(point_scores)
    out = np.zeros((ps.shape[0], len(ink.strokes)))
    np.add.at(out.T, sop, ps.T)
    return out


# ------------------------------------------------------------------ exact LSTM states
@dataclass
class LayerStates:
    """One bidirectional layer's states over a line, in the line's time order.

    Attributes:
        hf, cf: (M, T', H) forward direction hidden and cell state after frame t.
        hb, cb: (M, T', H) backward direction states after it has read frame t
            (coming from the end of the line).
    """

    hf: Any
    cf: Any
    hb: Any
    cb: Any

    def initial(self, m: np.ndarray, us: np.ndarray, vs: np.ndarray) -> tuple:
        """States entering windows [u, v] of variants ``m`` (all (R,)): ((h0f, c0f), (h0b, c0b)), each (1, R, H)."""
        import torch
        T = self.hf.shape[1]
        m = torch.as_tensor(m)

        def pick(h, c, t, valid):
            t = torch.as_tensor(np.clip(t, 0, T - 1))
            keep = torch.as_tensor(valid, dtype=h.dtype)[:, None]
            return (h[m, t] * keep).unsqueeze(0).contiguous(), (c[m, t] * keep).unsqueeze(0).contiguous()
        return pick(self.hf, self.cf, us - 1, us > 0), pick(self.hb, self.cb, vs + 1, vs < T - 1)


def cell_states(lstm: Any, u: Any, h: Any) -> Any:
    """Memory cells c_t of a one-layer ``nn.LSTM`` from its inputs and hidden outputs.

    The gates of every step come from (u_t, h_{t-1}) in one matrix product
    (PyTorch's gate order i, f, g, o); then c_t = f_t * c_{t-1} + i_t * g_t
    runs step by step from c_{-1} = 0.

    Args:
        lstm: a single-layer unidirectional ``nn.LSTM`` (batch_first).
        u: (M, L, D) its input. h: (M, L, H) its output.
    Returns:
        (M, L, H) float32 tensor of cell states.
    """
    import torch
    with torch.no_grad():
        hp = torch.cat([torch.zeros_like(h[:, :1]), h[:, :-1]], dim=1)
        z = u @ lstm.weight_ih_l0.T + hp @ lstm.weight_hh_l0.T + (lstm.bias_ih_l0 + lstm.bias_hh_l0)
        i, f, g, _ = z.chunk(4, dim=-1)
        f = torch.sigmoid(f).numpy()
        ig = (torch.sigmoid(i) * torch.tanh(g)).numpy()
    c = np.empty_like(ig)
    prev = np.zeros_like(ig[:, 0])
    for t in range(ig.shape[1]):
        prev = f[:, t] * prev + ig[:, t]
        c[:, t] = prev
    return torch.from_numpy(c)


def line_states(model: Any, xs: Any) -> tuple[Any, list[LayerStates]]:
    """Forward ``M`` variants of one line and record every layer's states.

    Args:
        model: an :class:`~inkread.model.InkModel` in eval mode.
        xs: (M, T, F) float tensor, all of full length T.
    Returns:
        log_probs (M, T', C) and one :class:`LayerStates` per layer.
    """
    import torch
    inputs: list = []
    hooks = [layer.register_forward_pre_hook(lambda mod, args: inputs.append(args[0].detach()))
             for layer in model.layers]
    try:
        with torch.no_grad():
            lp, _, hidden = model(xs, torch.full((xs.shape[0],), xs.shape[1]), return_hidden=True)
    finally:
        for hk in hooks:
            hk.remove()
    H = model.cfg.hidden_size
    states = []
    for layer, u, out in zip(model.layers, inputs, hidden):
        hf, hb = out[..., :H], out[..., H:]
        cf = cell_states(layer.fwd, u, hf)
        cb = cell_states(layer.bwd, u.flip(1), hb.flip(1)).flip(1)
        states.append(LayerStates(hf, cf, hb, cb))
    return lp, states


# ------------------------------------------------------------------ per-character gradients
def _windows(frames: Sequence[tuple[int, int]], T_out: int, window: int):
    a = np.array([f[0] for f in frames], dtype=np.int64)
    b = np.array([f[1] for f in frames], dtype=np.int64)
    return a, b, np.maximum(a - window, 0), np.minimum(b + window, T_out - 1)


def _window_logprobs(model: Any, xr: Any, us: np.ndarray, vs: np.ndarray, T_out: int,
                     states: list[LayerStates], m: np.ndarray) -> Any:
    """Log-probabilities of output frames [u_k, v_k] of K copies of a line.

    Args:
        xr: (K, T, F) the line's features (variant m_k), one row per character.
        us, vs: (K,) first and last output frame of each row's window.
        states: the line's recorded states; ``m`` (K,) the variant of each row.
    Returns:
        (K, L, C) with L = max(v - u + 1); row k, frame j is output frame u_k + j.
    """
    import torch
    import torch.nn.functional as F
    from .model import reverse_within_length
    K, T, _ = xr.shape
    h = model._front(xr, torch.full((K,), T))[:, :T_out]  # (K, T', D)
    lens = torch.as_tensor(vs - us + 1)
    L = int(lens.max())
    idx = torch.minimum(torch.as_tensor(us)[:, None] + torch.arange(L)[None], torch.as_tensor(vs)[:, None])
    h = h.gather(1, idx.unsqueeze(-1).expand(-1, -1, h.shape[2]))  # (K, L, D)
    for layer, st in zip(model.layers, states):
        init_f, init_b = st.initial(m, us, vs)
        f, _ = layer.fwd(h, init_f)
        b, _ = layer.bwd(reverse_within_length(h, lens), init_b)
        h = torch.cat([f, reverse_within_length(b, lens)], dim=-1)  # (K, L, 2H)
    return F.log_softmax(model.head(h), dim=-1)


def _lstm_factors(lstm: Any, u: Any, h: Any, c: Any) -> tuple:
    """The per-step factors of a one-layer LSTM's backward pass, from its recorded states.

    With gates i, f, g, o (PyTorch's order) from (u_t, h_{t-1}) and cells c_t,
    the gradient recurrence for an output cotangent e_t is
    dh_t = e_t + dz_{t+1} W_hh, dc_t = dc_{t+1} f_{t+1} + dh_t o_t (1 - tanh^2 c_t),
    dz_t = [dc_t g i(1-i), dc_t c_{t-1} f(1-f), dc_t i (1-g^2), dh_t tanh(c_t) o(1-o)].

    Args:
        u: (M, L, D) the direction's input, h, c: (M, L, H) its outputs and
            cells, all in the direction's own time order.
    Returns:
        (F3 (M, L, 3, H), Ao (M, L, H), B (M, L, H), f (M, L, H)).
    """
    import torch
    with torch.no_grad():
        hp = torch.cat([torch.zeros_like(h[:, :1]), h[:, :-1]], dim=1)
        cp = torch.cat([torch.zeros_like(c[:, :1]), c[:, :-1]], dim=1)
        z = u @ lstm.weight_ih_l0.T + hp @ lstm.weight_hh_l0.T + (lstm.bias_ih_l0 + lstm.bias_hh_l0)
        i, f, g, o = z.chunk(4, dim=-1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        tc = torch.tanh(c)
        F3 = torch.stack([g * i * (1 - i), cp * f * (1 - f), i * (1 - g * g)], dim=2)
        return F3, tc * o * (1 - o), o * (1 - tc * tc), f


def _lstm_backward(lstm: Any, fac: tuple, m: Any, e: Any) -> Any:
    """Gradient w.r.t. a one-layer LSTM's input for R output cotangents at once.

    Args:
        fac: :func:`_lstm_factors` of the M variants. m: (R,) each row's
            variant (None = all rows use variant 0). e: (R, L, H) cotangents
            of the outputs h_t, in the direction's time order.
    Returns:
        (R, L, D) gradient w.r.t. the inputs u_t.
    """
    import torch
    F3, Ao, B, f = (x[:1] if m is None else x[m] for x in fac)
    R, L, H = e.shape
    W_hh = lstm.weight_hh_l0.detach()
    dh = e.new_zeros(R, H)
    dc = e.new_zeros(R, H)
    dz = e.new_empty(R, L, 4, H)
    for t in range(L - 1, -1, -1):
        dht = e[:, t] + dh
        dc = torch.addcmul(dc, dht, B[:, t])
        dz[:, t, :3] = dc.unsqueeze(1) * F3[:, t]
        dz[:, t, 3] = dht * Ao[:, t]
        dh = dz[:, t].reshape(R, 4 * H) @ W_hh
        dc = dc * f[:, t]
    return dz.reshape(R, L, 4 * H) @ lstm.weight_ih_l0.detach()


def exact_char_gradients(model: Any, xs: Any, tokens: Sequence[int], frames: Sequence[tuple[int, int]],
                         states: Optional[list] = None) -> np.ndarray:
    """:func:`char_gradients` over the whole line (exact), by a hand-written batched backward pass.

    One forward pass of the M variants gives every LSTM's states; each
    character is then one row of a backward recurrence that needs one small
    matrix product per step (autograd would repeat the forward pass per row).
    The head's gradient is exact: for frame t of character k,
    d log p_t(k) / d h = W[k] - p_t W. Only the conv front end uses autograd.
    Agrees with autograd to float32 rounding (tests/test_saliency.py).
    """
    import torch
    if states is None:
        _, states = line_states(model, xs)
    M, T, Fdim = xs.shape
    K = len(tokens)
    T_out = states[0].hf.shape[1]
    H = model.cfg.hidden_size
    with torch.no_grad():
        front = model._front(xs, torch.full((M,), T))[:, :T_out]
        ins = [front] + [torch.cat([st.hf, st.hb], dim=-1) for st in states[:-1]]
        facs = []
        for layer, u, st in zip(model.layers, ins, states):
            facs.append((_lstm_factors(layer.fwd, u, st.hf, st.cf),
                         _lstm_factors(layer.bwd, u.flip(1), st.hb.flip(1), st.cb.flip(1))))
        top = torch.cat([states[-1].hf, states[-1].hb], dim=-1)
        W = model.head.weight.detach()  # (C, 2H)
        p = torch.softmax(model.head(top), dim=-1)  # (M, T', C)
        pW = p @ W  # (M, T', 2H)
    a = np.array([f[0] for f in frames], dtype=np.int64)
    b = np.array([f[1] for f in frames], dtype=np.int64)
    rm, rk = np.repeat(np.arange(M), K), np.tile(np.arange(K), M)
    tok = torch.as_tensor(np.asarray(tokens, dtype=np.int64))
    out = np.zeros((M, K, T, Fdim), dtype=np.float32)
    chunk = max(ROW_CHUNK, K)
    for s in range(0, M * K, chunk):
        m, k = rm[s:s + chunk], rk[s:s + chunk]
        mt = None if M == 1 else torch.as_tensor(m)
        with torch.no_grad():
            j = torch.arange(T_out)[None]
            inside = ((j >= torch.as_tensor(a[k])[:, None]) & (j <= torch.as_tensor(b[k])[:, None])).float()
            e = (W[tok[k]][:, None, :] - pW[torch.as_tensor(m)]) * inside[..., None]  # (R, T', 2H)
            for layer, (ff, fb) in zip(reversed(model.layers), reversed(facs)):
                du = _lstm_backward(layer.fwd, ff, mt, e[..., :H].contiguous())
                du = du + _lstm_backward(layer.bwd, fb, mt, e[..., H:].flip(1).contiguous()).flip(1)
                e = du
        xr = xs[torch.as_tensor(m)].clone().requires_grad_(True)
        h0 = model._front(xr, torch.full((len(m),), T))[:, :T_out]
        (h0 * e).sum().backward()
        out[m, k] = xr.grad.numpy()
    return out


def char_gradients(model: Any, xs: Any, tokens: Sequence[int], frames: Sequence[tuple[int, int]],
                   window: Optional[int] = DEFAULT_WINDOW, states: Optional[list] = None) -> np.ndarray:
    """Gradients of each character's log-probability w.r.t. the input features.

    Args:
        model: an :class:`~inkread.model.InkModel` in eval mode.
        xs: (M, T, F) float tensor: M variants of one line (IG steps, noisy copies).
        tokens: (K,) class ids. frames: (K,) (first, last) output frames.
        window: output frames each side of a span to back-propagate through
            (None = the whole line, exact, by :func:`exact_char_gradients`;
            otherwise autograd on one windowed row per character).
        states: :func:`line_states` of ``xs`` if already computed.
    Returns:
        (M, K, T, F) float32 gradients of sum_{t=a_k..b_k} log p_t(token_k).
    """
    import torch
    if window is None:
        return exact_char_gradients(model, xs, tokens, frames, states)
    if states is None:
        _, states = line_states(model, xs)
    M, T, Fdim = xs.shape
    K = len(tokens)
    a, b, us, vs = _windows(frames, states[0].hf.shape[1], window)
    # one row per (variant, character); rows of all variants share the batches
    rm, rk = np.repeat(np.arange(M), K), np.tile(np.arange(K), M)
    tok = torch.as_tensor(np.asarray(tokens, dtype=np.int64))
    out = np.zeros((M, K, T, Fdim), dtype=np.float32)
    for s in range(0, M * K, ROW_CHUNK):
        m, k = rm[s:s + ROW_CHUNK], rk[s:s + ROW_CHUNK]
        xr = xs[torch.as_tensor(m)].clone().requires_grad_(True)
        lp = _window_logprobs(model, xr, us[k], vs[k], states[0].hf.shape[1], states, m)  # (R, L, C)
        j = torch.arange(lp.shape[1])[None]
        inside = (j >= torch.as_tensor(a[k] - us[k])[:, None]) & (j <= torch.as_tensor(b[k] - us[k])[:, None])
        picked = lp.gather(2, tok[k][:, None, None].expand(-1, lp.shape[1], 1)).squeeze(-1)  # (R, L)
        (picked * inside).sum().backward()
        out[m, k] = xr.grad.numpy()
    return out


# ------------------------------------------------------------------ methods
def frame_scores(model: Any, x: np.ndarray, tokens: Sequence[int], frames: Sequence[tuple[int, int]],
                 method: str = "gradient", window: Optional[int] = DEFAULT_WINDOW, **options: Any) -> np.ndarray:
    """Per-character attribution to each input frame by one method.

    Args:
        model: an :class:`~inkread.model.InkModel` in eval mode.
        x: (T, F) the line's features.
        tokens, frames: the characters' class ids and (first, last) output frames.
        method: one of :data:`METHODS`.
        window: see :func:`char_gradients`.
        **options: see :func:`frame_scores_multi`.
    Returns:
        (K, T) float64 scores.
    """
    method = canonical_method(method)
    return frame_scores_multi(model, x, tokens, frames, (method,), window, **options)[method]


def frame_scores_multi(model: Any, x: np.ndarray, tokens: Sequence[int], frames: Sequence[tuple[int, int]],
                       methods: Sequence[str] = METHODS, window: Optional[int] = DEFAULT_WINDOW,
                       steps: int = 16, nsamples: int = 16, noise: float = 0.15, seed: int = 0,
                       states: Optional[list] = None) -> dict[str, np.ndarray]:
    """:func:`frame_scores` for several methods, sharing the plain gradient.

    Args:
        steps: integrated gradients' quadrature points.
        nsamples, noise, seed: SmoothGrad's noisy copies, noise level (times
            the std of dx, dy over the line) and random seed.
        states: :func:`line_states` of ``x`` (saves a forward pass).
    Returns:
        method -> (K, T) float64 scores.
    """
    import torch
    methods = [canonical_method(m) for m in methods]
    x0 = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    pos = list(POSITION_CHANNELS)
    out: dict[str, np.ndarray] = {}
    if {"gradient", "gradxinput", "coordinates"} & set(methods):
        g = char_gradients(model, x0[None], tokens, frames, window, states)[0]  # (K, T, F)
        out["gradient"] = np.linalg.norm(g[..., pos], axis=-1).astype(np.float64)
        out["gradxinput"] = (g * x[None]).sum(-1).astype(np.float64)
        out["coordinates"] = np.linalg.norm(coordinate_gradient(g[..., pos]), axis=-1).astype(np.float64)
    if "integrated" in methods:
        alphas = (np.arange(steps) + 0.5) / steps
        xs = torch.from_numpy(alphas[:, None, None].astype(np.float32)) * x0[None]  # baseline 0
        g = char_gradients(model, xs, tokens, frames, window).mean(0)  # (K, T, F)
        out["integrated"] = (g * x[None]).sum(-1).astype(np.float64)
    if "smoothgrad" in methods:
        rng = np.random.default_rng(seed)
        sigma = noise * max(float(np.std(x[:, pos])), 1e-6)
        eps = np.zeros((nsamples,) + x.shape, dtype=np.float32)
        eps[..., pos] = rng.normal(0.0, sigma, (nsamples, x.shape[0], len(pos)))
        g = char_gradients(model, x0[None] + torch.from_numpy(eps), tokens, frames, window)
        out["smoothgrad"] = np.linalg.norm(g[..., pos], axis=-1).mean(0).astype(np.float64)
    return {m: out[m] for m in methods}


def coordinate_gradient(g: np.ndarray, points_per_height: float = 1.0) -> np.ndarray:
    """Gradient w.r.t. the resampled pen positions from the gradient w.r.t. the deltas.

    With d_0 = 0 and d_r = ppH (p_r - p_{r-1}) (the resampled points of all
    strokes chained, so a stroke's first delta is the pen-up jump),
    d / d p_r = ppH (g_r - g_{r+1}) with g_T = 0; p_0 only enters through d_1.

    Args:
        g: (..., T, 2) gradient of the (dx, dy) channels.
    Returns:
        (..., T, 2).
    """
    q = np.array(g, dtype=np.float64, copy=True)
    q[..., 0, :] = 0.0  # d_0 is the constant 0
    q[..., :-1, :] -= g[..., 1:, :]
    return q * points_per_height


@dataclass
class _Line:
    """One featurised, decoded line."""

    feats: Any
    log_probs: np.ndarray  # (T', C)
    states: list  # LayerStates per layer
    text: str
    tokens: list[int]
    frames: list[tuple[int, int]]
    pmap: PointMap
    rmap: PointMap  # resampled point -> original points (for POINT_METHODS)

    def to_points(self, method: str, scores: np.ndarray) -> np.ndarray:
        """(K, T) scores of ``method`` -> (K, N) point scores."""
        return (self.rmap if method in POINT_METHODS else self.pmap).apply(scores)


def _decode_line(engine: Engine, ink: Ink) -> _Line:
    import torch
    from .features import featurize
    ink.require_points()
    feats = featurize(ink, engine.feature_config)
    lp, states = line_states(engine.model, torch.from_numpy(feats.x)[None])
    hyp = engine.decoder(lp, torch.tensor([lp.shape[1]]))[0][0]
    text = "".join(engine.label(t) for t in hyp.tokens) if engine.alphabet is None else hyp.text
    pen_up = ink.to_array()[:, 3]
    pmap = point_map(feats.src_pos, feats.x[:, 3], pen_up)
    rmap = resampled_point_map(feats.src_pos, feats.x[:, 3], pen_up)
    return _Line(feats, lp[0].numpy(), states, text, list(hyp.tokens), list(hyp.frames), pmap, rmap)


def explain(model: Any, ink: Ink, method: str = "gradient", chars: Optional[Sequence[int]] = None,
            window: Optional[int] = DEFAULT_WINDOW, lm: bool = True, **options: Any) -> Explanation:
    """Which points of ``ink`` drove each recognised character.

    Args:
        model: a Recognizer, checkpoint Loaded, InkModel, model path, or None
            for the default model (see :func:`resolve`).
        ink: the line (must have points).
        method: one of :data:`METHODS` (or an alias such as "ig").
        chars: indices into the decoded text to explain (None = all).
        window: output frames each side of a character's span to
            back-propagate through (None = exact, slower).
        lm: decode with the recogniser's language model, as it displays text.
        **options: steps (integrated), nsamples, noise, seed (smoothgrad).
    Returns:
        An :class:`Explanation` whose chars carry (N,) point and (S,) stroke scores.
    Raises:
        OptionError: unknown method or a character index out of range.
        InkError: ink without points.
        CheckpointError: a missing or bad model file.
    """
    engine = resolve(model, lm=lm)
    method = canonical_method(method)
    _require_usable(engine, [method])
    t0 = time.perf_counter()
    with _eval_mode(engine.model):
        line = _decode_line(engine, ink)
        pick = list(range(len(line.tokens))) if chars is None else [int(k) for k in chars]
        bad = [k for k in pick if not 0 <= k < len(line.tokens)]
        if bad:
            raise OptionError(f"character index {bad[0]} out of range: the text {line.text!r} has "
                              f"{len(line.tokens)} characters")
        t1 = time.perf_counter()
        fs = frame_scores_multi(engine.model, line.feats.x, [line.tokens[k] for k in pick],
                                [line.frames[k] for k in pick], (method,), window, states=line.states,
                                **options)[method] if pick else np.zeros((0, 1))
    t2 = time.perf_counter()
    ps = line.to_points(method, fs) if pick else np.zeros((0, ink.num_points))
    ss = stroke_sums(ps, ink) if pick else np.zeros((0, len(ink.strokes)))
    out = [CharSaliency(line.text[k], k, line.frames[k], ps[i], ss[i], line.tokens[k])
           for i, k in enumerate(pick)]
    ms = {"decode": (t1 - t0) * 1e3, "attribution": (t2 - t1) * 1e3, "mapping": (time.perf_counter() - t2) * 1e3}
    return Explanation(line.text, out, method, window, ms)


# ------------------------------------------------------------------ faithfulness
def aligned_correct(decoded: str, truth: str) -> list[tuple[int, int]]:
    """(decoded index, truth index) of the characters an edit-distance alignment matches.

    The alignment is rapidfuzz's Levenshtein opcodes (unit costs); only the
    "equal" blocks count, so a character is correct when the alignment puts
    it on the same character of the truth.
    """
    from rapidfuzz.distance import Levenshtein
    pairs: list[tuple[int, int]] = []
    for op in Levenshtein.opcodes(decoded, truth):
        if op.tag == "equal":
            pairs.extend(zip(range(op.src_start, op.src_end), range(op.dest_start, op.dest_end)))
    return pairs


def _pieces(ink: Ink, size: int) -> list[np.ndarray]:
    """The ink's strokes cut into runs of at most about ``size`` points (deletion units)."""
    units, start = [], 0
    for s in ink.strokes:
        n = len(s)
        if n:
            for part in np.array_split(np.arange(start, start + n), max(1, int(np.ceil(n / size)))):
                units.append(part)
        start += n
    return units


def _without(arr: np.ndarray, drop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) flat ink minus the points ``drop``: the pen lifts where points were erased."""
    keep = np.ones(len(arr), dtype=bool)
    keep[drop] = False
    out = arr.copy()
    lifted = np.append(~keep[1:], True)
    out[:, 3] = np.maximum(out[:, 3], lifted.astype(np.float64))
    return out[keep], np.flatnonzero(keep)


def _frame_positions(src_pos: np.ndarray, kept: np.ndarray, s: int, T_out: int) -> np.ndarray:
    """(T',) original fractional point index of each output frame (mean over its input frames)."""
    old = np.interp(src_pos, np.arange(len(kept)), kept)
    pad = (-len(old)) % s
    return np.pad(old, (0, pad), mode="edge").reshape(-1, s).mean(1)[:T_out]


def _char_logp(lp: np.ndarray, pos: np.ndarray, lo: float, hi: float, token: int) -> float:
    """Best log p(token) over the frames that lie on points [lo, hi] (else the two nearest frames)."""
    on = np.flatnonzero((pos >= lo - 0.5) & (pos <= hi + 0.5))
    if on.size == 0:
        on = np.argsort(np.abs(pos - 0.5 * (lo + hi)))[:2]
    return float(lp[on, token].max())


def _region(line: _Line, k: int, s: int, curves: str) -> tuple[float, float]:
    """Original point range [lo, hi] behind decoded character k's output frames."""
    from .features import frame_point_range
    lo, hi = frame_point_range(line.feats.src_pos, *line.frames[k], s, curves)
    return float(lo), float(hi)


def _deletion_logps(engine: Engine, ink: Ink, units: list[np.ndarray], todo: list[int],
                    regions: dict, batch: int = 16) -> dict[int, dict[int, float]]:
    """log p of each character (k -> region, token) with each unit of ``todo`` erased."""
    import torch
    from .features import featurize_array
    arr, s = ink.to_array(), max(int(engine.model.cfg.subsample), 1)
    out: dict[int, dict[int, float]] = {}
    for c in range(0, len(todo), batch):
        chunk = todo[c:c + batch]
        cut = [_without(arr, units[u]) for u in chunk]
        feats = [featurize_array(a, engine.feature_config, ink.time_synthesized) for a, _ in cut]
        lengths = torch.tensor([len(f.x) for f in feats])
        x = torch.zeros(len(feats), int(lengths.max()), feats[0].x.shape[1])
        for i, f in enumerate(feats):
            x[i, : len(f.x)] = torch.from_numpy(f.x)
        with torch.inference_mode():
            lp, out_len = engine.model(x, lengths)
        for i, u in enumerate(chunk):
            T_out = int(out_len[i])
            pos = _frame_positions(feats[i].src_pos, cut[i][1], s, T_out)
            out[u] = {k: _char_logp(lp[i, :T_out].numpy(), pos, lo, hi, tok)
                      for k, (lo, hi, tok) in regions.items()}
    return out


def _top_units(scores: dict, unit_of: np.ndarray, n_units: int, own: list[np.ndarray]) -> tuple[dict, dict]:
    """Per method and character: the most salient unit, and the most salient unit outside ``own[i]``."""
    top, ctx = {}, {}
    for m, sc in scores.items():
        mass = [np.bincount(unit_of, np.abs(sc[i]), n_units) for i in range(len(own))]
        top[m] = [int(np.argmax(w)) for w in mass]
        ctx[m] = [int(np.argmax(np.where(own[i], -np.inf, w))) if not own[i].all() else -1
                  for i, w in enumerate(mass)]
    return top, ctx


def deletion_check(engine: Engine, ink: Ink, line: _Line, ks: Sequence[int], scores: dict,
                   rng: np.random.Generator, draws: int = 3) -> dict[str, list[tuple[float, float, float]]]:
    """Drop of log p(char) when salient units are erased, against random units.

    Units are the ink's strokes cut into pieces of about one character's
    points (strokes that hold a whole word would otherwise make the check
    trivial). Per character and method, three drops: erasing the method's
    most salient unit; erasing a random unit (drawn once per character among
    units of 0.5 to 2 times the size of the methods' top units, excluding
    those; mean over ``draws``); and erasing the method's most salient
    *context* unit, one with no point under the character's own frames
    (does the method know which neighbours the network relies on?).

    Args:
        ks: decoded character indices to check. scores: method -> (K, N)
            point scores, rows in the order of ``ks``.
    Returns:
        method -> per character (top drop, mean random drop, context drop).
    """
    s = max(int(engine.model.cfg.subsample), 1)
    units = _pieces(ink, max(8, int(round(ink.num_points / max(1, len(line.text.replace(' ', '')))))))
    unit_of = np.concatenate([np.full(len(u), i) for i, u in enumerate(units)])
    size = np.array([len(u) for u in units])
    curves = getattr(engine.feature_config, "curves", "points")
    regions = {k: _region(line, k, s, curves) + (line.tokens[k],) for k in ks}
    own = [np.array([((u >= regions[k][0]) & (u <= regions[k][1])).any() for u in units]) for k in ks]
    tops, ctx = _top_units(scores, unit_of, len(units), own)
    rand = []
    for i in range(len(ks)):
        mine = {tops[m][i] for m in tops}
        ref = size[list(mine)].mean()
        pool = [u for u in range(len(units)) if u not in mine and 0.5 * ref <= size[u] <= 2 * ref]
        rand.append([int(u) for u in rng.choice(pool, min(draws, len(pool)), replace=False)] if pool else [])
    todo = sorted({u for t in (*tops.values(), *ctx.values()) for u in t if u >= 0} | {u for r in rand for u in r})
    logp = _deletion_logps(engine, ink, units, todo, regions) if len(units) > 1 else {}
    pos = _frame_positions(line.feats.src_pos, np.arange(ink.num_points), s, len(line.log_probs))
    out: dict[str, list[tuple[float, float, float]]] = {m: [] for m in scores}
    for i, k in enumerate(ks):
        if not rand[i] or not logp:
            continue
        base = _char_logp(line.log_probs, pos, *regions[k])
        r = float(np.mean([base - logp[u][k] for u in rand[i]]))
        for m in scores:
            c = base - logp[ctx[m][i]][k] if ctx[m][i] >= 0 else float("nan")
            out[m].append((base - logp[tops[m][i]][k], r, c))
    return out


@dataclass
class _Tally:
    """Running sums of one method's faithfulness figures."""

    own: list = field(default_factory=list)
    hit: list = field(default_factory=list)
    chance: list = field(default_factory=list)
    deletion: list = field(default_factory=list)
    seconds: float = 0.0

    def summary(self, lines: int) -> dict:
        d = np.array(self.deletion, dtype=np.float64).reshape(-1, 3)
        ctx = d[np.isfinite(d[:, 2]), 2]
        return {"chars": len(self.hit), "mass_on_own": _mean(self.own), "pointing": _mean(self.hit),
                "chance_mass": _mean(self.chance), "ms_per_line": 1e3 * self.seconds / max(lines, 1),
                "deletion": {"chars": len(d), "top_drop": _mean(d[:, 0]), "random_drop": _mean(d[:, 1]),
                             "top_beats_random": _mean(d[:, 0] > d[:, 1]), "context_drop": _mean(ctx)}}


def _mean(v: Any) -> Optional[float]:
    v = np.asarray(v, dtype=np.float64)
    return float(v.mean()) if v.size else None


def randomised_copy(model: Any, seed: int = 0) -> Any:
    """A copy of ``model`` with every parameter re-initialised (the model-randomisation control)."""
    import copy

    import torch
    rnd = copy.deepcopy(model)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for mod in rnd.modules():
            if mod is not rnd and hasattr(mod, "reset_parameters"):
                mod.reset_parameters()
    return rnd.eval()


def _score_chars(tally: "_Tally", scores: np.ndarray, cop: np.ndarray, truth_idx: Sequence[int]) -> None:
    for i, j in enumerate(truth_idx):
        own, mag = cop == j, np.abs(scores[i])
        tally.own.append(mag[own].sum() / max(mag.sum(), 1e-300))
        tally.hit.append(bool(own[np.argmax(mag)]))
        tally.chance.append(own.mean())


def _span_scores(line: _Line, ks: Sequence[int], s: int) -> np.ndarray:
    """(K, T) the "span" control: 1 on the input frames under each character's output frames."""
    out = np.zeros((len(ks), len(line.feats.x)))
    for i, k in enumerate(ks):
        a, b = line.frames[k]
        out[i, a * s: (b + 1) * s] = 1.0
    return out


def _line_faithfulness(engine: Engine, ink: Ink, truth: str, runs: list, tallies: dict,
                       window: Optional[int], rng: np.random.Generator, deletion_chars: int,
                       options: dict) -> tuple[int, int]:
    """Add one line's figures to ``tallies``; returns (edit distance, truth length).

    Args:
        runs: (name, method, model) triples; scores of every run use the
            spans decoded by ``engine``.
    """
    from rapidfuzz.distance import Levenshtein
    line = _decode_line(engine, ink)
    cop = np.asarray(ink.char_of_point)
    pairs = [(k, j) for k, j in aligned_correct(line.text, truth) if (cop == j).any()]
    if pairs:
        ks = [k for k, _ in pairs]
        scores = {}
        for name, method, model in runs:
            t0 = time.perf_counter()
            if method == "span":
                fs = _span_scores(line, ks, max(int(engine.model.cfg.subsample), 1))
            else:
                fs = frame_scores_multi(model, line.feats.x, [line.tokens[k] for k in ks],
                                        [line.frames[k] for k in ks], (method,), window,
                                        states=line.states if model is engine.model else None, **options)[method]
            scores[name] = line.to_points(method, fs)  # (K, N)
            tallies[name].seconds += time.perf_counter() - t0
            _score_chars(tallies[name], scores[name], cop, [j for _, j in pairs])
        if deletion_chars > 0:
            pick = sorted(rng.choice(len(ks), min(deletion_chars, len(ks)), replace=False))
            res = deletion_check(engine, ink, line, [ks[i] for i in pick],
                                 {name: sc[pick] for name, sc in scores.items()}, rng)
            for name in scores:
                tallies[name].deletion.extend(res[name])
    return Levenshtein.distance(line.text, truth), len(truth)


def faithfulness(model: Any, samples: Any, methods: Optional[Sequence[str]] = None,
                 window: Optional[int] = DEFAULT_WINDOW, deletion_chars: int = 3, seed: int = 0,
                 control: bool = False, progress: bool = False, **options: Any) -> dict:
    """Saliency measured against per-point truth (synthetic ink).

    Lines are decoded greedily (no LM: the network is measured). Only
    characters that the edit-distance alignment of the decoded text with the
    truth marks as correct, and that have points of their own, are counted.
    Per method and character: the share of the saliency magnitude |score|
    on the character's own points ("mass_on_own"; "chance_mass" is its own
    share of the line's points, what a uniform map would get), and whether
    the point of largest |score| is one of its own ("pointing"). With
    ``deletion_chars``, that many counted characters per line also get
    :func:`deletion_check`. With ``control``, two references are added:
    every method run as ``"<method>@random"`` on a copy of the network with
    re-initialised weights (same character spans), and ``"span"``, a map
    that is 1 on the points under the character's output frames and 0
    elsewhere: what locality alone achieves. A method that does not beat
    them on these figures has not shown more than locality.

    Args:
        model: anything :func:`resolve` takes.
        samples: Samples or Inks carrying ``text`` and ``char_of_point``
            (lines without them are skipped).
        methods: methods to measure (None = all that apply to the model's
            features). window, options: as in :func:`explain`.
    Returns:
        A plain dict: lines, skipped, cer, chars_counted, window, methods -> figures.
    """
    engine = resolve(model, lm=False)
    methods = list(usable_methods(engine)) if methods is None else [canonical_method(m) for m in methods]
    _require_usable(engine, methods)
    runs = [(m, m, engine.model) for m in methods]
    if control:
        rnd = randomised_copy(engine.model, seed)
        runs += [(f"{m}@random", m, rnd) for m in methods] + [("span", "span", None)]
    tallies = {name: _Tally() for name, _, _ in runs}
    rng = np.random.default_rng(seed)
    lines = skipped = errors = total = 0
    with _eval_mode(engine.model):
        for s in _progress(samples, progress):
            ink = getattr(s, "ink", s)
            truth = getattr(s, "text", None) or ink.text
            if ink.char_of_point is None or not truth or ink.is_empty:
                skipped += 1
                continue
            e, n = _line_faithfulness(engine, ink, truth, runs, tallies, window, rng, deletion_chars, options)
            lines, errors, total = lines + 1, errors + e, total + n
    return {"lines": lines, "skipped": skipped, "cer": errors / max(total, 1),
            "chars_counted": len(tallies[runs[0][0]].hit) if runs else 0, "window": window,
            "model": engine.path, "methods": {name: t.summary(lines) for name, t in tallies.items()}}


def _progress(items: Any, on: bool) -> Any:
    if not on:
        return items
    from tqdm import tqdm
    return tqdm(items, desc="faithfulness", unit="line")


# ------------------------------------------------------------------ Graves's demo rows
def line_gradient(model: Any, x: np.ndarray, tokens: Sequence[int], frames: Sequence[tuple[int, int]]) -> np.ndarray:
    """(T, F) exact gradient of the summed log-probabilities of all characters (one pass)."""
    import torch
    xv = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None].requires_grad_(True)
    lp, _ = model(xv, torch.tensor([x.shape[0]]))
    target = sum((lp[0, a:b + 1, t].sum() for t, (a, b) in zip(tokens, frames)), lp.new_zeros(()))
    if target.requires_grad:
        target.backward()
        return xv.grad[0].numpy()
    return np.zeros_like(x, dtype=np.float32)


def demo_rows(model: Any, ink: Ink, n_cells: int = 16, lm: bool = True) -> dict:
    """The data behind the rows of Graves's online-handwriting demo figure.

    Memory cells are those of the first layer's forward LSTM, recomputed step
    by step from its weights (see :func:`cell_states`); the ``n_cells`` with
    the largest spread over the line are shown. The gradient row is the
    magnitude of the gradient of all recognised characters' log-probabilities
    (summed) with respect to the pen's dx, dy, mapped to the ink's points.

    Args:
        model: anything :func:`resolve` takes. ink: the line.
    Returns:
        dict with ``text``; ``labels`` (K,) the shown classes ("" = blank,
        then the decoded characters in order of appearance); ``probs`` (T', K)
        their probabilities per output frame; ``cells`` (T', n_cells) and
        ``cell_index``; ``frame_points`` (T',) fractional original point index
        of each output frame; ``grad`` (N,) the gradient magnitude per point,
        scaled to max 1; ``chars`` [(char, first frame, last frame)].
    """
    engine = resolve(model, lm=lm)
    with _eval_mode(engine.model):
        line = _decode_line(engine, ink)
        g = line_gradient(engine.model, line.feats.x, line.tokens, line.frames)
    shown = [0] + list(dict.fromkeys(line.tokens))
    c = line.states[0].cf[0].numpy()  # (T', H)
    pick = np.sort(np.argsort(-c.std(axis=0), kind="stable")[:n_cells])
    s = max(int(engine.model.cfg.subsample), 1)
    grad = line.pmap.apply(np.linalg.norm(g[:, list(POSITION_CHANNELS)], axis=-1)[None])[0]
    return {"text": line.text, "labels": [engine.label(t) for t in shown],
            "probs": np.exp(line.log_probs[:, shown]), "cells": c[:, pick], "cell_index": pick,
            "frame_points": _frame_positions(line.feats.src_pos, np.arange(ink.num_points), s,
                                             len(line.log_probs)),
            "grad": grad / grad.max() if grad.max() > 0 else grad,
            "chars": [(ch, a, b) for ch, (a, b) in zip(line.text, line.frames)]}


# ------------------------------------------------------------------ speed
BENCH_WINDOW = 16


def bench(model: Any, inks: Sequence[Ink], methods: Sequence[str] = METHODS, threads: int = 1,
          budget_s: float = 3.0, window_variant: Optional[int] = BENCH_WINDOW) -> dict[str, float]:
    """Milliseconds per line to explain every character of a line, per method (median).

    Each method is timed on successive lines until ``budget_s`` seconds are
    spent (at least one line). ``window_variant`` adds the plain gradient
    with that truncation window as key ``"gradient_window<W>"``.

    Args:
        model: anything :func:`resolve` takes (a bare InkModel uses the default
            feature settings). inks: lines to explain.
        threads: torch threads while timing (restored after).
    Returns:
        method -> median ms per line.
    """
    import torch
    engine = resolve(model, lm=False)
    inks = [ink for ink in inks if not ink.is_empty]
    if not inks:
        raise ValueError("no lines with ink to benchmark")
    runs = [(canonical_method(m), None, canonical_method(m)) for m in methods
            if canonical_method(m) in usable_methods(engine)]
    if window_variant is not None:
        runs.append(("gradient", window_variant, f"gradient_window{window_variant}"))
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        explain(engine, inks[0], "gradient", window=window_variant)  # warm-up
        out = {}
        for method, window, key in runs:
            times, t_start = [], time.perf_counter()
            for ink in inks:
                t0 = time.perf_counter()
                explain(engine, ink, method, window=window)
                times.append((time.perf_counter() - t0) * 1e3)
                if time.perf_counter() - t_start > budget_s:
                    break
            out[key] = float(np.median(times))
        return out
    finally:
        torch.set_num_threads(old)
