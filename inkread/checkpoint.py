"""Self-describing model files: one plain dict, loadable with ``weights_only=True``.

Layout (``FORMAT_VERSION`` 1)::

    {"format": "inkread-model", "format_version": 1, "inkread_version": str,
     "model_config": dict, "feature_config": dict, "alphabet": str,
     "state_dict": {name: tensor}, "meta": dict (data, steps, metrics, ...),
     "train_state": dict (optional: optimizer, schedule, RNG, position)}

Floating-point weights may be stored as float16 (``save(..., half=True)``,
``meta["weights_dtype"] == "float16"``): half the file, and loading turns
them back into the model's float32 parameters.

Files are written atomically (temp file + rename). Loading never unpickles
arbitrary objects: ``torch.load(weights_only=True)`` refuses them, and the
refusal is reported as a :class:`CheckpointError` naming the file.
"""
from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from . import __version__
from .alphabet import Alphabet
from .errors import CheckpointError
from .features import FeatureConfig
from .model import InkModel, ModelConfig

log = logging.getLogger(__name__)

FORMAT = "inkread-model"
FORMAT_VERSION = 1


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
         train_state: Optional[dict] = None, half: bool = False) -> None:
    """Write a checkpoint atomically.

    ``half`` stores floating-point weights as float16, for shipping: half the
    size; the network's outputs move by about 1e-3 in log-probability.

    Raises:
        CheckpointError: ``half`` and a weight beyond float16's range.
    """
    path = Path(path)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    meta = dict(meta or {})
    if half:
        for k, v in state.items():
            if v.is_floating_point():
                if not torch.isfinite(v.half()).all():
                    raise CheckpointError(f"weight {k!r} does not fit in float16 (max |w| "
                                          f"{v.abs().max().item():.3g})", path)
                state[k] = v.half()
        meta["weights_dtype"] = "float16"
    else:
        meta.pop("weights_dtype", None)
    obj = {"format": FORMAT, "format_version": FORMAT_VERSION, "inkread_version": __version__,
           "model_config": model.cfg.to_dict(), "feature_config": feature_config.to_dict(),
           "alphabet": alphabet.chars, "state_dict": state, "meta": meta}
    if train_state is not None:
        obj["train_state"] = train_state
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


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
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError...
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
    try:
        model.load_state_dict(_field(obj, "state_dict", dict, path))
    except RuntimeError as exc:
        raise CheckpointError(f"field 'state_dict' does not fit the model config "
                              f"({str(exc).splitlines()[0][:200]})", path) from None
    model.eval()
    return Loaded(model, alphabet, fcfg, obj.get("meta", {}), obj.get("train_state"), str(path))


def average(paths: list) -> Loaded:
    """The mean of several checkpoints' weights (e.g. the last epochs of one run).

    Averaging the weights of nearby points of one training run tends to land
    in a flatter region than any of them (Izmailov et al. 2018, "Averaging
    weights leads to wider optima"). Meta is the first file's, without its
    validation figures (they were not the mean's), with ``averaged_from``.

    Raises:
        CheckpointError: fewer than two files, or files whose network,
            features or alphabet differ (named).
    """
    if len(paths) < 2:
        raise CheckpointError("averaging needs at least two model files", paths[0] if paths else None)
    models = [load(p) for p in paths]
    first = models[0]
    for ld in models[1:]:
        for what, a, b in (("model_config", first.model.cfg, ld.model.cfg),
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
