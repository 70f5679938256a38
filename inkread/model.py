"""The recogniser network: optional conv front end, bidirectional LSTM stack, CTC head.

Each bidirectional layer runs two unidirectional ``nn.LSTM`` on a padded
batch; the backward one sees every sequence reversed *within its own
length*, so padding never enters its state. This keeps the speed of padded
batches (on this CPU build, backward through ``pack_padded_sequence`` is
about 90x slower) without letting padding leak into the reverse direction.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)


@dataclass
class ModelConfig:
    """Shape of the network; stored in every checkpoint.

    Attributes:
        input_size: features per frame (F).
        num_classes: output classes, blank included (C).
        hidden_size: LSTM units per direction (H).
        num_layers: bidirectional LSTM layers.
        dropout: dropout between layers and before the head.
        conv_channels: width of the conv front end (0 = none).
        subsample: time stride of the conv front end (1 = none).
    """

    input_size: int = 4
    num_classes: int = 80
    hidden_size: int = 128
    num_layers: int = 3
    dropout: float = 0.2
    conv_channels: int = 64
    subsample: int = 2

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of a padded batch inside its own length.

    Args:
        x: (B, T, D) padded batch.
        lengths: (B,) valid lengths.
    Returns:
        (B, T, D) with x[b, :L_b] reversed and the padding left in place.
    """
    B, T, _ = x.shape
    t = torch.arange(T, device=x.device).unsqueeze(0).expand(B, T)
    L = lengths.to(x.device).unsqueeze(1)
    idx = torch.where(t < L, L - 1 - t, t)
    return x.gather(1, idx.unsqueeze(-1).expand_as(x))


class BiLSTMLayer(nn.Module):
    """One bidirectional layer: forward and length-aware reversed LSTM."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.fwd = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.bwd = nn.LSTM(input_size, hidden_size, batch_first=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T, 2H)."""
        f, _ = self.fwd(x)
        b, _ = self.bwd(reverse_within_length(x, lengths))
        return torch.cat([f, reverse_within_length(b, lengths)], dim=-1)


class Dropout(nn.Module):
    """``nn.Dropout`` with its mask drawn from uniform numbers.

    torch's CPU ``bernoulli_``, which ``nn.Dropout`` uses, draws about three times slower
    than ``rand``: on a (24, 190, 384) batch, one thread, 52 ms against 18 ms a call, and a
    3x192 network calls it three times a step. Same expectation, same scaling by 1/(1-p).
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), not {p}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p <= 0:
            return x
        keep = torch.rand(x.shape, device=x.device) >= self.p  # float32 draws, even under autocast
        return x * keep.to(x.dtype) * (1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class InkModel(nn.Module):
    """BiLSTM-CTC recogniser.

    forward(x (B, T, F), lengths (B,)) -> (log_probs (B, T', C), out_lengths (B,)),
    with T' = ceil(T / subsample); output frame j covers input frames
    [j * subsample, (j + 1) * subsample).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        s = max(cfg.subsample, 1)
        if cfg.conv_channels > 0:
            self.front = nn.Conv1d(cfg.input_size, cfg.conv_channels, kernel_size=max(3, 2 * s - 1),
                                   stride=s, padding=max(3, 2 * s - 1) // 2)
            size = cfg.conv_channels
        else:
            self.front = None
            size = cfg.input_size * s  # frames stacked when subsampling without conv
        layers = []
        for _ in range(cfg.num_layers):
            layers.append(BiLSTMLayer(size, cfg.hidden_size))
            size = 2 * cfg.hidden_size
        self.layers = nn.ModuleList(layers)
        self.drop = Dropout(cfg.dropout)
        self.head = nn.Linear(size, cfg.num_classes)

    def out_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        s = max(self.cfg.subsample, 1)
        return torch.div(lengths + s - 1, s, rounding_mode="floor")

    def _front(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        s = max(self.cfg.subsample, 1)
        B, T, Fdim = x.shape
        mask = (torch.arange(T, device=x.device)[None, :] < lengths.to(x.device)[:, None]).unsqueeze(-1)
        x = x * mask  # zero padding so the conv sees the same values as at inference
        if self.front is not None:
            return F.relu(self.front(x.transpose(1, 2))).transpose(1, 2)  # (B, T', C)
        if s == 1:
            return x
        pad = (-T) % s
        x = F.pad(x, (0, 0, 0, pad))
        return x.reshape(B, (T + pad) // s, Fdim * s)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor,
                return_hidden: bool = False):
        """Log-probabilities per output frame.

        Args:
            x: (B, T, F) features.
            lengths: (B,) valid input lengths.
            return_hidden: also return the list of per-layer outputs (B, T', 2H).
        Returns:
            log_probs (B, T', C), out_lengths (B,)[, hidden list]
        """
        out_len = self.out_lengths(lengths)
        h = self._front(x, lengths)  # (B, T', D)
        h = h[:, : int(out_len.max())] if h.shape[1] > int(out_len.max()) else h
        hidden = []
        for layer in self.layers:
            h = layer(self.drop(h) if hidden else h, out_len)  # (B, T', 2H)
            hidden.append(h)
        logits = self.head(self.drop(h))  # (B, T', C)
        if logits.dtype != torch.float32:  # under bfloat16 autocast (train --bf16): log-probs in float32
            logits = logits.float()
        lp = F.log_softmax(logits, dim=-1)
        return (lp, out_len, hidden) if return_hidden else (lp, out_len)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def widen_state(old: dict[str, torch.Tensor], old_hidden: int,
                new: dict[str, torch.Tensor], new_hidden: int) -> dict[str, torch.Tensor]:
    """Grow a trained network's LSTM layers to more units, keeping what it computes.

    ``new`` is the state of a freshly initialised model of the same config but
    with ``new_hidden`` units per direction. Each old unit keeps its weights;
    each added unit keeps its random incoming weights, and every weight *out
    of* an added unit (into the recurrences, the next layer and the head) is
    zero, so the grown network's output equals the old one's until training
    moves those weights (function-preserving widening, as in Net2Net).

    Args:
        old: state_dict of the trained model (H = old_hidden).
        new: state_dict of the fresh model (H' = new_hidden), not modified.
    Returns:
        the grown state_dict.
    Raises:
        ValueError: if new_hidden < old_hidden or the two states do not match.
    """
    H, H2 = old_hidden, new_hidden
    if H2 < H:
        raise ValueError(f"cannot shrink {H} units to {H2}")
    if set(old) != set(new):
        raise ValueError("the two models differ in more than their width")

    def cols(t_old: torch.Tensor, t_new: torch.Tensor, from_lstm: bool) -> torch.Tensor:
        """Old input columns in their new places; inputs from added units get weight 0."""
        if not from_lstm:
            return t_old
        out = torch.zeros(t_old.shape[0], t_new.shape[1], dtype=t_new.dtype)
        out[:, :H] = t_old[:, :H]            # forward direction's units
        out[:, H2:H2 + H] = t_old[:, H:2 * H]  # backward direction's units
        return out

    grown = {}
    for name, t_new in new.items():
        t_old = old[name].to(t_new.dtype)
        t = t_new.clone()
        if name.startswith("layers.") and (".weight_" in name or ".bias_" in name):
            first_layer = name.startswith("layers.0.")
            for k in range(4):  # gates i, f, g, o: one block of H rows each
                rows_old = t_old[k * H:(k + 1) * H]
                if ".weight_hh" in name:
                    rows = torch.zeros(H, H2, dtype=t.dtype)
                    rows[:, :H] = rows_old
                elif ".weight_ih" in name:
                    rows = cols(rows_old, t_new, from_lstm=not first_layer)
                else:
                    rows = rows_old
                t[k * H2:k * H2 + H] = rows
        elif name == "head.weight":
            t = cols(t_old, t_new, from_lstm=True)
        elif t_old.shape == t_new.shape:
            t = t_old.clone()
        else:
            raise ValueError(f"{name}: shapes {tuple(t_old.shape)} and {tuple(t_new.shape)} do not match")
        grown[name] = t
    return grown
