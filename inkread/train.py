"""Training: data mixing, augmentation, length-bucketed batches, CTC, checkpoints, resume, DDP.

Determinism and resume: the order of an epoch and the augmentation of a
batch are drawn from RNGs seeded by ``(seed, epoch)`` and
``(seed, epoch, batch)``, and dropout by ``(seed, step)``, so a run resumed
from a checkpoint taken after batch k of epoch e continues exactly as the
uninterrupted run would. Checkpoints (``last.pt``, with optimizer state) are
written every ``checkpoint_minutes`` and at the end of every epoch;
``best.pt`` holds the best validation CER (no optimizer state).

Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1) every rank builds the
same batch list and takes every ``world``-th batch; gradients are averaged
by DistributedDataParallel (gloo on CPU); rank 0 validates, logs and writes
checkpoints.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .alphabet import Alphabet
from .checkpoint import Loaded, frame_mismatch, load, save
from .datasets import Dataset, Sample, load_spec
from .errors import OptionError
from .features import FeatureConfig, featurize_array
from .model import InkModel, ModelConfig
from .words import WordBank, jitter_words

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Optimisation settings; stored in the checkpoint's meta."""

    epochs: int = 60
    batch_frames: int = 12000      # max padded input frames per batch (B * T_max)
    max_batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-2
    warmup_steps: int = 300
    min_lr_ratio: float = 0.02
    clip: float = 5.0
    augment: bool = True
    drop_time_prob: float = 0.15   # train some batches as if time were synthesized
    word_jitter: float = 0.0       # share of augmented lines whose words are moved and scaled one by one
    word_mix: float = 0.0          # new lines of recombined words per line of the first source, each epoch
    word_split: str = "fixed"      # how --word-mix cuts lines into words: fixed or ranked (inkread.words.cut_words)
    patience: int = 12             # epochs without val improvement before stopping
    checkpoint_minutes: float = 5.0
    max_minutes: float = 0.0       # 0 = no limit
    seed: int = 1
    val_limit: int = 0             # 0 = the whole validation set
    threads: int = 0               # 0 = torch default
    device: str = "cpu"            # "cuda" trains on a GPU where there is one
    keep_epochs: int = 0           # keep the models of the last N epochs as epochNNN.pt (to average)
    bf16: bool = False             # forward pass under bfloat16 autocast (see train_autocast); validation in float32
    teachers: str = ""             # comma-separated model files: --distill learns their mean per-frame distribution
    distill: float = 0.0           # weight of that distillation term against CTC (0 = off)


# ----------------------------------------------------------------- data
@dataclass
class Item:
    """A training line kept as a flat (N, 4) array (cheap to augment)."""

    arr: np.ndarray
    text: str
    ids: list[int]
    time_synthesized: bool
    approx_len: int
    writer: str = ""  # who wrote it (the writer, else the form, else the sample): words mix within one


def _items(ds: Dataset, alphabet: Alphabet, fcfg: FeatureConfig, report: list,
           keep_unknown: bool = False) -> list[Item]:
    """Eager items of a dataset.

    Training drops samples with characters outside the alphabet (they cannot
    be CTC targets); validation keeps them (``keep_unknown``) so that those
    characters count as errors, as they will for users.
    """
    out, dropped, unknown = [], 0, 0
    for s in ds:
        if not s.text or (alphabet.unknown(s.text) and not keep_unknown):
            dropped += 1
            continue
        unknown += bool(alphabet.unknown(s.text))
        arr = s.ink.to_array()
        if arr.shape[0] == 0:
            dropped += 1
            continue
        feats = featurize_array(arr, fcfg, s.ink.time_synthesized)
        writer = s.writer or str(s.ink.metadata.get("form") or s.id)
        out.append(Item(arr, s.text, alphabet.encode(s.text, unknown="drop"), s.ink.time_synthesized,
                        len(feats.x), writer))
    if dropped:
        report.append(f"{ds.spec}: skipped {dropped} samples with characters outside the alphabet or no ink")
    if unknown and keep_unknown:
        report.append(f"{ds.spec}: {unknown} samples hold characters outside the alphabet (kept; they count as errors)")
    return out


class LazyItems:
    """Items of a lazily generated dataset (synthetic ink), made on demand.

    Indexing gives None for a line that cannot be trained on; iterating skips those.
    """

    def __init__(self, ds: Dataset, alphabet: Alphabet, fcfg: FeatureConfig) -> None:
        self.ds, self.alphabet, self.fcfg = ds, alphabet, fcfg

    def __len__(self) -> int:
        return len(self.ds.samples)

    def __getitem__(self, i: int) -> Optional[Item]:
        s: Sample = self.ds.samples[i]
        if self.alphabet.unknown(s.text) or not s.text or s.ink.is_empty:
            return None
        arr = s.ink.to_array()
        return Item(arr, s.text, self.alphabet.encode(s.text), s.ink.time_synthesized,
                    int(arr.shape[0] * 0.6), s.writer or s.id)

    def __iter__(self):
        return (it for it in map(self.__getitem__, range(len(self))) if it is not None)


def augment(arr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random writer-like distortion of a flat (N, 4) ink array (a copy).

    Scale and aspect, slant (shear), rotation, jitter of 1% of the height,
    a monotone warp of x (letters locally wider or narrower, as writers
    space them), and a smooth monotone time warp.
    """
    a = arr.copy()
    xy = a[:, :2] - a[:, :2].mean(0)
    h = max(float(np.ptp(xy[:, 1])), 1e-6)
    aspect = math.exp(rng.uniform(-0.2, 0.2))
    shear = rng.uniform(-0.35, 0.35)
    rot = math.radians(rng.uniform(-4, 4))
    c, s = math.cos(rot), math.sin(rot)
    m = np.array([[c, -s], [s, c]]) @ np.array([[aspect, shear], [0.0, 1.0]])
    xy = xy @ m.T * math.exp(rng.uniform(-0.3, 0.3))
    xy += rng.normal(0.0, 0.01 * h, xy.shape)
    xy[:, 0] = warp_x(xy[:, 0], rng)
    a[:, :2] = xy
    t = a[:, 2] - a[0, 2]
    if t[-1] > 0:
        knots = np.cumsum(rng.uniform(0.6, 1.4, 6))
        grid = np.linspace(0, t[-1], 7)
        warped = np.concatenate([[0.0], knots]) / knots[-1] * t[-1]
        a[:, 2] = np.interp(t, grid, warped)
    return a


def warp_x(x: np.ndarray, rng: np.random.Generator, pieces: int = 8, spread: float = 0.35) -> np.ndarray:
    """Monotone piecewise-linear warp of x over its own range (a copy).

    The range is cut into ``pieces`` equal parts whose widths are scaled by
    factors in [1 - spread, 1 + spread], then rescaled so the total width is
    kept; order along x is never changed, so strokes stay where they were
    relative to each other.
    """
    lo, hi = float(x.min()), float(x.max())
    if hi - lo <= 0:
        return x.copy()
    widths = rng.uniform(1 - spread, 1 + spread, pieces)
    grid = np.linspace(lo, hi, pieces + 1)
    warped = lo + np.concatenate([[0.0], np.cumsum(widths)]) / widths.sum() * (hi - lo)
    return np.interp(x, grid, warped)


def make_batch(items: Sequence[Item], fcfg: FeatureConfig, rng: Optional[np.random.Generator],
               cfg: TrainConfig) -> dict:
    """Featurise (after augmentation when ``rng`` is given) and pad a batch.

    Returns:
        dict with x (B, T, F) float32, lengths (B,), targets (sum L,), target_lengths (B,), texts.
    """
    feats = []
    for it in items:
        arr, synth = it.arr, it.time_synthesized
        if rng is not None and cfg.augment:
            if cfg.word_jitter > 0 and rng.random() < cfg.word_jitter:
                arr = jitter_words(arr, rng)
            arr = augment(arr, rng)
            synth = synth or rng.random() < cfg.drop_time_prob
        feats.append(featurize_array(arr, fcfg, synth).x)
    lengths = torch.tensor([len(f) for f in feats])
    x = torch.zeros(len(feats), int(lengths.max()), feats[0].shape[1])
    for i, f in enumerate(feats):
        x[i, : len(f)] = torch.from_numpy(f)
    targets = torch.tensor([t for it in items for t in it.ids], dtype=torch.long)
    tlen = torch.tensor([len(it.ids) for it in items])
    return {"x": x, "lengths": lengths, "targets": targets, "target_lengths": tlen,
            "texts": [it.text for it in items]}


def plan_batches(lengths: np.ndarray, cfg: TrainConfig, rng: np.random.Generator) -> list[np.ndarray]:
    """Length-bucketed batches under a padded-frame budget, in random order.

    Args:
        lengths: (N,) approximate feature lengths of the epoch's items.
    """
    order = rng.permutation(len(lengths))
    batches = []
    for chunk in np.array_split(order, max(1, len(order) // 1000)):
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        cur: list[int] = []
        for i in chunk:
            if cur and (len(cur) + 1) * max(lengths[i], 1) > cfg.batch_frames or len(cur) >= cfg.max_batch:
                batches.append(np.array(cur))
                cur = []
            cur.append(int(i))
        if cur:
            batches.append(np.array(cur))
    rng.shuffle(batches)
    return batches


# --------------------------------------------------------------- helpers
def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    """Linear warm-up then cosine decay to ``min_lr_ratio * lr``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    p = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


def greedy_texts(lp: torch.Tensor, lengths: torch.Tensor, alphabet: Alphabet) -> list[str]:
    """Best-path decoding of (B, T, C) log-probs (collapse repeats, drop blanks)."""
    best = lp.argmax(-1).cpu().numpy()
    out = []
    for row, n in zip(best, lengths.tolist()):
        row = row[:n]
        keep = row[(row != 0) & np.concatenate([[True], row[1:] != row[:-1]])]
        out.append(alphabet.decode(keep.tolist()))
    return out


def error_rates(refs: Sequence[str], hyps: Sequence[str]) -> tuple[float, float]:
    """(CER, WER): edit distances summed over the set / reference lengths."""
    from rapidfuzz.distance import Levenshtein
    ce = sum(Levenshtein.distance(r, h) for r, h in zip(refs, hyps))
    we = sum(Levenshtein.distance(r.split(), h.split()) for r, h in zip(refs, hyps))
    return ce / max(1, sum(map(len, refs))), we / max(1, sum(len(r.split()) for r in refs))


def _dist() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return rank, world


def state_fingerprint(model: torch.nn.Module) -> str:
    """sha1 over all parameters (to check ranks agree)."""
    h = hashlib.sha1()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().numpy().tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------ the run
@dataclass
class Run:
    """Everything one training run holds."""

    out: Path
    model: InkModel
    alphabet: Alphabet
    fcfg: FeatureConfig
    cfg: TrainConfig
    sources: list                 # list of item lists (eager) or LazyItems
    weights: list[float]
    val: list[Item]
    specs: dict
    epoch: int = 0
    batch_in_epoch: int = 0
    step: int = 0
    best_cer: float = float("inf")
    bad_epochs: int = 0
    minutes: float = 0.0
    skipped_batches: int = 0
    history: list = field(default_factory=list)
    word_bank: Optional[WordBank] = None  # --word-mix: built from the first source, never stored
    teachers: list = field(default_factory=list)  # --teachers: Teacher forward passes, never stored
    teachers_checked: bool = False  # whether the teachers' frames were compared (once a process)
    write_files: bool = True      # False: no checkpoints or metrics in ``out`` (inkread.finetune)


def build_run(train_specs: Sequence[str | Dataset], weights: Sequence[float],
              val_spec: Optional[str | Dataset],
              out: Path, mcfg: ModelConfig, fcfg: FeatureConfig, cfg: TrainConfig,
              alphabet: Optional[str] = None) -> Run:
    """Load data, build the alphabet and a fresh model.

    The alphabet is ``alphabet`` when given, else the first spec's labels, or for
    synthetic ink, the characters its generator writes. Specs may be data-spec
    strings or already loaded :class:`Dataset` objects.
    """
    report: list[str] = []
    dss = [load_spec(s) if isinstance(s, str) else s for s in train_specs]
    train_specs = [d.spec for d in dss]
    eager = [not _is_lazy(d) for d in dss]
    if alphabet:
        try:
            alpha = Alphabet(alphabet)
        except ValueError as exc:
            raise OptionError(f"--alphabet: {exc}") from None
    elif eager[0]:
        alpha = Alphabet.from_texts(s.text for s in dss[0])
    else:
        alpha = Alphabet(generated_alphabet(dss[0]))
    sources = [_items(d, alpha, fcfg, report) if e else LazyItems(d, alpha, fcfg) for d, e in zip(dss, eager)]
    if not len(sources[0]):
        raise OptionError(f"no usable training samples in {train_specs[0]}")
    vds = load_spec(val_spec) if isinstance(val_spec, str) else val_spec
    val = _items(vds, alpha, fcfg, report, keep_unknown=True) if vds is not None else []
    val_spec = vds.spec if vds is not None else None
    if cfg.val_limit:
        val = val[: cfg.val_limit]
    for line in report:
        log.warning(line)
    mcfg = dataclasses.replace(mcfg, num_classes=len(alpha), input_size=fcfg.num_features)
    torch.manual_seed(cfg.seed)
    model = InkModel(mcfg)
    specs = {"train": list(train_specs), "weights": list(weights), "val": val_spec}
    run = Run(out, model, alpha, fcfg, cfg, sources, list(weights), val, specs)
    if cfg.word_mix > 0:
        run.word_bank = word_bank(sources[0], train_specs[0], cfg.word_split)
    run.teachers = load_teachers(cfg, alpha, fcfg, model)
    return run


class Teacher:
    """One ``--teachers`` network's forward pass: eval mode, no gradient.

    On a CPU it runs on ONNX Runtime, in int8 arithmetic for a file stored in int8, as
    recognition runs it: r18 read 24 lines in 0.18-0.22 s there against 0.48-0.55 s in
    torch (one thread), and a 3x192 network's training step on them with r18 as its
    teacher took 1.88-1.94 s against 2.32-2.49 s. The two distributions differ by a mean
    KL of 0.0007 nats a frame (0.25% of frames change their best label). Elsewhere, or
    without onnxruntime, torch runs it.
    """

    def __init__(self, loaded: Loaded, device: str = "cpu") -> None:
        from . import onnx_engine
        self.model = loaded.model.eval().to(device)
        self.engine = None
        if device == "cpu" and onnx_engine.available():
            int8 = loaded.meta.get("weights_dtype") == "int8"
            self.engine = onnx_engine.OnnxEngine(self.model, int8=int8)

    def __call__(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Log-probabilities (B, T', C), float32, of a padded batch (B, T, F)."""
        if self.engine is None:
            return self.model(x, lengths)[0].float()
        lp, _ = self.engine(x.detach().cpu().numpy(), lengths.cpu().numpy())
        return torch.from_numpy(lp).to(x.device)


def load_teachers(cfg: TrainConfig, alphabet: Alphabet, fcfg: FeatureConfig,
                  model: InkModel) -> list[Teacher]:
    """The ``--teachers`` networks, checked to read the same features into the same frames
    and characters as the network they teach."""
    paths = [p.strip() for p in cfg.teachers.split(",") if p.strip()]
    if bool(paths) != (cfg.distill > 0):
        raise OptionError("--distill W (above 0) and --teachers M1,M2,... go together")
    out = []
    for p in paths:
        t = load(p)
        why = frame_mismatch(model, alphabet, fcfg, t.model, t.alphabet, t.feature_config)
        if why:
            raise OptionError(f"--teachers {p}: {why} from the network it would teach")
        out.append(Teacher(t, cfg.device))
    return out


def distill_loss(teachers: Sequence[Teacher], x: torch.Tensor, lengths: torch.Tensor,
                 lp: torch.Tensor, olen: torch.Tensor, target_lengths: torch.Tensor,
                 cfg: TrainConfig, check: Optional[Callable] = None) -> torch.Tensor:
    """KL divergence from the teachers' ensemble to the network, summed over each line's
    frames and divided by its target length (as CTC's mean reduction is), averaged over lines.

    The ensemble is the renormalised mean of the teachers' log-probabilities per frame
    (what reading them together greedily uses); the teachers run without dropout or gradient.
    ``check(outputs, olen)``, if given, sees each teacher's log-probabilities of the batch.
    """
    with torch.no_grad(), train_autocast(cfg):
        outs = [teach(x, lengths) for teach in teachers]
        t = torch.stack(outs).mean(0).log_softmax(-1)
    if check is not None:
        check(outs, olen)
    mask = torch.arange(lp.shape[1], device=lp.device)[None, :] < olen.to(lp.device)[:, None]
    kl = (t.exp() * (t - lp.float())).sum(-1) * mask  # (B, T')
    return (kl.sum(1) / target_lengths.to(lp.device).clamp(min=1)).mean()


def _check_teachers(run: Run, outs: Sequence[torch.Tensor], olen: torch.Tensor) -> None:
    """Warn, once, when a teacher writes its characters at other frames than the first one:
    their mean, the distribution taught, would then drop characters (see
    :func:`inkread.evaluate.frame_agreement`)."""
    from .evaluate import AGREEMENT_WARN, frame_agreement
    run.teachers_checked = True
    paths = [p.strip() for p in run.cfg.teachers.split(",") if p.strip()]
    lines = [[o[b, : int(olen[b])].float().cpu().numpy() for b in range(o.shape[0])] for o in outs]
    for k in range(1, len(lines)):
        agree = frame_agreement(lines[0], lines[k])
        if agree < AGREEMENT_WARN:
            log.warning("--teachers: %s writes the same character at the same frame as %s only %.0f%% of "
                        "the time on the first batch (r18 and a network that learned its frames agree on "
                        "93%%): their mean, which the network learns, drops characters",
                        paths[k] if k < len(paths) else f"teacher {k + 1}", paths[0] if paths else "teacher 1",
                        100 * agree)


def word_bank(items: Sequence[Item], spec: str, rule: str = "fixed") -> WordBank:
    """The words of the training lines for ``--word-mix``; an error when no line splits into its words."""
    bank = WordBank(((it.arr, it.text, it.writer, it.time_synthesized, it.approx_len) for it in items), rule)
    if not len(bank):
        raise OptionError(f"--word-mix: no line of {spec} splits into its words (--word-split {rule})")
    log.info("--word-mix: %d words from %d of %d lines of %s (%d writers; --word-split %s)", len(bank),
             bank.lines_used, bank.lines_seen, spec, len(bank.writers), rule)
    return bank


def _is_lazy(ds: Dataset) -> bool:
    return not isinstance(ds.samples, list)


def generated_alphabet(ds: Dataset) -> str:
    """The characters a generated (lazy) dataset can hold: its generator's, as it has no labels on disk."""
    try:
        from .synth import SUPPORTED_CHARS, SynthSamples
        if isinstance(ds.samples, SynthSamples):
            return SUPPORTED_CHARS
    except ModuleNotFoundError:  # no synthetic ink in this install
        pass
    raise OptionError(f"{ds.spec}: the first --train spec is generated, so no labels make the alphabet: "
                      "pass --alphabet")


def epoch_items(run: Run, epoch: int) -> list[Item]:
    """The items of one epoch: all of the first source, the others by weight, then ``--word-mix`` lines."""
    rng = np.random.default_rng([run.cfg.seed, epoch, 7])
    items = list(run.sources[0])
    if not items:  # a generated first source whose every line holds characters outside the alphabet
        raise OptionError(f"{run.specs['train'][0]}: no line can be trained on (characters outside the "
                          "alphabet, or no ink)")
    n0 = len(items)
    for src, w in zip(run.sources[1:], run.weights[1:]):
        n = int(round(n0 * w / max(run.weights[0], 1e-9)))
        if n <= 0 or not len(src):
            continue
        if isinstance(src, LazyItems):  # fresh synthetic lines every epoch
            start = (epoch * n) % len(src)
            picked = [src[(start + k) % len(src)] for k in range(n)]
            items.extend(p for p in picked if p is not None)
        else:
            items.extend(src[i] for i in rng.choice(len(src), n, replace=n > len(src)))
    if run.word_bank is not None:
        mix = np.random.default_rng([run.cfg.seed, epoch, 11])
        for _ in range(int(round(n0 * run.cfg.word_mix))):
            arr, text, synth, frames = run.word_bank.line(mix)
            items.append(Item(arr, text, run.alphabet.encode(text, unknown="drop"), synth, int(frames)))
    return items


def _optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    rest = [p for n, p in model.named_parameters() if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=cfg.lr)


def validate(model: InkModel, val: list[Item], fcfg: FeatureConfig, alphabet: Alphabet,
             cfg: TrainConfig) -> dict:
    """Greedy CER/WER and mean CTC loss on the validation items."""
    model.eval()
    refs, hyps, losses = [], [], []
    lengths = np.array([it.approx_len for it in val])
    order = np.argsort(lengths)
    with torch.no_grad():
        for chunk in np.array_split(order, max(1, int(lengths.sum()) // (2 * cfg.batch_frames) + 1)):
            if not len(chunk):
                continue
            b = make_batch([val[i] for i in chunk], fcfg, None, cfg)
            b = {k: v.to(cfg.device) if torch.is_tensor(v) else v for k, v in b.items()}
            lp, olen = model(b["x"], b["lengths"])
            loss = F.ctc_loss(lp.transpose(0, 1), b["targets"], olen, b["target_lengths"],
                              blank=0, reduction="mean", zero_infinity=True)
            losses.append(float(loss))
            refs.extend(b["texts"])
            hyps.extend(greedy_texts(lp, olen, alphabet))
    cer, wer = error_rates(refs, hyps)
    model.train()
    return {"val_cer": cer, "val_wer": wer, "val_loss": float(np.mean(losses)) if losses else float("nan"),
            "examples": list(zip(refs[:3], hyps[:3]))}


def train_state(run: Run, opt: torch.optim.Optimizer) -> dict:
    return {"optimizer": opt.state_dict(), "epoch": run.epoch, "batch_in_epoch": run.batch_in_epoch,
            "step": run.step, "best_cer": run.best_cer, "bad_epochs": run.bad_epochs,
            "minutes": run.minutes, "skipped_batches": run.skipped_batches,
            "train_config": dataclasses.asdict(run.cfg), "specs": run.specs}


def meta(run: Run, extra: Optional[dict] = None) -> dict:
    m = {"data": run.specs, "steps": run.step, "epochs": run.epoch, "train_minutes": round(run.minutes, 2),
         "best_val_cer": run.best_cer if math.isfinite(run.best_cer) else None,
         "train_config": dataclasses.asdict(run.cfg),
         "parameters": run.model.num_parameters()}
    m.update(extra or {})
    return m


def save_last(run: Run, opt: torch.optim.Optimizer) -> None:
    save(run.out / "last.pt", run.model, run.alphabet, run.fcfg, meta(run), train_state(run, opt))
    log.info("checkpoint: epoch %d batch %d step %d", run.epoch, run.batch_in_epoch, run.step)


def resume_run(out: Path, cfg_overrides: dict) -> tuple[Run, dict]:
    """Rebuild a run from ``out/last.pt``; returns the run and the optimizer state."""
    path = out / "last.pt"
    ld = load(path)
    ts = ld.train_state
    if not ts:
        raise OptionError(f"{path} holds no training state (not a resumable checkpoint)")
    had = TrainConfig(**ts["train_config"])
    cfg = dataclasses.replace(had, **cfg_overrides)
    for k, v in cfg_overrides.items():
        if v != getattr(had, k):
            log.info("resuming with %s %s (the run had %s)", k, v, getattr(had, k))
    specs = ts["specs"]
    run = build_run(specs["train"], specs["weights"], specs["val"], out, ld.model.cfg,
                    ld.feature_config, cfg, alphabet=ld.alphabet.chars)
    run.model.load_state_dict(ld.model.state_dict())
    run.specs = dict(specs)  # keeps what build_run does not know, such as --init
    for k in ("epoch", "batch_in_epoch", "step", "best_cer", "bad_epochs", "minutes", "skipped_batches"):
        setattr(run, k, ts[k])
    return run, ts["optimizer"]


def bf16_native() -> bool:
    """Whether this CPU does bfloat16 arithmetic itself (AVX512-BF16 or AMX), so that
    ``--bf16`` makes training faster rather than slower."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def train_autocast(cfg: TrainConfig):
    """The context a training forward pass runs in: bfloat16 autocast with ``cfg.bf16``.

    Under it the convolution, the LSTMs (oneDNN) and the head compute in bfloat16
    with float32 master weights; log-softmax and the CTC loss stay float32. On a CPU
    with native bfloat16 a step takes about two thirds of the float32 time.
    """
    return torch.autocast(torch.device(cfg.device).type, dtype=torch.bfloat16, enabled=cfg.bf16)


def _train_step(run: Run, model: torch.nn.Module, opt: torch.optim.Optimizer, batch: dict,
                lr: float) -> Optional[float]:
    """One optimisation step; returns the loss, or None when the batch was skipped."""
    for g in opt.param_groups:
        g["lr"] = lr
    batch = {k: v.to(run.cfg.device) if torch.is_tensor(v) else v for k, v in batch.items()}
    torch.manual_seed(run.cfg.seed * 1_000_003 + run.step)  # dropout, reproducible on resume
    with train_autocast(run.cfg):
        lp, olen = model(batch["x"], batch["lengths"])
    loss = F.ctc_loss(lp.float().transpose(0, 1), batch["targets"], olen, batch["target_lengths"],
                      blank=0, reduction="mean", zero_infinity=True)
    if run.teachers:
        check = None
        if not run.teachers_checked and len(run.teachers) > 1:
            def check(outs, ol):  # noqa: E306 - the first batch only
                _check_teachers(run, outs, ol)
        kd = distill_loss(run.teachers, batch["x"], batch["lengths"], lp, olen, batch["target_lengths"], run.cfg,
                          check)
        loss = (1 - run.cfg.distill) * loss + run.cfg.distill * kd
    opt.zero_grad(set_to_none=True)
    if not torch.isfinite(loss):
        log.warning("step %d: loss is %s; batch skipped", run.step, float(loss))
        run.skipped_batches += 1
        return None
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.clip)
    if not torch.isfinite(norm):
        log.warning("step %d: gradient norm is %s; batch skipped", run.step, float(norm))
        opt.zero_grad(set_to_none=True)
        run.skipped_batches += 1
        return None
    opt.step()
    return float(loss.detach())


def _progress(total: int, initial: int, desc: str, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, unit="batch",
                mininterval=1.0 if sys.stderr.isatty() else 60.0, dynamic_ncols=True)


def _log_epoch(run: Run, row: dict) -> None:
    path = run.out / "metrics.csv"
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)
    try:
        from torch.utils.tensorboard import SummaryWriter  # optional
    except Exception:
        return
    with SummaryWriter(str(run.out / "tb")) as tb:
        for k, v in row.items():
            if isinstance(v, (int, float)) and k not in ("epoch", "step"):
                tb.add_scalar(k, v, row["step"])


def fit(run: Run, opt_state: Optional[dict] = None,
        on_step: Optional[Callable[[Run, int], bool]] = None) -> dict:
    """Train until the epochs, the patience or ``max_minutes`` run out.

    ``on_step(run, total_steps)`` is called after each step; True stops training.
    """
    rank, world = _dist()
    cfg = run.cfg
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.bf16 and cfg.device == "cpu" and not bf16_native() and rank == 0:
        log.warning("--bf16: this CPU has no native bfloat16 arithmetic; training will be slower, not faster")
    run.model.to(cfg.device)
    model: torch.nn.Module = run.model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel
        model = DistributedDataParallel(run.model)
    opt = _optimizer(run.model, cfg)
    if opt_state is not None:
        opt.load_state_dict(opt_state)
    if run.write_files:
        run.out.mkdir(parents=True, exist_ok=True)
    steps_per_epoch = None
    t_start, t_ckpt = time.monotonic(), time.monotonic()
    minutes0 = run.minutes
    stop = ""
    model.train()
    while run.epoch < cfg.epochs and not stop:
        items = epoch_items(run, run.epoch)
        batches = plan_batches(np.array([it.approx_len for it in items]), cfg,
                               np.random.default_rng([cfg.seed, run.epoch]))
        batches = batches[: len(batches) - len(batches) % world] if world > 1 else batches
        steps_per_epoch = steps_per_epoch or len(batches) // world
        total_steps = steps_per_epoch * cfg.epochs
        bar = _progress(len(batches) // world, run.batch_in_epoch // world, f"epoch {run.epoch + 1}",
                        rank == 0 and run.write_files)
        losses = []
        while run.batch_in_epoch < len(batches):
            bi = run.batch_in_epoch + rank
            rng = np.random.default_rng([cfg.seed, run.epoch, bi])
            batch = make_batch([items[i] for i in batches[bi]], run.fcfg, rng, cfg)
            loss = _train_step(run, model, opt, batch, lr_at(run.step, total_steps, cfg))
            run.batch_in_epoch += world
            run.step += 1
            if loss is not None:
                losses.append(loss)
            run.minutes = minutes0 + (time.monotonic() - t_start) / 60
            bar.set_postfix(loss=f"{np.mean(losses[-50:]) if losses else float('nan'):.3f}",
                            lr=f"{lr_at(run.step, total_steps, cfg):.1e}", refresh=False)
            bar.update(1)
            if on_step is not None and on_step(run, total_steps):
                stop = "stopped on request"
                break
            if rank == 0 and run.write_files and time.monotonic() - t_ckpt > cfg.checkpoint_minutes * 60:
                save_last(run, opt)
                t_ckpt = time.monotonic()
            if _agree(cfg.max_minutes and (time.monotonic() - t_start) / 60 >= cfg.max_minutes, world):
                stop = f"--max-minutes {cfg.max_minutes:g} reached"
                break
        bar.close()
        if stop:
            break
        run.epoch += 1
        run.batch_in_epoch = 0
        stop = _end_epoch(run, opt, float(np.mean(losses)) if losses else float("nan"), rank)
        if _agree(bool(stop), world, src=0) and not stop:
            stop = "stopped by rank 0"
    if rank == 0 and run.write_files:
        save_last(run, opt)
        if not (run.out / "best.pt").exists():
            save(run.out / "best.pt", run.model, run.alphabet, run.fcfg, meta(run))
    log.info("rank %d final weights sha1 %s", rank, state_fingerprint(run.model))
    return {"stopped": stop or "epochs done", "epoch": run.epoch, "step": run.step,
            "best_val_cer": run.best_cer, "fingerprint": state_fingerprint(run.model)}


def _agree(flag: bool, world: int, src: Optional[int] = None) -> bool:
    """Make all ranks take the same stop decision (any rank's, or rank ``src``'s)."""
    if world <= 1:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0])
    if src is None:
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    else:
        torch.distributed.broadcast(t, src)
    return bool(t.item())


def _end_epoch(run: Run, opt: torch.optim.Optimizer, train_loss: float, rank: int) -> str:
    """Validate, log, checkpoint; returns a stop reason or ''."""
    if rank != 0:
        return ""  # the other ranks follow rank 0's epoch count; early stopping is rank 0's call
    if not run.write_files:
        return ""  # a run without files (inkread.finetune) has no validation either
    row = {"epoch": run.epoch, "step": run.step, "minutes": round(run.minutes, 2),
           "train_loss": round(train_loss, 4), "lr": f"{opt.param_groups[0]['lr']:.3g}",
           "skipped_batches": run.skipped_batches}
    if run.val:
        v = validate(run.model, run.val, run.fcfg, run.alphabet, run.cfg)
        row.update(val_loss=round(v["val_loss"], 4), val_cer=round(v["val_cer"], 5), val_wer=round(v["val_wer"], 5))
        for ref, hyp in v["examples"][:2]:
            log.info("  ref: %s\n  hyp: %s", ref, hyp)
        if v["val_cer"] < run.best_cer:
            run.best_cer, run.bad_epochs = v["val_cer"], 0
            save(run.out / "best.pt", run.model, run.alphabet, run.fcfg, meta(run, {"val": row}))
        else:
            run.bad_epochs += 1
    _log_epoch(run, row)
    print(" ".join(f"{k}={v}" for k, v in row.items()), file=sys.stderr, flush=True)
    if run.epoch > run.cfg.epochs - run.cfg.keep_epochs:
        save(run.out / f"epoch{run.epoch:03d}.pt", run.model, run.alphabet, run.fcfg, meta(run, {"val": row}))
    save_last(run, opt)
    if run.val and run.bad_epochs >= run.cfg.patience:
        return f"early stop: no better val CER for {run.cfg.patience} epochs"
    return ""
