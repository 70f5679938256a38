"""Fine-tune a model on a user's own labelled lines, in one call.

What `inkread finetune` and the app's Settings > Fine-tune on my writing run:
the README recipe (``inkread train --init MODEL --lr 3e-4 --warmup-steps 5
--epochs 30`` then ``inkread export --int8``) without a run folder. It starts
from the model's weights, alphabet, network and features, trains with the
usual ink augmentation, writes the result as an int8 model and says how the
lines read before and after (greedy, on the lines it trained on: a check
that it learned them, not a measure of how it reads new writing; that was
measured on IAM-OnDB writers, models/README.md "Measured").
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from .checkpoint import load, save
from .datasets import Dataset, load_spec
from .errors import OptionError, check_writable
from .train import TrainConfig, build_run, fit, validate

#: The recipe measured on IAM-OnDB writers (models/README.md, "Measured").
EPOCHS, LR, WARMUP_STEPS = 30, 3e-4, 5
#: Fewer lines than this moved errors on a writer's other lines by no more than chance (same section).
ADVISED_LINES = 4


@dataclass
class FineTuneResult:
    """What a fine-tune did.

    Attributes:
        out: the written model.
        base: the model it started from.
        lines: how many lines it trained on.
        skipped: (file or id, reason) of each line it could not use.
        steps: optimisation steps taken.
        seconds: wall-clock seconds of training.
        before, after: greedy CER on the training lines, before and after.
        stopped: why training ended.
    """

    out: Path
    base: Path
    lines: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    before: float = math.nan
    after: float = math.nan
    stopped: str = ""

    @property
    def advice(self) -> str:
        """A warning when there were too few lines to expect a gain, else ''."""
        if self.lines >= ADVISED_LINES:
            return ""
        return (f"Fewer than {ADVISED_LINES} lines were measured to help little on new writing: "
                "save more lines and fine-tune again.")

    def skipped_text(self, limit: int = 3) -> str:
        """'skipped N: file: reason; ...' for the first ``limit`` skipped lines, or ''."""
        if not self.skipped:
            return ""
        text = f"skipped {len(self.skipped)}: " + "; ".join(_named(k, v) for k, v in self.skipped[:limit])
        return text + (" ..." if len(self.skipped) > limit else "")

    def summary(self) -> str:
        """One line of what was done, then one indented line per skipped file naming it and why."""
        text = (f"{self.out}: fine-tuned on {self.lines} line{'s' * (self.lines != 1)}, "
                f"{self.steps} step{'s' * (self.steps != 1)} in {self.seconds:.0f} s; greedy CER on those lines "
                f"{100 * self.before:.1f}% before, {100 * self.after:.1f}% after")
        skipped = f"skipped {len(self.skipped)}:" if self.skipped else ""
        return "".join(["; ".join(t for t in (text, self.advice, skipped) if t)]
                       + [f"\n  {_named(k, v)}" for k, v in self.skipped])


def _named(name: str, why: str) -> str:
    """``name: why`` (a dataset's reasons leave the file out: :attr:`InkreadError.detail`)."""
    return f"{name}: {why}"


def user_lines(specs: Sequence[str | Dataset]) -> Dataset:
    """The labelled lines of ``specs`` (folders or files of native JSON by default), as one dataset.

    A bare path is read as ``native:PATH``. Unreadable and unlabelled files are
    listed in ``skipped``, not raised.
    """
    if not specs:
        raise OptionError("no lines given: name a folder of labelled lines (File > Save lines for fine-tuning)")
    merged = Dataset(", ".join(str(getattr(s, "spec", s)) for s in specs), [])
    for s in specs:
        ds = s if isinstance(s, Dataset) else load_spec(s if ":" in str(s) and not os.path.exists(s)
                                                        else f"native:{s}")
        merged.samples.extend(ds.samples)
        merged.skipped.extend(ds.skipped)
        for k, v in ds.sources.items():
            merged.sources.setdefault(k, v)
    return merged


def fine_tune(lines: Sequence[str | Dataset], out: os.PathLike | str, base: Optional[str] = None,
              epochs: int = EPOCHS, lr: float = LR, warmup_steps: int = WARMUP_STEPS,
              seed: int = 1, threads: int = 0, from_original: bool = False,
              on_step: Optional[Callable[[int, int], bool]] = None) -> FineTuneResult:
    """Fine-tune ``base`` (None: the default model) on ``lines`` and write an int8 model to ``out``.

    Args:
        from_original: when ``base`` is itself a fine-tune, start from the model it was
            fine-tuned from (if that file is still there), so that fine-tuning again on a
            grown set of lines replaces the last fine-tune instead of stacking on it.
        on_step: called after each step with (steps done, steps in all); returning
            True stops training early (the model is still written).

    Raises:
        OptionError: no usable line (each skipped one is named), or ``out`` is the base model.
        CheckpointError: the base model cannot be read.
    """
    from .recognizer import _threads, default_model_path
    base_path = Path(base) if base else default_model_path()
    out = Path(out)
    if out.exists() and out.resolve() == base_path.resolve():
        raise OptionError(f"{out}: refusing to overwrite the model being fine-tuned; choose another output")
    check_writable(out)
    init = load(base_path)
    origin = (init.meta or {}).get("fine_tune", {}).get("from")
    if from_original and origin and Path(origin).is_file():
        base_path = Path(origin)
        init = load(base_path)
    ds = user_lines(lines)
    usable = []
    skipped = list(ds.skipped)
    for s in ds.samples:
        unknown = init.alphabet.unknown(s.text)
        name = ds.sources.get(s.id, s.id)  # the file, where the sample's id is one written inside it
        if unknown:
            skipped.append((name, "characters the model cannot write: "
                                  + " ".join(repr(c) for c in sorted(unknown))))
        elif s.ink.is_empty:
            skipped.append((name, "no ink"))
        else:
            usable.append(s)
    if not usable:
        why = "; ".join(_named(k, v) for k, v in skipped[:10]) or "the folder holds no .json line files"
        why += f"; and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        raise OptionError(f"{ds.spec}: no line to fine-tune on ({why})")
    cfg = TrainConfig(epochs=epochs, lr=lr, warmup_steps=warmup_steps, patience=epochs + 1, seed=seed,
                      threads=threads, checkpoint_minutes=1e9)
    # No validation set (the last step is the result) and no run folder: nothing is written but ``out``.
    run = build_run([Dataset(ds.spec, usable)], [1.0], None, out.parent, init.model.cfg,
                    init.feature_config, cfg, alphabet=init.alphabet.chars)
    run.write_files = False
    run.model.load_state_dict(init.model.state_dict())
    items = list(run.sources[0])
    with _threads(threads):  # the checks too, not only training; the caller's setting is restored after
        before = validate(run.model, items, run.fcfg, run.alphabet, cfg)["val_cer"]
        t0 = time.monotonic()
        done = fit(run, on_step=(lambda r, total: on_step(r.step, total)) if on_step else None)
        seconds = time.monotonic() - t0
        after = validate(run.model, items, run.fcfg, run.alphabet, cfg)["val_cer"]
    meta = dict(init.meta or {})
    meta["fine_tune"] = {"from": str(base_path.resolve()), "lines": len(usable), "steps": done["step"],
                         "epochs": epochs, "lr": lr, "seconds": round(seconds, 1),
                         "date": time.strftime("%Y-%m-%d %H:%M"),
                         "train_config": dataclasses.asdict(cfg)}
    save(out, run.model, run.alphabet, run.fcfg, meta, weights="int8")
    return FineTuneResult(out, base_path, len(usable), skipped, done["step"], seconds, before, after, done["stopped"])
