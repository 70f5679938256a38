"""Stroke and Ink: validation, array views, synthesized time."""
from __future__ import annotations

import numpy as np
import pytest

from inkread.errors import InkError
from inkread.ink import Ink, Stroke, synthesize_time


def two_strokes(**kw) -> Ink:
    return Ink([Stroke([0, 1, 2], [0, 1, 0], [0, 0.1, 0.2]), Stroke([5, 6], [1, 1], [0.5, 0.6])], **kw)


def test_counts_bbox_duration():
    ink = two_strokes()
    assert len(ink) == 2 and ink.num_points == 5
    assert ink.bbox() == (0.0, 0.0, 6.0, 1.0)
    assert ink.duration == pytest.approx(0.6)
    assert list(ink.stroke_of_point()) == [0, 0, 0, 1, 1]


def test_array_round_trip():
    ink = two_strokes(text="ab")
    arr = ink.to_array()
    assert arr.shape == (5, 4)
    assert list(arr[:, 3]) == [0, 0, 1, 0, 1]
    back = Ink.from_array(arr, text="ab")
    assert back.text == "ab" and len(back) == 2
    np.testing.assert_array_equal(back.to_array(), arr)


def test_from_array_closes_a_trailing_stroke_and_refuses_bad_shapes():
    arr = np.array([[0, 0, 0, 0], [1, 1, 0.1, 0]], dtype=float)
    assert len(Ink.from_array(arr)) == 1
    with pytest.raises(InkError, match="expected an"):
        Ink.from_array(np.zeros((3, 2)))


@pytest.mark.parametrize("field,where", [("x", "stroke 1, point 1"), ("t", "stroke 1, point 1"),
                                         ("pressure", "stroke 1, point 1")])
def test_non_finite_values_name_stroke_and_point(field, where):
    bad = Stroke([0, 1], [0, 1], [0, 1], [0.5, 0.5])
    getattr(bad, field)[1] = np.nan
    ink = Ink([Stroke([0], [0], [0]), bad])
    with pytest.raises(InkError) as err:
        ink.validated()
    assert err.value.where == where and "not finite" in str(err.value)


def test_time_going_backwards_is_refused():
    with pytest.raises(InkError, match="backwards"):
        Ink([Stroke([0, 1, 2], [0, 0, 0], [0, 0.2, 0.1])]).validated()


def test_mismatched_lengths_and_char_of_point():
    with pytest.raises(InkError, match="y has 1 values"):
        Ink([Stroke([0, 1], [0], [0, 1])]).validated()
    with pytest.raises(InkError, match="char_of_point has 2 values"):
        two_strokes(char_of_point=[0, 1]).validated()


def test_empty_strokes_are_dropped_and_empty_ink_is_a_value():
    ink = Ink([Stroke([], [], []), Stroke([1], [2], [0])]).validated()
    assert len(ink) == 1
    empty = Ink().validated()
    assert empty.is_empty and empty.duration == 0.0
    with pytest.raises(InkError, match="no points"):
        empty.require_points()


def test_from_strokes_without_time_synthesizes_it():
    ink = Ink.from_strokes([[(0, 0), (3, 4)], [(10, 0)]], text="x")
    assert ink.time_synthesized
    assert np.all(np.diff(ink.to_array()[:, 2]) > 0)
    timed = Ink.from_strokes([[(0, 0, 0.0), (1, 1, 0.5)]])
    assert not timed.time_synthesized and timed.duration == 0.5


def test_synthesize_time_is_monotonic_and_flagged():
    ink = Ink([Stroke([0, 0, 0], [0, 5, 10], np.zeros(3)), Stroke([3, 3], [0, 0], np.zeros(2))])
    out = synthesize_time(ink, gap=0.15)
    t = out.to_array()[:, 2]
    assert out.time_synthesized
    assert np.all(np.diff(t) > 0)
    assert t[2] == pytest.approx(0.5)          # one height (10) per 0.5 s
    assert t[3] - t[2] == pytest.approx(0.15)  # the gap between strokes
    assert t[4] - t[3] == pytest.approx(0.01)  # repeated point: one sample interval


def test_copy_is_deep():
    ink = two_strokes(metadata={"a": 1}, char_of_point=np.zeros(5, dtype=int))
    dup = ink.copy()
    dup.strokes[0].x[0] = 99
    dup.metadata["a"] = 2
    dup.char_of_point[0] = 3
    assert ink.strokes[0].x[0] == 0 and ink.metadata["a"] == 1 and ink.char_of_point[0] == 0


def test_synthesized_time_of_a_flat_stroke_is_sane():
    dash = Ink.from_strokes([[(0, 0), (1000, 0)]])
    assert dash.duration == pytest.approx(10.0)   # 1000 units at (1000 / 20) / 0.5 units per second
