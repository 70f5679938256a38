"""`inkread recognize FILE...`: print the text of ink files."""
from __future__ import annotations

import argparse
import json

import numpy as np

from ..decode import DEFAULT_BEAM
from .argtypes import number, whole


def add_model_options(p: argparse.ArgumentParser, lm: bool = True) -> None:
    """--model, --lm/--no-lm, --threads, --beam, --lm-weight, --bonus (shared with eval)."""
    p.add_argument("--model", metavar="FILE", help="model file (default: models/default.pt or $INKREAD_MODEL)")
    if lm:
        g = p.add_mutually_exclusive_group()
        g.add_argument("--lm", metavar="FILE", help="character LM (default: models/lm-en.npz if present)")
        g.add_argument("--no-lm", action="store_true", help="decode without a language model")
        p.add_argument("--beam", type=whole(1), default=DEFAULT_BEAM, metavar="K",
                       help=f"beam width (default {DEFAULT_BEAM})")
        p.add_argument("--lm-weight", type=number(least=0), metavar="W",
                       help="LM weight (default: the LM file's tuned value)")
        p.add_argument("--bonus", type=number(), metavar="B",
                       help="per-character insertion bonus (default: the LM file's tuned value)")
        p.add_argument("--oov-penalty", type=number(least=0), metavar="P",
                       help="penalty per word outside the LM file's lexicon (default: tuned value or 0)")
    p.add_argument("--threads", type=whole(1), metavar="N", help="torch threads (default: torch's setting)")
    add_backend_option(p)


def add_backend_option(p: argparse.ArgumentParser, note: str = "") -> None:
    """--backend; ``note`` is added to its help (what the command does with it beyond the default)."""
    from ..onnx_engine import BACKENDS
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="engine of the network: onnx (ONNX Runtime), torch, or auto (onnx when installed)" + note)


def load_recognizer(args: argparse.Namespace):
    """A Recognizer from the shared options."""
    from ..recognizer import Recognizer
    lm = None if getattr(args, "no_lm", False) else (getattr(args, "lm", None) or "default")
    return Recognizer.load(args.model, lm=lm, threads=args.threads, beam=getattr(args, "beam", DEFAULT_BEAM),
                           lm_weight=getattr(args, "lm_weight", None), bonus=getattr(args, "bonus", None),
                           oov_penalty=getattr(args, "oov_penalty", None),
                           backend=getattr(args, "backend", "auto"))


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="ink files (any supported format)")
    p.add_argument("--from", dest="fmt", metavar="FMT", help="read every file as this format")
    p.add_argument("--nbest", type=whole(1), default=1, metavar="K", help="print the K best texts")
    p.add_argument("--json", action="store_true", help="one JSON object per file: text (its lines joined by "
                   "newlines) and per line the n-best, character frames and page points, timings; for a file that "
                   "cannot be read, file and error")
    p.add_argument("--one-line", action="store_true",
                   help="read each file as one line of text (by default a page is split into its lines, "
                        "as the app splits it, and each line is printed on its own)")
    add_model_options(p)


def run(args: argparse.Namespace) -> int:
    """Each readable file's text in order; each bad file one error line on stderr (and with --json an
    object naming the file and the error, so that every file has its line); status 2 if any failed."""
    from ..errors import InkreadError
    from ..formats import read_ink
    from ..lines import Line
    inks = []
    for f in args.files:
        try:
            inks.append(read_ink(f, args.fmt))
        except InkreadError as exc:
            inks.append(exc)
    # no model is loaded when no file could be read: the bad files' errors are all there is to say
    rec = load_recognizer(args) if any(not isinstance(i, InkreadError) for i in inks) else None
    failed = 0
    for path, ink in zip(args.files, inks):
        try:
            if isinstance(ink, InkreadError):
                raise ink
            if args.one_line:
                res = rec.recognize(ink, nbest=args.nbest, lm=not args.no_lm)
                lines = [] if ink.is_empty else [(Line(tuple(range(len(ink.strokes))), np.arange(ink.num_points)),
                                                  res)]
            else:
                lines = rec.recognize_page(ink, nbest=args.nbest, lm=not args.no_lm)
        except InkreadError as exc:
            failed += 1
            _report_failure(args, path, exc)
            continue
        if args.json:
            print(json.dumps(_page_json(path, lines), ensure_ascii=False))
        elif not lines:
            print(f"{path}\t(no points)" if len(args.files) > 1 else "(no points)")
        elif args.nbest > 1:
            for k, (_, res) in enumerate(lines):
                print(path if len(lines) == 1 else f"{path} (line {k + 1} of {len(lines)})")
                for text, score in res.nbest:
                    print(f"  {score:9.3f}  {text}")
        else:
            for _, res in lines:
                print(f"{path}\t{res.text}" if len(args.files) > 1 else res.text)
    return 2 if failed else 0


def _report_failure(args: argparse.Namespace, path: str, exc: Exception) -> None:
    """One error line on stderr naming the file and the place, as the CLI prints a fatal one."""
    import sys

    from ..errors import InkreadError
    detail = exc.detail if isinstance(exc, InkreadError) and exc.path == str(path) else str(exc)
    message = f"{path}: {detail}"
    if args.json:
        print(json.dumps({"file": path, "error": detail}, ensure_ascii=False))
    sys.stdout.flush()  # the error after the files before it, on a terminal as well
    print(f"inkread {args.command}: error: {message}", file=sys.stderr)


def _page_json(path: str, lines: list) -> dict:
    """One file's result: its text, its lines (each a Result's dict plus its strokes), and, for a
    one-line file, that line's fields at the top as well (the format before pages were split)."""
    per_line = [dict(res.to_dict(), strokes=list(line.strokes)) for line, res in lines]
    out = {"file": path, "text": "\n".join(d["text"] for d in per_line), "lines": per_line}
    if len(per_line) == 1:
        out = dict(per_line[0], **out)
    return out


COMMANDS = [("recognize", "recognise ink files and print their text", configure, run)]
