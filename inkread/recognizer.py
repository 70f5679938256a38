"""The public face of inkread: ``Recognizer.load(path).recognize(ink) -> Result``.

A :class:`Recognizer` holds a model, its alphabet and feature settings, and
optionally a character language model. :meth:`Recognizer.recognize` returns
the text, an n-best list, and per character the output frames where it is
emitted and the original ink points those frames came from, so the GUI and
saliency can tie characters back to strokes.

Default files: ``Recognizer.load()`` without a path reads ``$INKREAD_MODEL``
or ``models/default.pt`` of the source tree, and the LM ``$INKREAD_LM`` or
``models/lm-en.npz`` when present. The LM file may carry tuned decoding
settings (``lm_weight``, ``bonus``, written by ``inkread lm tune --write``).
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional, Sequence

import numpy as np

from .decode import DEFAULT_BEAM, BeamSearchDecoder, GreedyDecoder, Hypothesis
from .errors import CheckpointError
from .evaluate import normalize
from .ink import Ink

if TYPE_CHECKING:
    import torch

    from .lines import Line
    from .lm import CharLM

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
DEFAULT_LM_WEIGHT = 0.75
DEFAULT_BONUS = 2.0


def default_model_path() -> Path:
    """``$INKREAD_MODEL`` or models/default.pt beside the package."""
    return Path(os.environ.get("INKREAD_MODEL") or MODELS_DIR / "default.pt")


def default_lm_path() -> Path:
    """``$INKREAD_LM`` or models/lm-en.npz beside the package."""
    return Path(os.environ.get("INKREAD_LM") or MODELS_DIR / "lm-en.npz")


@dataclass
class CharSpan:
    """Where one character of the result came from.

    Attributes:
        char: the character.
        index: its index in ``Result.text``.
        frame_start, frame_end: first and last output frame that emit it.
        point_indices: (K,) int64 flat indices (as in :meth:`Ink.to_array`)
            of the original points those frames were resampled from.
    """

    char: str
    index: int
    frame_start: int
    frame_end: int
    point_indices: np.ndarray

    @property
    def index_in_text(self) -> int:
        """Alias of ``index`` (the name in the first API sketch)."""
        return self.index


@dataclass
class Result:
    """Recognition of one ink.

    Attributes:
        text: the best hypothesis.
        nbest: (text, score) pairs, best first; scores are natural logs. Hypotheses
            that differ only in spacing (:func:`inkread.evaluate.normalize`, the
            sameness that CER scoring uses) appear once, with the better score.
        chars: one :class:`CharSpan` per character of ``text``.
        ms: timings in milliseconds: features, network, decode, total.
        score: score of ``text``.
    """

    text: str
    nbest: list[tuple[str, float]] = field(default_factory=list)
    chars: list[CharSpan] = field(default_factory=list)
    ms: dict[str, float] = field(default_factory=dict)
    score: float = 0.0

    def to_dict(self) -> dict:
        return {"text": self.text, "score": self.score,
                "nbest": [{"text": t, "score": s} for t, s in self.nbest],
                "chars": [{"char": c.char, "index": c.index, "frames": [c.frame_start, c.frame_end],
                           "points": [int(c.point_indices[0]), int(c.point_indices[-1])]
                           if len(c.point_indices) else []} for c in self.chars],
                "ms": self.ms}


@contextlib.contextmanager
def _threads(n: Optional[int]) -> Iterator[None]:
    """Run with ``n`` torch threads, restoring the caller's setting after."""
    import torch
    if not n:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class Recognizer:
    """Model + alphabet + feature settings (+ LM): ink in, text out.

    Args:
        model: an :class:`~inkread.model.InkModel` (put in eval mode here).
        alphabet: its :class:`~inkread.alphabet.Alphabet`.
        feature_config: its :class:`~inkread.features.FeatureConfig`.
        lm: optional :class:`~inkread.lm.CharLM` for beam search.
        threads: torch threads during inference (None = leave torch's setting).
        beam: beam width when decoding with the LM or for n-best lists.
        lm_weight, bonus: LM weight and per-character bonus (None = the LM
            file's tuned values, else the defaults).
        oov_penalty: penalty per word outside the LM file's lexicon (0 = off;
            None = the tuned value, else 0).
        backend: the network's engine for recognition: "onnx" (ONNX Runtime,
            about twice as fast per line), "torch", or "auto" (onnx when
            installed). Saliency and training always use torch.
    """

    def __init__(self, model: Any, alphabet: Any, feature_config: Any, lm: Optional["CharLM"] = None,
                 threads: Optional[int] = None, beam: int = DEFAULT_BEAM, lm_weight: Optional[float] = None,
                 bonus: Optional[float] = None, meta: Optional[dict] = None,
                 path: Optional[str] = None, oov_penalty: Optional[float] = None,
                 backend: str = "auto") -> None:
        from .onnx_engine import OnnxEngine, resolve_backend
        self.model = model.eval()
        self.backend = resolve_backend(backend)
        # a model stored in int8 (`inkread export --int8`) also computes its LSTMs in int8
        self.int8 = (meta or {}).get("weights_dtype") == "int8" and self.backend == "onnx"
        self._onnx = OnnxEngine(model, threads, int8=self.int8) if self.backend == "onnx" else None
        self.alphabet = alphabet
        self.feature_config = feature_config
        self.lm = lm
        self.threads = threads
        self.beam = beam
        tuned = (lm.meta.get("tuned") or {}) if lm is not None else {}
        self.lm_weight = lm_weight if lm_weight is not None else float(tuned.get("lm_weight", DEFAULT_LM_WEIGHT))
        self.bonus = bonus if bonus is not None else float(tuned.get("bonus", DEFAULT_BONUS))
        self.oov_penalty = oov_penalty if oov_penalty is not None else float(tuned.get("oov_penalty", 0.0))
        self.meta = meta or {}
        self.path = path
        self.subsample = max(int(getattr(model.cfg, "subsample", 1)), 1)
        self._greedy = GreedyDecoder(alphabet)
        self._beams: dict[tuple, BeamSearchDecoder] = {}
        self.partners: list["Recognizer"] = []  # see join()

    def join(self, other: "Recognizer") -> None:
        """Read together with ``other`` from now on: the network output becomes the
        renormalised mean of both networks' log-probabilities per frame (an ensemble, as
        ``inkread eval --ensemble`` measures it and ``train --distill`` teaches it).

        Raises:
            CheckpointError: ``other`` reads other features, frames or characters.
        """
        from .checkpoint import frame_mismatch
        why = frame_mismatch(self.model, self.alphabet, self.feature_config,
                             other.model, other.alphabet, other.feature_config)
        if why:
            raise CheckpointError(f"cannot be read together with {self.path}: {why}", other.path or "model")
        self.partners.append(other)

    # ------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: Optional[os.PathLike | str] = None, lm: Any = "default",
             threads: Optional[int] = None, **kwargs: Any) -> "Recognizer":
        """Load a model file (and an LM).

        Args:
            path: model file; None = the default model (see :func:`default_model_path`).
            lm: an LM file path, a loaded :class:`~inkread.lm.CharLM`, None for
                no LM, or "default" for the default LM file if it exists.
            threads: torch threads during inference (None = torch's setting).
            **kwargs: passed to the constructor (beam, lm_weight, bonus).

        Raises:
            CheckpointError: missing or bad model/LM file; for a missing default
                model the message says how to get one.
        """
        from .checkpoint import load as load_checkpoint
        if path is None:
            path = default_model_path()
            if not Path(path).is_file():
                raise CheckpointError(
                    "no default model: train one with `inkread train --train SPEC --out DIR` and copy "
                    "DIR/best.pt here, set INKREAD_MODEL, or pass --model FILE", path)
        loaded = load_checkpoint(path)
        return cls(loaded.model, loaded.alphabet, loaded.feature_config, _resolve_lm(lm),
                   threads=threads, meta=loaded.meta, path=str(path), **kwargs)

    def settings(self, lm: bool = True) -> dict:
        """Decoding settings, for reports."""
        use = lm and self.lm is not None
        return {"model": self.path, **({"ensemble": [p.path for p in self.partners]} if self.partners else {}),
                "lm": (self.lm.meta.get("path") if use else None),
                "beam": self.beam if use else 1, "lm_weight": self.lm_weight if use else 0.0,
                "bonus": self.bonus if use else 0.0,
                "oov_penalty": self.oov_penalty if use and self.lm.lexicon else 0.0,  # type: ignore[union-attr]
                "backend": self.backend + ("-int8" if self.int8 else "")}

    # ------------------------------------------------------------ running
    def emissions(self, feats: Sequence[np.ndarray]) -> tuple["torch.Tensor", "torch.Tensor"]:
        """Network output for a list of (T_i, F) feature matrices.

        Returns:
            log_probs (B, T', C) and out_lengths (B,).
        """
        import torch
        lengths = np.array([len(f) for f in feats])
        x = np.zeros((len(feats), int(lengths.max()), feats[0].shape[1]), np.float32)
        for i, f in enumerate(feats):
            x[i, : len(f)] = f
        if self._onnx is not None:
            lp, out_len = self._onnx(x, lengths)
            lp, out_len = torch.from_numpy(lp), torch.from_numpy(out_len)
        else:
            with _threads(self.threads), torch.inference_mode():
                lp, out_len = self.model(torch.from_numpy(x), torch.from_numpy(lengths))
        if self.partners:
            lps = [lp.float()] + [p.emissions(feats)[0].float() for p in self.partners]
            lp = torch.stack(lps).mean(0).log_softmax(-1)
        return lp, out_len

    def warm_up(self) -> None:
        """Build the engine's session now (the first recognition would otherwise pay for it)."""
        if self._onnx is not None:
            self._onnx.session()

    def decoder(self, nbest: int = 1, lm: bool = True) -> Any:
        """The decoder for these settings: greedy for 1-best without LM, else beam search."""
        use_lm = lm and self.lm is not None
        if not use_lm and nbest <= 1:
            return self._greedy
        key = (nbest, use_lm, self.beam, self.lm_weight, self.bonus, self.oov_penalty)
        if key not in self._beams:
            lex = self.lm.lexicon if use_lm and self.oov_penalty > 0 else None  # type: ignore[union-attr]
            self._beams[key] = BeamSearchDecoder(
                self.alphabet, beam=max(self.beam, nbest), nbest=nbest, lm=self.lm if use_lm else None,
                lm_weight=self.lm_weight if use_lm else 0.0, bonus=self.bonus if use_lm else 0.0,
                lexicon=lex, oov_penalty=self.oov_penalty if lex is not None else 0.0)
        return self._beams[key]

    def recognize(self, ink: Ink, nbest: int = 5, lm: bool = True) -> Result:
        """Recognise one ink; an ink without points gives an empty Result."""
        return self.recognize_batch([ink], nbest=nbest, lm=lm)[0]

    def recognize_page(self, ink: Ink, nbest: int = 1, lm: bool = True) -> list[tuple["Line", Result]]:
        """Split a page into text lines (:func:`inkread.lines.group_lines`, as the app does)
        and recognise them; lines top to bottom, an empty list for ink without points.

        Each line's character point indices are the page's flat indices
        (as in :meth:`Ink.to_array` of ``ink``), not the line's.
        """
        from .lines import group_lines, line_ink
        lines = group_lines(ink)
        results = self.recognize_batch([line_ink(ink, ln) for ln in lines], nbest=nbest, lm=lm)
        for ln, res in zip(lines, results):
            for c in res.chars:
                c.point_indices = ln.points[c.point_indices]
        return list(zip(lines, results))

    def recognize_batch(self, inks: Sequence[Ink], nbest: int = 1, lm: bool = True,
                        batch_size: int = 32) -> list[Result]:
        """Recognise many inks, batching the network by similar lengths.

        Timings in each Result are the batch's shares (per line averages).
        """
        from .features import featurize
        results: list[Optional[Result]] = [None] * len(inks)
        t0 = time.perf_counter()
        feats = {i: featurize(ink, self.feature_config) for i, ink in enumerate(inks) if not ink.is_empty}
        t_feat = (time.perf_counter() - t0) * 1000.0
        order = sorted(feats, key=lambda i: len(feats[i].x))
        dec = self.decoder(nbest, lm)
        n = max(1, len(feats))
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            t1 = time.perf_counter()
            lp, out_len = self.emissions([feats[i].x for i in idx])
            t2 = time.perf_counter()
            hyps = dec(lp, out_len)
            t3 = time.perf_counter()
            for k, i in enumerate(idx):
                ms = {"features": t_feat / n, "network": (t2 - t1) * 1000.0 / len(idx),
                      "decode": (t3 - t2) * 1000.0 / len(idx)}
                ms["total"] = sum(ms.values())
                results[i] = self._result(hyps[k], feats[i].src_pos, inks[i].num_points, ms)
        return [r if r is not None else Result("", ms={"features": 0.0, "network": 0.0, "decode": 0.0,
                                                          "total": 0.0})
                for r in results]

    def _result(self, hyps: list[Hypothesis], src_pos: np.ndarray, num_points: int,
                ms: dict) -> Result:
        if not hyps:
            return Result("", ms=ms)
        best = hyps[0]
        chars = [CharSpan(ch, i, a, b, self.points_of_frames(a, b, src_pos, num_points))
                 for i, (ch, (a, b)) in enumerate(zip(best.text, best.frames))]
        return Result(best.text, _distinct_nbest(hyps), chars, ms, best.score)

    def points_of_frames(self, first: int, last: int, src_pos: np.ndarray, num_points: int) -> np.ndarray:
        """Flat original point indices behind output frames ``first..last``
        (:func:`inkread.features.frame_point_range`)."""
        from .features import frame_point_range
        lo, hi = frame_point_range(src_pos, first, last, self.subsample,
                                   getattr(self.feature_config, "curves", "points"))
        return np.arange(max(lo, 0), min(hi, num_points - 1) + 1, dtype=np.int64)


def _distinct_nbest(hyps: Sequence[Hypothesis]) -> list[tuple[str, float]]:
    """(text, score) of the hypotheses, best first, once per whitespace-normalised
    text: beam search keeps "fox" and "fox " apart (different token paths), a list of
    alternatives should not, and scoring counts them as one."""
    seen: set[str] = set()
    out = []
    for h in hyps:
        key = normalize(h.text)
        if key not in seen:
            seen.add(key)
            out.append((h.text, h.score))
    return out


def _resolve_lm(lm: Any) -> Optional["CharLM"]:
    from .lm import CharLM
    if lm is None or isinstance(lm, CharLM):
        return lm
    if isinstance(lm, str) and lm == "default":
        p = default_lm_path()
        if not p.is_file():
            log.info("no default LM at %s: decoding without LM", p)
            return None
        lm = p
    loaded = CharLM.load(lm)
    loaded.meta["path"] = str(lm)
    return loaded


def settle_memory() -> None:
    """After a model loads: collect, then freeze what is left out of the garbage collector's reach.

    The app calls it after each model load, and ``inkread bench`` before timing, so the
    benchmark's latencies are the app's.

    torch, ONNX Runtime and the model leave some 170,000 Python objects, and each full
    collection walks them all: on a busy 2-core machine a collection that fell inside a
    recognition made it take 160-180 ms instead of about 20 (150 synthetic lines: max 162
    and 178 ms, 2 lines over 50 ms; frozen: max 47 ms, none over 50). Unfreezing first lets
    a model loaded before this one be collected.
    """
    import gc
    gc.unfreeze()
    gc.collect()
    gc.freeze()
