"""Greedy and beam-search CTC decoding on hand-made emission matrices."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from inkread.decode import BeamSearchDecoder, GreedyDecoder, Hypothesis, labels_of, make_decoder
from inkread.lm import CharLM, Lexicon

from recog_helpers import log_softmax, peaky

CHARS = "abct o"          # ids: blank 0, a 1, b 2, c 3, t 4, ' ' 5, o 6
ID = {c: i + 1 for i, c in enumerate(CHARS)}
C = len(CHARS) + 1


def ids(s: str) -> list[int]:
    return [0 if ch == "_" else ID[ch] for ch in s]


def exact_logprob(lp: np.ndarray, tokens: list[int]) -> float:
    """log P(tokens) by summing over all alignments (brute force, tiny T and C only)."""
    T, Cn = lp.shape
    total = -math.inf
    for path in itertools.product(range(Cn), repeat=T):
        col = [k for k, _ in itertools.groupby(path) if k != 0]
        if col == tokens:
            total = np.logaddexp(total, sum(lp[t, k] for t, k in enumerate(path)))
    return float(total)


def test_labels_of():
    assert labels_of("ab") == ["", "a", "b"]
    assert labels_of(["<b>", "x"]) == ["", "x"]


def test_greedy_text_frames_and_score():
    lp = peaky(ids("aa_bbb__a"), C)
    (h,), = GreedyDecoder(CHARS)(lp[None])
    assert h.text == "aba" and h.tokens == [1, 2, 1]
    assert h.frames == [(0, 1), (3, 5), (8, 8)]
    assert h.score == pytest.approx(float(lp[np.arange(9), lp.argmax(1)].sum()), rel=1e-5)


def test_beam_frames_on_hand_made_matrix():
    lp = peaky(ids("_cc_aa_t__"), C, sharp=10)
    best = BeamSearchDecoder(CHARS, beam=8)(lp[None])[0][0]
    assert best.text == "cat"
    assert best.frames == [(1, 2), (4, 5), (7, 7)]


def test_repeated_character_needs_blank_and_keeps_both_spans():
    lp = peaky(ids("aa_a_b"), C, sharp=10)
    for dec in (GreedyDecoder(CHARS), BeamSearchDecoder(CHARS, beam=8)):
        h = dec(lp[None])[0][0]
        assert h.text == "aab" and h.frames == [(0, 1), (3, 3), (5, 5)]


@pytest.mark.parametrize("seed", range(5))
def test_beam_best_at_least_as_probable_as_greedy_path(seed):
    rng = np.random.default_rng(seed)
    lp = log_softmax(rng.normal(0, 2, (30, C)))
    greedy = GreedyDecoder(CHARS).decode_one(lp)
    beam = BeamSearchDecoder(CHARS, beam=16, prune_logp=-math.inf, beam_threshold=math.inf).decode_one(lp)
    # the beam's best sums over alignments; the greedy path is one alignment of one text
    assert beam[0].am_score >= greedy.score - 1e-6


def test_beam_scores_are_exact_prefix_probabilities():
    rng = np.random.default_rng(3)
    lp = log_softmax(rng.normal(0, 1.5, (6, 3)))
    dec = BeamSearchDecoder("ab", beam=50, nbest=5, prune_logp=-math.inf, beam_threshold=math.inf)
    for h in dec.decode_one(lp):
        assert h.score == pytest.approx(exact_logprob(lp, h.tokens), abs=1e-4)


def test_beam_width_one_matches_greedy_on_peaky_matrix():
    lp = peaky(ids("_b_oo_a_tt_"), C, sharp=6, seed=1)
    assert BeamSearchDecoder(CHARS, beam=1, nbest=1)(lp[None])[0][0].text == \
        GreedyDecoder(CHARS)(lp[None])[0][0].text == "boat"


def test_nbest_sorted_distinct_and_consistent():
    rng = np.random.default_rng(7)
    lp = log_softmax(rng.normal(0, 1.5, (25, C)))
    nb = BeamSearchDecoder(CHARS, beam=12, nbest=6).decode_one(lp)
    assert len(nb) == 6
    scores = [h.score for h in nb]
    assert scores == sorted(scores, reverse=True)
    assert len({h.text for h in nb}) == len(nb)
    for h in nb:
        assert isinstance(h, Hypothesis)
        assert len(h.tokens) == len(h.text) == len(h.frames)
        assert all(0 <= a <= b < 25 for a, b in h.frames)
        assert all(b1 < a2 for (_, b1), (a2, _) in zip(h.frames, h.frames[1:]))


def _ambiguous_cat_cot() -> np.ndarray:
    """'c', then a frame slightly favouring 'o' over 'a', then 't'."""
    lp = np.full((7, C), -12.0)
    lp[:, 0] = -0.01
    lp[1] = -12.0; lp[1, ID["c"]] = -0.01
    lp[3] = -12.0; lp[3, ID["o"]] = math.log(0.55); lp[3, ID["a"]] = math.log(0.45)
    lp[5] = -12.0; lp[5, ID["t"]] = -0.01
    return log_softmax(lp)


def test_lm_changes_the_ranking():
    lm = CharLM.build(["the cat sat", "a cat", "cat and cat", "that cat"] * 5 + ["a cot"], order=4)
    lp = _ambiguous_cat_cot()
    plain = BeamSearchDecoder(CHARS, beam=8, nbest=2).decode_one(lp)
    fused = BeamSearchDecoder(CHARS, beam=8, nbest=2, lm=lm, lm_weight=1.0).decode_one(lp)
    assert plain[0].text == "cot" and fused[0].text == "cat"
    assert fused[0].lm_score == pytest.approx(lm.logprob("cat"), abs=1e-3)
    assert fused[0].score == pytest.approx(fused[0].am_score + fused[0].lm_score, abs=1e-3)
    assert {h.text for h in fused} == {"cat", "cot"}


def test_bonus_favours_longer_hypotheses():
    lp = np.full((5, C), -12.0)
    lp[:, 0] = -0.01
    lp[2, 0], lp[2, ID["a"]] = math.log(0.6), math.log(0.4)
    lp = log_softmax(lp)
    assert BeamSearchDecoder(CHARS, beam=4).decode_one(lp)[0].text == ""
    assert BeamSearchDecoder(CHARS, beam=4, bonus=1.0).decode_one(lp)[0].text == "a"


def test_lexicon_penalty_prefers_known_words():
    lp = _ambiguous_cat_cot()
    lex = Lexicon(["cat", "bat"])
    off = BeamSearchDecoder(CHARS, beam=8, lexicon=lex, oov_penalty=0.0).decode_one(lp)[0]
    on = BeamSearchDecoder(CHARS, beam=8, lexicon=lex, oov_penalty=2.0).decode_one(lp)[0]
    assert off.text == "cot" and on.text == "cat"


def test_batch_of_tensors_respects_lengths():
    a = peaky(ids("_a_b_"), C)
    b = peaky(ids("c_t__"), C)
    em = torch.from_numpy(np.stack([a, b]))
    lengths = torch.tensor([5, 2])
    for dec in (GreedyDecoder(CHARS), BeamSearchDecoder(CHARS, beam=4), make_decoder(CHARS, beam=4)):
        out = dec(em, lengths)
        assert [nb[0].text for nb in out] == ["ab", "c"]


def test_wrong_class_count_and_shape_are_refused():
    with pytest.raises(ValueError, match="classes"):
        BeamSearchDecoder("ab")(np.zeros((1, 4, 5), np.float32))
    with pytest.raises(ValueError, match=r"\(B, T, C\)"):
        GreedyDecoder("ab")(np.zeros((4, 3), np.float32))


def test_empty_emissions_give_empty_text():
    for dec in (GreedyDecoder(CHARS), BeamSearchDecoder(CHARS)):
        assert dec(np.zeros((1, 0, C), np.float32))[0][0].text == ""


def test_unlikely_text_under_a_strong_lm_still_decodes():
    # blank is pruned on the character frames and the LM dislikes every candidate:
    # the beam must still keep its best prefix rather than run empty
    lm = CharLM.build(["aaaa", "aa aa"] * 5, order=3)
    lp = peaky(ids("t_c_t_c"), C, sharp=14)
    nb = BeamSearchDecoder(CHARS, beam=4, lm=lm, lm_weight=10.0, beam_threshold=1.0).decode_one(lp)
    assert nb and nb[0].text


def test_default_pruning_lets_the_lm_pick_a_character_the_network_found_unlikely():
    """A letter at log-probability -8 in its frame is still expanded, so the LM can choose it."""
    from inkread.decode import DEFAULT_PRUNE_LOGP
    lm = CharLM.build(["the cat sat", "a cat", "cat and cat", "that cat"] * 20, order=4)
    lp = np.full((5, C), -20.0)
    lp[:, 0] = -0.001
    for t, ch in ((0, "c"), (4, "t")):
        lp[t] = -20.0
        lp[t, ID[ch]] = -0.001
    lp[2] = -20.0
    lp[2, ID["o"]] = -0.0004  # the network reads "cot" ...
    lp[2, ID["a"]] = -8.0     # ... and gives "a" 0.03%
    lp = log_softmax(lp)
    assert DEFAULT_PRUNE_LOGP < -8.0
    fused = BeamSearchDecoder(CHARS, beam=8, nbest=1, lm=lm, lm_weight=1.0).decode_one(lp)
    assert fused[0].text == "cat"
    narrow = BeamSearchDecoder(CHARS, beam=8, nbest=1, lm=lm, lm_weight=1.0, prune_logp=-6.0).decode_one(lp)
    assert narrow[0].text == "cot"  # the old threshold never showed the LM the "a"
