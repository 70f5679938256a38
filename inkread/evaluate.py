"""Character and word error rates, and evaluation of a recognizer on a data set.

CER is the character edit distance (Levenshtein, via rapidfuzz) summed over
all samples divided by the total reference length; WER is the same on word
lists (whitespace-split). Both texts are whitespace-normalised first (strip,
runs of blanks -> one space), since line layout is not what is measured.

Crossed-out words: IAM-OnDB transcriptions write ``#`` where the writer
crossed out or smudged a word. Nothing is dropped silently:

* ``crossed_out="keep"`` (default): ``#`` is scored like any other
  character; the models are trained on these labels and learn to write
  ``#`` for a crossed-out word, so a ``#`` word counts as one reference word
  and each ``#`` as one reference character.
* ``crossed_out="drop"``: every whitespace-separated token containing ``#``
  is removed from the reference *and* the hypothesis before scoring.

Either way :class:`Scores` reports how many references contained ``#`` and
how many ``#`` marks there were, and the CLI prints it.
"""
from __future__ import annotations

import collections
import csv
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from .errors import OptionError

if TYPE_CHECKING:
    from .datasets import Sample
    from .ink import Ink
    from .recognizer import Recognizer

log = logging.getLogger(__name__)

CROSSED_OUT = "#"

#: kinds of character edits, in the order they are reported
EDIT_KINDS = ("letters", "case", "spaces", "punctuation", "digits")


def edit_kind(ref: str, hyp: str) -> str:
    """The kind of one character edit: ``ref`` -> ``hyp``, either may be '' (insertion, deletion).

    A substitution that changes only the case is "case"; otherwise the edit
    takes the kind of the reference character (of the hypothesis character for
    an insertion): "spaces", "letters", "digits", or "punctuation" for
    anything else.
    """
    if ref and hyp and ref.lower() == hyp.lower():
        return "case"
    c = ref or hyp
    if c.isspace():
        return "spaces"
    if c.isalpha():
        return "letters"
    if c.isdigit():
        return "digits"
    return "punctuation"


def normalize(text: str, crossed_out: str = "keep") -> str:
    """Whitespace-normalise; with ``crossed_out="drop"`` remove tokens holding '#'."""
    words = text.split()
    if crossed_out == "drop":
        words = [w for w in words if CROSSED_OUT not in w]
    elif crossed_out != "keep":
        raise OptionError(f"crossed_out must be 'keep' or 'drop', not {crossed_out!r}")
    return " ".join(words)


@dataclass
class Scores:
    """Error counts over a set of (reference, hypothesis) pairs.

    Attributes:
        samples: pairs scored.
        ref_chars, char_errors: reference characters and character edits.
        ref_words, word_errors: reference words and word edits.
        crossed_out_lines: references containing '#'.
        crossed_out_marks: '#' characters in the references.
        crossed_out: the policy used ("keep" or "drop").
        edit_kinds: character edits by kind (:data:`EDIT_KINDS`, see
            :func:`edit_kind`); they sum to ``char_errors``.
        confusions: character edits as (reference, hypothesis) pairs, '' for
            the missing side of an insertion or deletion. Where several
            alignments are equally short, one is taken (rapidfuzz's).
    """

    samples: int = 0
    ref_chars: int = 0
    char_errors: int = 0
    ref_words: int = 0
    word_errors: int = 0
    crossed_out_lines: int = 0
    crossed_out_marks: int = 0
    crossed_out: str = "keep"
    edit_kinds: collections.Counter = field(default_factory=collections.Counter)
    confusions: collections.Counter = field(default_factory=collections.Counter)

    @property
    def cer(self) -> float:
        return self.char_errors / self.ref_chars if self.ref_chars else 0.0

    @property
    def wer(self) -> float:
        return self.word_errors / self.ref_words if self.ref_words else 0.0

    def add(self, ref: str, hyp: str) -> tuple[int, int]:
        """Score one pair; returns its (character, word) edit distances."""
        from rapidfuzz.distance import Levenshtein
        marks = ref.count(CROSSED_OUT)
        self.crossed_out_lines += marks > 0
        self.crossed_out_marks += marks
        r, h = normalize(ref, self.crossed_out), normalize(hyp, self.crossed_out)
        ce = 0
        for op, i, j in Levenshtein.editops(r, h):
            pair = (r[i] if op != "insert" else "", h[j] if op != "delete" else "")
            self.confusions[pair] += 1
            self.edit_kinds[edit_kind(*pair)] += 1
            ce += 1
        rw, hw = r.split(), h.split()
        we = Levenshtein.distance(rw, hw)
        self.samples += 1
        self.ref_chars += len(r)
        self.char_errors += ce
        self.ref_words += len(rw)
        self.word_errors += we
        return ce, we

    def top_confusions(self, n: int = 10) -> list[tuple[str, str, int]]:
        """The ``n`` most frequent character edits: (reference, hypothesis, count)."""
        return [(r, h, k) for (r, h), k in sorted(self.confusions.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(cer=self.cer, wer=self.wer, edit_kinds={k: self.edit_kinds[k] for k in EDIT_KINDS},
                 confusions=[list(c) for c in self.top_confusions(20)])
        return d


def score(refs: Sequence[str], hyps: Sequence[str], crossed_out: str = "keep") -> Scores:
    """Scores of parallel lists of references and hypotheses."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    s = Scores(crossed_out=crossed_out)
    for r, h in zip(refs, hyps):
        s.add(r, h)
    return s


@dataclass
class Evaluation:
    """What ``inkread eval`` reports."""

    scores: Scores
    seconds: float
    rows: list[tuple[str, str, str, int, int]] = field(default_factory=list)  # id, ref, hyp, ce, we
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = self.scores.to_dict()
        d.update(seconds=self.seconds,
                 ms_per_line=1000.0 * self.seconds / max(1, self.scores.samples), **self.settings)
        return d


def evaluate(recognizer: "Recognizer", samples: Iterable["Sample"], limit: int = 0,
             lm: bool = True, crossed_out: str = "keep", batch_size: int = 16,
             progress: bool = False) -> Evaluation:
    """Recognise every sample and score it against its label.

    Args:
        recognizer: a loaded :class:`~inkread.recognizer.Recognizer`.
        samples: labelled samples (e.g. ``load_spec(spec)``).
        limit: score only the first ``limit`` samples (0 = all).
        lm: use the recognizer's LM if it has one.
        crossed_out: "keep" or "drop" (see the module docstring).
        batch_size: lines per network call.
        progress: show a progress bar on stderr.
    """
    items = list(samples)
    if limit > 0:
        items = items[:limit]
    scores = Scores(crossed_out=crossed_out)
    normalize("", crossed_out)  # validate the policy before the slow part
    rows = []
    t0 = time.perf_counter()
    bar = _bar(len(items), progress)
    for i in range(0, len(items), batch_size):
        chunk = items[i:i + batch_size]
        results = recognizer.recognize_batch([s.ink for s in chunk], nbest=1, lm=lm)
        for s, res in zip(chunk, results):
            ce, we = scores.add(s.text, res.text)
            rows.append((s.id, s.text, res.text, ce, we))
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return Evaluation(scores, time.perf_counter() - t0, rows, recognizer.settings(lm))


def perturb(ink: "Ink", drop_time: bool = False, rate: float = 0.0, scale: float = 1.0,
            grid: float = 0.0) -> "Ink":
    """Ink as another device would give it: resampled to ``rate`` Hz (0 = as is),
    scaled by ``scale``, snapped to a grid of ``grid`` times the writing's height
    (0 = not; a Tablet PC that reports screen pixels under small writing gives
    about 1/20: repeated points, staircase lines), and with its timestamps replaced
    by synthesized ones (``drop_time``, as for a source without time). Used to
    measure robustness."""
    from .features import FeatureConfig, _estimate_height
    from .ink import Stroke, resample_rate, synthesize_time
    if grid < 0:
        raise ValueError(f"grid must be at least 0, not {grid}")
    if rate:
        ink = resample_rate(ink, rate)
    if scale != 1.0:
        ink = ink.replace(strokes=[Stroke(s.x * scale, s.y * scale, s.t, s.pressure) for s in ink.strokes])
    if grid and ink.num_points:
        step = grid * _estimate_height(ink.to_array()[:, :2], FeatureConfig().height_quantiles)
        ink = ink.replace(strokes=[Stroke(np.round(s.x / step) * step, np.round(s.y / step) * step, s.t,
                                          s.pressure) for s in ink.strokes])
    return synthesize_time(ink) if drop_time else ink


def _bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, unit="line", leave=False)


def write_errors(path: os.PathLike | str, rows: Sequence[tuple]) -> None:
    """TSV: id, reference, hypothesis, character edits, word edits (one sample a line)."""
    from .errors import OptionError, check_writable
    path = Path(path)
    check_writable(path)
    try:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
            w.writerow(["id", "reference", "hypothesis", "char_errors", "word_errors"])
            w.writerows(rows)
    except OSError as exc:
        raise OptionError(f"cannot write ({exc.strerror or exc})", path) from None


def read_errors(path: os.PathLike | str) -> list[tuple[str, str, str]]:
    """(id, reference, hypothesis) of each line of a :func:`write_errors` file.

    Raises:
        FormatError: a missing or unreadable file, a wrong header, a short row or a
            repeated id (naming the file and the line).
    """
    from .errors import FormatError
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh, delimiter="\t"))
    except FileNotFoundError:
        raise FormatError("no such file", path) from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise FormatError(f"cannot read ({getattr(exc, 'strerror', None) or exc})", path) from None
    if not rows or rows[0][:3] != ["id", "reference", "hypothesis"]:
        raise FormatError("not an `inkread eval --errors` file (its header is id, reference, "
                          "hypothesis, ...)", path, "line 1")
    out, seen = [], set()
    for n, row in enumerate(rows[1:], start=2):
        if len(row) < 3:
            raise FormatError(f"{len(row)} columns, expected at least 3", path, f"line {n}")
        if row[0] in seen:
            raise FormatError(f"id {row[0]!r} appears twice", path, f"line {n}")
        seen.add(row[0])
        out.append((row[0], row[1], row[2]))
    return out


@dataclass
class Comparison:
    """Two evaluations of the same lines, line by line (see :func:`compare`)."""

    lines: int
    ref_chars: int
    errors_a: int
    errors_b: int
    better: int        # lines where B makes fewer character errors than A
    worse: int         # lines where B makes more
    interval: tuple[float, float]  # 95% bootstrap interval of errors_b - errors_a
    draws: int
    only_a: int = 0    # lines of A missing from B, and the reverse (not compared)
    only_b: int = 0
    kinds_a: dict = field(default_factory=dict)  # character errors by kind (EDIT_KINDS), A and B
    kinds_b: dict = field(default_factory=dict)

    @property
    def difference(self) -> int:
        return self.errors_b - self.errors_a

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(difference=self.difference, cer_a=self.errors_a / max(self.ref_chars, 1),
                 cer_b=self.errors_b / max(self.ref_chars, 1), interval=list(self.interval))
        return d


def compare(a: Sequence[tuple[str, str, str]], b: Sequence[tuple[str, str, str]], draws: int = 10000,
            seed: int = 0, crossed_out: str = "keep", names: tuple[str, str] = ("A", "B")) -> Comparison:
    """Paired comparison of two models' outputs on the same lines ((id, reference, hypothesis) rows).

    Character errors are counted again from each reference and hypothesis (as ``inkread
    eval`` counts them, with ``crossed_out``); the interval resamples the common lines
    with replacement ``draws`` times and takes the 2.5 and 97.5 percentiles of the summed
    per-line differences (B minus A): an interval that excludes 0 is a difference
    another sample of lines like these would likely show too.

    Raises:
        OptionError: no line in common, or a line whose reference differs between the two.
    """
    ref_b = {i: (r, h) for i, r, h in b}
    common = [(i, r, h) for i, r, h in a if i in ref_b]
    if not common:
        raise OptionError(f"{names[0]} and {names[1]} have no line id in common")
    ea, eb = [], []
    sa, sb = Scores(crossed_out=crossed_out), Scores(crossed_out=crossed_out)
    for i, r, h in common:
        rb, hb = ref_b[i]
        if normalize(rb) != normalize(r):
            raise OptionError(f"line {i!r} has different references in {names[0]} and {names[1]} "
                              f"({r!r} and {rb!r}): not the same data")
        ea.append(sa.add(r, h)[0])
        eb.append(sb.add(rb, hb)[0])
    nchars = sa.ref_chars
    d = np.asarray(eb, dtype=np.int64) - np.asarray(ea, dtype=np.int64)
    rng = np.random.default_rng(seed)
    sums = np.array([d[rng.integers(0, len(d), len(d))].sum() for _ in range(draws)]) if draws else d.sum()[None]
    lo, hi = np.percentile(sums, [2.5, 97.5])
    ids_a = {i for i, _, _ in a}
    return Comparison(len(common), nchars, int(sum(ea)), int(sum(eb)), int((d < 0).sum()),
                      int((d > 0).sum()), (float(lo), float(hi)), draws,
                      len(a) - len(common), sum(1 for i, _, _ in b if i not in ids_a),
                      {k: sa.edit_kinds[k] for k in EDIT_KINDS}, {k: sb.edit_kinds[k] for k in EDIT_KINDS})


# --------------------------------------------------------------------- tuning
def emissions_of(recognizer: "Recognizer", inks: Sequence, batch_size: int = 16) -> list:
    """Per ink the (T', C) float32 log-probabilities of the network (None for empty ink)."""
    from .features import featurize
    out: list = [None] * len(inks)
    idx = sorted((i for i, ink in enumerate(inks) if not ink.is_empty),
                 key=lambda i: inks[i].num_points)
    for s in range(0, len(idx), batch_size):
        chunk = idx[s:s + batch_size]
        feats = [featurize(inks[i], recognizer.feature_config).x for i in chunk]
        lp, lens = recognizer.emissions(feats)
        lp = lp.float().numpy()
        for k, i in enumerate(chunk):
            out[i] = lp[k, : int(lens[k])]
    return out


#: below this frame agreement (see :func:`frame_agreement`), averaging two networks' outputs drops characters
AGREEMENT_WARN = 0.85


def frame_agreement(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    """How often two networks write the same character at the same frame, from 0 to 1.

    ``a`` and ``b`` hold per line (T', C) log-probabilities (or any scores) with the blank
    at 0. Of the frames where one network's best label is a character, the share where the
    other's is that character too; the smaller of the two directions. Averaging the outputs
    of networks that write their characters at different frames (r18 and r26: 0.67) leaves
    the blank on top at both and drops the character; r18 and a student that learned r18's
    frames agree on 0.93 (models/README.md).
    """
    hits, counts = [0, 0], [0, 0]
    for x, y in zip(a, b):
        if x is None or y is None:
            continue
        n = min(len(x), len(y))
        px, py = np.asarray(x[:n]).argmax(-1), np.asarray(y[:n]).argmax(-1)
        for k, (p, q) in enumerate(((px, py), (py, px))):
            on = q != 0
            counts[k] += int(on.sum())
            hits[k] += int((p[on] == q[on]).sum())
    return min(h / c if c else 1.0 for h, c in zip(hits, counts))


def tune(recognizer: "Recognizer", samples: Sequence["Sample"], weights: Sequence[float],
         bonuses: Sequence[float], crossed_out: str = "keep") -> list[dict]:
    """Grid search of LM weight and bonus on labelled data (network run once).

    Returns:
        one row per setting, {"lm_weight", "bonus", "cer", "wer", "seconds"},
        best CER first; the first row with ``lm_weight`` None is greedy decoding.
    """
    from .decode import BeamSearchDecoder, GreedyDecoder
    if recognizer.lm is None:
        raise OptionError("tuning needs a language model (--lm FILE)")
    ems = emissions_of(recognizer, [s.ink for s in samples])
    refs = [s.text for s in samples]
    rows = []
    settings = [(None, None)] + [(w, b) for w in weights for b in bonuses]
    for w, b in settings:
        dec = GreedyDecoder(recognizer.alphabet) if w is None else BeamSearchDecoder(
            recognizer.alphabet, beam=recognizer.beam, nbest=1, lm=recognizer.lm, lm_weight=w, bonus=b)
        t0 = time.perf_counter()
        hyps = ["" if e is None else dec.decode_one(e)[0].text if w is not None
                else dec.decode_one(e).text for e in ems]
        sc = score(refs, hyps, crossed_out)
        rows.append({"lm_weight": w, "bonus": b, "cer": sc.cer, "wer": sc.wer,
                     "seconds": time.perf_counter() - t0})
        log.info("lm_weight %s bonus %s: CER %.4f WER %.4f", w, b, sc.cer, sc.wer)
    return [rows[0]] + sorted(rows[1:], key=lambda r: (r["cer"], r["wer"]))
