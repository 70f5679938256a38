"""`inkread gui [FILE] [--model M]`: the desktop app (needs the gui extra, PySide6)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import OptionError


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", help="ink file to open (any supported format)")
    p.add_argument("--model", metavar="M", help="model file (default: the saved choice, "
                                                "else the shipped default model)")


def run(args: argparse.Namespace) -> int:
    if args.model and not Path(args.model).is_file():
        raise OptionError("no such model file", args.model, "--model")
    try:
        from ..gui.app import run as run_app
    except ImportError as exc:
        raise OptionError(f"the desktop app needs PySide6 (pip install 'inkread[gui]'): {exc}",
                          where="gui") from None
    return run_app(args.file, args.model)


COMMANDS = [("gui", "open the desktop app: write, read the text live, see why", configure, run)]
