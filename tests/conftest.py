"""Shared test setup: nothing a test run does is written into the user's home."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _onnx_cache_in_tmp(tmp_path_factory):
    """Recognition caches ONNX graphs and loaded LMs; keep the tests' in temporary folders."""
    mp = pytest.MonkeyPatch()
    mp.setenv("INKREAD_ONNX_CACHE", str(tmp_path_factory.mktemp("onnx-cache")))
    mp.setenv("INKREAD_LM_CACHE", str(tmp_path_factory.mktemp("lm-cache")))
    yield
    mp.undo()
