"""`inkread <command>`: the command-line interface.

Commands live in :mod:`inkread.commands`; errors a user can cause
(:class:`~inkread.errors.InkreadError`) print one line and exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Optional, Sequence

from . import __version__
from .errors import InkreadError

log = logging.getLogger(__name__)

# Modules under inkread.commands, in the order their commands appear in --help.
COMMAND_MODULES = ("files", "data", "synth", "train", "recognize", "eval", "lm", "bench",
                   "saliency", "gui")


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line naming the bad option."""

    def error(self, message: str) -> None:  # noqa: D401
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="inkread", description="Online handwriting recognition.")
    parser.add_argument("--version", action="version", version=f"inkread {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for modname in COMMAND_MODULES:
        try:
            mod = importlib.import_module(f"inkread.commands.{modname}")
        except ModuleNotFoundError as exc:
            if exc.name == f"inkread.commands.{modname}":
                continue  # command not built yet
            raise
        for name, help_, configure, run in mod.COMMANDS:
            p = sub.add_parser(name, help=help_, description=help_)
            configure(p)
            p.set_defaults(_run=run)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2),
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except InkreadError as exc:
        print(f"inkread {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the system refused that no check above caught: still one line
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"inkread {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"inkread {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
