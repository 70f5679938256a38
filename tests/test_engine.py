"""Features, model, alphabet, checkpoint: unit tests on hand-made ink."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from inkread.alphabet import Alphabet
from inkread.checkpoint import load, save
from inkread.errors import CheckpointError, InkError, InkreadError
from inkread.features import FeatureConfig, featurize
from inkread.ink import Ink, synthesize_time
from inkread.model import InkModel, ModelConfig, reverse_within_length

from engine_helpers import make_ink


def test_features_shapes_and_mapping():
    ink = make_ink("abcd")
    f = featurize(ink, FeatureConfig(points_per_height=10))
    assert f.x.shape[1] == 4 and f.x.dtype == np.float32
    assert f.src_pos.shape == (f.x.shape[0],)
    assert f.src_pos.min() == 0 and f.src_pos.max() == ink.num_points - 1
    # new-stroke flags: one per stroke
    assert int(f.x[:, 3].sum()) == len(ink.strokes)
    # src_pos never decreases: frames follow the writing order
    assert np.all(np.diff(f.src_pos) >= 0)


def test_features_invariant_to_scale_translation_and_rate():
    ink = make_ink("dab")
    moved = ink.copy()
    for s in moved.strokes:
        s.x, s.y, s.t = s.x * 3 + 500, s.y * 3 - 70, s.t * 2.5
    cfg = FeatureConfig()
    a, b = featurize(ink, cfg).x, featurize(moved, cfg).x
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_features_synthesized_time_and_empty_ink():
    ink = make_ink("ab")
    no_t = synthesize_time(ink)
    f = featurize(no_t, FeatureConfig())
    assert np.all(f.x[:, 2] == 0)  # dt channel off for made-up time
    with pytest.raises(InkError):
        featurize(Ink(), FeatureConfig())


def test_alphabet_roundtrip_and_unknown():
    a = Alphabet.from_texts(["hello", "world"])
    assert a.blank == 0 and len(a) == len(set("helloworld")) + 1
    assert a.decode(a.encode("hold")) == "hold"
    with pytest.raises(InkreadError, match="'z'"):
        a.encode("hez")
    assert a.decode(a.encode("hez", unknown="drop")) == "he"


def test_reverse_within_length():
    x = torch.arange(10.0).reshape(2, 5, 1)
    r = reverse_within_length(x, torch.tensor([5, 3]))
    assert r[0, :, 0].tolist() == [4, 3, 2, 1, 0]
    assert r[1, :, 0].tolist() == [7, 6, 5, 8, 9]


@pytest.mark.parametrize("conv", [0, 8])
def test_model_padding_does_not_change_outputs(conv):
    torch.manual_seed(0)
    m = InkModel(ModelConfig(input_size=4, num_classes=6, hidden_size=8, num_layers=2,
                             conv_channels=conv, subsample=2)).eval()
    short, long_ = torch.randn(1, 7, 4), torch.randn(1, 12, 4)
    alone, n_alone = m(short, torch.tensor([7]))
    batch = torch.zeros(2, 12, 4)
    batch[0, :7], batch[1] = short[0], long_[0]
    both, n_both = m(batch, torch.tensor([7, 12]))
    assert n_alone.tolist() == [4] and n_both.tolist() == [4, 6]
    assert both.shape == (2, 6, 6)
    torch.testing.assert_close(both[0, :4], alone[0], atol=1e-5, rtol=1e-5)


def test_dropout_drops_a_fraction_p_and_keeps_the_expectation():
    from inkread.model import Dropout
    torch.manual_seed(0)
    x = torch.full((64, 100, 32), 2.0, requires_grad=True)
    d = Dropout(0.4)
    y = d(x)
    kept = y != 0
    assert abs(float(kept.float().mean()) - 0.6) < 0.01
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 2.0 / 0.6))
    y.sum().backward()  # gradients flow through the kept units only, scaled alike
    torch.testing.assert_close(x.grad, kept.float() / 0.6)
    torch.manual_seed(1)
    assert not torch.equal(d(x) != 0, kept)  # a new mask each call
    assert d.eval()(x) is x and Dropout(0.0).train()(x) is x
    with pytest.raises(ValueError):
        Dropout(1.0)


def _tiny_model():
    return InkModel(ModelConfig(input_size=4, num_classes=5, hidden_size=8, num_layers=1,
                                conv_channels=4, subsample=2))


def test_checkpoint_roundtrip(tmp_path):
    m = _tiny_model()
    save(tmp_path / "m.pt", m, Alphabet("abcd"), FeatureConfig(points_per_height=7), {"note": "x"})
    ld = load(tmp_path / "m.pt")
    assert ld.alphabet.chars == "abcd" and ld.feature_config.points_per_height == 7
    assert ld.meta["note"] == "x" and not ld.model.training
    for k, v in m.state_dict().items():
        torch.testing.assert_close(ld.model.state_dict()[k], v)
    assert not list(tmp_path.glob("*.tmp"))


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize("content", [b"", b"garbage bytes", "pickle", "zipped pickle", "cut short", "foreign",
                                     "mismatch"])
def test_checkpoint_refuses_bad_files(tmp_path, content):
    p = tmp_path / "bad.pt"
    if content == "pickle":
        with open(p, "wb") as fh:
            pickle.dump({"format": "inkread-model", "x": _Evil()}, fh)
    elif content == "zipped pickle":
        torch.save({"format": "inkread-model", "x": _Evil()}, p)
    elif content == "cut short":
        save(p, _tiny_model(), Alphabet("abcd"), FeatureConfig())
        p.write_bytes(p.read_bytes()[:-200])
    elif content == "foreign":
        torch.save({"state_dict": {}}, p)
    elif content == "mismatch":
        save(p, _tiny_model(), Alphabet("abc"), FeatureConfig())  # 4 classes vs 5 outputs
    else:
        p.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        load(p)
    assert str(p) in str(err.value)
    # one plain reason, not torch's advice to load with weights_only=False
    assert "weights_only" not in str(err.value)
    if content in (b"", b"garbage bytes", "pickle", "cut short"):
        assert "damaged or cut short, or another kind of file" in str(err.value)
    if content == "zipped pickle":
        assert "Python objects that a safe load refuses" in str(err.value)
