"""The words of a line of ink: found by the gaps between strokes, moved one by one, recombined.

Two training augmentations use them:

* :func:`jitter_words` moves and scales each word of a line on its own
  (``inkread train --word-jitter``);
* :class:`WordBank` cuts the words out of the training lines where
  :func:`cut_words` is sure of the cut (``--word-split``), and :meth:`WordBank.line` writes new
  lines from one writer's words in a new order (``--word-mix``): real ink in
  word sequences the network has not seen, against its memorising the
  training lines' texts.

The bank is built at training time from the training data in memory; nothing
of it is stored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

from .features import FeatureConfig, _estimate_height


def _strokes_and_height(arr: np.ndarray) -> tuple[np.ndarray, float]:
    """Stroke index of every point of a flat (N, 4) array, and the line's height as features measure it."""
    sid = np.concatenate([[0], np.cumsum(arr[:-1, 3] > 0.5)]).astype(np.int64)
    return sid, _estimate_height(arr[:, :2], FeatureConfig.height_quantiles)


def word_groups(arr: np.ndarray, split: float = 0.35) -> list[np.ndarray]:
    """The strokes of a non-empty flat (N, 4) ink array grouped into words (arrays of stroke indices).

    Strokes whose x-ranges overlap or lie closer than ``split`` times the
    line's height (the spread of y that features normalise by) are one word,
    whenever they were written: a dot or a crossbar added after the line
    joins the word it lies over.  Groups are in order of x.
    """
    return _word_groups(arr, *_strokes_and_height(arr), split)


def _word_groups(arr: np.ndarray, sid: np.ndarray, h: float, split: float) -> list[np.ndarray]:
    firsts = np.flatnonzero(np.diff(sid, prepend=-1))
    lo, hi = np.minimum.reduceat(arr[:, 0], firsts), np.maximum.reduceat(arr[:, 0], firsts)
    groups: list[list[int]] = []
    right = -np.inf
    for i in np.argsort(lo, kind="stable"):
        if not groups or lo[i] > right + split * h:
            groups.append([])
        groups[-1].append(int(i))
        right = max(right, hi[i])
    return [np.array(g) for g in groups]


def jitter_words(arr: np.ndarray, rng: np.random.Generator, gap_spread: float = 0.3,
                 shift: float = 0.04, scale: float = 0.1, split: float = 0.35) -> np.ndarray:
    """Move and scale the words of a flat (N, 4) ink array one by one (a copy).

    Writers do not keep one baseline, one letter size and one word spacing
    along a line: each word (see :func:`word_groups`) is scaled about its
    centre by a factor in exp([-scale, scale]), moved up or down by a normal
    offset of ``shift`` times the line's height, and the gap before it is
    multiplied by a factor in [1 - gap_spread, 1 + gap_spread].  Words keep
    their order along x; times and pen lifts are kept.
    """
    a = arr.copy()
    if len(a) == 0:
        return a
    sid, h = _strokes_and_height(a)
    old_right = new_right = None
    for g in _word_groups(arr, sid, h, split):
        pts = np.isin(sid, g)
        xy = a[pts, :2]
        lo, hi = xy[:, 0].min(), xy[:, 0].max()
        centre = np.array([(lo + hi) / 2, float(np.median(xy[:, 1]))])
        xy = (xy - centre) * math.exp(rng.uniform(-scale, scale)) + centre
        xy[:, 1] += rng.normal(0.0, shift * h)
        if old_right is not None:  # the gap before the word, measured before, resized after its neighbours moved
            gap = (lo - old_right) * rng.uniform(1 - gap_spread, 1 + gap_spread)
            xy[:, 0] += new_right + gap - xy[:, 0].min()
        a[pts, :2] = xy
        old_right = hi if old_right is None else max(hi, old_right)
        new_right = float(xy[:, 0].max()) if new_right is None else max(float(xy[:, 0].max()), new_right)
    return a


@dataclass(frozen=True)
class Word:
    """One word cut out of a line.

    Attributes:
        arr: (n, 4) points in the line's time order: x from the word's left
            edge and y from the line's median, both in line heights; time from
            the word's first point; the pen-lift flags.
        text: the word's token of the transcription (with ``ranked`` cuts, a
            token of punctuation alone is joined to it: "period ,").
        frames: the word's share of its line's approximate frame count.
    """

    arr: np.ndarray
    text: str
    frames: float


SPLIT_RULES = ("fixed", "ranked")


def _is_punctuation(token: str) -> bool:
    return not any(c.isalnum() for c in token)


def cut_words(arr: np.ndarray, sid: np.ndarray, h: float, text: str,
              rule: str = "fixed") -> Optional[list[tuple[np.ndarray, str]]]:
    """The words of a line, (stroke indices, token) in order of x, or None when the cut is unsure.

    ``sid`` and ``h`` are the line's stroke indices and height
    (:func:`_strokes_and_height`); ``text`` its transcription. Two rules:

    * ``fixed``: the transcription is two or more words separated by single
      spaces, and :func:`word_groups` finds as many words in the ink at
      splits of both 0.3 and 0.4 line heights: then no gap lies near the
      threshold, and the i-th group is the i-th word.
    * ``ranked``: a token of punctuation alone (IAM-OnDB writes "period ,")
      joins the word before it (a leading one the word after); the strokes
      are grouped where their x-ranges neither overlap nor touch, and the
      n - 1 widest gaps between the groups cut the n words, when the
      narrowest of them is at least 0.3 line heights and 1.5 times the
      widest of the other gaps. Word spacing is judged within the line, so
      a line written tightly or with wide gaps between letters is used too.

    Measured on testset_v with r17 (the shipped model then) reading each cut word
    alone (a throwaway script; see the model card): ``fixed`` uses
    32.9% of the lines and 5.27% of their words are read with more than half
    their characters wrong; ``ranked`` 64.6% and 5.24%.
    """
    tokens = text.split(" ")
    if len(tokens) < 2 or "" in tokens:
        return None
    if rule == "fixed":
        groups = _word_groups(arr, sid, h, 0.3)
        if len(groups) != len(tokens) or len(_word_groups(arr, sid, h, 0.4)) != len(tokens):
            return None
        return list(zip(groups, tokens))
    if rule != "ranked":
        raise ValueError(f"unknown word split rule {rule!r} (one of {', '.join(SPLIT_RULES)})")
    units: list[str] = []
    for t in tokens:
        if units and _is_punctuation(t) and not _is_punctuation(units[-1]):
            units[-1] += " " + t
        elif units and _is_punctuation(units[-1]):  # a leading mark joins the word after it
            units[-1] += " " + t
        else:
            units.append(t)
    n = len(units)
    groups = _word_groups(arr, sid, h, 0.0)
    if n < 2 or len(groups) < n:
        return None
    firsts = np.flatnonzero(np.diff(sid, prepend=-1))
    lo, hi = np.minimum.reduceat(arr[:, 0], firsts), np.maximum.reduceat(arr[:, 0], firsts)
    left = np.array([lo[g].min() for g in groups])
    right = np.maximum.accumulate(np.array([hi[g].max() for g in groups]))
    gaps = (left[1:] - right[:-1]) / h
    order = np.argsort(-gaps, kind="stable")
    narrowest = gaps[order[n - 2]]
    widest_other = gaps[order[n - 1]] if len(gaps) >= n else 0.0
    if narrowest < 0.3 or narrowest < 1.5 * widest_other:
        return None
    cuts = [0, *sorted(int(i) + 1 for i in order[: n - 1]), len(groups)]
    return [(np.concatenate(groups[a:b]), u) for a, b, u in zip(cuts, cuts[1:], units)]


class WordBank:
    """The words of many lines, by writer, to write new lines from (see the module)."""

    def __init__(self, lines: Iterable[tuple[np.ndarray, str, str, bool, float]], rule: str = "fixed") -> None:
        """Cut the words of ``lines``: (flat ink array, transcription, writer, time synthesized, frames).

        A line is used when :func:`cut_words` cuts it by ``rule``.
        """
        if rule not in SPLIT_RULES:
            raise ValueError(f"unknown word split rule {rule!r} (one of {', '.join(SPLIT_RULES)})")
        by_writer: dict[tuple[str, bool], dict[str, list]] = {}
        self.lines_seen = self.lines_used = 0
        counts: list[int] = []
        for arr, text, writer, synth, frames in lines:
            self.lines_seen += 1
            if len(arr) == 0:
                continue
            sid, h = _strokes_and_height(arr)
            if h <= 0:
                continue
            cut = cut_words(arr, sid, h, text, rule)
            if cut is None:
                continue
            self.lines_used += 1
            counts.append(len(cut))
            w = by_writer.setdefault((writer, synth), {"words": [], "gaps": [], "pauses": [], "heights": []})
            w["heights"].append(h)
            mid = float(np.median(arr[:, 1]))
            right = last_t = None
            for g, token in cut:
                pts = np.isin(sid, g)
                a = arr[pts].astype(np.float64)
                left = float(a[:, 0].min())
                if right is not None:
                    w["gaps"].append((left - right) / h)
                    if a[0, 2] >= last_t:
                        w["pauses"].append(float(a[0, 2] - last_t))
                right = max(float(a[:, 0].max()), right if right is not None else -math.inf)
                last_t = float(a[-1, 2])
                a[:, 0] = (a[:, 0] - left) / h
                a[:, 1] = (a[:, 1] - mid) / h
                a[:, 2] -= a[0, 2]
                w["words"].append(Word(a, token, frames * len(a) / len(arr)))
        # [((writer, time synthesized), {"words": [Word], "gaps": [...], "pauses": [...], "heights": [...]})]
        self.writers = list(by_writer.items())
        self.word_counts = np.array(counts, dtype=np.int64)
        sizes = np.array([len(v["words"]) for _, v in self.writers], dtype=np.float64)
        self._p = sizes / sizes.sum() if len(sizes) else sizes
        all_gaps = [g for _, v in self.writers for g in v["gaps"]]
        all_pauses = [p for _, v in self.writers for p in v["pauses"]]
        self._gaps = np.array(all_gaps or [0.5])
        self._pauses = np.array(all_pauses or [0.2])

    def __len__(self) -> int:
        """How many words the bank holds."""
        return sum(len(v["words"]) for _, v in self.writers)

    def line(self, rng: np.random.Generator) -> tuple[np.ndarray, str, bool, float]:
        """A new line: (flat ink array, text, time synthesized, approximate frames).

        One writer is drawn (in proportion to the words they wrote), then as
        many of their words as a matched line holds (drawn from those lines'
        counts, at most all the writer's words), in random order. Each keeps
        its shape and its height above the line; the gaps between words and
        the pauses between them are drawn from the same writer's, scaled to
        the writer's median line height.
        """
        if not self.writers:
            raise ValueError("the word bank is empty")
        (_, synth), w = self.writers[int(rng.choice(len(self.writers), p=self._p))]
        words = w["words"]
        k = min(int(rng.choice(self.word_counts)), len(words))
        gaps = np.asarray(w["gaps"]) if w["gaps"] else self._gaps
        pauses = np.asarray(w["pauses"]) if w["pauses"] else self._pauses
        height = float(np.median(w["heights"]))
        out, texts, frames = [], [], 0.0
        x = t = 0.0
        for i in rng.choice(len(words), k, replace=False):
            word: Word = words[int(i)]
            a = word.arr.copy()
            a[:, 0] = a[:, 0] * height + x
            a[:, 1] *= height
            a[:, 2] += t
            x = float(a[:, 0].max()) + float(rng.choice(gaps)) * height
            t = float(a[-1, 2]) + float(rng.choice(pauses))
            out.append(a)
            texts.append(word.text)
            frames += word.frames
        return np.concatenate(out), " ".join(texts), synth, frames
