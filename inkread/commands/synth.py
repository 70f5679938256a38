"""`inkread synth`: write synthetic handwriting lines as ink files.

File ``i`` is named ``synth-SEED-IIIIII.json`` (or ``.inkml``) and depends only
on the seed and ``i``: the same seed gives byte-identical files whatever
``--workers`` is.
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Optional

from .argtypes import whole

log = logging.getLogger(__name__)

_SUFFIX = {"json": ("native", ".json"), "inkml": ("inkml", ".inkml")}
_CHUNK = 50  # lines per task handed to a worker

# Set in each worker process by _init_worker (and in this process for --workers 1).
_JOB: dict = {}


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=whole(1), required=True, metavar="N", help="number of lines to write")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--seed", type=whole(0), default=0, help="random seed (default 0); "
                   "line i depends only on (seed, i)")
    p.add_argument("--text", metavar="FILE", help="write the lines of this UTF-8 text file "
                   "(cycled; long lines wrapped) instead of random English")
    p.add_argument("--workers", type=whole(1), default=1, metavar="K",
                   help="processes to use (default 1); does not change the output")
    p.add_argument("--format", choices=sorted(_SUFFIX), default="json",
                   help="json (native, keeps the per-point character truth) or inkml (default json)")


def _init_worker(out: str, seed: int, texts: Optional[list], fmt: str) -> None:
    _JOB.update(out=Path(out), seed=seed, texts=texts, fmt=fmt)


def _write_range(bounds: tuple[int, int]) -> int:
    from ..formats import write_ink
    from ..synth import SynthSamples
    samples = SynthSamples(bounds[1], _JOB["seed"], _JOB["texts"])
    fmt, suffix = _SUFFIX[_JOB["fmt"]]
    for i in range(*bounds):
        s = samples[i]
        write_ink(s.ink, _JOB["out"] / f"{s.id}{suffix}", fmt)
    return bounds[1] - bounds[0]


def _prepare(args: argparse.Namespace) -> Optional[list]:
    from ..errors import OptionError
    from ..formats import detect_format
    from ..synth.text import read_text_file
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise OptionError("--out exists and is not a folder", out)
    fmt, suffix = _SUFFIX[args.format]
    detect_format(out / f"x{suffix}", fmt)  # fails clearly if that format is not available
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OptionError(f"cannot create the output folder ({exc.strerror})", out) from None
    return read_text_file(args.text) if args.text else None


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm
    texts = _prepare(args)
    chunks = [(a, min(a + _CHUNK, args.n)) for a in range(0, args.n, _CHUNK)]
    init = (str(args.out), args.seed, texts, args.format)
    t0 = time.perf_counter()
    bar = tqdm(total=args.n, unit="line", disable=None)
    if args.workers == 1:
        _init_worker(*init)
        for c in chunks:
            bar.update(_write_range(c))
    else:
        from concurrent.futures import ProcessPoolExecutor
        from ..synth import generate_line
        generate_line(texts[0] if texts else None)  # load fonts and words once; forked workers share them
        with ProcessPoolExecutor(args.workers, initializer=_init_worker, initargs=init) as ex:
            for done in ex.map(_write_range, chunks):
                bar.update(done)
    bar.close()
    secs = time.perf_counter() - t0
    print(f"wrote {args.n} {args.format} files to {args.out} in {secs:.1f} s "
          f"({args.n / max(secs, 1e-9):.0f} lines/s with {args.workers} worker(s))")
    return 0


COMMANDS = [("synth", "write synthetic handwriting lines with per-point character truth",
             configure, run)]
