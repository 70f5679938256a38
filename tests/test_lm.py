"""Character n-gram LM: estimation, normalisation, file round trip, CLI, shipped file."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from inkread.cli import main
from inkread.errors import CheckpointError, FormatError
from inkread.lm import BOS, EOS, CharLM, Lexicon, drop_references, read_text_lines

LINES = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog",
         "that is the thing", "then the other one", "this and that"] * 3
SHIPPED = Path(__file__).resolve().parent.parent / "models" / "lm-en.npz"


def _state(lm: CharLM, text: str) -> tuple:
    st = lm.start()
    for i in lm.ids(text):
        st = lm.advance(st, i)
    return st


@pytest.mark.parametrize("min_counts", [(), (1, 2, 2, 3)])
def test_next_character_distributions_sum_to_one(min_counts):
    lm = CharLM.build(LINES, order=4, min_counts=min_counts)
    for ctx in ["", "t", "th", "the ", "the c", "zzq", "that is the thing"]:
        p = np.exp(lm.log_dist(_state(lm, ctx)))
        assert p[BOS] == 0.0
        assert p.sum() == pytest.approx(1.0, abs=1e-4)
        assert (p[1:] > 0).all()  # smoothing: every real token is possible


def test_probabilities_follow_the_text():
    lm = CharLM.build(LINES, order=4)
    d = lm.log_dist(_state(lm, "th"))
    assert d[lm.index["e"]] > d[lm.index["o"]] > -math.inf
    assert lm.logprob("the cat") > lm.logprob("teh cta")
    assert lm.log_dist(_state(lm, "the lo"))[lm.index["g"]] > math.log(0.5)
    # an unknown character is possible but unlikely
    assert -30 < lm.log_dist(_state(lm, "the "))[lm.ids("Q")[0]] < math.log(0.01)


def test_logprob_is_the_sum_of_conditionals():
    lm = CharLM.build(LINES, order=3, min_counts=(1, 2, 2))
    text = "the dog"
    st, total = lm.start(), 0.0
    for i in lm.ids(text):
        total += lm.log_dist(st)[i]
        st = lm.advance(st, i)
    total += lm.log_dist(st)[EOS]
    assert lm.logprob(text) == pytest.approx(total, abs=1e-6)


def test_pruning_shrinks_the_model():
    full = CharLM.build(LINES, order=5)
    pruned = CharLM.build(LINES, order=5, min_counts=(1, 1, 2, 3, 3))
    assert sum(pruned.meta["ngrams"]) < sum(full.meta["ngrams"])


def test_save_load_round_trip(tmp_path):
    lm = CharLM.build(LINES, order=4, min_counts=(1, 1, 2, 2), lexicon_size=5, meta={"source": "test"})
    path = tmp_path / "lm.npz"
    lm.save(path)
    back = CharLM.load(path)
    assert (back.order, back.vocab) == (lm.order, lm.vocab)
    assert back.meta["source"] == "test"
    assert back.lexicon is not None and back.lexicon.words == lm.lexicon.words
    for ctx in ["", "th", "a c"]:
        np.testing.assert_allclose(back.log_dist(_state(back, ctx)), lm.log_dist(_state(lm, ctx)))
    # no pickle inside: numpy refuses pickled arrays with allow_pickle=False
    with np.load(path, allow_pickle=False) as z:
        assert "meta" in z.files and json.loads(z["meta"].tobytes())["format"] == "inkread-charlm"


def _same_lm(a: CharLM, b: CharLM, meta: bool = True) -> None:
    assert (a.order, a.vocab) == (b.order, b.vocab)
    if meta:  # (a file's meta also names order, vocab and lexicon size; tuples come back as lists)
        assert json.loads(json.dumps(a.meta)) == json.loads(json.dumps(b.meta))
    assert (a.lexicon is None) == (b.lexicon is None)
    if a.lexicon is not None:
        assert a.lexicon.words == b.lexicon.words
    for ctx in ["", "t", "th", "the ", "the c", "zzq", "that is the thing", "a cat and a"]:
        np.testing.assert_array_equal(a.log_dist(_state(a, ctx)), b.log_dist(_state(b, ctx)))
        assert a.logprob(ctx) == b.logprob(ctx)


def test_a_loaded_lm_is_cached_and_read_back_the_same(tmp_path, monkeypatch, caplog):
    from inkread import lm as lm_mod
    monkeypatch.setenv("INKREAD_LM_CACHE", str(tmp_path / "cache"))
    built = CharLM.build(LINES, order=4, min_counts=(1, 1, 2, 2), lexicon_size=5, meta={"source": "test"})
    path = tmp_path / "lm.npz"
    built.save(path)
    first = CharLM.load(path)  # from the file; writes the cache
    entries = list((tmp_path / "cache").iterdir())
    assert len(entries) == 1 and (entries[0] / "meta.json").is_file()
    second = CharLM.load(path)  # from the cache: its arrays are mapped, not read
    assert isinstance(second.keys[0], np.memmap)
    _same_lm(first, second)
    _same_lm(built, second, meta=False)
    # another file (the same LM without its lexicon) is another entry
    CharLM(built.order, built.vocab, built.keys, built.logp, built.ctx, built.logbow).save(tmp_path / "b.npz")
    assert CharLM.load(tmp_path / "b.npz").lexicon is None
    assert len(list((tmp_path / "cache").iterdir())) == 2
    # a damaged entry is noticed, dropped and written again
    damaged = entries[0] / "logp2.npy"
    damaged.write_bytes(damaged.read_bytes()[:60])
    with caplog.at_level("WARNING", logger=lm_mod.__name__):
        third = CharLM.load(path)
    assert "unusable" in caplog.text
    _same_lm(first, third)
    assert isinstance(CharLM.load(path).keys[0], np.memmap)  # cached again
    # a cache that cannot be written costs nothing but speed
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("INKREAD_LM_CACHE", str(blocker / "cache"))
    _same_lm(first, CharLM.load(path))


def test_bad_files_raise_checkpoint_error_naming_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such language model"):
        CharLM.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(CheckpointError, match="junk.npz.*damaged or cut short, or another kind of file"):
        CharLM.load(junk)  # not numpy's advice to load with allow_pickle
    other = tmp_path / "other.npz"
    np.savez(other, meta=np.frombuffer(b'{"format": "something-else"}', np.uint8))
    with pytest.raises(CheckpointError, match="format"):
        CharLM.load(other)
    newer = tmp_path / "newer.npz"
    np.savez(newer, meta=np.frombuffer(b'{"format": "inkread-charlm", "version": 99}', np.uint8))
    with pytest.raises(CheckpointError, match="version"):
        CharLM.load(newer)
    lm = CharLM.build(LINES, order=2)
    lm.save(tmp_path / "ok.npz")
    with np.load(tmp_path / "ok.npz") as z:
        arrays = {k: z[k] for k in z.files if k != "qlogp2"}
    np.savez(tmp_path / "cut.npz", **arrays)
    with pytest.raises(CheckpointError, match="qlogp2"):
        CharLM.load(tmp_path / "cut.npz")


def test_files_store_byte_planes_and_version_1_files_still_load(tmp_path, monkeypatch):
    monkeypatch.setenv("INKREAD_LM_CACHE", str(tmp_path / "cache"))
    lm = CharLM.build(LINES * 20, order=4, lexicon_size=5)
    lm.save(tmp_path / "v2.npz")
    with np.load(tmp_path / "v2.npz") as z:
        planes = {k: z[k] for k in z.files}
    assert json.loads(planes["meta"].tobytes())["version"] == 2
    assert planes["dkeys3"].dtype == np.uint8 and planes["dkeys3"].shape == (8, len(lm.keys[2]))
    assert planes["qlogp3"].shape == (2, len(lm.keys[2])) and planes["logbow3"].shape == (4, len(lm.ctx[2]))
    loaded = CharLM.load(tmp_path / "v2.npz")
    _same_lm(lm, loaded, meta=False)
    # the same model as a version 1 file (plain 1-D arrays, as shipped until 2026-12-06)
    v1 = dict(planes, meta=np.frombuffer(json.dumps(dict(json.loads(planes["meta"].tobytes()), version=1))
                                         .encode(), np.uint8))
    for k in range(1, 5):
        v1.update({f"dkeys{k}": np.diff(lm.keys[k - 1], prepend=0), f"dctx{k}": np.diff(lm.ctx[k - 1], prepend=0),
                   f"qlogp{k}": np.round(-lm.logp[k - 1] * 1024).astype(np.uint16),
                   f"logbow{k}": lm.logbow[k - 1].astype(np.float32)})
    np.savez_compressed(tmp_path / "v1.npz", **v1)
    _same_lm(loaded, CharLM.load(tmp_path / "v1.npz"))
    # a plane array of the wrong width is named
    np.savez_compressed(tmp_path / "bad.npz", **dict(planes, dctx2=planes["dctx2"][:4]))
    with pytest.raises(CheckpointError, match="dctx2.*byte planes of int64"):
        CharLM.load(tmp_path / "bad.npz")


def test_text_reading_wraps_and_reports_bad_files(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("one two three four five six seven\neight nine\n\nten eleven\n", encoding="utf-8")
    lines = read_text_lines([f], wrap=15)
    assert all(len(ln) <= 15 for ln in lines)
    assert " ".join(lines) == "one two three four five six seven eight nine ten eleven"
    assert read_text_lines([f], wrap=0)[1] == "eight nine"
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"caf\xe9\n")
    with pytest.raises(FormatError, match="bad.txt.*UTF-8"):
        read_text_lines([bad])
    with pytest.raises(FormatError, match="no such"):
        read_text_lines([tmp_path / "nope.txt"])


def test_text_is_read_as_a_pen_writes_it(tmp_path):
    """Typographic quotes, dashes and accents become the ASCII a writer uses; control bytes go."""
    f = tmp_path / "sotu.txt"
    f.write_text("\u201cWe\u2019ll go\u2014now,\u201d said the na\u00efve caf\u00e9 owner, "
                 "in 1961\u201362\u2026 \x02\u00a3 5.\n", encoding="utf-8")
    assert read_text_lines([f], wrap=0) == ['"We\'ll go - now," said the naive cafe owner, in 1961-62... \u00a3 5.']
    lm = CharLM.build(read_text_lines([f]), order=3)
    assert set(lm.vocab) <= set(chr(c) for c in range(32, 127)) | {"\u00a3"}


def test_drop_references_removes_verbatim_passages():
    lines, n = drop_references(["the quick brown", "fox jumps over the", "lazy dog and more"],
                               ["brown fox jumps", "dog and", "not there at all"], min_len=5)
    assert n == 2
    assert "brown fox jumps" not in " ".join(lines) and "dog and" not in " ".join(lines)
    assert lines == ["the quick", "over the", "lazy", "more"]


def test_lexicon_prefixes():
    lex = Lexicon(["Cat", "cart"])
    assert "cat" in lex.words and "car" in lex.prefixes and "cb" not in lex.prefixes


def test_cli_build_and_info(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("\n".join(LINES), encoding="utf-8")
    out = tmp_path / "lm.npz"
    assert main(["lm", "build", str(text), "-o", str(out), "--order", "4", "--min-counts", "1,1,2,2",
                 "--source", "test text"]) == 0
    assert out.is_file()
    capsys.readouterr()
    assert main(["lm", "info", str(out), "--text", str(text), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["order"] == 4 and info["source"] == "test text" and 0 < info["bits_per_char"] < 4
    assert main(["lm", "build", str(tmp_path / "missing.txt"), "-o", str(out)]) == 2
    assert "missing.txt" in capsys.readouterr().err
    assert main(["lm", "info", str(text)]) == 2  # a text file is not an LM


@pytest.mark.skipif(not SHIPPED.is_file(), reason="models/lm-en.npz not built in this checkout")
def test_shipped_lm_is_small_and_sane():
    # what ships, model plus LM, has a budget of 10 MB (models/README.md)
    model = SHIPPED.with_name("default.pt")
    assert SHIPPED.stat().st_size + model.stat().st_size <= 10_000_000
    lm = CharLM.load(SHIPPED)
    assert lm.meta.get("source")
    assert lm.logprob("and the house was") > lm.logprob("adn teh hosue wsa")
    p = np.exp(lm.log_dist(_state(lm, "in the ")))
    assert p.sum() == pytest.approx(1.0, abs=1e-3)


def test_cli_info_refuses_a_text_file_without_text(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("\n".join(LINES), encoding="utf-8")
    out = tmp_path / "lm.npz"
    CharLM.build(LINES, order=3).save(out)
    for name, body in (("empty.txt", ""), ("blank.txt", "\n  \n\t\n")):
        (tmp_path / name).write_text(body, encoding="utf-8")
        assert main(["lm", "info", str(out), "--text", str(text), str(tmp_path / name)]) == 2
        cap = capsys.readouterr()
        assert cap.out == "" and cap.err.count("\n") == 1 and f"{tmp_path / name}: holds no text" in cap.err


def test_min_counts_are_stored_and_shown_one_per_order_as_applied(tmp_path, capsys):
    """--min-counts' first value (unigrams are always kept) and values past --order do nothing."""
    text = tmp_path / "t.txt"
    text.write_text("\n".join(LINES), encoding="utf-8")
    out = tmp_path / "lm.npz"
    assert main(["lm", "build", str(text), "-o", str(out), "--order", "4"]) == 0
    assert CharLM.load(out).meta["min_counts"] == [1, 1, 1, 2]
    capsys.readouterr()
    assert main(["lm", "info", str(out)]) == 0
    assert "min_counts:     [1, 1, 1, 2]\n" in capsys.readouterr().out
    old = CharLM.build(LINES, order=4, min_counts=(3, 1))
    old.meta["min_counts"] = [3, 1, 1, 2, 3, 4, 5]  # as files written before stored the option
    old.save(out)
    assert main(["lm", "info", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["min_counts"] == [1, 1, 1, 2]
    assert CharLM.build(LINES, order=2, min_counts=(5, 2, 9)).meta["min_counts"] == [1, 2]
