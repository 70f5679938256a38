"""Property tests (bounded): random valid inks survive every writable format, and
random byte mutations of valid files raise nothing but InkreadError."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inkread.errors import InkreadError
from inkread.formats import read_ink, unipen, write_ink
from inkread.ink import Ink, Stroke

from iam_fixtures import FIXTURES  # noqa: E402  (tests/fixtures with the fake IAM-OnDB lines written in)
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Labels as InkML keeps them: no control characters, no surrounding white space.
LABEL = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Cn")), min_size=1, max_size=12) \
    .map(str.strip).filter(bool)
COORD = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)


@st.composite
def inks(draw) -> Ink:
    with_pressure = draw(st.booleans())
    strokes = []
    for n in draw(st.lists(st.integers(1, 12), max_size=5)):
        steps = draw(st.lists(st.floats(0, 1, allow_nan=False), min_size=n, max_size=n))
        t = draw(st.floats(0, 100, allow_nan=False)) + np.cumsum(steps)
        xs = draw(st.lists(COORD, min_size=n, max_size=n))
        ys = draw(st.lists(COORD, min_size=n, max_size=n))
        p = draw(st.lists(st.floats(0, 1, allow_nan=False), min_size=n, max_size=n)) if with_pressure else None
        strokes.append(Stroke(xs, ys, t, p))
    text = draw(st.none() | LABEL)
    npts = sum(len(s) for s in strokes)
    cop = None
    if text and draw(st.booleans()):
        cop = np.array(draw(st.lists(st.integers(-1, len(text) - 1), min_size=npts, max_size=npts)))
    meta = draw(st.dictionaries(st.text("abcxyz", min_size=1, max_size=4), st.integers(-5, 5), max_size=3))
    return Ink(strokes, text=text, writer=draw(st.none() | LABEL), id=draw(st.none() | LABEL),
               metadata=meta, time_synthesized=draw(st.booleans()), char_of_point=cop)


def _check_geometry(a: Ink, b: Ink, exact: bool) -> None:
    assert [len(s) for s in a.strokes] == [len(s) for s in b.strokes]
    xa, xb = a.to_array(), b.to_array()
    if exact:
        np.testing.assert_array_equal(xa, xb)
    else:
        np.testing.assert_allclose(xa[:, [0, 1, 3]], xb[:, [0, 1, 3]], rtol=1e-9, atol=1e-7)


@pytest.mark.parametrize("suffix", [".json", ".inkml"])
@SETTINGS
@given(ink=inks())
def test_round_trip_is_lossless(tmp_path, suffix, ink):
    path = tmp_path / f"r{suffix}"
    write_ink(ink, path)
    back = read_ink(path)
    _check_geometry(ink, back, exact=True)
    for sa, sb in zip(ink.strokes, back.strokes):
        if sa.pressure is not None:
            np.testing.assert_array_equal(sa.pressure, sb.pressure)
    assert (back.text, back.writer, back.metadata) == (ink.text, ink.writer, ink.metadata)
    assert back.time_synthesized == ink.time_synthesized
    assert back.id == (ink.id if ink.id is not None else "r")
    if ink.char_of_point is None:
        assert back.char_of_point is None
    else:
        np.testing.assert_array_equal(back.char_of_point, ink.char_of_point)


@SETTINGS
@given(ink=inks())
def test_offsets_round_trip_keeps_geometry(tmp_path, ink):
    write_ink(ink, tmp_path / "r.npy")
    back = read_ink(tmp_path / "r.npy")
    _check_geometry(ink, back, exact=False)
    assert back.time_synthesized


def _small_ink() -> Ink:
    return Ink([Stroke([10, 20, 35], [40, 20, 45], [0, 0.01, 0.02], [0.1, 0.2, 0.3]),
                Stroke([50, 52], [30, 31], [0.3, 0.31], [0.4, 0.5])],
               text="ab", writer="w", id="x", metadata={"k": 1}, char_of_point=np.array([0, 0, 0, 1, 1]))


def _valid_files(tmp: Path) -> dict[str, bytes]:
    ink = _small_ink()
    out = {}
    for suffix in (".json", ".inkml", ".npy"):
        write_ink(ink, tmp / f"v{suffix}")
        out[suffix] = (tmp / f"v{suffix}").read_bytes()
    out[".dat"] = unipen.dumps(ink).encode()
    out[".xml"] = (FIXTURES / "iamondb/lineStrokes/a01/a01-000/a01-000u-01.xml").read_bytes()
    return out


MUTATION = st.tuples(st.sampled_from(["flip", "insert", "delete", "truncate"]),
                     st.integers(0, 10 ** 6), st.integers(0, 255))


def _mutate(data: bytes, ops) -> bytes:
    buf = bytearray(data)
    for kind, pos, byte in ops:
        if not buf:
            break
        i = pos % len(buf)
        if kind == "flip":
            buf[i] = byte
        elif kind == "insert":
            buf[i:i] = bytes([byte]) * (1 + byte % 3)
        elif kind == "delete":
            del buf[i:i + 1 + byte % 8]
        else:
            del buf[i:]
    return bytes(buf)


@pytest.mark.parametrize("suffix", [".json", ".inkml", ".npy", ".dat", ".xml"])
@SETTINGS
@given(ops=st.lists(MUTATION, min_size=1, max_size=4))
def test_mutated_files_raise_only_inkread_errors(tmp_path, suffix, ops):
    valid = _valid_files(tmp_path)[suffix]
    path = tmp_path / f"m{suffix}"
    path.write_bytes(_mutate(valid, ops))
    try:
        ink = read_ink(path)
    except InkreadError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
    else:
        ink.validated()  # whatever was read is valid ink
