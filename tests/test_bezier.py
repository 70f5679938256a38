"""Bezier-curve features (FeatureConfig(curves="bezier")) and the unchanged points mode."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from inkread.alphabet import Alphabet
from inkread.checkpoint import load, save
from inkread.errors import CheckpointError
from inkread.features import FeatureConfig, bezier_control_points, featurize, fit_curves, resample_array
from inkread.ink import Ink, Stroke, synthesize_time
from inkread.model import InkModel, ModelConfig
from inkread.train import TrainConfig, build_run, fit, make_batch

from engine_helpers import make_ink, tiny_dataset

BEZIER = FeatureConfig(curves="bezier")


# ------------------------------------------------------------------ points mode is unchanged
# Computed with the code before Bezier features existed (commit 0080efd).
POINTS_REFERENCE = [
    (lambda: make_ink("abcd"), FeatureConfig(), (125, 4), 89.65850874110879,
     [40.152352191507816, -5.5767146507278085, 171.99999952316284, 5.0],
     [75.76022449880838, 115.83897434081882, 171.99999952316284, 5.0],
     [0, 1, 7, 62, 124],
     [[0.0, 0.0, 0.0, 1.0], [-0.1358969658613205, 0.988723874092102, 1.0, 0.0],
      [-0.9908843636512756, 0.09124718606472015, 1.0, 0.0],
      [0.14015990495681763, 0.9962589740753174, 0.43982845544815063, 0.0],
      [0.6373389363288879, -0.7966736555099487, 2.0, 0.0]],
     [0.0, 0.8214285714285713, 5.749999999999999, 56.70169374875789, 119.0],
     [[0.8881191418360467, 0.0], [0.8745294446143141, 0.09887239010297869], [0.4418401123024249, 0.4430243655650634],
      [3.010246350249081, 0.31386003655267103], [4.903354338748691, -0.557671555126756]]),
    (lambda: make_ink("dab"), FeatureConfig(points_per_height=6, slant_correction=True), (42, 4), 94.67257821474074,
     [17.745370864868164, 6.3376321494579315, 43.4782612323761, 4.0],
     [37.97857162356377, 35.4199883043766, 43.4782612323761, 4.0],
     [0, 1, 7, 21, 41],
     [[0.0, 0.0, 0.0, 1.0], [0.6337632536888123, 0.7922040224075317, 1.0, 0.0],
      [0.6337632536888123, 0.7922040224075317, 1.0, 0.0], [-0.8217670917510986, 0.5373181700706482, 0.5, 0.0],
      [0.0, 1.056272029876709, 1.3333333730697632, 0.0]],
     [0.0, 2.8750000000000004, 20.125000000000004, 52.3125, 95.0],
     [[0.0, -0.5281360341384986], [0.10562720682769974, -0.3961020256038739], [0.7393904477938982, 0.39610202560387425],
      [1.8505357306672188, 0.38718069469863686], [2.9575617911755927, 0.5281360341384987]]),
    (lambda: synthesize_time(make_ink("ca")), FeatureConfig(), (103, 4), 72.30650216912733,
     [27.6600299179554, 4.61936000561991e-07, 0.0, 2.0],
     [49.6850029528141, 83.19369642436504, 0.0, 2.0],
     [0, 1, 7, 51, 102],
     [[0.0, 0.0, 0.0, 1.0], [0.11835972964763641, 0.9947677850723267, 0.0, 0.0],
      [0.23121687769889832, -0.974736213684082, 0.0, 0.0], [0.21407188475131989, -0.9658254384994507, 0.0, 0.0],
      [0.13480745255947113, 0.9807971119880676, 0.0, 0.0]],
     [0.0, 0.2460476181029347, 2.6661830033435665, 18.197508258940978, 47.0],
     [[0.0, 0.0], [0.011835972926686148, 0.09947677890101117], [0.12825513243523176, 0.41681388628192173],
      [0.8753802078907585, 0.3775625201878405], [2.766002973455877, 0.0]]),
]


@pytest.mark.parametrize("case", range(len(POINTS_REFERENCE)))
def test_points_mode_matches_the_reference_from_before_bezier(case):
    make, cfg, shape, scale, colsum, abssum, rows, xrows, src, pts = POINTS_REFERENCE[case]
    f = featurize(make(), cfg)
    assert f.x.shape == shape and f.x.dtype == np.float32
    assert f.scale == pytest.approx(scale, rel=1e-12)
    np.testing.assert_allclose(f.x.astype(np.float64).sum(0), colsum, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(np.abs(f.x.astype(np.float64)).sum(0), abssum, rtol=1e-6)
    np.testing.assert_allclose(f.x[rows], xrows, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(f.src_pos[rows], src, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(f.points[rows], pts, rtol=1e-12, atol=1e-12)


def test_points_mode_is_the_default_and_ignores_curve_settings():
    ink = make_ink("cdba")
    a = featurize(ink, FeatureConfig())
    b = featurize(ink, FeatureConfig(curves="points", curve_tolerance=0.3, curve_max_points=5))
    assert FeatureConfig().curves == "points" and FeatureConfig().num_features == 4
    assert a.x.tobytes() == b.x.tobytes() and a.src_pos.tobytes() == b.src_pos.tobytes()


# ------------------------------------------------------------------ config
def test_config_roundtrip_and_old_dicts_give_points_mode(tmp_path):
    cfg = FeatureConfig(curves="bezier", curve_tolerance=0.035, curve_max_points=12, slant_correction=True)
    assert cfg.num_features == 10
    d = cfg.to_dict()
    assert d["curves"] == "bezier" and d["curve_tolerance"] == 0.035 and d["curve_max_points"] == 12
    assert FeatureConfig.from_dict(d) == cfg
    old = {k: v for k, v in FeatureConfig().to_dict().items()
           if k not in ("curves", "curve_tolerance", "curve_max_points")}
    got = FeatureConfig.from_dict(old)
    assert got == FeatureConfig() and got.curves == "points" and got.num_features == 4
    ink = make_ink("dab")
    assert featurize(ink, got).x.tobytes() == featurize(ink, FeatureConfig()).x.tobytes()
    # the checkpoint stores the mode, and inference gets it back exactly
    torch.manual_seed(0)
    model = InkModel(ModelConfig(input_size=cfg.num_features, num_classes=6, hidden_size=8, num_layers=1,
                                 conv_channels=0, subsample=1))
    save(tmp_path / "m.pt", model, Alphabet(" abcd"), cfg, meta={})
    assert load(tmp_path / "m.pt").feature_config == cfg


@pytest.mark.parametrize("bad", [{"curves": "splines"}, {"curve_tolerance": 0.0}, {"curve_tolerance": float("nan")},
                                 {"curve_max_points": 1}, {"curve_max_points": 2.5}])
def test_bad_curve_settings_are_refused(bad, tmp_path):
    with pytest.raises(ValueError):
        FeatureConfig(**bad)
    # a checkpoint holding them is a CheckpointError, not a crash
    model = InkModel(ModelConfig(input_size=4, num_classes=6, hidden_size=8, num_layers=1, conv_channels=0,
                                 subsample=1))
    save(tmp_path / "m.pt", model, Alphabet(" abcd"), FeatureConfig(), meta={})
    obj = torch.load(tmp_path / "m.pt", weights_only=True)
    obj["feature_config"].update(bad)
    torch.save(obj, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="bad config"):
        load(tmp_path / "bad.pt")


# ------------------------------------------------------------------ fitting
def _strokes_xy(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ns = np.zeros(len(xy))
    ns[0] = 1.0
    return xy, ns


def _polyline(vertices: np.ndarray, step: float = 0.1) -> np.ndarray:
    """Points every ``step`` along a polyline (vertices included when on the grid)."""
    seg = np.hypot(*np.diff(vertices, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    q = np.linspace(0.0, s[-1], int(round(s[-1] / step)) + 1)
    return np.column_stack([np.interp(q, s, vertices[:, 0]), np.interp(q, s, vertices[:, 1])])


def _pieces(ends):
    return list(zip(np.concatenate([ends[:1], ends[:-1]]).tolist(), ends.tolist()))


def test_straight_line_and_smooth_arc_are_few_curves_zigzag_many():
    line = _polyline(np.array([[0.0, 0.0], [4.0, 1.5]]))  # 43 points
    ends = fit_curves(*_strokes_xy(line), 0.02, 16)
    steps = [b - a for a, b in _pieces(ends)][1:]
    assert ends[0] == 0 and ends[-1] == len(line) - 1
    assert steps == [15, 15, len(line) - 31]  # only max_points splits a straight line
    for sweep, curves in ((2 * np.pi / 3, 1), (np.pi, 2)):
        u = np.linspace(0, sweep, int(round(sweep * 0.5 / 0.1)) + 1)  # radius 0.5, step 0.1
        ends = fit_curves(*_strokes_xy(0.5 * np.column_stack([np.cos(u), np.sin(u)])), 0.02, 32)
        assert len(ends) - 1 == curves  # pen-up frame + the curves
    circle = np.column_stack([np.cos(np.linspace(0, 2 * np.pi, 64)), np.sin(np.linspace(0, 2 * np.pi, 64))])
    ends = fit_curves(*_strokes_xy(circle * 1.0), 0.02, 64)
    assert 3 <= len(ends) <= 5  # a full circle needs 2-4 cubics
    teeth = np.array([[0.5 * i, 0.5 * (i % 2)] for i in range(13)])  # 11 sharp corners
    zig = _polyline(teeth, step=0.5 * math.sqrt(2) / 5)
    ends = fit_curves(*_strokes_xy(zig), 0.02, 16)
    assert len(ends) - 1 >= 11  # at least one curve per corner
    straight = np.column_stack([np.arange(len(zig)) * 0.1414, np.zeros(len(zig))])  # as many points
    assert len(ends) - 1 >= 3 * (len(fit_curves(*_strokes_xy(straight), 0.02, 16)) - 1)


def _lstsq_cubic(q: np.ndarray) -> np.ndarray:
    """Independent least-squares cubic with fixed ends, uniform parameter: (4, 2) control points."""
    L = len(q) - 1
    u = np.arange(L + 1) / L
    b = np.column_stack([(1 - u) ** 3, 3 * (1 - u) ** 2 * u, 3 * (1 - u) * u ** 2, u ** 3])
    rhs = q - np.outer(b[:, 0], q[0]) - np.outer(b[:, 3], q[-1])
    mid, *_ = np.linalg.lstsq(b[:, 1:3], rhs, rcond=None)
    return np.vstack([q[0], mid, q[-1]])


def _bezier_at(cp: np.ndarray, L: int) -> np.ndarray:
    u = np.arange(L + 1)[:, None] / L
    return ((1 - u) ** 3 * cp[0] + 3 * (1 - u) ** 2 * u * cp[1] + 3 * (1 - u) * u ** 2 * cp[2] + u ** 3 * cp[3])


def _inks_for_fitting():
    rng = np.random.default_rng(7)
    out = [make_ink("abcd"), make_ink("cdba", t0=3.0)]
    t = np.linspace(0, 1, 300)
    wobble = Stroke(600 * t, 80 * np.sin(9 * t) + 30 * np.sin(23 * t ** 2) + rng.normal(0, 0.6, t.size), t * 3)
    out.append(Ink([wobble, Stroke([700, 705], [0, 60], [3.2, 3.3])]).validated())
    return out


@pytest.mark.parametrize("tol,maxp", [(0.005, 16), (0.02, 16), (0.05, 16), (0.02, 6), (0.1, 40)])
def test_curves_reproduce_the_resampled_points_and_are_greedy_maximal(tol, maxp):
    for ink in _inks_for_fitting():
        cfg = FeatureConfig(curves="bezier", curve_tolerance=tol, curve_max_points=maxp)
        pts, ns, _ = resample_array(ink.to_array(), cfg)
        xy = pts[:, :2]
        ends = fit_curves(xy, ns, tol, maxp)
        cps = bezier_control_points(xy, ends, maxp)
        stroke_last = set((np.flatnonzero(ns > 0.5)[1:] - 1).tolist()) | {len(xy) - 1}
        firsts = set(np.flatnonzero(ns > 0.5).tolist())
        for r, (a, b) in enumerate(_pieces(ends)):
            L = b - a
            assert L <= maxp - 1
            if b in firsts:  # pen-up frame: the straight jump from the previous stroke's end
                assert L in (0, 1) and (r == 0) == (L == 0)
                continue
            assert a not in stroke_last
            fitted = _bezier_at(cps[r], L)
            err = np.hypot(*(fitted - xy[a:b + 1]).T).max()
            assert err <= tol + 1e-9, (r, a, b, err)
            np.testing.assert_allclose(cps[r][[0, 3]], xy[[a, b]], atol=1e-12)
            if L >= 3:  # the least-squares solution is unique: the implementation must find it
                np.testing.assert_allclose(cps[r], _lstsq_cubic(xy[a:b + 1]), atol=1e-9)
            # greedy: one more point (in the stroke, within max_points) breaks the tolerance
            if b not in stroke_last and L + 1 <= maxp - 1:
                q = xy[a:b + 2]
                worse = np.hypot(*(_bezier_at(_lstsq_cubic(q), L + 1) - q).T).max()
                assert worse > tol, (r, a, b, worse)


def test_tighter_tolerance_gives_more_curves():
    ink = make_ink("cdba")
    n = [len(featurize(ink, FeatureConfig(curves="bezier", curve_tolerance=t)).x) for t in (0.2, 0.05, 0.01, 0.002)]
    assert n == sorted(n) and n[-1] > n[0]


# ------------------------------------------------------------------ features
def test_bezier_frames_map_back_to_the_ink():
    for ink in [make_ink("abcd"), make_ink("dab"), _inks_for_fitting()[2]]:
        f = featurize(ink, BEZIER)
        pts, ns, _ = resample_array(ink.to_array(), BEZIER)
        assert f.x.shape[1] == 10 and f.x.dtype == np.float32 and np.isfinite(f.x).all()
        assert len(f.x) <= len(pts) and len(f.x) < 0.6 * len(pts)
        assert np.all(np.diff(f.src_pos) > 0)
        assert f.src_pos[0] == 0.0 and f.src_pos[-1] == ink.num_points - 1
        # every frame ends on a resampled point, and pen-up frames on each stroke's first point
        assert np.isin(f.src_pos, pts[:, 3]).all()
        first_idx = np.cumsum([0] + [len(s) for s in ink.strokes[:-1]])
        np.testing.assert_array_equal(f.src_pos[f.x[:, 3] > 0.5], first_idx)
        assert int(f.x[:, 3].sum()) == len(ink.strokes)
        # channels 0, 1 chain the frames' end points (what saliency's mapping assumes)
        np.testing.assert_allclose(f.x[:, :2], np.diff(f.points, axis=0, prepend=f.points[:1]), atol=1e-6)
        np.testing.assert_array_equal(f.x[0], [0, 0, 0, 1, 0, 0, 0, 0, 0, 0])


def test_straight_strokes_have_line_features_and_arcs_bend():
    ink = make_ink("bd")  # a vertical bar and a cross: straight strokes only
    f = featurize(ink, BEZIER)
    down = f.x[f.x[:, 3] < 0.5]
    np.testing.assert_allclose(down[:, 4:6], 1 / 3, atol=1e-4)  # control points at the thirds
    np.testing.assert_allclose(down[:, 6:8], 0.0, atol=1e-4)
    f = featurize(make_ink("abcd"), BEZIER)  # a circle (two half circles), then a bar...
    a = f.x[: int(np.flatnonzero(f.x[:, 3])[1])]
    assert len(a) == 3
    np.testing.assert_allclose(np.abs(a[1:, 6:8]), math.pi / 2, atol=0.1)  # tangents across the chord
    np.testing.assert_allclose(a[1:, 4:6], 2 / 3, atol=0.05)  # 4/3 r over a chord of 2 r
    assert np.all(np.sign(a[1:, 6]) == np.sign(a[1, 6])) and np.all(np.sign(a[1:, 6]) == -np.sign(a[1:, 7]))


def test_time_channels_relative_and_off_for_synthesized_time():
    ink = make_ink("cdba")
    moved = ink.copy()
    for s in moved.strokes:
        s.x, s.y, s.t = s.x * 2 + 40, s.y * 2 - 7, s.t * 3.5  # other scale, place and sampling rate
    a, b = featurize(ink, BEZIER).x, featurize(moved, BEZIER).x
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert 0 < a[:, 2].max() <= BEZIER.dt_clip
    # slower second half of a stroke: the time polynomial bends (g2 != 0)
    t = np.linspace(0, 1, 200)
    tt = np.where(t < 0.5, t, 0.5 + 3 * (t - 0.5))
    slow = Ink([Stroke(300 * t, 100 * t ** 2, tt)]).validated()
    x = featurize(slow, FeatureConfig(curves="bezier", curve_max_points=40)).x
    assert np.abs(x[1:, 8]).max() > 0.05 or np.abs(x[1:, 9]).max() > 0.05
    s = featurize(synthesize_time(ink), BEZIER).x
    assert np.all(s[:, [2, 8, 9]] == 0)
    assert np.abs(featurize(synthesize_time(ink), FeatureConfig(curves="bezier",
                                                                use_time_if_synthesized=True)).x[:, 2]).max() > 0


def _ink(*strokes):
    return Ink([Stroke(np.asarray(x, float), np.asarray(y, float), np.arange(len(x)) * 0.01 + 0.1 * i)
                for i, (x, y) in enumerate(strokes)]).validated()


@pytest.mark.parametrize("name,ink", [
    ("one point", _ink(([5.0], [3.0]))),
    ("a dot", _ink(([5.0] * 20, [3.0] * 20))),
    ("dots only", _ink(([0.0], [0.0]), ([1.0], [0.0]), ([1.0], [0.0]))),
    ("repeated points", _ink(([0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 3], [0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1]))),
    ("collinear back and forth", _ink((np.concatenate([np.linspace(0, 10, 30), np.linspace(10, 0, 30)]),
                                       np.concatenate([np.linspace(0, 5, 30), np.linspace(5, 0, 30)])))),
    ("horizontal line", _ink((np.linspace(0, 50, 40), np.zeros(40)))),
    ("closed loop", _ink((np.cos(np.linspace(0, 2 * np.pi, 9)), np.sin(np.linspace(0, 2 * np.pi, 9))))),
    ("stroke continues where the last ended", _ink(([0, 1, 2], [0, 1, 0]), ([2, 3, 4], [0, 1, 0]))),
    ("tiny spread", _ink((np.linspace(0, 1e-9, 5), np.linspace(0, 1e-9, 5)), ([3.0], [1.0]))),
])
def test_degenerate_inks_give_finite_features(name, ink):
    for cfg in (BEZIER, FeatureConfig(curves="bezier", curve_tolerance=1e-6, curve_max_points=2),
                FeatureConfig(curves="bezier", curve_tolerance=10.0, curve_max_points=200)):
        f = featurize(ink, cfg)
        assert np.isfinite(f.x).all() and np.isfinite(f.points).all(), name
        assert f.x.shape[1] == 10 and 1 <= len(f.x) <= len(resample_array(ink.to_array(), cfg)[0])
        assert np.all(np.diff(f.src_pos) >= 0) and f.src_pos[-1] == ink.num_points - 1
        assert int(f.x[:, 3].sum()) == len(ink.strokes)
        assert f.x[:, 4:6].min() >= 0 and f.x[:, 4:6].max() <= 8.0
        assert np.abs(f.x[:, 6:8]).max() <= math.pi + 1e-6


def test_max_points_two_gives_one_frame_per_resampled_point():
    ink = make_ink("ab")
    cfg = FeatureConfig(curves="bezier", curve_max_points=2)
    f, p = featurize(ink, cfg), featurize(ink, FeatureConfig())
    assert len(f.x) == len(p.x)
    np.testing.assert_array_equal(f.src_pos, p.src_pos)
    np.testing.assert_allclose(f.x[:, :2] * cfg.points_per_height, p.x[:, :2], atol=1e-5)
    np.testing.assert_allclose(f.x[:, 2:4], p.x[:, 2:4], atol=1e-6)  # dt per step and flags agree


# ------------------------------------------------------------------ training
def test_tiny_model_trains_on_bezier_features_without_subsampling(tmp_path):
    torch.set_num_threads(1)
    ds = tiny_dataset()
    mcfg = ModelConfig(hidden_size=32, num_layers=1, conv_channels=16, subsample=1, dropout=0.0)
    cfg = TrainConfig(epochs=40, lr=1e-2, warmup_steps=10, min_lr_ratio=1.0, augment=False,
                      patience=1000, checkpoint_minutes=100, batch_frames=100000, seed=3)
    run = build_run([ds], [1.0], ds, tmp_path / "run", mcfg, BEZIER, cfg)
    assert run.model.cfg.input_size == 10
    b = make_batch(run.sources[0], run.fcfg, np.random.default_rng(0), TrainConfig())  # augmented too
    assert b["x"].shape[-1] == 10 and torch.isfinite(b["x"]).all()
    assert (b["lengths"] >= b["target_lengths"]).all()
    fit(run)
    with open(tmp_path / "run" / "metrics.csv") as fh:
        losses = [float(r["train_loss"]) for r in csv.DictReader(fh)]
    assert len(losses) == 40 and all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.5 * losses[0]
    best = load(tmp_path / "run" / "last.pt")
    assert best.feature_config == BEZIER and best.model.cfg.input_size == 10


def test_train_command_stores_the_curve_options(tmp_path):
    from inkread.cli import main
    from recog_helpers import write_native_dir
    data = write_native_dir(tmp_path / "lines")
    common = ["train", "--train", f"native:{data}", "--hidden-size", "8", "--num-layers", "1",
              "--conv-channels", "0", "--subsample", "1", "--epochs", "1", "--threads", "1", "--no-augment"]
    rc = main(common + ["--out", str(tmp_path / "r"), "--curves", "bezier", "--curve-tolerance", "0.03",
                        "--curve-max-points", "10"])
    assert rc == 0
    ld = load(tmp_path / "r" / "last.pt")
    assert ld.feature_config == FeatureConfig(curves="bezier", curve_tolerance=0.03, curve_max_points=10)
    assert ld.model.cfg.input_size == 10
    from inkread.recognizer import Recognizer
    rec = Recognizer.load(tmp_path / "r" / "last.pt", lm=None)
    res = rec.recognize(make_ink("abc"))
    assert isinstance(res.text, str)
    with pytest.raises(SystemExit) as stop:
        main(common + ["--out", str(tmp_path / "x"), "--curves", "bezier", "--curve-tolerance", "0"])
    assert stop.value.code == 2
    assert not (tmp_path / "x" / "last.pt").exists()
