"""Bounded on-disk caches under ``~/.cache/inkread`` (ONNX graphs, inflated LMs).

Every entry is a file or folder whose modification time says when it was last
used (:func:`touch` on each hit); :func:`prune` keeps the most recent ones, so
fine-tuning many models or trying many LMs does not fill the disk.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

#: Entries each cache keeps (the shipped pair needs one graph and one LM).
KEEP = 12


def touch(path: Path) -> None:
    """Mark ``path`` as just used (a read-only cache is no reason to fail)."""
    try:
        os.utime(path)
    except OSError:
        pass


def prune(folder: Path, keep: int = KEEP) -> None:
    """Delete all but the ``keep`` most recently used entries of ``folder`` (hidden ones are
    entries being written, and left alone)."""
    try:
        entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
        entries.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for old in entries[keep:]:
        try:
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        except OSError as exc:
            log.info("cache entry %s not removed (%s)", old, exc)
