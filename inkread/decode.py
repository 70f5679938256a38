"""CTC decoding: greedy best path and prefix beam search with a character LM.

A decoder is a callable in the shape of torchaudio's CTC decoder: it takes
batch-first emissions ``(B, T, C)`` of log-probabilities (blank = 0) with
their lengths ``(B,)`` and returns, per item, an n-best list of
:class:`Hypothesis` (best first). Every hypothesis carries, per character,
the first and last output frame in which that character's token is emitted
on its best alignment, so characters can be mapped back to ink points.

Beam search scores a prefix ``y`` as

    log P_ctc(y | x) + lm_weight * log P_lm(y) + bonus * len(y)
        [- oov_penalty per word that leaves the lexicon]

where P_ctc sums over alignments (prefix beam search, Hannun et al. 2014).
It works in the probability domain with a running scale, so the inner loop
is plain float arithmetic; per frame only tokens with log-probability above
``prune_logp`` (and at most ``topk`` of them) are expanded, which makes the
blank-dominated frames that CTC models produce almost free.
"""
from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, NamedTuple, Optional, Sequence

import numpy as np

from .lm import EOS, is_word_char

if TYPE_CHECKING:
    from .lm import CharLM, Lexicon

log = logging.getLogger(__name__)

DEFAULT_BEAM = 25  # beam width of recognize/eval/bench/GUI: see models/README.md's beam rows
# Tokens less likely than this (natural log) in a frame are not expanded. -6 (0.25%) hid
# characters the LM would have chosen: -10 gave 4.47% CER with the LM on testset_v against
# 4.58% (r9, models/README.md); below -12 nothing changes.
DEFAULT_PRUNE_LOGP = -10.0
_TINY = 1e-200  # rescale the beam when its best probability falls below this


class Hypothesis(NamedTuple):
    """One decoding result.

    Attributes:
        text: the decoded string.
        tokens: class ids of the characters (no blanks), len(text) items.
        score: total score (natural log): CTC + lm_weight * LM + bonus * len (+ penalties).
        frames: per character, (first, last) output frame where it is emitted.
        am_score: log P_ctc (summed over alignments for beam search; best path for greedy).
        lm_score: natural log P_lm of the text (with end of line), 0 without LM.
    """

    text: str
    tokens: list[int]
    score: float
    frames: list[tuple[int, int]]
    am_score: float = 0.0
    lm_score: float = 0.0


def labels_of(alphabet: Any) -> list[str]:
    """Per class id the character it stands for; index 0 (blank) is "".

    Args:
        alphabet: an :class:`~inkread.alphabet.Alphabet`, a string of the
            characters without blank, or a sequence of labels with blank first.
    """
    if isinstance(alphabet, str):
        return [""] + list(alphabet)
    if hasattr(alphabet, "chars"):
        return [""] + list(alphabet.chars)
    labels = list(alphabet)
    return [""] + labels[1:]


def _to_numpy(emissions: Any, lengths: Any) -> tuple[np.ndarray, np.ndarray]:
    """(B, T, C) float array and (B,) int lengths from tensors or arrays."""
    if hasattr(emissions, "detach"):
        emissions = emissions.detach().cpu().float().numpy()
    em = np.asarray(emissions, dtype=np.float32)
    if em.ndim != 3:
        raise ValueError(f"emissions must be (B, T, C), got shape {em.shape}")
    if lengths is None:
        lens = np.full(em.shape[0], em.shape[1], dtype=np.int64)
    else:
        if hasattr(lengths, "detach"):
            lengths = lengths.detach().cpu().numpy()
        lens = np.minimum(np.asarray(lengths, dtype=np.int64).reshape(-1), em.shape[1])
    return em, lens


# ------------------------------------------------------------------ greedy
class GreedyDecoder:
    """Best path: the most probable class per frame, repeats merged, blanks dropped."""

    def __init__(self, alphabet: Any) -> None:
        self.labels = labels_of(alphabet)

    def __call__(self, emissions: Any, lengths: Any = None) -> list[list[Hypothesis]]:
        """Decode a batch.

        Args:
            emissions: (B, T, C) log-probabilities.
            lengths: (B,) valid frames per item (default T).
        Returns:
            per item a one-element list [Hypothesis].
        """
        em, lens = _to_numpy(emissions, lengths)
        return [[self.decode_one(em[b, : lens[b]])] for b in range(em.shape[0])]

    def decode_one(self, lp: np.ndarray) -> Hypothesis:
        """Decode one (T, C) matrix of log-probabilities."""
        T = lp.shape[0]
        if T == 0:
            return Hypothesis("", [], 0.0, [], 0.0, 0.0)
        best = lp.argmax(axis=1)
        score = float(lp[np.arange(T), best].sum())
        starts = np.flatnonzero(np.diff(best, prepend=-1))
        ends = np.append(starts[1:] - 1, T - 1)
        tok = best[starts]
        keep = tok != 0
        tokens = tok[keep].tolist()
        frames = list(zip(starts[keep].tolist(), ends[keep].tolist()))
        text = "".join(self.labels[i] for i in tokens)
        return Hypothesis(text, tokens, score, frames, score, 0.0)


# ------------------------------------------------------------- beam search
class _Node:
    """A prefix in the search trie: the character it adds and what that cost."""

    __slots__ = ("parent", "token", "children", "ext_total", "lm_keys", "lm_table", "lm_total",
                 "facs", "word", "oov")

    def __init__(self, parent: Optional["_Node"], token: int, ext_total: float = 0.0,
                 lm_total: float = 0.0) -> None:
        self.parent = parent
        self.token = token
        self.children: Optional[dict[int, _Node]] = None
        self.ext_total = ext_total  # sum of the log factors (LM, bonus, lexicon) along the prefix
        self.lm_total = lm_total    # LM log probability of the prefix
        self.lm_keys: Any = None    # LM context keys, made when first needed
        self.lm_table: Any = None   # LM backoff chain, made when first needed
        self.facs: dict[int, tuple[float, float]] = {}  # token -> (LM log prob, factor)
        self.word = ""              # the word being written (lexicon only)
        self.oov = False            # that word already left the lexicon


class BeamSearchDecoder:
    """CTC prefix beam search with optional character LM and word lexicon.

    Args:
        alphabet: the model's alphabet (see :func:`labels_of`).
        beam: prefixes kept per frame.
        nbest: hypotheses returned per item.
        lm: a :class:`~inkread.lm.CharLM`, or None.
        lm_weight: weight of the LM's natural-log probability.
        bonus: added per character (counters the LM's bias to short texts).
        prune_logp: tokens below this log-probability in a frame are not expanded.
        topk: at most this many tokens expanded per frame (default ``max(beam, 8)``).
        lexicon: a :class:`~inkread.lm.Lexicon`; words that leave it cost ``oov_penalty``.
        oov_penalty: natural-log penalty per out-of-lexicon word.
        eos: score the LM's end-of-line probability at the end.
        beam_threshold: new prefixes more than this many nats below the best
            are dropped (as in flashlight's decoder); ``inf`` keeps the search exact.
    """

    def __init__(self, alphabet: Any, beam: int = DEFAULT_BEAM, nbest: int = 5, lm: Optional["CharLM"] = None,
                 lm_weight: float = 0.5, bonus: float = 0.0, prune_logp: float = DEFAULT_PRUNE_LOGP,
                 topk: Optional[int] = None, lexicon: Optional["Lexicon"] = None,
                 oov_penalty: float = 0.0, eos: bool = True, beam_threshold: float = 8.0) -> None:
        if beam < 1 or nbest < 1:
            raise ValueError("beam and nbest must be at least 1")
        self.labels = labels_of(alphabet)
        self.beam, self.nbest = beam, nbest
        self.lm, self.lm_weight, self.bonus = lm, lm_weight, bonus
        self.prune_logp = prune_logp
        self.topk = topk or max(beam, 8)
        self.lexicon = lexicon if oov_penalty > 0 else None
        self.oov_penalty, self.eos = oov_penalty, eos
        self._threshold = math.exp(-beam_threshold)
        self._word = [_is_word(c) for c in self.labels]
        self._lower = [c.lower() for c in self.labels]
        self._fac_cache: dict[tuple[int, int], tuple[float, float]] = {}
        self._flat = (0.0, math.exp(bonus))  # without LM: the bonus only
        # no extension can gain more than this factor: LM probabilities are <= 1
        self._max_fac = math.exp(max(bonus, 0.0) if lm is None or lm_weight >= 0 else 50.0)
        self._lm_ids: list[int] = [0] + lm.ids("".join(self.labels[1:])) if lm is not None else []

    def __call__(self, emissions: Any, lengths: Any = None) -> list[list[Hypothesis]]:
        """Decode a batch of (B, T, C) log-probabilities; returns n-best lists per item."""
        em, lens = _to_numpy(emissions, lengths)
        if em.shape[2] != len(self.labels):
            raise ValueError(f"emissions have {em.shape[2]} classes, the alphabet {len(self.labels)}")
        return [self.decode_one(em[b, : lens[b]]) for b in range(em.shape[0])]

    # ------------------------------------------------------------ search
    def decode_one(self, lp: np.ndarray) -> list[Hypothesis]:
        """N-best hypotheses for one (T, C) matrix of log-probabilities."""
        root = _Node(None, 0)
        if self.lm is not None:
            root.lm_keys = self.lm.context_keys(self.lm.start())
        # beam entry: node -> [p_blank, p_nonblank, span_blank, span_nonblank, and the
        # largest contributions to each in this frame]; spans are linked tuples
        # (first frame, last frame, previous character's span)
        beams: dict[_Node, list] = {root: [1.0, 0.0, None, None, 0.0, 0.0]}
        offset = 0.0  # log of the scale divided out of the probabilities
        for t, (p_blank, cands) in enumerate(self._candidates(lp)):
            if not cands:  # only blank survives: every prefix just waits
                for e in beams.values():
                    if e[1] > e[0]:
                        e[2] = e[3]
                    e[0], e[1], e[3] = (e[0] + e[1]) * p_blank, 0.0, None
            else:
                beams = self._step(beams, t, p_blank, cands)
            top = max(e[0] + e[1] for e in beams.values())
            if top < _TINY:
                if top <= 0.0:
                    break  # nothing left with any probability (all pruned)
                for e in beams.values():
                    e[0] /= top
                    e[1] /= top
                offset += math.log(top)
        return self._finish(beams, offset)

    def _candidates(self, lp: np.ndarray):
        """Per frame (p_blank, [(token, p), ...]) of the tokens worth expanding."""
        T, C = lp.shape
        if T == 0:
            return []
        keep = lp > self.prune_logp
        if self.topk < C:
            kth = -np.partition(-lp, self.topk - 1, axis=1)[:, self.topk - 1:self.topk]
            keep &= lp >= kth
        keep[np.arange(T), lp.argmax(axis=1)] = True
        p_blank = np.where(keep[:, 0], np.exp(lp[:, 0].astype(np.float64)), 0.0).tolist()
        keep[:, 0] = False
        tt, cc = np.nonzero(keep)
        pp = np.exp(lp[tt, cc].astype(np.float64)).tolist()
        bounds = np.searchsorted(tt, np.arange(T + 1)).tolist()
        cc = cc.tolist()
        return [(p_blank[t], sorted(zip(cc[bounds[t]:bounds[t + 1]], pp[bounds[t]:bounds[t + 1]]),
                                    key=lambda cp: -cp[1]))
                for t in range(T)]

    def _step(self, beams: dict, t: int, p_blank: float, cands: list) -> dict:
        """One frame of prefix beam search.

        Existing prefixes gain their blank and repeat continuations; new
        prefixes (one character longer) are only scored, as (score, parent,
        token, span), and become trie nodes if they make the beam. ``cutoff``
        is the larger of the beam-th best blank continuation (a lower bound of
        the beam-th best new score) and ``beam_threshold`` nats below the best
        blank continuation; candidates come sorted by probability, so the loop
        over them stops at the first one that cannot reach it.
        """
        nxt: dict[_Node, list] = {}
        fresh: list[tuple] = []
        cand_p = dict(cands)
        cutoff = 0.0
        if p_blank > 0.0:  # blank continuations are certain: they bound the new scores from below
            tots = sorted([e[0] + e[1] for e in beams.values()])
            cutoff = tots[-1] * p_blank * self._threshold
            if len(tots) >= self.beam:
                cutoff = max(cutoff, tots[-self.beam] * p_blank)
        max_fac, lexicon, fac = self._max_fac, self.lexicon is not None, self._fac
        for node, (pb, pnb, sb, snb, _, _) in beams.items():
            tot = pb + pnb
            s_best = sb if pb >= pnb else snb
            if p_blank > 0.0:  # blank: the prefix stays, now ending in blank
                _add(nxt, node, 0, tot * p_blank, s_best)
            last = node.token
            p_rep = cand_p.get(last) if last else None
            if p_rep and pnb > 0.0:  # the last character again: the prefix stays
                _add(nxt, node, 1, pnb * p_rep, (snb[0], t, snb[2]))
            reach, facs = tot * max_fac, node.facs
            for c, p in cands:
                if reach * p < cutoff:
                    break
                f = facs.get(c) or fac(node, c)
                if c != last:
                    v, span = tot * p * f[1], (t, t, s_best)
                elif pb > 0.0:  # a repeated character needs a blank in between
                    v, span = pb * p * f[1], (t, t, sb)
                else:
                    continue
                if lexicon:
                    v *= math.exp(-self._lexicon_cost(node, c)[0])
                if v < cutoff:
                    continue
                child = node.children.get(c) if node.children else None
                if child is not None and child in beams:
                    _add(nxt, child, 1, v, span)
                else:
                    fresh.append((v, node, c, span))
        return self._prune(nxt, fresh)

    def _prune(self, nxt: dict, fresh: list) -> dict:
        """Keep the ``beam`` best of the continued and the new prefixes."""
        scores = sorted([e[0] + e[1] for e in nxt.values()] + [f[0] for f in fresh])
        floor = scores[-1] * self._threshold if scores else 0.0
        if len(scores) > self.beam:
            floor = max(floor, scores[-self.beam])
        if floor > 0.0:
            nxt = {n: e for n, e in nxt.items() if e[0] + e[1] >= floor}
            fresh = [f for f in fresh if f[0] >= floor]
        for v, node, c, span in fresh:
            nxt[self._child(node, c)] = [0.0, v, None, span, 0.0, v]
        return nxt

    # ------------------------------------------------------------- prefixes
    def _child(self, node: _Node, c: int) -> _Node:
        """The trie node of ``node + c`` (made once, with its LM, bonus and lexicon cost)."""
        if node.children is None:
            node.children = {}
        child = node.children.get(c)
        if child is None:
            lp, f = self._fac(node, c)
            ext = math.log(f)
            if self.lexicon is not None:
                cost, word, oov = self._lexicon_cost(node, c)
                ext -= cost
            child = node.children[c] = _Node(node, c, node.ext_total + ext, node.lm_total + lp)
            if self.lexicon is not None:
                child.word, child.oov = word, oov
        return child

    def _fac(self, node: _Node, c: int) -> tuple[float, float]:
        """(LM log probability, factor exp(weight * LM + bonus)) of ``c`` after ``node``."""
        got = node.facs.get(c)
        if got is not None:
            return got
        if self.lm is None:
            got = self._flat
        else:
            hs = node.lm_keys or self._lm_keys(node)
            key = (hs[-1], c)  # the last key identifies the LM state
            got = self._fac_cache.get(key)
            if got is None:
                if len(self._fac_cache) > 200_000:
                    self._fac_cache.clear()
                if node.lm_table is None:
                    node.lm_table = self.lm.context_table(hs)
                lp = self.lm.logprob_in(node.lm_table, self._lm_ids[c])
                got = self._fac_cache[key] = (lp, math.exp(self.lm_weight * lp + self.bonus))
        node.facs[c] = got
        return got

    def _lm_keys(self, node: _Node) -> tuple:
        if node.lm_keys is None:
            node.lm_keys = self.lm.advance_keys(self._lm_keys(node.parent), self._lm_ids[node.token])
        return node.lm_keys

    def _lexicon_cost(self, node: _Node, c: int) -> tuple[float, str, bool]:
        """(penalty, word, oov) of writing ``c`` after ``node``: a word costs
        ``oov_penalty`` once, when it leaves the lexicon's prefixes or ends as a non-word."""
        lex = self.lexicon
        if self._word[c]:
            word = node.word + self._lower[c]
            oov = node.oov or word not in lex.prefixes  # type: ignore[union-attr]
            return (self.oov_penalty if oov and not node.oov else 0.0), word, oov
        return self._word_end_cost(node), "", False

    def _word_end_cost(self, node: _Node) -> float:
        if node.word and not node.oov and node.word not in self.lexicon.words:  # type: ignore[union-attr]
            return self.oov_penalty
        return 0.0

    # ---------------------------------------------------------------- end
    def _finish(self, beams: dict, offset: float) -> list[Hypothesis]:
        scored = []
        for node, (pb, pnb, sb, snb, _, _) in beams.items():
            tot = pb + pnb
            if tot <= 0.0:
                continue
            end_ext, end_lm = 0.0, 0.0
            if self.lm is not None and self.eos:
                end_lm = self.lm.logprob_token(self._lm_keys(node), EOS)
                end_ext = self.lm_weight * end_lm
            if self.lexicon is not None:
                end_ext -= self._word_end_cost(node)
            score = math.log(tot) + offset + end_ext
            scored.append((score, node, sb if pb >= pnb else snb, end_ext, end_lm))
        scored.sort(key=lambda s: -s[0])
        return [self._hypothesis(*s) for s in scored[: self.nbest]]

    def _hypothesis(self, score: float, node: _Node, span: Any, end_ext: float,
                    end_lm: float) -> Hypothesis:
        tokens, frames = [], []
        n = node
        while n.parent is not None:
            tokens.append(n.token)
            n = n.parent
        while span is not None:
            frames.append((span[0], span[1]))
            span = span[2]
        tokens.reverse()
        frames.reverse()
        text = "".join(self.labels[i] for i in tokens)
        am = score - node.ext_total - end_ext
        return Hypothesis(text, tokens, score, frames, am, node.lm_total + end_lm)


def _add(nxt: dict, node: _Node, which: int, p: float, span: Any) -> None:
    """Add ``p`` to a beam entry (0 = blank-ending, 1 = not); keep the span of the largest part."""
    e = nxt.get(node)
    if e is None:
        nxt[node] = [0.0, 0.0, None, None, 0.0, 0.0]
        e = nxt[node]
    e[which] += p
    if p > e[4 + which]:
        e[4 + which] = p
        e[2 + which] = span


def _is_word(ch: str) -> bool:
    return bool(ch) and is_word_char(ch)


def make_decoder(alphabet: Any, beam: int = 0, **kwargs: Any):
    """Greedy decoder for ``beam`` <= 1 without an LM, else a :class:`BeamSearchDecoder`."""
    if beam <= 1 and kwargs.get("lm") is None:
        return GreedyDecoder(alphabet)
    return BeamSearchDecoder(alphabet, beam=max(beam, 1), **kwargs)


def decode_texts(decoder: Any, emissions: Any, lengths: Any = None) -> list[str]:
    """Best text per item."""
    return [nb[0].text if nb else "" for nb in decoder(emissions, lengths)]


__all__: Sequence[str] = ("Hypothesis", "GreedyDecoder", "BeamSearchDecoder", "labels_of",
                          "make_decoder", "decode_texts")
