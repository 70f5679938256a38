"""`inkread data SPEC`: summarise a dataset."""
from __future__ import annotations

import argparse
import time
from collections import Counter

import numpy as np

from .argtypes import whole


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="data spec KIND:PATH[@SELECTOR], e.g. iamondb:ROOT@trainset, "
                                "inkml:DIR@inner, native:DIR, synth:100@1")
    p.add_argument("--show-skipped", type=whole(0), default=50, metavar="N",
                   help="list at most N skipped items (default 50)")


def run(args: argparse.Namespace) -> int:
    from ..datasets import load_spec
    t0 = time.perf_counter()
    ds = load_spec(args.spec)
    samples = list(ds)
    secs = time.perf_counter() - t0
    chars = Counter(c for s in samples for c in s.text)
    npts = np.array([s.ink.num_points for s in samples]) if samples else np.zeros(1)
    writers = {s.writer for s in samples if s.writer}
    print(f"spec:        {args.spec}")
    print(f"samples:     {len(samples)}")
    print(f"writers:     {len(writers) if writers else 'unknown'}")
    print(f"characters:  {sum(chars.values())} ({len(chars)} distinct)")
    print(f"alphabet:    {''.join(sorted(chars))!r}")
    print(f"points/sample: median {np.median(npts):.0f}, p95 {np.percentile(npts, 95):.0f}")
    print(f"load time:   {secs:.2f} s")
    print(f"skipped:     {len(ds.skipped)}")
    for ident, why in ds.skipped[:args.show_skipped]:
        print(f"  {ident}: {why}")
    if len(ds.skipped) > args.show_skipped:
        print(f"  ... and {len(ds.skipped) - args.show_skipped} more")
    return 0


def report_skipped(skipped, warn, limit: int = 10) -> None:
    """``warn('skipped NAME: REASON')`` for each of the first ``limit`` skipped items, then '... and N more'."""
    for ident, why in skipped[:limit]:
        warn(f"skipped {ident}: {why}")
    if len(skipped) > limit:
        warn(f"... and {len(skipped) - limit} more skipped")


COMMANDS = [("data", "summarise a dataset given as a data spec", configure, run)]
