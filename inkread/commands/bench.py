"""`inkread bench`: per-line latency, training throughput and memory, in one run."""
from __future__ import annotations

import argparse
import json
import logging

from ..decode import DEFAULT_BEAM
from .argtypes import whole
from .recognize import add_backend_option

log = logging.getLogger(__name__)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="FILE", help="model file (default models/default.pt; if there is "
                   "none, an untrained model of the default size)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--lm", metavar="FILE", help="LM for the beam-search timing (default models/lm-en.npz)")
    g.add_argument("--no-lm", action="store_true", help="time beam search without LM")
    p.add_argument("--data", metavar="SPEC", help="lines to time (default synth:N@0, else data/samples)")
    p.add_argument("--lines", type=whole(1), default=20, metavar="N", help="lines to time (default 20)")
    p.add_argument("--beam", type=whole(1), default=DEFAULT_BEAM, metavar="K",
                   help=f"beam width (default {DEFAULT_BEAM})")
    p.add_argument("--train-batch", type=whole(0), default=16, metavar="B",
                   help="lines in the timed training batch (0 = skip; default 16)")
    p.add_argument("--threads", type=whole(1), metavar="N", help="'all threads' means N (default: torch's)")
    p.add_argument("--no-extras", action="store_true", help="skip the synth and saliency benchmarks")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    add_backend_option(p, note=". The engine timed; torch is always timed beside another engine (and the "
                               "float ONNX graph beside an int8 model), as a yardstick from the same run")


def _data(args: argparse.Namespace):
    from pathlib import Path
    from ..datasets import _kinds, load_spec
    if args.data:
        return args.data, load_spec(args.data)
    if "synth" in _kinds():
        spec = f"synth:{max(args.lines, args.train_batch)}@0"
        return spec, load_spec(spec)
    samples = Path(__file__).resolve().parent.parent.parent / "data" / "samples"
    spec = f"native:{samples}"
    return spec, load_spec(spec)


def _recognizer(args: argparse.Namespace, texts):
    from ..recognizer import Recognizer, default_model_path
    lm = None if args.no_lm else (args.lm or "default")
    if args.model or default_model_path().is_file():
        return Recognizer.load(args.model, lm=lm, beam=args.beam, backend=args.backend)
    from ..alphabet import Alphabet
    from ..features import FeatureConfig
    from ..model import InkModel, ModelConfig
    from ..recognizer import _resolve_lm
    log.warning("no model file: timing an untrained model of the default size")
    alphabet = Alphabet.from_texts(texts)
    model = InkModel(ModelConfig(input_size=FeatureConfig().num_features, num_classes=len(alphabet)))
    return Recognizer(model, alphabet, FeatureConfig(), lm=_resolve_lm(lm), beam=args.beam,
                      backend=args.backend)


def run(args: argparse.Namespace) -> int:
    from .. import bench
    from ..errors import DataSpecError
    spec, ds = _data(args)
    samples = [ds.samples[i] for i in range(min(len(ds), max(args.lines, args.train_batch)))]
    if not samples:
        raise DataSpecError("no samples to time", spec)
    rec = _recognizer(args, [s.text for s in samples])
    try:
        report = bench.run(rec, samples, lines=args.lines, beam=args.beam, train_batch=args.train_batch,
                           all_threads=args.threads, extras=not args.no_extras, data=spec)
    except ValueError as exc:
        raise DataSpecError(str(exc), spec) from None
    print(json.dumps(report) if args.json else bench.format_report(report))
    return 0


COMMANDS = [("bench", "time features, network, decoding and a training step", configure, run)]
