"""Text for synthetic lines: English from a word-frequency list, or a user's file.

Random lines read like running English text cut into lines, as in
IAM-OnDB: words drawn by their frequency in the ``wordfreq`` English list
(the 30,000 most frequent plain words), sentence starts capitalised, some
words capitalised as names, punctuation and numbers at about the rates of the
IAM-OnDB training transcriptions.

Labels are exactly the characters written, with normal English spacing
("Mr. Foot, he said."): unlike IAM-OnDB transcriptions ("Mr . Foot , he said
.") punctuation is not separated by spaces, because the ink has it attached.
"""
from __future__ import annotations

import functools
import logging
import os
import re
import unicodedata
from pathlib import Path

import numpy as np

from ..errors import FormatError, OptionError
from .glyphs import SUPPORTED_CHARS

log = logging.getLogger(__name__)

#: Lines of a text file longer than this are wrapped at spaces.
MAX_LINE_CHARS = 80

_WORD = re.compile(r"[a-z]+('[a-z]+)?")
_UNICODE_ASCII = {
    "\u2018": "'", "\u2019": "'", "\u201a": ",", "\u201c": '"', "\u201d": '"', "\u201e": '"',
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2026": "...", "\u00a0": " ", "\t": " ",
    "\u00d7": "x", "\u00b4": "'", "\u00ab": '"', "\u00bb": '"',
}


@functools.lru_cache(maxsize=None)
def word_table(n: int = 30000) -> tuple[tuple[str, ...], np.ndarray]:
    """(words, cumulative probabilities) of the ``n`` most frequent plain English words."""
    import wordfreq
    freq = wordfreq.get_frequency_dict("en")
    words = tuple(w for w in wordfreq.top_n_list("en", n) if _WORD.fullmatch(w))
    p = np.array([freq[w] for w in words], dtype=np.float64)
    return words, np.cumsum(p / p.sum())


def _number(rng: np.random.Generator) -> str:
    r = rng.uniform()
    if r < 0.35:
        return str(int(rng.integers(1, 31)))
    if r < 0.55:
        return str(int(rng.integers(1850, 2025)))
    if r < 0.7:
        return f"{rng.integers(0, 100)}.{rng.integers(0, 100):02d}"
    if r < 0.8:
        return f"{rng.integers(1, 100)}%"
    if r < 0.9:
        return f"{rng.integers(1, 100)},{rng.integers(0, 1000):03d}"
    return str(int(rng.integers(1, 1000)))


def _decorate(word: str, rng: np.random.Generator, u: np.ndarray) -> tuple[str, bool]:
    """Punctuation around one word; returns (token, ends a sentence)."""
    if u[1] < 0.004:
        word = f"({word})"
    elif u[1] < 0.026:
        word = f'"{word}"' if u[2] < 0.5 else (f'"{word}' if u[2] < 0.75 else f'{word}"')
    elif u[1] < 0.0265:
        word = f"[{word}]" if u[2] < 0.4 else word + " &"
    elif u[2] > 0.992 and word.isalpha():
        word += "'s"
    if u[3] < 0.079:
        return word + ".", True
    if u[3] < 0.085:
        return word + ("?" if u[4] < 0.65 else "!"), True
    if u[3] < 0.126:
        return word + ",", False
    if u[3] < 0.130:
        return word + (":" if u[4] < 0.6 else ";"), False
    if u[3] < 0.146:
        return word + ("-" + _pick_word(rng) if u[4] < 0.8 else " -"), False
    return word, False


def _pick_word(rng: np.random.Generator) -> str:
    words, cum = word_table()
    word = words[min(int(np.searchsorted(cum, rng.uniform())), len(words) - 1)]
    if "'" in word and rng.uniform() < 0.5:  # web text has twice IAM-OnDB's contractions
        word = words[min(int(np.searchsorted(cum, rng.uniform())), len(words) - 1)]
    return word


def _rare_symbol(rng: np.random.Generator) -> str:
    r = rng.uniform()
    symbols = "+/*#=<>@$_~^`{}|\\"
    if r < 0.5:
        return f"{rng.integers(1, 20)} {'+-*/'[rng.integers(0, 4)]} {rng.integers(1, 20)}"
    return str(symbols[rng.integers(0, len(symbols))])


def random_text(rng: np.random.Generator, target_chars: float | None = None) -> str:
    """One line of English-like text of about ``target_chars`` characters.

    Without a target the length is drawn like IAM-OnDB line lengths
    (log-normal, median 30 characters).
    """
    if target_chars is None:
        target_chars = float(np.clip(np.exp(rng.normal(np.log(30.0), 0.3)), 6, 90))
    tokens: list[str] = []
    length, sentence_start = 0, bool(rng.uniform() < 0.2)
    while length < target_chars or not tokens:
        u = rng.uniform(size=6)
        if u[0] < 0.007:
            word = _number(rng)
        elif u[0] < 0.0085:
            word = _rare_symbol(rng)
        else:
            word = _pick_word(rng)
            if word == "i" or word.startswith("i'") or sentence_start or u[5] < 0.035:
                word = word[0].upper() + word[1:]
            elif u[5] < 0.037:
                word = word.upper()
        word, sentence_start = _decorate(word, rng, u)
        tokens.append(word)
        length += len(word) + 1
    return " ".join(tokens)


def normalize_text(text: str) -> str:
    """Map common typographic characters to ASCII, drop accents, collapse spaces."""
    text = "".join(_UNICODE_ASCII.get(c, c) for c in text)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(text.split())


def unsupported(text: str) -> list[int]:
    """Positions of characters that have no glyph."""
    return [i for i, c in enumerate(text) if c not in SUPPORTED_CHARS]


def check_text(text: str, where: str = "text") -> str:
    """Normalise ``text`` and make sure every character can be written.

    Raises:
        OptionError: naming the first character without a glyph.
    """
    norm = normalize_text(text)
    bad = unsupported(norm)
    if bad:
        c = norm[bad[0]]
        raise OptionError(f"character {c!r} (U+{ord(c):04X}) at column {bad[0] + 1} has no glyph "
                          "(printable ASCII only)", where=where)
    if not norm:
        raise OptionError("text is empty", where=where)
    return norm


def _wrap(line: str, width: int = MAX_LINE_CHARS) -> list[str]:
    out, cur = [], ""
    for word in line.split(" "):
        if cur and len(cur) + 1 + len(word) > width:
            out.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    return out + ([cur] if cur else [])


def read_text_file(path: os.PathLike | str) -> list[str]:
    """The lines of a UTF-8 text file, normalised and wrapped at :data:`MAX_LINE_CHARS`.

    Raises:
        FormatError: unreadable file, no text, or a character without a glyph
            (naming the line).
    """
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FormatError("no such file", path) from None
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text (byte {exc.start})", path) from None
    except OSError as exc:
        raise FormatError(f"cannot read ({exc.strerror})", path) from None
    lines = []
    for no, line in enumerate(raw.splitlines(), 1):
        norm = normalize_text(line)
        bad = unsupported(norm)
        if bad:
            c = norm[bad[0]]
            raise FormatError(f"character {c!r} (U+{ord(c):04X}) has no glyph (printable ASCII only)",
                              path, f"line {no}")
        lines.extend(_wrap(norm))
    if not lines:
        raise FormatError("no text in file", path)
    return lines
