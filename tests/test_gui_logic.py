"""The Qt-free parts of the GUI: line grouping, the document, character regions, the saliency bridge."""
from __future__ import annotations

import numpy as np
import pytest

from inkread.gui.colors import cells_rgb
from inkread.gui.document import InkDocument
from inkread.lines import group_lines, line_ink
from inkread.ink import Ink, Stroke

XH = 20.0  # x-height in pixels


def _glyph(rng, x0: float, base: float, kind: str, t0: float) -> Stroke:
    """A letter-like stroke: body (x-height), ascender, descender, or a dot above."""
    u = np.linspace(0, 1, 25)
    if kind == "dot":
        x, y = x0 + 2 * u, base - 1.7 * XH + 1.5 * u
    else:
        top, bottom = {"body": (-1.0, 0.0), "asc": (-2.0, 0.0), "desc": (-1.0, 0.9)}[kind]
        y = base + XH * (bottom + (top - bottom) * np.abs(np.sin(np.pi * u * 1.5)))
        x = x0 + XH * 0.8 * u + rng.normal(0, 0.5, u.size)
    return Stroke(x, y, t0 + u * 0.3)


def _page(rng, n_lines: int, spacing: float, per_line: int, order: str = "lines"):
    strokes, truth, t = [], [], 0.0
    cells = [(ln, k) for ln in range(n_lines) for k in range(per_line)]
    if order == "shuffled_lines":  # a line added above the others afterwards
        cells = cells[per_line:] + cells[:per_line]
    for ln, k in cells:
        base = 100 + ln * spacing
        kind = rng.choice(["body", "body", "asc", "desc"])
        strokes.append(_glyph(rng, 30 + k * 1.3 * XH, base, kind, t))
        truth.append(ln)
        t += 0.4
        if rng.random() < 0.3:  # an i-dot written right after its letter
            strokes.append(_glyph(rng, 30 + k * 1.3 * XH + 6, base, "dot", t))
            truth.append(ln)
            t += 0.3
    return Ink(strokes).validated(), truth


def _exact(ink: Ink, truth: list[int]) -> bool:
    lines = group_lines(ink)
    return len(lines) == len(set(truth)) and all(
        {truth[i] for i in line.strokes} == {k} for k, line in enumerate(lines))


@pytest.mark.parametrize("order", ["lines", "shuffled_lines"])
def test_lines_follow_the_writing(order):
    # 3 lines of 1..8 letters 6 x-heights apart: every page exactly right
    for seed in range(30):
        rng = np.random.default_rng(seed)
        ink, truth = _page(rng, 3, 6 * XH, int(rng.integers(1, 9)), order)
        assert _exact(ink, truth), f"seed {seed}"
        for line in group_lines(ink):
            assert list(line.strokes) == sorted(line.strokes)  # writing order kept


def test_tight_lines_mostly_right():
    # 4.5 x-heights apart, descenders nearly touching ascenders: all 40 were right
    # when this test was written; a little slack for future tuning
    pages = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        pages.append(_page(rng, 3, 4.5 * XH, int(rng.integers(1, 9))))
    assert sum(_exact(ink, truth) for ink, truth in pages) >= 36


def test_two_strokes_with_far_apart_centres_stay_one_line():
    # "lg": an ascender then a descender, centres further apart than the position rule allows
    rng = np.random.default_rng(0)
    ink = Ink([_glyph(rng, 0, 100, "asc", 0.0), _glyph(rng, 18, 100, "desc", 0.5)]).validated()
    assert [line.strokes for line in group_lines(ink)] == [(0, 1)]


def test_a_letter_of_two_stacked_strokes_starts_one_line():
    # a tall "P" (IAM-OnDB a01-020z-03): the stem reaching below the baseline, then the
    # bowl above it, the boxes meeting end to end; then "ilcher" on the baseline
    stem = Stroke(np.full(8, 30.0), np.linspace(92, 122, 8), np.linspace(0, 0.2, 8))
    u = np.linspace(0, np.pi, 12)
    bowl = Stroke(5 + 55 * np.sin(u), 77 - 15 * np.cos(u), 0.3 + u / 10)
    rng = np.random.default_rng(1)
    rest = [_glyph(rng, 70 + k * 1.3 * XH, 110, "body", 1.0 + k) for k in range(6)]
    ink = Ink([stem, bowl] + rest).validated()
    assert [line.strokes for line in group_lines(ink)] == [tuple(range(8))]


def test_writing_on_after_a_wide_gap_and_a_baseline_jump_stays_one_line():
    # IAM-OnDB a01-020z-05 at 17 px: "lensky," then a wide space, and "Prime Minister"
    # written 1.5 x-heights higher; the next line below is still a line of its own
    rng = np.random.default_rng(2)
    first = [_glyph(rng, 30 + k * 1.3 * XH, 100, "body", k) for k in range(6)]
    second = [_glyph(rng, 30 + 6 * 1.3 * XH + 5 * XH + k * 1.3 * XH, 100 - 1.5 * XH, "body", 10 + k)
              for k in range(6)]
    below = [_glyph(rng, 30 + k * 1.3 * XH, 100 + 6 * XH, "body", 20 + k) for k in range(6)]
    ink = Ink(first + second + below).validated()
    assert [line.strokes for line in group_lines(ink)] == [tuple(range(12)), tuple(range(12, 18))]


def _boxed(boxes) -> Ink:
    """Strokes filling the given (left, right, top, bottom, median y) boxes, in this order."""
    return Ink([Stroke(np.linspace(left, right, 9), np.array([top, bottom] + [mid] * 7, float),
                       k + np.linspace(0, 0.2, 9))
                for k, (left, right, top, bottom, mid) in enumerate(boxes)]).validated()


def test_a_letter_drawn_around_its_stem_stays_on_its_line():
    # a word, then a big "B": its stem, then both bowls in one stroke that starts left of
    # the stem and reaches higher (the shape the app recorded when a line with one was
    # written on the canvas), then the rest of the line
    word = [(38, 44, 98, 128, 114), (10, 73, 69, 98, 81), (78, 80, 103, 119, 112), (98, 102, 79, 117, 96),
            (118, 140, 99, 120, 112), (151, 213, 83, 121, 106), (216, 266, 102, 123, 112)]
    b = [(353, 354, 71, 89, 80), (328, 408, 58, 108, 75)]
    rest = [(423 + 25 * k, 440 + 25 * k, 84, 101, 92) for k in range(8)]
    ink = _boxed(word + b + rest)
    assert [line.strokes for line in group_lines(ink)] == [tuple(range(17))]


def test_points_map_line_ink_back_to_the_page():
    rng = np.random.default_rng(3)
    ink, _ = _page(rng, 2, 5 * XH, 4, "shuffled_lines")
    page = ink.to_array()
    seen = []
    for line in group_lines(ink):
        sub = line_ink(ink, line).to_array()
        np.testing.assert_array_equal(sub[:, :3], page[line.points, :3])
        seen.extend(line.points.tolist())
    assert sorted(seen) == list(range(ink.num_points))


def test_empty_and_single_point_pages():
    assert group_lines(Ink([])) == []
    one = Ink([Stroke([1.0], [2.0], [0.0])])
    assert [line.strokes for line in group_lines(one)] == [(0,)]


def _stroke(x0: float) -> Stroke:
    return Stroke([x0, x0 + 5], [0, 5], [x0, x0 + 0.1])


def test_document_undo_redo_clear():
    doc = InkDocument()
    ids = [doc.add_stroke(_stroke(i)) for i in range(3)]
    assert doc.ids == ids and doc.modified
    assert doc.undo() and doc.ids == ids[:2]
    assert doc.redo() and doc.ids == ids
    assert doc.clear() and len(doc) == 0
    assert doc.undo() and doc.ids == ids  # clear undone in one step, order kept
    doc.undo()
    doc.add_stroke(_stroke(9))  # a new edit drops the redo history
    assert not doc.can_redo() and len(doc) == 3


def test_document_erase_is_one_undoable_step_that_keeps_the_writing_order():
    doc = InkDocument()
    ids = [doc.add_stroke(_stroke(10 * i)) for i in range(4)]
    assert not doc.erase([12345]) and doc.ids == ids
    rev = doc.revision
    assert doc.erase([ids[1], ids[2]]) and doc.ids == [ids[0], ids[3]] and doc.revision == rev + 1
    new = doc.add_stroke(_stroke(50))
    assert doc.undo() and doc.ids == [ids[0], ids[3]]
    assert doc.undo() and doc.ids == ids  # back in their places, not at the front or the end
    assert [s.x[0] for s in doc.strokes] == [0, 10, 20, 30]
    assert doc.redo() and doc.ids == [ids[0], ids[3]]
    assert new not in doc.ids


def test_strokes_near_a_path_by_distance_between_segments():
    doc = InkDocument()
    a = doc.add_stroke(Stroke([0, 10], [0, 0], [0, 0.1]))      # horizontal at y=0, two points
    b = doc.add_stroke(Stroke([0, 10], [20, 20], [1, 1.1]))    # horizontal at y=20
    c = doc.add_stroke(Stroke([30, 30], [0, 20], [2, 2.1]))    # vertical at x=30
    # crossing a and b between their far-apart points touches them, however small the radius
    assert doc.strokes_near(np.array([5.0, 5.0]), np.array([-5.0, 25.0]), 0.1) == [a, b]
    # a path between them, its ends 2 from each, crosses nothing
    between = (np.array([5.0, 5.0]), np.array([2.0, 18.0]))
    assert doc.strokes_near(*between, 1.9) == []
    assert doc.strokes_near(*between, 2.0) == [a, b]
    assert doc.strokes_near(np.array([29.0]), np.array([10.0]), 0.9) == []  # a dot beside c
    assert doc.strokes_near(np.array([29.0]), np.array([10.0]), 1.0) == [c]
    assert doc.strokes_near(np.array([]), np.array([]), 100.0) == []


def test_document_keeps_truth_only_while_unchanged():
    ink = Ink([_stroke(0), _stroke(10)], text="ab", char_of_point=np.array([0, 0, 1, 1])).validated()
    doc = InkDocument()
    doc.load(ink)
    assert not doc.modified and doc.to_ink().text == "ab"
    np.testing.assert_array_equal(doc.to_ink().char_of_point, [0, 0, 1, 1])
    doc.add_stroke(_stroke(20))
    assert doc.to_ink().char_of_point is None and doc.modified


def test_char_regions_split_between_spans_and_skip_delayed_strokes():
    from inkread.gui.spans import char_regions
    # one cursive stroke of 30 points holding two letters, then a delayed dot (stroke 2)
    ink = Ink([Stroke(np.arange(30.0), np.zeros(30), np.arange(30) * 0.01),
               Stroke([5.0, 5.5], [-10.0, -10.0], [0.5, 0.51])]).validated()
    peaks = [np.array([8, 9]), np.array([], dtype=np.int64), np.array([24])]  # "a", " ", "b"
    regions = char_regions(peaks, ink)
    np.testing.assert_array_equal(regions[0], np.arange(0, 17))   # split at (9 + 24 + 1) // 2
    assert regions[1].size == 0
    np.testing.assert_array_equal(regions[2], np.arange(17, 30))  # not the dot (points 30, 31)


def test_saliency_bridge_reads_explanations(monkeypatch):
    from types import SimpleNamespace
    from inkread.gui import explain
    ink = Ink([_stroke(0), _stroke(10)]).validated()  # 4 points
    expl = SimpleNamespace(text="ab", chars=[
        SimpleNamespace(char="a", index=0, frame_span=(1, 1), point_scores=np.array([1.0, 2, 0, 0])),
        SimpleNamespace(char="b", index=1, frame_span=(5, 6), point_scores=np.array([0, 0, 3.0, 4]))])
    calls = []
    fake = SimpleNamespace(explain=lambda rec, ink, method, chars: calls.append((method, chars)) or expl)
    monkeypatch.setattr(explain, "_module", lambda: fake)
    np.testing.assert_array_equal(explain.char_heat(None, ink, 1, "integrated", "b"), [0, 0, 3, 4])
    assert calls == [("integrated", [1])]
    # the saliency module decoded "xb": found by letter and overlapping frames
    expl.chars[1].index = 7
    np.testing.assert_array_equal(explain.char_heat(None, ink, 1, "gradient", "b", (6, 6)), [0, 0, 3, 4])
    with pytest.raises(ValueError):
        explain.char_heat(None, ink, 1, "gradient", "c", (6, 6))
    assert explain.unavailable() is None or "saliency" in explain.unavailable()


def test_each_memory_cell_is_drawn_on_its_own_scale():
    # one cell ten times larger than the other must not wash the other out
    t = np.linspace(0, 1, 50)
    cells = np.stack([10 * t, -0.5 * np.sin(2 * np.pi * t)])  # (H, T)
    rgb = cells_rgb(cells).astype(int)
    assert rgb.shape == (2, 50, 3)
    assert (rgb[0, -1] == [178, 24, 43]).all()  # the large cell's peak: full red
    assert (rgb[1, 12] == [33, 102, 172]).all()  # the small cell's trough: full blue
    assert (rgb[1, 37] == [178, 24, 43]).all()  # and its peak: full red
    assert (rgb[1, 0] == 255).all()  # zero stays white
    assert (cells_rgb(np.zeros((1, 4))) == 255).all()  # a silent cell is white, not NaN
