"""Label codec: characters <-> class ids, with the CTC blank at 0."""
from __future__ import annotations

import logging
from collections import Counter
from typing import Iterable, Sequence

from .errors import InkreadError

log = logging.getLogger(__name__)

BLANK = 0


class Alphabet:
    """Maps characters to ids 1..C-1; id 0 is the CTC blank.

    Args:
        chars: the characters in id order (no duplicates, no blank).
    """

    blank = BLANK

    def __init__(self, chars: str) -> None:
        if len(set(chars)) != len(chars):
            raise ValueError("alphabet has duplicate characters")
        self.chars = chars
        self._index = {c: i + 1 for i, c in enumerate(chars)}

    @classmethod
    def from_texts(cls, texts: Iterable[str], min_count: int = 1) -> "Alphabet":
        """Build from training labels: every character seen ``min_count`` times, sorted."""
        counts = Counter(c for t in texts for c in t)
        return cls("".join(sorted(c for c, n in counts.items() if n >= min_count)))

    def __len__(self) -> int:
        """Number of classes, blank included."""
        return len(self.chars) + 1

    def __contains__(self, ch: str) -> bool:
        return ch in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Alphabet) and other.chars == self.chars

    def unknown(self, text: str) -> set[str]:
        """Characters of ``text`` outside the alphabet."""
        return {c for c in text if c not in self._index}

    def encode(self, text: str, unknown: str = "error") -> list[int]:
        """Ids of ``text``.

        Args:
            unknown: what to do with characters outside the alphabet:
                ``"error"`` raises InkreadError naming them, ``"drop"`` leaves them out.
        """
        missing = self.unknown(text)
        if missing and unknown == "error":
            raise InkreadError(f"characters not in the model's alphabet: {''.join(sorted(missing))!r}")
        return [self._index[c] for c in text if c in self._index]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ids; blanks are skipped (no CTC collapsing here)."""
        return "".join(self.chars[i - 1] for i in ids if 0 < i <= len(self.chars))
