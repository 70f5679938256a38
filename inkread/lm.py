"""Character n-gram language model for beam search, and an optional word lexicon.

The model is an interpolated modified Kneser-Ney character n-gram (Chen &
Goodman 1998), stored the way ARPA files store it: for every kept n-gram its
interpolated probability, and for every context a backoff weight, so that

    P(w | h) = p(h w)                      if the n-gram h w is stored,
             = bow(h) * P(w | h[1:])       otherwise (bow = 1 for unknown h).

Count pruning (``min_counts``) drops rare n-grams; backoff weights are then
recomputed so that every distribution still sums to one.

Token ids: 0 = begin of line (only ever in contexts), 1 = end of line,
2 = unknown character, 3.. = the vocabulary's characters. A training line is
padded with ``order - 1`` begin tokens, so a state is always a tuple of
``order - 1`` ids.

File format (``.npz``, no pickle): ``meta`` (UTF-8 JSON: format
``"inkread-charlm"``, version, order, vocab, discounts, source notes,
lexicon size), per order k = 1..N ``dkeys{k}`` (int64: the sorted n-gram
keys, base-B digits of the ids, stored as differences from the previous key,
which compress well), ``qlogp{k}`` (uint16: -log P in steps of 1/1024 nat;
backoff weights are computed from these rounded values, so distributions
still sum to one), ``dctx{k}`` (int64 context keys, differences) and
``logbow{k}`` (float32 natural log backoff weights), plus ``lexicon`` (UTF-8
words joined by newlines, possibly empty). Since version 2 each of those
numeric arrays is stored as its little-endian bytes split into planes, a
(itemsize, n) uint8 array (all first bytes, then all second bytes ...): the
high bytes of the differences are nearly all zero and deflate to almost
nothing, so the same model takes a sixth less room. Version 1 files (1-D
arrays) still load.

The shipped ``models/lm-en.npz`` is built from redistributable text: Jane
Austen's six novels (Debian ``r-cran-janeaustenr``: public domain, packaging
MIT-licensed), the glosses and usage examples of WordNet 3.0 (Debian
``wordnet-base``, WordNet 3.0 licence: use, copying and distribution
permitted with its notice; see :func:`wordnet_text`), the US State of the
Union addresses (US Government works) and Moby-Dick (public domain), the
last two from stdlib's npm data packages (PDDL 1.0 / CC0). None contains
IAM-OnDB text; verbatim occurrences of IAM-OnDB validation/test lines were
cut out all the same. Recipe, figures and the licence notices:
models/lm-en.md.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import shutil
import re
import textwrap
import zipfile
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from .cache import prune, touch
from .errors import CheckpointError, FormatError, check_writable

log = logging.getLogger(__name__)

LM_FORMAT = "inkread-charlm"
LM_VERSION = 2
BOS, EOS, UNK = 0, 1, 2
FIRST_CHAR = 3
LOGP_SCALE = 1024.0     # stored log probabilities: uint16 steps of 1/1024 nat (0..-64)
_MAX_CACHE = 50_000     # states whose log distribution is kept
_MAX_VCACHE = 50_000    # (order, context) probability vectors kept
_MAX_TABLES = 200_000   # (order, context) continuation tables kept for beam search


# ------------------------------------------------------------------ lexicon
_WORD_CHARS = re.compile(r"[^\W\d_]|'")


def is_word_char(ch: str) -> bool:
    """Letters and apostrophes make words; everything else separates them."""
    return bool(_WORD_CHARS.fullmatch(ch))


class Lexicon:
    """A word list for the beam search's out-of-vocabulary penalty (case-insensitive)."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = {w.lower() for w in words if w}
        self.prefixes = {w[:i] for w in self.words for i in range(1, len(w) + 1)}

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def from_texts(cls, lines: Iterable[str], size: int) -> "Lexicon":
        """The ``size`` most frequent words of ``lines``."""
        counts: Counter = Counter()
        for line in lines:
            counts.update(w.lower() for w in _words(line))
        return cls(w for w, _ in counts.most_common(size))


def _words(line: str) -> list[str]:
    out, cur = [], []
    for ch in line:
        if is_word_char(ch):
            cur.append(ch)
        elif cur:
            out.append("".join(cur))
            cur = []
    if cur:
        out.append("".join(cur))
    return out


# ---------------------------------------------------------------- text prep
def read_text_lines(paths: Sequence[os.PathLike | str], wrap: int = 40) -> list[str]:
    """Training lines from plain UTF-8 text files.

    Paragraphs (blank-line separated) are joined and re-wrapped at word
    boundaries to about ``wrap`` characters, so that line starts and ends look
    like those of handwritten lines, which begin and end mid-sentence.
    ``wrap=0`` keeps the files' own lines.

    Raises:
        FormatError: a file that is missing or not UTF-8 text.
    """
    lines: list[str] = []
    for p in paths:
        try:
            text = Path(p).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FormatError("no such text file", p) from None
        except UnicodeDecodeError as exc:
            raise FormatError(f"not UTF-8 text (byte {exc.start})", p) from None
        except OSError as exc:
            raise FormatError(f"cannot read ({exc.strerror})", p) from None
        lines.extend(wrap_text(text, wrap))
    return lines


_TYPOGRAPHY = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
                             "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"',
                             "\u2014": " - ", "\u2015": " - ", "\u2013": "-", "\u2010": "-",
                             "\u2011": "-", "\u2012": "-", "\u2026": "...", "\u00a0": " "})


def plain_text(text: str) -> str:
    """Text as a pen writes it: typographic quotes, dashes and ellipses as ASCII,
    accents dropped (``é`` -> ``e``), control characters removed."""
    text = unicodedata.normalize("NFKD", text.translate(_TYPOGRAPHY))
    return "".join(c for c in text if not unicodedata.combining(c)
                   and (c in "\n\t" or unicodedata.category(c) != "Cc"))


def wrap_text(text: str, wrap: int) -> list[str]:
    """Lines of plain text (:func:`plain_text`), re-wrapped to about ``wrap`` characters."""
    text = plain_text(text)
    if wrap <= 0:
        return [" ".join(ln.split()) for ln in text.splitlines() if ln.strip()]
    out = []
    for para in re.split(r"\n\s*\n", text):
        para = " ".join(para.split())
        if para:
            out.extend(textwrap.wrap(para, wrap, break_long_words=False, break_on_hyphens=False))
    return out


def wordnet_text(folder: os.PathLike | str) -> str:
    """Glosses and usage examples of WordNet 3.0's data files as plain text paragraphs.

    ``folder`` holds ``data.noun``, ``data.verb``, ``data.adj``, ``data.adv``
    (Debian package ``wordnet-base``: /usr/share/wordnet; WordNet licence,
    which permits use, copying and distribution with its notice). Every
    definition becomes a capitalised sentence; every quoted usage example is
    kept as written.

    Raises:
        FormatError: the folder has none of the data files.
    """
    paras: list[str] = []
    found = 0
    for pos in ("noun", "verb", "adj", "adv"):
        f = Path(folder) / f"data.{pos}"
        if not f.is_file():
            continue
        found += 1
        for line in f.read_text(encoding="latin-1").splitlines():
            if line.startswith("  ") or "|" not in line:
                continue  # licence header, or no gloss
            for part in line.split("|", 1)[1].split(";"):
                part = part.strip()
                if len(part) > 2 and part[0] == part[-1] == '"':
                    paras.append(part[1:-1])
                elif part:
                    paras.append(part[0].upper() + part[1:] + ".")
    if not found:
        raise FormatError("no WordNet data.noun/verb/adj/adv files here", folder)
    return "\n\n".join(paras) + "\n"


def drop_references(lines: list[str], refs: Iterable[str], min_len: int = 12) -> tuple[list[str], int]:
    """Remove every verbatim occurrence of the reference lines from the training text.

    Whitespace is normalised on both sides; references shorter than
    ``min_len`` characters are too common to mean a leak and are kept.

    Returns:
        (new lines, number of occurrences removed)
    """
    flat = " ".join(lines)
    cut = np.zeros(len(flat) + 1, dtype=bool)
    removed = 0
    for ref in {" ".join(r.split()) for r in refs}:
        if len(ref) < min_len:
            continue
        i = flat.find(ref)
        while i >= 0:
            cut[i:i + len(ref)] = True
            removed += 1
            i = flat.find(ref, i + 1)
    if not removed:
        return list(lines), 0
    out, pos = [], 0
    for ln in lines:  # split each line around its cut characters
        if not cut[pos:pos + len(ln)].any():
            out.append(ln)
            pos += len(ln) + 1
            continue
        piece = "".join(ch if not cut[pos + j] else "\n" for j, ch in enumerate(ln))
        out.extend(p.strip() for p in piece.split("\n") if p.strip())
        pos += len(ln) + 1
    return out, removed


# -------------------------------------------------------------------- model
@dataclass
class CharLM:
    """A pruned interpolated Kneser-Ney character n-gram model.

    Build with :meth:`build`, write with :meth:`save`, read with :meth:`load`.
    Decoders use :meth:`start`, :meth:`advance` and :meth:`log_dist`.
    """

    order: int
    vocab: str
    keys: list[np.ndarray]      # per order 1..N (index k-1): sorted int64 n-gram keys
    logp: list[np.ndarray]      # float32 natural log P(w | h)
    ctx: list[np.ndarray]       # sorted int64 context keys that have a backoff weight
    logbow: list[np.ndarray]    # float32 natural log backoff weights
    lexicon: Optional[Lexicon] = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._prepare()

    def _prepare(self, derived: Optional[dict] = None) -> None:
        """Lookup state; ``derived`` ({name: per-order arrays} of :data:`_DERIVED`, from the
        load cache) saves computing the arrays."""
        self.base = len(self.vocab) + FIRST_CHAR
        self.index = {c: i + FIRST_CHAR for i, c in enumerate(self.vocab)}
        self._cache: dict[tuple, np.ndarray] = {}
        self._vcache: dict[tuple, np.ndarray] = {}
        self._tables: dict[tuple, Optional[tuple[dict, float]]] = {}
        self._log_uniform = -math.log(max(self.base - 1, 1))
        if derived is not None:
            self._p, self._bow, self._w = derived["p"], derived["bow"], derived["w"]
            self._span = list(zip(derived["span_lo"], derived["span_hi"]))
        else:
            self._p = [np.exp(lp.astype(np.float64)) for lp in self.logp]
            self._bow = [np.exp(b.astype(np.float64)) for b in self.logbow]
            # per order: the predicted id of every n-gram, and each context's slice of keys
            self._w = [k % self.base for k in self.keys]
            self._span = [(k.searchsorted(c * self.base), k.searchsorted(c * self.base + self.base))
                          for k, c in zip(self.keys, self.ctx)]
        self._uniform = np.full(self.base, 1.0 / max(self.base - 1, 1))
        self._uniform[BOS] = 0.0

    def _derived(self) -> dict[str, list[np.ndarray]]:
        return {"keys": self.keys, "logp": self.logp, "ctx": self.ctx, "logbow": self.logbow,
                "p": self._p, "bow": self._bow, "w": self._w,
                "span_lo": [a for a, _ in self._span], "span_hi": [b for _, b in self._span]}

    # ----------------------------------------------------------- states
    def start(self) -> tuple:
        """The state before the first character of a line."""
        return (BOS,) * (self.order - 1)

    def advance(self, state: tuple, token: int) -> tuple:
        """The state after ``token`` (an LM id)."""
        return (state + (token,))[1:] if self.order > 1 else ()

    def ids(self, text: str) -> list[int]:
        """LM ids of ``text``; characters outside the vocabulary become UNK."""
        return [self.index.get(c, UNK) for c in text]

    def context_keys(self, state: tuple) -> tuple:
        """Keys of a state's contexts: item k (0..order) is the key of its last k-1 ids.

        This is the form :meth:`logprob_token` and :meth:`advance_keys` work
        on; the last item alone identifies the state.
        """
        B, hs, h = self.base, [0, 0], 0
        for k in range(2, self.order + 1):
            h += state[len(state) - (k - 1)] * B ** (k - 2)
            hs.append(h)
        return tuple(hs[: self.order + 1])

    def advance_keys(self, hs: tuple, token: int) -> tuple:
        """:meth:`context_keys` of the state after ``token``."""
        B = self.base
        return (0, 0) + tuple(hs[k - 1] * B + token for k in range(2, self.order + 1))

    def logprob_token(self, hs: tuple, token: int) -> float:
        """Natural log P(token | context keys ``hs``)."""
        return self.logprob_in(self.context_table(hs), token)

    def clear_cache(self) -> None:
        """Forget every looked-up context, as a freshly loaded model has none.

        The caches make text the model has seen recently cheaper to score; a
        benchmark clears them so that each engine it times meets the lines cold.
        """
        self._cache.clear()
        self._vcache.clear()
        self._tables.clear()

    def context_table(self, hs: tuple) -> list[tuple[dict, float]]:
        """The backoff chain of a state for :meth:`logprob_in`, highest order first.

        One ({token: log p}, log backoff weight) pair per order whose context
        the model holds; beam search keeps it per prefix, so that each token
        asked for then costs a few dict look-ups.
        """
        out = []
        tables = self._tables
        for k in range(self.order, 0, -1):
            t = tables.get((k, hs[k]), False)
            if t is False:  # not looked up yet (None: the model lacks this context)
                t = self._table(k, hs[k])
            if t is not None:
                out.append(t)
        return out

    def _table(self, k: int, h: int) -> Optional[tuple[dict, float]]:
        ctx = self.ctx[k - 1]
        j = int(ctx.searchsorted(h))
        t = None
        if j < len(ctx) and ctx[j] == h:
            lo, hi = self._span[k - 1][0][j], self._span[k - 1][1][j]
            t = (dict(zip(self._w[k - 1][lo:hi].tolist(), self.logp[k - 1][lo:hi].tolist())),
                 float(self.logbow[k - 1][j]))
        if len(self._tables) > _MAX_TABLES:
            self._tables.clear()
        self._tables[(k, h)] = t
        return t

    def logprob_in(self, table: list[tuple[dict, float]], token: int) -> float:
        """Natural log P(token | state) from the state's :meth:`context_table`."""
        bow = 0.0
        for probs, b in table:
            lp = probs.get(token)
            if lp is not None:
                return bow + lp
            bow += b
        return bow + self._log_uniform

    def log_dist(self, state: tuple) -> np.ndarray:
        """Natural log P(next | state) over all ids, shape (B,); BOS is -inf.

        Cached per state, since beam search asks for the same states often.
        """
        got = self._cache.get(state)
        if got is not None:
            return got
        B, hs, h = self.base, [0, 0], 0
        for k in range(2, self.order + 1):  # hs[k] = key of the last k-1 ids
            h += state[len(state) - (k - 1)] * B ** (k - 2)
            hs.append(h)
        out = np.empty(B)
        out[BOS] = -np.inf  # never predicted; every other id has probability > 0
        np.log(self._vec(self.order, hs)[1:], out=out[1:])
        if len(self._cache) > _MAX_CACHE:
            self._cache.clear()
        self._cache[state] = out
        return out

    def _vec(self, k: int, hs: list[int]) -> np.ndarray:
        """P(. | last k-1 ids) as a (B,) vector, built on the cached order k-1 vector.

        Lower-order contexts are shared by many states, so only the top
        orders of a new state cost anything.
        """
        key = (k, hs[k])
        v = self._vcache.get(key)
        if v is not None:
            return v
        v = self._uniform if k == 1 else self._vec(k - 1, hs)
        h, ctx = hs[k], self.ctx[k - 1]
        j = int(ctx.searchsorted(h))
        if j < len(ctx) and ctx[j] == h:  # a context with a backoff weight and kept n-grams
            lo, hi = self._span[k - 1][0][j], self._span[k - 1][1][j]
            v = v * self._bow[k - 1][j]
            v[self._w[k - 1][lo:hi]] = self._p[k - 1][lo:hi]
        if len(self._vcache) > _MAX_VCACHE:
            self._vcache.clear()
        self._vcache[key] = v
        return v

    # ---------------------------------------------------------- scoring
    def _prob(self, ctxs: np.ndarray, w: np.ndarray, upto: Optional[int] = None) -> np.ndarray:
        """P(w | ctx) for many queries at once.

        Args:
            ctxs: (Q, order-1) context ids (oldest first).
            w: (Q,) predicted ids.
            upto: use orders 1..upto only (default all).
        Returns:
            (Q,) probabilities.
        """
        B, upto = self.base, upto or self.order
        p = np.full(len(w), 1.0 / (B - 1))
        h = np.zeros(len(w), dtype=np.int64)
        for k in range(1, upto + 1):
            if k > 1:  # h = key of the last k-1 ids
                h = h + ctxs[:, ctxs.shape[1] - (k - 1)].astype(np.int64) * B ** (k - 2)
            p = p * _lookup(self.ctx[k - 1], self._bow[k - 1], h, 1.0)
            hit = _lookup(self.keys[k - 1], self._p[k - 1], h * B + w, -1.0)
            p = np.where(hit >= 0, hit, p)
        return p

    def logprob(self, text: str, eos: bool = True) -> float:
        """Natural log probability of a whole line (plus its end when ``eos``)."""
        ids = self.start() + tuple(self.ids(text)) + ((EOS,) if eos else ())
        n = self.order - 1
        arr = np.array(ids, dtype=np.int64)
        if len(arr) == n:
            return 0.0
        win = np.lib.stride_tricks.sliding_window_view(arr, n + 1) if n else arr[:, None]
        return float(np.log(self._prob(win[:, :n], win[:, n])).sum())

    # ------------------------------------------------------------- files
    def save(self, path: os.PathLike | str) -> None:
        """Write the model atomically as a pickle-free ``.npz``."""
        path = Path(path)
        meta = dict(self.meta, format=LM_FORMAT, version=LM_VERSION, order=self.order,
                    vocab=self.vocab, lexicon_size=len(self.lexicon or ()))
        arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), np.uint8),
                  "lexicon": np.frombuffer("\n".join(sorted(self.lexicon.words)).encode()
                                           if self.lexicon else b"", np.uint8)}
        for k in range(self.order):
            arrays.update({f"dkeys{k + 1}": _to_planes(np.diff(self.keys[k], prepend=0), "<i8"),
                           f"qlogp{k + 1}": _to_planes(_quantize(self.logp[k]), "<u2"),
                           f"dctx{k + 1}": _to_planes(np.diff(self.ctx[k], prepend=0), "<i8"),
                           f"logbow{k + 1}": _to_planes(self.logbow[k], "<f4")})
        check_writable(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)
            os.replace(tmp, path)
        except OSError as exc:
            raise CheckpointError(f"cannot write the LM ({exc.strerror or exc})", path) from None
        finally:
            if tmp.exists():
                tmp.unlink()

    @classmethod
    def load(cls, path: os.PathLike | str) -> "CharLM":
        """Read a file written by :meth:`save`.

        Raises:
            CheckpointError: missing, foreign, newer or damaged file (names the field).
        """
        path = Path(path)
        if not path.is_file():
            raise CheckpointError("no such language model file", path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CheckpointError(f"cannot read ({exc.strerror or exc})", path) from None
        key = hashlib.sha256(data).hexdigest()[:32]
        lm = _read_cache(cls, key)
        if lm is not None:
            return lm
        if not zipfile.is_zipfile(io.BytesIO(data)):  # numpy's own message would be about pickles
            raise CheckpointError("not an inkread language model (damaged or cut short, or another kind "
                                  "of file: an LM is the .npz archive `inkread lm build` writes)", path)
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError ...
            raise CheckpointError(f"not an inkread language model ({type(exc).__name__}: {exc})"[:300],
                                  path) from None
        lm = cls._from_arrays(arrays, path)
        _write_cache(lm, key)
        return lm

    @classmethod
    def _from_arrays(cls, arrays: dict, path: Path) -> "CharLM":
        if "meta" not in arrays:
            raise CheckpointError("not an inkread language model (no 'meta')", path)
        try:
            meta = json.loads(arrays["meta"].tobytes().decode())
        except (UnicodeDecodeError, ValueError):
            raise CheckpointError("field 'meta' is not JSON", path) from None
        if not isinstance(meta, dict) or meta.get("format") != LM_FORMAT:
            raise CheckpointError(f"not an inkread language model (format is not {LM_FORMAT!r})", path)
        if not isinstance(meta.get("version"), int) or meta["version"] > LM_VERSION:
            raise CheckpointError(f"field 'version' {meta.get('version')!r} is not supported "
                                  f"(this inkread reads up to {LM_VERSION})", path)
        order, vocab = meta.get("order"), meta.get("vocab")
        if not isinstance(order, int) or not 1 <= order <= 12 or not isinstance(vocab, str):
            raise CheckpointError("fields 'order'/'vocab' are missing or invalid", path)
        parts: dict[str, list] = {"keys": [], "logp": [], "ctx": [], "logbow": []}
        for k in range(1, order + 1):
            for name, field_, kind, decode in (
                    ("keys", "dkeys", np.int64, np.cumsum), ("logp", "qlogp", np.uint16, _dequantize),
                    ("ctx", "dctx", np.int64, np.cumsum), ("logbow", "logbow", np.float32, None)):
                a = arrays.get(f"{field_}{k}")
                if a is not None and meta["version"] >= 2:
                    a = _from_planes(a, kind)
                if a is None or a.ndim != 1 or not np.can_cast(a.dtype, kind, "same_kind"):
                    shape = f"byte planes of {np.dtype(kind)}" if meta["version"] >= 2 else \
                        f"1-D {np.dtype(kind)}"
                    raise CheckpointError(f"field '{field_}{k}' is missing or not {shape}", path)
                a = a.astype(kind, copy=False)
                parts[name].append(decode(a) if decode is not None else a)
            if len(parts["keys"][-1]) != len(parts["logp"][-1]) or \
                    len(parts["ctx"][-1]) != len(parts["logbow"][-1]):
                raise CheckpointError(f"fields of order {k} have mismatched lengths", path)
        words = arrays.get("lexicon", np.zeros(0, np.uint8)).tobytes().decode("utf-8", "replace")
        lex = Lexicon(words.split("\n")) if words else None
        return cls(order, vocab, parts["keys"], parts["logp"], parts["ctx"], parts["logbow"],
                   lex, {k: v for k, v in meta.items() if k not in ("format", "version")})

    # ------------------------------------------------------------- build
    @classmethod
    def build(cls, lines: Sequence[str], order: int = 7, min_counts: Sequence[int] = (),
              min_char_count: int = 1, lexicon_size: int = 0,
              meta: Optional[dict] = None) -> "CharLM":
        """Estimate a model from training lines.

        Args:
            lines: training text, one line of writing per item.
            order: n-gram order N (the context is N-1 characters).
            min_counts: per order (1-based list; missing = 1) the smallest count
                an n-gram needs to be kept; counts are the Kneser-Ney counts
                (raw at order N, distinct left contexts below).
            min_char_count: rarer characters are mapped to UNK.
            lexicon_size: also keep the most frequent words as a lexicon (0 = none).
            meta: notes stored in the file (source, licence ...).
        """
        if order < 1:
            raise ValueError("order must be at least 1")
        chars = Counter(c for ln in lines for c in ln)
        vocab = "".join(sorted(c for c, n in chars.items() if n >= min_char_count))
        B = len(vocab) + FIRST_CHAR
        if float(B) ** order >= 2.0 ** 62:
            raise ValueError(f"order {order} too high for {len(vocab)} characters (keys overflow int64)")
        ids = _encode(lines, vocab, order)
        counts = _kn_counts(ids, order, B)
        keys, logp, ctx, logbow, discounts = _estimate(counts, order, B, list(min_counts))
        lex = Lexicon.from_texts(lines, lexicon_size) if lexicon_size > 0 else None
        info = dict(meta or {}, discounts=discounts, train_chars=int(sum(chars.values())),
                    train_lines=len(lines), min_counts=applied_min_counts(min_counts, order),
                    ngrams=[int(len(k)) for k in keys])
        return cls(order, vocab, keys, logp, ctx, logbow, lex, info)


def applied_min_counts(min_counts: Sequence[int], order: int) -> list[int]:
    """The count floor :meth:`CharLM.build` applies at each order 1..``order``: the given
    ``min_counts`` (1-based), 1 where missing, and 1 for unigrams, which are always kept."""
    return [1] + [int(min_counts[k - 1]) if k <= len(min_counts) else 1 for k in range(2, order + 1)]


def _to_planes(a: np.ndarray, dtype: str) -> np.ndarray:
    """The little-endian bytes of ``a`` as ``dtype``, one row per byte position: (itemsize, n) uint8."""
    b = np.ascontiguousarray(a, dtype=dtype)
    return np.ascontiguousarray(b.view(np.uint8).reshape(len(b), b.itemsize).T)


def _from_planes(planes: np.ndarray, kind: type) -> Optional[np.ndarray]:
    """Inverse of :func:`_to_planes`; None when ``planes`` is not (itemsize of kind, n) uint8."""
    size = np.dtype(kind).itemsize
    if planes.dtype != np.uint8 or planes.ndim != 2 or planes.shape[0] != size:
        return None
    rows = np.empty((planes.shape[1], size), np.uint8)
    rows[...] = planes.T
    return rows.view(np.dtype(kind).newbyteorder("<")).reshape(-1).astype(kind, copy=False)


def _quantize(logp: np.ndarray) -> np.ndarray:
    """Natural log probabilities -> uint16 steps of 1/LOGP_SCALE nats below zero."""
    return np.clip(np.round(-logp * LOGP_SCALE), 0, 65535).astype(np.uint16)


def _dequantize(q: np.ndarray) -> np.ndarray:
    return (-q.astype(np.float32) / LOGP_SCALE).astype(np.float32)


def _lookup(sorted_keys: np.ndarray, values: np.ndarray, query: np.ndarray, default: float) -> np.ndarray:
    """values[i] where sorted_keys[i] == query, else ``default`` (vectorised)."""
    if len(sorted_keys) == 0:
        return np.full(len(query), default)
    j = np.minimum(np.searchsorted(sorted_keys, query), len(sorted_keys) - 1)
    return np.where(sorted_keys[j] == query, values[j], default)


def _encode(lines: Sequence[str], vocab: str, order: int) -> np.ndarray:
    """One id array: every line as BOS*(order-1), its characters, EOS."""
    text = "\n".join(lines) + "\n"
    cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    table = np.array(sorted(ord(c) for c in vocab), dtype=np.int64)
    ids = np.full(len(cps), UNK, dtype=np.int64)
    if len(table):
        j = np.minimum(np.searchsorted(table, cps), len(table) - 1)
        ids = np.where(table[j] == cps, j + FIRST_CHAR, UNK)
    # vocab is sorted by code point, so the sorted table's order is the id order
    ids[cps == ord("\n")] = EOS
    starts = np.concatenate([[0], np.flatnonzero(ids == EOS)[:-1] + 1])
    return np.insert(ids, np.repeat(starts, order - 1), BOS)


def _kn_counts(ids: np.ndarray, order: int, B: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per order 1..N: (sorted unique keys, Kneser-Ney counts)."""
    n = len(ids) - order + 1
    key = np.zeros(n, dtype=np.int64)
    for j in range(order):
        key = key * B + ids[j:j + n]
    eos_inside = np.zeros(n, dtype=bool)
    for j in range(order - 1):
        eos_inside |= ids[j:j + n] == EOS
    valid = (ids[order - 1:order - 1 + n] != BOS) & ~eos_inside
    top, cnt = np.unique(key[valid], return_counts=True)
    out = [(top, cnt.astype(np.float64))]
    for k in range(order - 1, 0, -1):  # distinct left extensions of each k-gram
        suf, c = np.unique(out[-1][0] % B ** k, return_counts=True)
        out.append((suf, c.astype(np.float64)))
    return out[::-1]


def _discounts(c: np.ndarray) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts D1, D2, D3+ from counts of counts."""
    n = [float(np.sum(c == i)) for i in (1, 2, 3, 4)]
    if min(n) <= 0:
        return 0.5, 1.0, 1.5
    y = n[0] / (n[0] + 2 * n[1])
    d = (1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2])
    return tuple(float(np.clip(v, 0.05, i + 1)) for i, v in enumerate(d))  # type: ignore[return-value]


def _estimate(counts: list, order: int, B: int, min_counts: list[int]):
    """Interpolated probabilities, pruning and backoff weights for every order."""
    keys, probs, ctxs, bows, discounts = [], [], [], [], []
    lm = CharLM(0, "", [], [], [], [])  # grows order by order, for the backoff sums
    lm.base = B
    full_key, full_p = None, None  # the unpruned order k-1, which interpolation needs
    for k in range(1, order + 1):
        key, c = counts[k - 1]
        d = _discounts(c)
        discounts.append(d)
        h = key // B
        new_h = np.diff(h, prepend=-1) != 0
        starts, grp = np.flatnonzero(new_h), np.cumsum(new_h) - 1
        disc = np.where(c >= 3, d[2], np.where(c >= 2, d[1], d[0]))
        c_h = np.add.reduceat(c, starts)
        gamma = np.add.reduceat(disc, starts) / c_h
        if k == 1:
            lower = np.full(len(key), 1.0 / (B - 1))
        else:
            lower = full_p[np.searchsorted(full_key, key % B ** (k - 1))]
        p = (c - disc) / c_h[grp] + gamma[grp] * lower
        full_key, full_p = key, p
        floor = min_counts[k - 1] if 2 <= k <= len(min_counts) else 1  # unigrams always kept
        keep = c >= floor
        kept_p = np.exp(_dequantize(_quantize(np.log(p[keep]))))  # as stored, so sums stay exact
        ctx, bow = _backoff(lm, key[keep], kept_p, k, B)
        keys.append(key[keep]), probs.append(kept_p), ctxs.append(ctx), bows.append(bow)
        lm.order, lm.keys, lm.ctx, lm._p, lm._bow = k, keys, ctxs, probs, bows
    logp = [_dequantize(_quantize(np.log(p))) for p in probs]
    logbow = [np.log(b).astype(np.float32) for b in bows]
    return keys, logp, ctxs, logbow, discounts


def _backoff(lm: CharLM, key: np.ndarray, p: np.ndarray, k: int, B: int):
    """Backoff weights of the order-k contexts so that each distribution sums to one.

    bow(h) = (1 - sum_w p(h w)) / (1 - sum_w P_lower(w | h[1:])) over the kept w.
    """
    h = key // B
    if len(h) == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    starts = np.flatnonzero(np.diff(h, prepend=-1))
    if k == 1:
        lower = np.full(len(key), 1.0 / (B - 1))
    else:
        digits = np.stack([(h // B ** (k - 2 - j)) % B for j in range(k - 1)], axis=1)
        lower = lm._prob(digits, key % B, upto=k - 1)
    num = 1.0 - np.add.reduceat(p, starts)
    den = 1.0 - np.add.reduceat(lower, starts)
    bow = np.maximum(num, 1e-12) / np.maximum(den, 1e-12)
    return h[starts], bow


# ------------------------------------------------------------------ load cache
#: Arrays a loaded LM is made of (per order), as the load cache stores them.
_DERIVED = ("keys", "logp", "ctx", "logbow", "p", "bow", "w", "span_lo", "span_hi")
#: Bump when the cached layout or the derived arrays change.
_CACHE_VERSION = 1


def cache_dir() -> Path:
    """Where loaded LMs are cached, inflated and indexed: ``$INKREAD_LM_CACHE``, else
    ``~/.cache/inkread/lm``. Only the first load of a file pays for inflating and indexing
    it; later loads map the arrays from there (about 8 times the file's size on disk)."""
    return Path(os.environ.get("INKREAD_LM_CACHE") or Path.home() / ".cache" / "inkread" / "lm")


def _cache_path(key: str) -> Path:
    return cache_dir() / f"{key}-v{LM_VERSION}.{_CACHE_VERSION}"


def _write_cache(lm: "CharLM", key: str) -> None:
    """Store ``lm``'s arrays under ``key`` (the file's hash); a failure only costs speed."""
    final = _cache_path(key)
    if final.is_dir():
        return
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        for name, arrays in lm._derived().items():
            for k, a in enumerate(arrays, start=1):
                np.save(tmp / f"{name}{k}.npy", np.ascontiguousarray(a), allow_pickle=False)
        words = "\n".join(sorted(lm.lexicon.words)) if lm.lexicon else ""
        (tmp / "lexicon.txt").write_text(words, encoding="utf-8")
        # written last: a folder without it is incomplete
        (tmp / "meta.json").write_text(json.dumps({"order": lm.order, "vocab": lm.vocab, "meta": lm.meta}),
                                       encoding="utf-8")
        os.replace(tmp, final)
        prune(final.parent)
    except (OSError, TypeError, ValueError) as exc:  # a read-only home, a full disk, another process first
        log.info("LM not cached (%s)", exc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _read_cache(cls: type, key: str) -> Optional["CharLM"]:
    """The LM cached under ``key``, its arrays memory-mapped; None if absent or damaged
    (a damaged entry is removed, to be written again)."""
    path = _cache_path(key)
    if not (path / "meta.json").is_file():
        return None
    try:
        head = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        order = int(head["order"])
        derived = {name: [np.load(path / f"{name}{k}.npy", mmap_mode="r", allow_pickle=False)
                          for k in range(1, order + 1)] for name in _DERIVED}
        for k in range(order):
            n, m = len(derived["keys"][k]), len(derived["ctx"][k])
            if any(len(derived[x][k]) != n for x in ("logp", "p", "w")) or \
                    any(len(derived[x][k]) != m for x in ("logbow", "bow", "span_lo", "span_hi")):
                raise ValueError(f"arrays of order {k + 1} have mismatched lengths")
        words = (path / "lexicon.txt").read_text(encoding="utf-8")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("cached LM %s unusable (%s): reading the file again", path.name, str(exc)[:200])
        shutil.rmtree(path, ignore_errors=True)
        return None
    touch(path)
    lm = cls.__new__(cls)
    lm.order, lm.vocab, lm.meta = order, head["vocab"], head["meta"]
    lm.keys, lm.logp, lm.ctx, lm.logbow = (derived[x] for x in ("keys", "logp", "ctx", "logbow"))
    lm.lexicon = Lexicon(words.split("\n")) if words else None
    lm._prepare(derived)
    return lm
