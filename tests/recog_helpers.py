"""Tiny models, LMs and data files for the decoding, evaluation, recognizer and bench tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from inkread.alphabet import Alphabet
from inkread.checkpoint import save
from inkread.features import FeatureConfig
from inkread.formats import write_ink
from inkread.model import InkModel, ModelConfig

from engine_helpers import TEXTS, make_ink

ALPHABET = Alphabet(" abcd")


def tiny_model(seed: int = 0, subsample: int = 2) -> InkModel:
    """A random-weight model small enough to run in milliseconds."""
    torch.manual_seed(seed)
    cfg = ModelConfig(input_size=FeatureConfig().num_features, num_classes=len(ALPHABET),
                      hidden_size=8, num_layers=1, dropout=0.0, conv_channels=8, subsample=subsample)
    return InkModel(cfg).eval()


def save_tiny_model(path: Path, seed: int = 0) -> Path:
    save(path, tiny_model(seed), ALPHABET, FeatureConfig(), meta={"note": "tiny test model"})
    return path


def write_native_dir(folder: Path) -> Path:
    """The engine helpers' tiny labelled lines as native JSON files."""
    folder.mkdir(parents=True, exist_ok=True)
    for t in TEXTS:
        write_ink(make_ink(t), folder / f"{t}.json")
    return folder


def log_softmax(logits: np.ndarray) -> np.ndarray:
    m = logits.max(axis=-1, keepdims=True)
    return (logits - m - np.log(np.exp(logits - m).sum(axis=-1, keepdims=True))).astype(np.float32)


def peaky(path: list[int], classes: int, sharp: float = 8.0, seed: int = 0) -> np.ndarray:
    """(T, C) log-probs whose per-frame argmax follows ``path`` (class ids, 0 = blank)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 0.5, (len(path), classes))
    logits[np.arange(len(path)), path] += sharp
    return log_softmax(logits)
