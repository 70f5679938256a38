"""Self-describing model files: one plain dict, loadable with ``weights_only=True``.

Layout (``FORMAT_VERSION`` 1)::

    {"format": "inkread-model", "format_version": 1, "inkread_version": str,
     "model_config": dict, "feature_config": dict, "alphabet": str,
     "state_dict": {name: tensor}, "meta": dict (data, steps, metrics, ...),
     "train_state": dict (optional: optimizer, schedule, RNG, position)}

Weights may be stored smaller, for shipping (``save(..., weights=...)``,
recorded as ``meta["weights_dtype"]``): ``"float16"`` halves the file;
``"int8"`` stores every matrix (conv, LSTM and head weights) as int8 with one
float32 scale per output row, under ``NAME`` and ``NAME + INT8_SCALE``, and
the rest in float16: about a quarter of the file. Loading turns both back
into the model's float32 parameters.

Files are written atomically (temp file + rename). Loading never unpickles
arbitrary objects: ``torch.load(weights_only=True)`` refuses them, and the
refusal is reported as a :class:`CheckpointError` naming the file.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from . import __version__
from .alphabet import Alphabet
from .errors import CheckpointError, check_writable
from .features import FeatureConfig
from .model import InkModel, ModelConfig

log = logging.getLogger(__name__)

FORMAT = "inkread-model"
FORMAT_VERSION = 1
WEIGHTS_DTYPES = ("float32", "float16", "int8")
INT8_SCALE = ".int8_scale"  # suffix of the per-row scales of an int8 matrix


@dataclass
class Loaded:
    """A loaded checkpoint."""

    model: InkModel
    alphabet: Alphabet
    feature_config: FeatureConfig
    meta: dict = field(default_factory=dict)
    train_state: Optional[dict] = None
    path: Optional[str] = None


def save(path: os.PathLike | str, model: InkModel, alphabet: Alphabet,
         feature_config: FeatureConfig, meta: Optional[dict] = None,
         train_state: Optional[dict] = None, weights: str = "float32") -> None:
    """Write a checkpoint atomically.

    ``weights`` is how floating-point weights are stored: ``"float32"``, or
    for shipping ``"float16"`` (half the size) or ``"int8"`` (a quarter;
    matrices as int8 with a scale per row). The shipped model's testset_v
    errors barely move (models/README.md).

    Raises:
        CheckpointError: an unknown ``weights``, or a weight beyond float16's range.
    """
    path = Path(path)
    if weights not in WEIGHTS_DTYPES:
        raise CheckpointError(f"unknown weights storage {weights!r} (choose from "
                              f"{', '.join(WEIGHTS_DTYPES)})", path)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    meta = dict(meta or {})
    meta.pop("weights_dtype", None)
    if weights != "float32":
        for k, v in list(state.items()):
            if not v.is_floating_point():
                continue
            if not torch.isfinite(v.half()).all():
                raise CheckpointError(f"weight {k!r} does not fit in float16 (max |w| "
                                      f"{v.abs().max().item():.3g})", path)
            if weights == "int8" and v.dim() >= 2:
                state[k], state[k + INT8_SCALE] = _to_int8(v)
            else:
                state[k] = v.half()
        meta["weights_dtype"] = weights
    obj = {"format": FORMAT, "format_version": FORMAT_VERSION, "inkread_version": __version__,
           "model_config": model.cfg.to_dict(), "feature_config": feature_config.to_dict(),
           "alphabet": alphabet.chars, "state_dict": state, "meta": meta}
    if train_state is not None:
        obj["train_state"] = train_state
    check_writable(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch.save reports a file it cannot open as RuntimeError
        raise CheckpointError(f"cannot write the model ({getattr(exc, 'strerror', None) or exc})", path) from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _to_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 per output row: (int8 tensor shaped like w, float32 scales (rows,))."""
    rows = w.reshape(w.shape[0], -1).float()
    scale = rows.abs().amax(dim=1).clamp_min(1e-30) / 127.0
    q = torch.round(rows / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q.reshape(w.shape), scale


def _from_int8(state: dict, path: Path) -> dict:
    """The float32 state of a file with int8 matrices (inverse of :func:`_to_int8`)."""
    out = {}
    for k, v in state.items():
        if k.endswith(INT8_SCALE):
            if k[: -len(INT8_SCALE)] not in state:
                raise CheckpointError(f"field 'state_dict' has scales {k!r} without their weights", path)
            continue
        scale = state.get(k + INT8_SCALE)
        if v.dtype == torch.int8:
            if not isinstance(scale, torch.Tensor) or scale.dim() != 1 or v.dim() < 1 \
                    or scale.shape[0] != v.shape[0] or not scale.is_floating_point():
                raise CheckpointError(f"field 'state_dict': int8 weight {k!r} lacks a float scale per "
                                      f"row ({k + INT8_SCALE!r})", path)
            v = (v.reshape(v.shape[0], -1).float() * scale.float()[:, None]).reshape(v.shape)
        elif scale is not None:
            raise CheckpointError(f"field 'state_dict': {k!r} has int8 scales but is {v.dtype}", path)
        out[k] = v
    return out


def _field(obj: dict, name: str, kind: type, path: Path) -> Any:
    if name not in obj:
        raise CheckpointError(f"missing field {name!r}", path)
    if not isinstance(obj[name], kind):
        raise CheckpointError(f"field {name!r} is {type(obj[name]).__name__}, expected {kind.__name__}", path)
    return obj[name]


def load(path: os.PathLike | str, map_location: str = "cpu") -> Loaded:
    """Load a checkpoint; the model is returned in eval mode.

    Raises:
        CheckpointError: missing file, not an inkread model, unsafe pickle,
            unsupported version, or a field that does not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("no such model file", path)
    if not zipfile.is_zipfile(path):  # torch's own message would be about pickles and weights_only
        raise CheckpointError("not an inkread model file (damaged or cut short, or another kind of file: "
                              "a model is the zip archive `inkread train` or `export` writes)", path)
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError("not an inkread model file (it holds Python objects that a safe load "
                              "refuses to run)", path) from None
    except Exception as exc:  # torch raises RuntimeError, EOFError...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"not a loadable inkread model ({first[:200]})", path) from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError("not an inkread model file (no 'format': 'inkread-model')", path)
    version = _field(obj, "format_version", int, path)
    if version > FORMAT_VERSION:
        raise CheckpointError(f"format_version {version} is newer than this inkread "
                              f"supports ({FORMAT_VERSION}); upgrade inkread", path)
    try:
        mcfg = ModelConfig.from_dict(_field(obj, "model_config", dict, path))
        fcfg = FeatureConfig.from_dict(_field(obj, "feature_config", dict, path))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"bad config ({exc})", path) from None
    alphabet = Alphabet(_field(obj, "alphabet", str, path))
    if len(alphabet) != mcfg.num_classes:
        raise CheckpointError(f"field 'alphabet' has {len(alphabet)} classes but the model "
                              f"config says {mcfg.num_classes}", path)
    model = InkModel(mcfg)
    state = _field(obj, "state_dict", dict, path)
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError("field 'state_dict' holds something other than tensors", path)
    state = _from_int8(state, path)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"field 'state_dict' does not fit the model config "
                              f"({str(exc).splitlines()[0][:200]})", path) from None
    model.eval()
    return Loaded(model, alphabet, fcfg, obj.get("meta", {}), obj.get("train_state"), str(path))


def _network(cfg: ModelConfig) -> ModelConfig:
    """The config without its training-only settings (dropout), for comparing networks."""
    return dataclasses.replace(cfg, dropout=0.0)


def frame_mismatch(model: InkModel, alphabet: Alphabet, fcfg: FeatureConfig,
                   other: InkModel, other_alphabet: Alphabet, other_fcfg: FeatureConfig) -> str:
    """Why ``other`` cannot be read with ``model`` frame by frame (an ensemble, or a teacher
    in distillation): "" when both read the same features into the same frames and characters."""
    if other_alphabet.chars != alphabet.chars:
        return "its alphabet differs"
    if other_fcfg != fcfg:
        return "its features differ"
    if max(other.cfg.subsample, 1) != max(model.cfg.subsample, 1):
        return f"it subsamples by {other.cfg.subsample}, not {model.cfg.subsample}"
    return ""


def average(paths: list) -> Loaded:
    """The mean of several checkpoints' weights (e.g. the last epochs of one run).

    Averaging the weights of nearby points of one training run tends to land
    in a flatter region than any of them (Izmailov et al. 2018, "Averaging
    weights leads to wider optima"). Meta is the first file's, without its
    validation figures (they were not the mean's), with ``averaged_from``.

    Dropout may differ (it only acts in training); the mean keeps the first's.

    Raises:
        CheckpointError: fewer than two files, or files whose network,
            features or alphabet differ (named).
    """
    if len(paths) < 2:
        raise CheckpointError("averaging needs at least two model files", paths[0] if paths else None)
    models = [load(p) for p in paths]
    first = models[0]
    for ld in models[1:]:
        for what, a, b in (("model_config", _network(first.model.cfg), _network(ld.model.cfg)),
                           ("feature_config", first.feature_config, ld.feature_config),
                           ("alphabet", first.alphabet.chars, ld.alphabet.chars)):
            if a != b:
                raise CheckpointError(f"field {what!r} differs from {first.path}'s: cannot average", ld.path)
    states = [ld.model.state_dict() for ld in models]
    mean = {k: (sum(s[k].double() for s in states) / len(states)).to(v.dtype) if v.is_floating_point() else v
            for k, v in states[0].items()}
    first.model.load_state_dict(mean)
    meta = {k: v for k, v in first.meta.items() if k not in ("val", "best_val_cer")}  # the first's alone
    meta["averaged_from"] = [str(p) for p in paths]
    return Loaded(first.model, first.alphabet, first.feature_config, meta, None, None)
