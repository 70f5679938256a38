"""The words of a line of ink: found by the gaps between strokes, moved one by one, recombined.

Two training augmentations use them:

* :func:`jitter_words` moves and scales each word of a line on its own
  (``inkread train --word-jitter``);
* :class:`WordBank` cuts the words out of the training lines that split into
  as many words as their transcription, and :meth:`WordBank.line` writes new
  lines from one writer's words in a new order (``--word-mix``): real ink in
  word sequences the network has not seen, against its memorising the
  training lines' texts.

The bank is built at training time from the training data in memory; nothing
of it is stored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

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
        text: the word's token of the transcription.
        frames: the word's share of its line's approximate frame count.
    """

    arr: np.ndarray
    text: str
    frames: float


class WordBank:
    """The words of many lines, by writer, to write new lines from (see the module)."""

    def __init__(self, lines: Iterable[tuple[np.ndarray, str, str, bool, float]],
                 splits: tuple[float, float] = (0.3, 0.4)) -> None:
        """Cut the words of ``lines``: (flat ink array, transcription, writer, time synthesized, frames).

        A line is used when its transcription is words separated by single
        spaces and :func:`word_groups` finds as many words in its ink at both
        ``splits``: then no gap lies near the threshold, the groups are the
        same at both, and the i-th group (in order of x) is taken as the i-th
        word.  (Measured on testset_v with the shipped model reading each cut
        word alone: with one split of 0.35, 49% of lines are used and 5.7% of
        their words are read with most letters wrong, many of them cut in the
        wrong place; with (0.3, 0.4), 33% and 3.9%.)
        """
        by_writer: dict[tuple[str, bool], dict[str, list]] = {}
        self.lines_seen = self.lines_used = 0
        counts: list[int] = []
        for arr, text, writer, synth, frames in lines:
            self.lines_seen += 1
            tokens = text.split(" ")
            if len(tokens) < 2 or "" in tokens or len(arr) == 0:
                continue
            sid, h = _strokes_and_height(arr)
            if h <= 0:
                continue
            groups = _word_groups(arr, sid, h, splits[0])
            if len(groups) != len(tokens) or len(_word_groups(arr, sid, h, splits[1])) != len(tokens):
                continue
            self.lines_used += 1
            counts.append(len(tokens))
            w = by_writer.setdefault((writer, synth), {"words": [], "gaps": [], "pauses": [], "heights": []})
            w["heights"].append(h)
            mid = float(np.median(arr[:, 1]))
            right = last_t = None
            for g, token in zip(groups, tokens):
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
