"""`inkread train`: train a model (one process, or under torchrun with DDP)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
from pathlib import Path

from .argtypes import listed, number, whole


def configure(p: argparse.ArgumentParser) -> None:
    from ..features import CURVE_MODES as FEATURE_CURVES
    from ..features import FeatureConfig
    from ..model import ModelConfig
    from ..train import TrainConfig
    from ..words import SPLIT_RULES
    p.add_argument("--train", action="append", metavar="SPEC", default=[],
                   help="training data spec (repeat to mix; the first one's labels make the alphabet, "
                        "or for synth:N, the characters its generator writes)")
    p.add_argument("--weights", type=_weights, default=None, metavar="W1,W2,...",
                   help="mixing weights of the --train specs, relative to the first (default all 1)")
    p.add_argument("--val", metavar="SPEC", help="validation data spec (model selection, early stopping)")
    p.add_argument("--out", metavar="DIR", help="run folder: checkpoints, metrics.csv (a new one, or empty of "
                   "a run: a folder that holds one is continued with --resume)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR exactly where it stopped (its data, "
                   "model and features stay; optimisation options may change)")
    p.add_argument("--alphabet", help="fixed alphabet string instead of the training labels")
    p.add_argument("--init", metavar="MODEL",
                   help="start from this model's weights, alphabet, network and feature settings "
                        "(fine-tuning, e.g. on your own writing); model and feature options are ignored, "
                        "except --dropout, which a fine-tune may change, and a larger --hidden-size, "
                        "which grows the model's layers and keeps what it computes")
    g = p.add_argument_group("model")
    for f in dataclasses.fields(ModelConfig):
        if f.name not in ("input_size", "num_classes"):
            g.add_argument(f"--{f.name.replace('_', '-')}", type=_TYPES[f.name], default=None,
                           help=f"default {f.default}")
    # feature options default to None (FeatureConfig's defaults fill them in), so that --resume
    # can tell which were given
    g = p.add_argument_group("features")
    for f in dataclasses.fields(FeatureConfig):
        if f.name in ("points_per_height", "dt_clip"):
            g.add_argument(f"--{f.name.replace('_', '-')}", type=_TYPES[f.name], default=None,
                           help=f"default {f.default}")
    g.add_argument("--slant-correction", action="store_true", default=None)
    g.add_argument("--curves", choices=FEATURE_CURVES, default=None,
                   help="frames per resampled point (points, 4 features) or per fitted cubic "
                        f"Bezier curve (bezier, 10 features; far fewer frames; default {FeatureConfig.curves})")
    g.add_argument("--curve-tolerance", type=number(above=0), default=None, metavar="X",
                   help="bezier: largest distance of a resampled point from its curve, in units of "
                        f"the normalised height (default {FeatureConfig.curve_tolerance})")
    g.add_argument("--curve-max-points", type=whole(2), default=None, metavar="N",
                   help=f"bezier: the most resampled points one curve spans (default {FeatureConfig.curve_max_points})")
    g = p.add_argument_group("optimisation")
    choices = {"word_split": SPLIT_RULES}
    for f in dataclasses.fields(TrainConfig):
        kind = type(f.default)
        if kind is bool and f.default:
            g.add_argument(f"--no-{f.name.replace('_', '-')}", dest=f.name, action="store_const",
                           const=False, default=None)
        elif kind is bool:
            g.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, action="store_const",
                           const=True, default=None, help=_FLAG_HELP.get(f.name))
        else:
            g.add_argument(f"--{f.name.replace('_', '-')}", type=_TYPES.get(f.name, kind), default=None,
                           choices=choices.get(f.name), help=_FLAG_HELP.get(f.name, f"default {f.default}"),
                           metavar=_METAVARS.get(f.name))


def run(args: argparse.Namespace) -> int:
    from ..errors import OptionError
    from ..train import TrainConfig
    logging.getLogger("inkread").setLevel(logging.INFO)
    if args.device not in (None, "cpu") and not _cuda_ok(args.device):
        raise OptionError(f"--device {args.device}: no CUDA device is available here")
    if args.resume:
        fixed = [f"--{name.replace('_', '-')}" for name in _run_options() if getattr(args, name) not in (None, [])]
        if fixed:  # they would be ignored: the run is rebuilt from its checkpoint
            raise OptionError("--resume keeps the run's data, model and features (only optimisation "
                              f"options may change): drop {', '.join(fixed)}", args.resume)
    if args.teachers:  # stored in the run: absolute, so that --resume finds them from anywhere
        args.teachers = ",".join(str(Path(p.strip()).absolute()) for p in args.teachers.split(",") if p.strip())
    over = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
            if getattr(args, f.name, None) is not None}
    _init_dist()
    made = None  # the --out folder this command made: removed again if it fails before writing in it
    if args.out and not args.resume:
        from ..errors import check_writable
        made = None if Path(args.out).exists() else Path(args.out)
        check_writable(args.out, folder=True)  # before loading data and training
        held = [n for n in ("last.pt", "best.pt", "metrics.csv") if (Path(args.out) / n).exists()]
        if held:  # a new run would append to its metrics and replace its checkpoints, keeping its best
            raise OptionError(f"already holds a run ({', '.join(held)}): continue it with --resume "
                              f"{args.out}, or give another --out", args.out)
    try:
        result = _train(args, over)
    except BaseException:
        if made is not None:
            try:
                made.rmdir()  # only while empty
            except OSError:
                pass
        raise
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v if not isinstance(v, float) or math.isfinite(v) else None
                          for k, v in result.items()}))  # JSON has no Infinity (no --val: no best CER)
    return 0


def _train(args: argparse.Namespace, over: dict) -> dict:
    """Build or resume the run of ``args`` and train it; returns fit's result."""
    from ..errors import OptionError
    from ..features import FeatureConfig
    from ..model import ModelConfig
    from ..train import TrainConfig, build_run, fit, resume_run
    if args.resume:
        run_, opt_state = resume_run(Path(args.resume), over)
    else:
        if not args.train or not args.out:
            raise OptionError("--train SPEC and --out DIR are required (or --resume DIR)")
        weights = args.weights or [1.0] * len(args.train)
        if len(weights) != len(args.train):
            raise OptionError(f"--weights has {len(weights)} values for {len(args.train)} --train specs")
        init = None
        if args.init:
            from ..checkpoint import load
            init = load(args.init)
            mcfg, fcfg, alphabet = init.model.cfg, init.feature_config, init.alphabet.chars
            if args.dropout is not None:  # the one model option that keeps the weights' shapes
                mcfg = dataclasses.replace(mcfg, dropout=args.dropout)
            if args.hidden_size is not None and args.hidden_size != mcfg.hidden_size:
                if args.hidden_size < mcfg.hidden_size:
                    raise OptionError(f"--hidden-size {args.hidden_size}: {args.init} has "
                                      f"{mcfg.hidden_size} units per direction; a model can grow, not shrink")
                mcfg = dataclasses.replace(mcfg, hidden_size=args.hidden_size)
        else:
            mcfg = ModelConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ModelConfig)
                                  if f.name not in ("input_size", "num_classes")
                                  and getattr(args, f.name) is not None})
            try:
                fcfg = FeatureConfig(**{name: getattr(args, name) for name in _FEATURE_OPTIONS
                                        if getattr(args, name) is not None})
            except ValueError as exc:
                raise OptionError(str(exc)) from None
            alphabet = args.alphabet
        run_ = build_run(args.train, weights, args.val, Path(args.out), mcfg, fcfg,
                         TrainConfig(**over), alphabet)
        if init is not None:
            state = init.model.state_dict()
            if mcfg.hidden_size != init.model.cfg.hidden_size:
                from ..model import widen_state
                state = widen_state(state, init.model.cfg.hidden_size,
                                    run_.model.state_dict(), mcfg.hidden_size)
                run_.specs["grown_from_hidden"] = init.model.cfg.hidden_size
            run_.model.load_state_dict(state)
            run_.specs["init"] = str(args.init)
        opt_state = None
    return fit(run_, opt_state)


# the feature options (FeatureConfig fields)
_FEATURE_OPTIONS = ("points_per_height", "dt_clip", "slant_correction", "curves", "curve_tolerance",
                    "curve_max_points")


def _run_options() -> list[str]:
    """The options that make a run (data, model, features, output): --resume refuses them."""
    from ..model import ModelConfig
    model = [f.name for f in dataclasses.fields(ModelConfig) if f.name not in ("input_size", "num_classes")]
    return ["train", "weights", "val", "alphabet", "init", "out", *model, *_FEATURE_OPTIONS]


# the range of every numeric option (argparse types: one clear line for a value outside it)
_TYPES = {
    "hidden_size": whole(1), "num_layers": whole(1), "dropout": number(0, 0.99), "conv_channels": whole(0),
    "subsample": whole(1), "points_per_height": number(above=0), "dt_clip": number(above=0),
    "epochs": whole(1), "batch_frames": whole(1), "max_batch": whole(1), "lr": number(above=0),
    "weight_decay": number(least=0), "warmup_steps": whole(0), "min_lr_ratio": number(0, 1),
    "clip": number(above=0), "drop_time_prob": number(0, 1), "word_jitter": number(0, 1),
    "word_mix": number(0, 10), "patience": whole(1), "checkpoint_minutes": number(above=0),
    "max_minutes": number(least=0), "seed": whole(0), "val_limit": whole(0), "threads": whole(0),
    "keep_epochs": whole(0), "distill": number(0, 1),
}


_METAVARS = {"teachers": "M1,M2,...", "distill": "W"}
_FLAG_HELP = {
    "teachers": "model files (same alphabet, features and subsampling) whose mean per-frame "
                "distribution --distill teaches the network",
    "distill": "weight of learning the --teachers' distribution (KL per frame) against the CTC loss, "
               "0-1 (default 0: off)",
    "bf16": "run the forward pass in bfloat16 (autocast; float32 master weights, loss and validation): "
            "about 1.5x faster steps on a CPU with AVX512-BF16 or AMX, slower on one without",
}


def _weights(text: str) -> list[float]:
    weights = listed(number(least=0), "numbers")(text)
    if weights[0] <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the first weight must be above 0")
    return weights


def _cuda_ok(device: str) -> bool:
    import torch
    return device.startswith("cuda") and torch.cuda.is_available()


def _init_dist() -> None:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch.distributed as dist
        if not dist.is_initialized():
            dist.init_process_group("gloo")


def configure_average(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", metavar="MODEL", help="two or more models of one run (same network)")
    p.add_argument("-o", "--out", required=True, metavar="FILE", help="the averaged model")


def run_average(args: argparse.Namespace) -> int:
    from ..checkpoint import average, save
    from ..errors import CheckpointError
    if any(Path(args.out).resolve() == Path(m).resolve() for m in args.models):
        raise CheckpointError("refusing to overwrite one of the models being averaged; choose another -o",
                              args.out)
    avg = average(args.models)
    save(args.out, avg.model, avg.alphabet, avg.feature_config, avg.meta)
    print(f"{args.out}: mean of {len(args.models)} models")
    return 0


def configure_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="a model file (e.g. a run's best.pt)")
    p.add_argument("-o", "--out", required=True, metavar="FILE", help="the model file to write")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--half", action="store_const", dest="weights", const="float16", default="float32",
                      help="store the weights as 16-bit floats: half the size (loading restores float32)")
    size.add_argument("--int8", action="store_const", dest="weights", const="int8",
                      help="store weight matrices as int8 with a scale per row, the rest as 16-bit "
                           "floats: about a quarter of the size (loading restores float32; on ONNX "
                           "Runtime such a model also runs its LSTMs in int8 arithmetic, which is faster)")


def run_export(args: argparse.Namespace) -> int:
    from ..checkpoint import load, save
    from ..errors import CheckpointError
    ld = load(args.model)
    if Path(args.out).resolve() == Path(args.model).resolve():
        raise CheckpointError("refusing to overwrite the input model; choose another --out", args.out)
    save(args.out, ld.model, ld.alphabet, ld.feature_config, ld.meta, weights=args.weights)
    size = Path(args.out).stat().st_size
    print(f"{args.out}: {size / 1e6:.2f} MB, weights in {args.weights}, "
          "no training state")
    return 0


def configure_finetune(p: argparse.ArgumentParser) -> None:
    from ..finetune import EPOCHS, LR, WARMUP_STEPS
    p.add_argument("lines", nargs="+", metavar="LINES",
                   help="folders or files of labelled lines (native JSON, as File > Save lines for "
                        "fine-tuning writes them), or data specs")
    p.add_argument("-o", "--out", required=True, metavar="FILE", help="the fine-tuned model (int8)")
    p.add_argument("--model", metavar="MODEL", help="the model to start from (default: the default model)")
    p.add_argument("--epochs", type=whole(1), default=EPOCHS, help=f"default {EPOCHS}")
    p.add_argument("--lr", type=number(above=0), default=LR, help=f"default {LR:g}")
    p.add_argument("--warmup-steps", type=whole(0), default=WARMUP_STEPS, help=f"default {WARMUP_STEPS}")
    p.add_argument("--seed", type=whole(0), default=1)
    p.add_argument("--threads", type=whole(0), default=0, help="CPU threads (0: torch's default)")


def run_finetune(args: argparse.Namespace) -> int:
    import sys

    from tqdm import tqdm

    from ..finetune import fine_tune
    with tqdm(desc="fine-tuning", unit="step", disable=not sys.stderr.isatty()) as bar:
        def step(done: int, total: int) -> bool:
            bar.total = total
            bar.update(done - bar.n)
            return False
        result = fine_tune(args.lines, args.out, args.model, epochs=args.epochs, lr=args.lr,
                           warmup_steps=args.warmup_steps, seed=args.seed, threads=args.threads,
                           on_step=step)
    print(result.summary())
    return 0


COMMANDS = [("train", "train a recognition model", configure, run),
            ("average", "average the weights of several models of one run", configure_average, run_average),
            ("export", "write a model for shipping: no training state, optionally float16 or int8 weights",
             configure_export, run_export),
            ("finetune", "fine-tune a model on your own labelled lines and write it as an int8 model",
             configure_finetune, run_finetune)]
