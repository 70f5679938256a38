"""inkread: online handwriting recognition with a BiLSTM-CTC model.

The library never imports PySide6; the GUI lives in :mod:`inkread.gui`.
"""
from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

from .errors import InkreadError  # noqa: E402
from .ink import Ink, Stroke  # noqa: E402

__all__ = ["Ink", "Stroke", "InkreadError", "__version__"]
