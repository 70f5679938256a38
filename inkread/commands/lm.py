"""`inkread lm build | info | tune`: the character language model for beam search."""
from __future__ import annotations

import argparse
import json
import sys

from ..decode import DEFAULT_BEAM
from .argtypes import listed, number, whole


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="lm_command", metavar="ACTION", parser_class=type(p))
    b = sub.add_parser("build", help="estimate a character n-gram LM from plain text files")
    b.add_argument("text", nargs="*", metavar="TEXT", help="UTF-8 text files")
    b.add_argument("--wordnet", metavar="DIR", help="also use WordNet's glosses and examples from DIR "
                   "(e.g. /usr/share/wordnet of Debian's wordnet-base)")
    b.add_argument("-o", "--out", required=True, metavar="LM", help="output file (.npz)")
    b.add_argument("--order", type=whole(1, 10), default=7, help="n-gram order (default 7)")
    b.add_argument("--min-counts", type=listed(whole(1), "whole numbers"), default=[1, 1, 1, 2, 3, 4, 5],
                   metavar="C1,C2,...",
                   help="per order from 1 to --order, the smallest Kneser-Ney count kept; unigrams are "
                        "always kept, missing values are 1 (default 1,1,1,2,3,4,5)")
    b.add_argument("--wrap", type=whole(0), default=40, metavar="N",
                   help="re-wrap paragraphs into lines of about N characters, like handwritten "
                        "lines (0 = keep the files' lines; default 40)")
    b.add_argument("--min-char-count", type=whole(1), default=1, metavar="N",
                   help="characters seen fewer times become 'unknown'")
    b.add_argument("--lexicon-size", type=whole(0), default=0, metavar="N",
                   help="also store the N most frequent words as a lexicon")
    b.add_argument("--exclude", action="append", default=[], metavar="SPEC",
                   help="remove verbatim occurrences of these data's labels from the text "
                        "(e.g. the validation and test sets); repeatable")
    b.add_argument("--source", default="", help="where the text comes from and its licence (stored)")
    i = sub.add_parser("info", help="describe an LM file; with --text, measure bits per character")
    i.add_argument("lm", metavar="LM")
    i.add_argument("--text", nargs="*", default=[], metavar="FILE", help="text files, one line each")
    i.add_argument("--json", action="store_true")
    t = sub.add_parser("tune", help="grid-search LM weight and bonus on labelled data")
    t.add_argument("--data", required=True, metavar="SPEC", help="validation data spec")
    t.add_argument("--model", metavar="FILE", help="model file (default models/default.pt)")
    t.add_argument("--lm", required=True, metavar="LM")
    t.add_argument("--weights", type=listed(number(least=0), "numbers"), default=[0.0, 0.25, 0.5, 0.75, 1.0],
                   metavar="W,...")
    t.add_argument("--bonuses", type=listed(number(), "numbers"), default=[0.0, 0.5, 1.0, 1.5, 2.0, 3.0],
                   metavar="B,...")
    t.add_argument("--beam", type=whole(1), default=DEFAULT_BEAM, metavar="K")
    t.add_argument("--limit", type=whole(0), default=300, metavar="N", help="lines used (default 300, 0 = all)")
    t.add_argument("--threads", type=whole(1), metavar="N")
    t.add_argument("--write", action="store_true", help="store the best weight and bonus in the LM file")
    t.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from ..errors import OptionError
    if not args.lm_command:
        raise OptionError("give an action: inkread lm build | info | tune (see inkread lm --help)")
    return {"build": _build, "info": _info, "tune": _tune}[args.lm_command](args)


def _build(args: argparse.Namespace) -> int:
    import os
    from ..datasets import load_spec
    from ..errors import OptionError, check_writable
    from ..lm import CharLM, wrap_text, drop_references, read_text_lines, wordnet_text
    if not args.text and not args.wordnet:
        raise OptionError("give TEXT files and/or --wordnet DIR")
    check_writable(args.out)  # before the build, not after it
    lines = read_text_lines(args.text, wrap=args.wrap)
    if args.wordnet:
        lines += wrap_text(wordnet_text(args.wordnet), args.wrap)
    if not lines:
        raise OptionError("the text files hold no text")
    removed = 0
    for spec in args.exclude:
        lines, n = drop_references(lines, (s.text for s in load_spec(spec)))
        removed += n
    lm = CharLM.build(lines, order=args.order, min_counts=args.min_counts,
                      min_char_count=args.min_char_count, lexicon_size=args.lexicon_size,
                      meta={"source": args.source, "text_files": [os.path.basename(t) for t in args.text]
                            + ([f"wordnet:{args.wordnet}"] if args.wordnet else []),
                            "wrap": args.wrap, "excluded": list(args.exclude), "excluded_hits": removed})
    lm.save(args.out)
    size = os.path.getsize(args.out)
    print(f"{args.out}: order {lm.order}, {len(lm.vocab)} characters, n-grams per order "
          f"{lm.meta['ngrams']}, {lm.meta['train_chars']} training characters, "
          f"{removed} excluded passages, {size / 1e6:.2f} MB")
    return 0


def _info(args: argparse.Namespace) -> int:
    import math
    import os
    from ..errors import FormatError
    from ..lm import CharLM, applied_min_counts, read_text_lines
    lm = CharLM.load(args.lm)
    out = {"file": args.lm, "bytes": os.path.getsize(args.lm), "order": lm.order, "vocab": lm.vocab,
           "lexicon": len(lm.lexicon or ()), **{k: v for k, v in lm.meta.items() if k != "vocab"}}
    if isinstance(out.get("min_counts"), list):  # as applied, one per order (older files hold the option as given)
        out["min_counts"] = applied_min_counts(out["min_counts"], lm.order)
    if args.text:
        lines = []
        for path in args.text:
            got = read_text_lines([path], wrap=0)
            if not got:
                raise FormatError("holds no text to measure (empty or only blank lines)", path)
            lines += got
        nats = -sum(lm.logprob(ln) for ln in lines)
        chars = sum(len(ln) + 1 for ln in lines)
        out.update(eval_lines=len(lines), bits_per_char=nats / max(chars, 1) / math.log(2))
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        for k, v in out.items():
            print(f"{k + ':':<16}{v}")
    return 0


def _tune(args: argparse.Namespace) -> int:
    from ..datasets import load_spec
    from ..evaluate import tune
    from ..lm import CharLM
    from ..recognizer import Recognizer
    rec = Recognizer.load(args.model, lm=args.lm, threads=args.threads, beam=args.beam)
    samples = list(load_spec(args.data))
    if args.limit:
        samples = samples[: args.limit]
    rows = tune(rec, samples, args.weights, args.bonuses)
    best = rows[1]
    if args.write:
        lm = CharLM.load(args.lm)
        lm.meta.pop("path", None)
        lm.meta["tuned"] = {"lm_weight": best["lm_weight"], "bonus": best["bonus"], "beam": args.beam,
                            "cer": best["cer"], "greedy_cer": rows[0]["cer"], "data": args.data,
                            "lines": len(samples), "model": rec.path}
        lm.save(args.lm)
    if args.json:
        print(json.dumps({"rows": rows, "best": best, "written": bool(args.write)}))
        return 0
    print(f"{'lm_weight':>9} {'bonus':>6} {'CER%':>7} {'WER%':>7} {'s':>6}", file=sys.stdout)
    for r in rows:
        w = "greedy" if r["lm_weight"] is None else f"{r['lm_weight']:g}"
        b = "-" if r["bonus"] is None else f"{r['bonus']:g}"
        print(f"{w:>9} {b:>6} {100 * r['cer']:7.2f} {100 * r['wer']:7.2f} {r['seconds']:6.1f}")
    print(f"best: --lm-weight {best['lm_weight']:g} --bonus {best['bonus']:g}"
          + (f" (written to {args.lm})" if args.write else ""))
    return 0


COMMANDS = [("lm", "build, inspect and tune the character language model", configure, run)]
