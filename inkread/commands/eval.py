"""`inkread eval --data SPEC`: character and word error rates of a model on labelled data."""
from __future__ import annotations

import argparse
import json
import logging
import sys

from .argtypes import number, whole
from .data import report_skipped
from .recognize import add_model_options, load_recognizer

log = logging.getLogger(__name__)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="SPEC",
                   help="labelled data spec, e.g. iamondb:ROOT@testset_v, native:DIR")
    add_model_options(p)
    p.add_argument("--limit", type=whole(1), metavar="N", help="score only the first N samples")
    p.add_argument("--crossed-out", choices=("keep", "drop"), default="keep",
                   help="IAM '#' (crossed-out word): keep = score it like any character (default); "
                        "drop = remove '#' words from reference and hypothesis")
    p.add_argument("--json", action="store_true", help="print one JSON object (cer, wer, samples, seconds, ...)")
    p.add_argument("--errors", metavar="FILE", help="write id, reference, hypothesis, edits per sample (TSV)")
    g = p.add_argument_group("robustness: score the ink as another device would give it")
    g.add_argument("--drop-time", action="store_true", help="replace the timestamps by synthesized ones")
    g.add_argument("--rate", type=number(least=0), default=0.0, metavar="HZ",
                   help="resample every stroke in time to HZ samples per second")
    g.add_argument("--scale", type=number(above=0), default=1.0, metavar="F", help="multiply all coordinates by F")
    g.add_argument("--grid", type=number(least=0, most=1), default=0.0, metavar="G",
                   help="snap coordinates to a grid of G times the writing's height, as a screen's pixels "
                        "(writing 20 pixels tall on a Tablet PC that reports pixels: 0.05)")
    p.add_argument("--batch-size", type=whole(1), default=16, metavar="N", help="lines per network call")
    p.add_argument("--ensemble", metavar="M2,M3,...",
                   help="read with these models too: the mean of all networks' log-probabilities per frame "
                        "(same alphabet, features and subsampling; what `train --distill` would teach)")


def run(args: argparse.Namespace) -> int:
    from ..datasets import load_spec
    from ..errors import DataSpecError, check_writable
    from ..evaluate import EDIT_KINDS, evaluate, write_errors
    if args.errors:
        check_writable(args.errors)  # before the evaluation, not after it
    ds = load_spec(args.data)
    if len(ds) == 0:
        named = "; ".join(f"{k}: {v}" for k, v in ds.skipped[:3])
        more = " ..." if len(ds.skipped) > 3 else ""
        raise DataSpecError(f"no labelled samples ({len(ds.skipped)} skipped{': ' * bool(named)}{named}{more})",
                            args.data)
    if args.drop_time or args.rate or args.scale != 1.0 or args.grid:
        from ..datasets import Dataset, Sample
        from ..evaluate import perturb
        ds = Dataset(ds.spec, [Sample(perturb(s.ink, args.drop_time, args.rate, args.scale, args.grid), s.text, s.id,
                                      s.writer) for s in ds], ds.skipped)
    rec = load_recognizer(args)
    for path in [p.strip() for p in (args.ensemble or "").split(",") if p.strip()]:
        from ..recognizer import Recognizer
        rec.join(Recognizer.load(path, lm=None, threads=args.threads, backend=args.backend))
    if rec.partners:
        _check_ensemble(rec, [s.ink for s in list(ds)[:64]])
    ev = evaluate(rec, ds, limit=args.limit or 0, lm=not args.no_lm, crossed_out=args.crossed_out,
                  batch_size=args.batch_size, progress=not args.json and sys.stderr.isatty())
    if args.errors:
        write_errors(args.errors, ev.rows)
    report_skipped(ds.skipped, log.warning)  # each named, after the scoring's progress bar
    out = dict(ev.to_dict(), data=args.data, skipped=len(ds.skipped),
               skipped_items=[{"name": k, "reason": v} for k, v in ds.skipped],
               perturbation={"drop_time": args.drop_time, "rate": args.rate, "scale": args.scale,
                             "grid": args.grid})
    if args.json:
        print(json.dumps(out))
        return 0
    s = ev.scores
    print(f"data:      {args.data} ({s.samples} samples scored, {len(ds.skipped)} skipped)")
    print(f"model:     {out['model']}" + (f" + {', '.join(out['ensemble'])}" if out.get("ensemble") else ""))
    print("decoding:  " + (f"beam {out['beam']}, LM {out['lm']}, weight {out['lm_weight']:g}, "
                            f"bonus {out['bonus']:g}" if out["lm"] else "greedy, no LM"))
    print(f"CER:       {100 * s.cer:.2f}%  ({s.char_errors} edits / {s.ref_chars} reference characters)")
    print(f"WER:       {100 * s.wer:.2f}%  ({s.word_errors} edits / {s.ref_words} reference words)")
    if s.char_errors:
        print("edits:     " + ", ".join(f"{k} {s.edit_kinds[k]} ({100 * s.edit_kinds[k] / s.char_errors:.0f}%)"
                                        for k in EDIT_KINDS if s.edit_kinds[k]))
        print("top edits: " + ", ".join(f"{json.dumps(r)}->{json.dumps(h)} {n}" for r, h, n in s.top_confusions(8))
              + '  (reference->recognised; "" = missing)')
    print(f"crossed-out '#': {s.crossed_out_marks} marks in {s.crossed_out_lines} references "
          f"({'scored as characters' if s.crossed_out == 'keep' else 'removed from both sides'})")
    print(f"time:      {ev.seconds:.2f} s ({out['ms_per_line']:.1f} ms per line)")
    if args.errors:
        print(f"errors:    {args.errors}")
    return 0


def _check_ensemble(rec, inks) -> None:
    """Warn when a partner writes its characters at other frames than the model (see
    :func:`inkread.evaluate.frame_agreement`): reading them together would drop characters."""
    from ..evaluate import AGREEMENT_WARN, emissions_of, frame_agreement
    partners, rec.partners = rec.partners, []
    try:
        base = emissions_of(rec, inks)
        for p in partners:
            agree = frame_agreement(base, emissions_of(p, inks))
            if agree < AGREEMENT_WARN:
                log.warning("--ensemble %s: writes the same character at the same frame as %s only %.0f%% "
                            "of the time on the first %d lines (r18 and a network that learned its frames "
                            "agree on 93%%): their mean drops characters", p.path, rec.path, 100 * agree,
                            len(inks))
    finally:
        rec.partners = partners


def configure_compare(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="A.tsv", help="an `inkread eval --errors` file (the baseline)")
    p.add_argument("b", metavar="B.tsv", help="another, of the same data (the candidate)")
    p.add_argument("--draws", type=whole(0), default=10000, metavar="N",
                   help="bootstrap resamples of the lines (default 10000; 0: none)")
    p.add_argument("--seed", type=whole(0), default=0, metavar="S", help="of the resampling")
    p.add_argument("--crossed-out", choices=("keep", "drop"), default="keep",
                   help="as for `inkread eval` (default keep)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run_compare(args: argparse.Namespace) -> int:
    from ..evaluate import EDIT_KINDS, compare, read_errors
    c = compare(read_errors(args.a), read_errors(args.b), args.draws, args.seed, args.crossed_out,
                names=(args.a, args.b))
    if args.json:
        print(json.dumps(dict(c.to_dict(), a=args.a, b=args.b)))
        return 0
    d = c.to_dict()
    print(f"lines:     {c.lines} in both ({c.ref_chars} reference characters)"
          + (f"; {c.only_a} only in A, {c.only_b} only in B (not compared)" if c.only_a or c.only_b else ""))
    print(f"A:         {c.errors_a} character errors, CER {100 * d['cer_a']:.2f}%  ({args.a})")
    print(f"B:         {c.errors_b} character errors, CER {100 * d['cer_b']:.2f}%  ({args.b})")
    print(f"B - A:     {c.difference:+d} errors ({100 * (d['cer_b'] - d['cer_a']):+.2f} points); "
          f"B better on {c.better} lines, worse on {c.worse}")
    print("by kind:   " + ", ".join(f"{k} {c.kinds_a[k]} -> {c.kinds_b[k]} ({c.kinds_b[k] - c.kinds_a[k]:+d})"
                                      for k in EDIT_KINDS if c.kinds_a[k] or c.kinds_b[k]))
    if c.draws:
        lo, hi = c.interval
        verdict = ("B is better" if hi < 0 else "B is worse" if lo > 0 else "no difference shown")
        print(f"95%:       {lo:+.0f} to {hi:+.0f} errors ({c.draws} resamples of the lines): {verdict}")
    return 0


COMMANDS = [("eval", "measure CER and WER of a model on labelled data", configure, run),
            ("compare", "is one model better than another? two `eval --errors` files, line by line",
             configure_compare, run_compare)]
