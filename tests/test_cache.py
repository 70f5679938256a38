"""The on-disk caches stay bounded: the most recently used entries are kept."""
from __future__ import annotations

import os
import time

from inkread.cache import KEEP, prune, touch
from inkread.lm import CharLM


def test_prune_keeps_the_most_recently_used_entries(tmp_path):
    now = time.time()
    for k in range(KEEP + 3):  # entry k was last used k minutes ago
        p = tmp_path / f"e{k}"
        if k % 2:
            p.mkdir()
            (p / "inside").write_text("x")
        else:
            p.write_text("x")
        os.utime(p, (now - 60 * k, now - 60 * k))
    (tmp_path / ".e99.tmp").write_text("being written")  # left alone
    os.utime(tmp_path / ".e99.tmp", (now - 9999, now - 9999))
    touch(tmp_path / f"e{KEEP + 2}")  # the oldest is used again: it stays
    prune(tmp_path)
    left = sorted(p.name for p in tmp_path.iterdir())
    expected = sorted([f"e{k}" for k in range(KEEP - 1)] + [f"e{KEEP + 2}", ".e99.tmp"])
    assert left == expected
    prune(tmp_path / "missing")  # nothing to do, no error


def test_the_lm_cache_holds_at_most_keep_lms(tmp_path, monkeypatch):
    monkeypatch.setenv("INKREAD_LM_CACHE", str(tmp_path / "cache"))
    for k in range(KEEP + 2):
        path = tmp_path / f"lm{k}.npz"
        CharLM.build([f"line {k} of text", "another line"] * 3, order=3).save(path)
        CharLM.load(path)
    assert len(list((tmp_path / "cache").iterdir())) == KEEP
