"""`inkread saliency`: which strokes drove each recognised character.

    inkread saliency FILE [--model M] [--method NAME] [--char K] [--out OUT.png] [--json]
    inkread saliency --faithfulness synth:200@0 [--model M] [--methods a,b] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Optional

from .argtypes import whole

METHOD_NAMES = ("gradient", "coordinates", "gradxinput", "integrated", "smoothgrad")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", help="ink file to explain (any supported format)")
    p.add_argument("--model", metavar="FILE", help="model file (default: models/default.pt or $INKREAD_MODEL)")
    p.add_argument("--method", default="gradient", metavar="NAME",
                   help=f"attribution method: {', '.join(METHOD_NAMES)} (default gradient)")
    p.add_argument("--char", type=whole(0), metavar="K",
                   help="explain only character K (0-based index in the recognised text)")
    p.add_argument("--out", metavar="OUT.png", help="write the figure (heat maps and demo rows) here")
    p.add_argument("--json", action="store_true",
                   help="print JSON: per character the per-point and per-stroke scores "
                        "(with --faithfulness: the figures)")
    p.add_argument("--no-demo", action="store_true", help="leave Graves's demo rows out of the figure")
    p.add_argument("--no-lm", action="store_true", help="decode without the language model")
    p.add_argument("--window", type=whole(1), metavar="W",
                   help="back-propagate only W output frames each side of a character (faster, "
                        "approximate; default: the whole line, exact)")
    p.add_argument("--steps", type=whole(1), default=16, metavar="N", help="integrated-gradients steps (16)")
    p.add_argument("--nsamples", type=whole(1), default=16, metavar="N", help="SmoothGrad samples (16)")
    p.add_argument("--width", type=whole(1), default=1200, metavar="PX", help="figure width (1200)")
    p.add_argument("--threads", type=whole(1), metavar="N", help="torch threads (default: torch's setting)")
    g = p.add_argument_group("faithfulness (synthetic ink with per-point truth)")
    g.add_argument("--faithfulness", metavar="SPEC",
                   help="measure the methods on a data spec whose ink knows each point's character, "
                        "e.g. synth:200@0")
    g.add_argument("--methods", metavar="A,B",
                   help="methods to measure (default all that apply to the model's features)")
    g.add_argument("--control", action="store_true",
                   help="also run every method on a copy of the network with re-initialised weights "
                        "(same character spans): what the architecture alone scores")
    g.add_argument("--deletion-chars", type=whole(0), default=3, metavar="N",
                   help="characters per line for the deletion check (default 3; 0 = off)")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..errors import OptionError
    from ..saliency import canonical_method
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.faithfulness:
        methods = None if args.methods is None else \
            [canonical_method(m) for m in args.methods.split(",") if m.strip()]
        return _faithfulness(args, methods)
    if not args.file:
        raise OptionError("give an ink FILE to explain, or --faithfulness SPEC")
    if args.out and not args.out.lower().endswith(".png"):
        raise OptionError("the figure is a PNG: give --out a name ending in .png", args.out)
    return _explain(args, canonical_method(args.method))


def _explain(args: argparse.Namespace, method: str) -> int:
    from ..formats import read_ink
    from ..recognizer import Recognizer
    from ..saliency import explain
    ink = read_ink(args.file)
    ink.require_points(args.file)
    rec = Recognizer.load(args.model, lm=None if args.no_lm else "default")
    opts = {"steps": args.steps, "nsamples": args.nsamples} if method in ("integrated", "smoothgrad") else {}
    ex = explain(rec, ink, method, chars=None if args.char is None else [args.char], window=args.window,
                 lm=not args.no_lm, **opts)
    if args.out:
        _write_figure(args, rec, ink, ex)
    if args.json:
        d = ex.to_dict()
        d.update({"file": args.file, "model": rec.path, "num_points": ink.num_points,
                  "num_strokes": len(ink.strokes)})
        json.dump(d, sys.stdout)
        sys.stdout.write("\n")
        return 0
    print(f"text: {ex.text!r}  ({method}, {'window ' + str(args.window) if args.window else 'exact'}, "
          f"{ex.ms['attribution']:.0f} ms)")
    for c in ex.chars:
        mag = abs(c.stroke_scores)
        share = mag.max() / mag.sum() if mag.sum() > 0 else 0.0
        print(f"  {c.index:3d} {c.char!r:5} frames {c.frame_span[0]}-{c.frame_span[1]}: top point {c.top_point}, "
              f"top stroke {int(mag.argmax())} ({share:.0%} of the mass)")
    if args.out:
        print(f"wrote {args.out}")
    return 0


def _write_figure(args: argparse.Namespace, rec, ink, ex) -> None:
    import os

    from ..errors import FormatError
    from ..saliency import demo_rows
    from ..saliency_plot import figure
    rows = None if args.no_demo else demo_rows(rec, ink, lm=not args.no_lm)
    img = figure(ink, ex, rows, args.char, width=args.width, model=rec.path or "")
    tmp = args.out + ".tmp"
    try:
        img.save(tmp, format="PNG")
        os.replace(tmp, args.out)
    except OSError as exc:
        raise FormatError(f"cannot write ({exc.strerror or exc})", args.out) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _faithfulness(args: argparse.Namespace, methods: Optional[list[str]]) -> int:
    from ..datasets import load_spec
    from ..recognizer import Recognizer
    from ..saliency import faithfulness
    ds = load_spec(args.faithfulness)
    rec = Recognizer.load(args.model, lm=None)
    r = faithfulness(rec, ds, methods, window=args.window, deletion_chars=args.deletion_chars,
                     control=args.control, progress=sys.stderr.isatty(), steps=args.steps, nsamples=args.nsamples)
    r["data"] = args.faithfulness
    if args.json:
        json.dump(r, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    print(f"data: {args.faithfulness}: {r['lines']} lines ({r['skipped']} without per-point truth skipped), "
          f"greedy CER {r['cer']:.3f}, {r['chars_counted']} correctly recognised characters counted")
    print(f"model: {r['model']}; gradients: {'window ' + str(args.window) if args.window else 'exact'}")
    print(f"{'method':<20}{'pointing':>10}{'own mass':>10}{'chance':>9}{'ms/line':>9}"
          f"{'del: top':>10}{'random':>8}{'top>rand':>10}{'context':>9}")
    for m, f in r["methods"].items():
        d = f["deletion"]
        print(f"{m:<20}{_fmt(f['pointing']):>10}{_fmt(f['mass_on_own']):>10}{_fmt(f['chance_mass']):>9}"
              f"{f['ms_per_line']:9.0f}{_fmt(d['top_drop'], 2):>10}{_fmt(d['random_drop'], 2):>8}"
              f"{_fmt(d['top_beats_random']):>10}{_fmt(d['context_drop'], 2):>9}")
    print("pointing: top point on the character's own points; own mass: share of |score| on them; "
          "chance: own share of the points;\ndel: drop of log p(char) when the top piece / a random piece / "
          "the top piece outside the character's frames is erased")
    if args.control:
        print("controls: <method>@random = same method on re-initialised weights; span = 1 on the points "
              "under the character's frames (locality alone)")
    return 0


def _fmt(v, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


COMMANDS = [("saliency", "which strokes drove each recognised character (heat maps, demo rows, "
                         "faithfulness)", configure, run)]
