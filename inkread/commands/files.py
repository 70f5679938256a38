"""`inkread info | render | convert`: look at ink files and change their format."""
from __future__ import annotations

import argparse
import json
import logging
import sys

from .argtypes import number, whole

log = logging.getLogger(__name__)


def _format_names() -> str:
    from ..formats import formats
    return ", ".join(formats())


# ------------------------------------------------------------------ info
def configure_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="an ink file (.json, .inkml, .xml, .dat/.unipen/.upn, .npy)")
    p.add_argument("--from", dest="fmt", metavar="FMT", help="read as this format instead of "
                   "guessing from the suffix and contents (native, inkml, iamondb, unipen, offsets)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def _summary(ink, fmt: str, path: str) -> dict:
    out = {"file": path, "format": fmt, "id": ink.id, "text": ink.text, "writer": ink.writer,
           "strokes": len(ink.strokes), "points": ink.num_points, "bbox": None,
           "duration_s": round(ink.duration, 4), "time_synthesized": bool(ink.time_synthesized),
           "pressure": bool(ink.strokes) and all(s.pressure is not None for s in ink.strokes),
           "char_truth": ink.char_of_point is not None}
    if not ink.is_empty:
        out["bbox"] = [round(v, 3) for v in ink.bbox()]
    return out


def run_info(args: argparse.Namespace) -> int:
    from ..formats import detect_format, read_ink
    ink = read_ink(args.file, args.fmt)
    info = _summary(ink, detect_format(args.file, args.fmt).name, args.file)
    if args.json:
        print(json.dumps(info, ensure_ascii=False))
        return 0
    bbox = info["bbox"]
    box = "(empty)" if bbox is None else (f"x {bbox[0]:g}..{bbox[2]:g}, y {bbox[1]:g}..{bbox[3]:g} "
                                         f"({bbox[2] - bbox[0]:g} x {bbox[3] - bbox[1]:g})")
    rows = [("file", info["file"]), ("format", info["format"]), ("id", info["id"] or "-"),
            ("text", repr(info["text"]) if info["text"] is not None else "-"),
            ("writer", info["writer"] or "-"), ("strokes", info["strokes"]), ("points", info["points"]),
            ("bbox", box), ("duration", f"{info['duration_s']:.3f} s"),
            ("time", "synthesized (the file has no timestamps)" if info["time_synthesized"] else "recorded"),
            ("pressure", "yes" if info["pressure"] else "no"),
            ("char truth", "yes (per point)" if info["char_truth"] else "no")]
    for key, value in rows:
        print(f"{key + ':':<12}{value}")
    return 0


# ------------------------------------------------------------------ render
def configure_render(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="an ink file")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="image to write: OUT.png or OUT.svg")
    p.add_argument("--width", type=whole(8, 10_000), default=800, metavar="W",
                   help="image width in pixels (default 800)")
    p.add_argument("--height", type=whole(8, 10_000), default=None, metavar="H",
                   help="image height (default: from the ink's aspect ratio)")
    p.add_argument("--line-width", type=number(0.1, 100), default=None, metavar="PX",
                   help="pen width in pixels (default: from the ink's height)")
    p.add_argument("--from", dest="fmt", metavar="FMT", help="read as this format")


def run_render(args: argparse.Namespace) -> int:
    from ..formats import read_ink
    from ..render import save
    ink = read_ink(args.file, args.fmt)
    ink.require_points(args.file)
    save(ink, args.output, args.width, height=args.height, line_width=args.line_width)
    print(f"wrote {args.output}")
    return 0


# ------------------------------------------------------------------ convert
def configure_convert(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="IN", help="ink file to read")
    p.add_argument("output", metavar="OUT", help="ink file to write (format from --to or the suffix)")
    p.add_argument("--from", dest="fmt_in", metavar="FMT", help="input format (default: suffix, then sniffing)")
    p.add_argument("--to", dest="fmt_out", metavar="FMT",
                   help="output format: native (.json), inkml (.inkml) or offsets (.npy)")


def _losses(ink, fmt: str) -> list[str]:
    lost = []
    if fmt == "offsets":
        lost += [what for what, has in (("text", ink.text), ("writer", ink.writer), ("time", True),
                                        ("per-point character truth", ink.char_of_point is not None),
                                        ("pressure", any(s.pressure is not None for s in ink.strokes)))
                 if has]
    if fmt == "inkml" and ink.text and ink.text != ink.text.strip():
        lost.append("leading/trailing white space of the text")
    pressured = [s.pressure is not None for s in ink.strokes]
    if fmt == "inkml" and any(pressured) and not all(pressured):
        lost.append("pressure (only some strokes have it)")
    return lost


def run_convert(args: argparse.Namespace) -> int:
    from ..formats import format_for_writing, read_ink, write_ink
    ink = read_ink(args.input, args.fmt_in)
    fmt_out = format_for_writing(args.output, args.fmt_out).name
    write_ink(ink, args.output, args.fmt_out)
    lost = _losses(ink, fmt_out)
    if lost:
        print(f"inkread convert: note: {fmt_out} cannot hold the {', '.join(lost)}; dropped", file=sys.stderr)
    print(f"wrote {args.output} ({fmt_out}, {len(ink.strokes)} strokes, {ink.num_points} points)")
    return 0


COMMANDS = [
    ("info", "describe an ink file: format, strokes, points, size, time, label", configure_info, run_info),
    ("render", "draw an ink file to PNG or SVG", configure_render, run_render),
    ("convert", "convert an ink file to another format", configure_convert, run_convert),
]
