"""Fine-tuning on a user's own lines: `inkread finetune` and inkread.finetune."""
from __future__ import annotations

import pytest
import torch

from inkread.checkpoint import load
from inkread.cli import main
from inkread.errors import OptionError
from inkread.finetune import fine_tune
from inkread.formats import write_ink

from engine_helpers import make_ink
from recog_helpers import ALPHABET, save_tiny_model, write_native_dir


@pytest.fixture
def lines(tmp_path):
    """Six labelled lines, one damaged file and one line with a character the model lacks."""
    folder = write_native_dir(tmp_path / "mine")
    (folder / "damaged.json").write_text("{not json")
    write_ink(make_ink("ab").replace(text="abé"), folder / "accent.json")
    return folder


def test_fine_tune_learns_the_lines_and_writes_an_int8_model(tmp_path, lines):
    torch.set_num_threads(1)
    base = save_tiny_model(tmp_path / "base.pt", seed=3)
    before_bytes = base.read_bytes()
    seen = []
    res = fine_tune([str(lines)], tmp_path / "out" / "mine.pt", str(base), epochs=60, lr=3e-2,
                    warmup_steps=2, on_step=lambda done, total: seen.append((done, total)) and False)
    assert res.lines == 6 and res.steps == 60 and res.stopped == "epochs done"
    assert seen[0] == (1, 60) and seen[-1] == (60, 60)
    skipped = dict(res.skipped)
    assert "not json" not in skipped and len(skipped) == 2
    assert any(k.endswith("damaged.json") for k in skipped)
    # named by its file (its ink's id, "ab", is written inside it and is ab.json's too), and the character
    assert "'é'" in skipped[str(lines / "accent.json")]
    assert res.after < res.before, (res.before, res.after)  # it learned the lines it was given
    ft = load(tmp_path / "out" / "mine.pt")
    assert ft.meta["weights_dtype"] == "int8" and ft.train_state is None
    assert ft.meta["fine_tune"]["from"] == str(base.resolve()) and ft.meta["fine_tune"]["lines"] == 6
    assert ft.alphabet.chars == ALPHABET.chars and ft.model.cfg == load(base).model.cfg
    assert base.read_bytes() == before_bytes
    assert not list((tmp_path / "out").glob("*.tmp")) and [p.name for p in (tmp_path / "out").iterdir()] == ["mine.pt"]


def test_fine_tune_again_starts_from_the_original_model_when_asked(tmp_path, lines):
    base = save_tiny_model(tmp_path / "base.pt")
    first = fine_tune([str(lines)], tmp_path / "one.pt", str(base), epochs=2)
    assert first.base == base
    again = fine_tune([str(lines)], tmp_path / "two.pt", str(tmp_path / "one.pt"), epochs=2, from_original=True)
    assert again.base == base.resolve() and load(tmp_path / "two.pt").meta["fine_tune"]["from"] == str(base.resolve())
    stacked = fine_tune([str(lines)], tmp_path / "three.pt", str(tmp_path / "one.pt"), epochs=2)
    assert stacked.base == tmp_path / "one.pt"
    base.unlink()  # the original is gone: the fine-tune itself is the start
    assert fine_tune([str(lines)], tmp_path / "four.pt", str(tmp_path / "one.pt"), epochs=1,
                     from_original=True).base == tmp_path / "one.pt"


def test_fine_tune_stops_on_request_and_still_writes_the_model(tmp_path, lines):
    base = save_tiny_model(tmp_path / "base.pt")
    res = fine_tune([str(lines)], tmp_path / "mine.pt", str(base), epochs=30,
                    on_step=lambda done, total: done >= 3)
    assert res.steps == 3 and res.stopped == "stopped on request"
    assert load(tmp_path / "mine.pt").meta["fine_tune"]["steps"] == 3


def test_fine_tune_refuses_no_lines_and_its_own_base(tmp_path, lines):
    base = save_tiny_model(tmp_path / "base.pt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OptionError, match="no line to fine-tune on.*no .json line files"):
        fine_tune([str(empty)], tmp_path / "x.pt", str(base))
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    write_ink(make_ink("ab").replace(text="xyz"), only_bad / "l.json")
    with pytest.raises(OptionError, match="'x' 'y' 'z'"):
        fine_tune([str(only_bad)], tmp_path / "x.pt", str(base))
    with pytest.raises(OptionError, match="refusing to overwrite"):
        fine_tune([str(lines)], base, str(base))
    assert not (tmp_path / "x.pt").exists()


def test_finetune_command_prints_what_it_did_and_names_bad_input(tmp_path, lines, capsys):
    base = save_tiny_model(tmp_path / "base.pt")
    assert main(["finetune", str(lines), "--model", str(base), "-o", str(tmp_path / "m.pt"),
                 "--epochs", "2", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "fine-tuned on 6 lines, 2 steps" in out and "skipped 2" in out and "ewer than" not in out
    two = tmp_path / "two"
    two.mkdir()
    for name in ("ab.json", "bd.json"):
        (two / name).write_bytes((lines / name).read_bytes())
    assert main(["finetune", str(two), "--model", str(base), "-o", str(tmp_path / "m2.pt"), "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "fine-tuned on 2 lines" in out and "Fewer than 4 lines" in out
    assert load(tmp_path / "m.pt").meta["fine_tune"]["epochs"] == 2
    assert main(["finetune", str(tmp_path / "nowhere"), "--model", str(base), "-o", str(tmp_path / "n.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nowhere" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exc:
        main(["finetune", str(lines), "--model", str(base), "-o", str(tmp_path / "n.pt"), "--epochs", "0"])
    assert exc.value.code == 2 and "--epochs: 0 is not at least 1" in capsys.readouterr().err
    assert not (tmp_path / "n.pt").exists()


def test_finetune_is_the_readme_recipe_of_train_and_export(tmp_path, lines):
    """`inkread finetune` gives the very weights of `inkread train --init` + `inkread export --int8`."""
    base = save_tiny_model(tmp_path / "base.pt", seed=4)
    assert main(["finetune", str(lines), "--model", str(base), "-o", str(tmp_path / "one.pt"),
                 "--epochs", "3", "--lr", "1e-2"]) == 0
    assert main(["train", "--init", str(base), "--train", f"native:{lines}", "--out", str(tmp_path / "run"),
                 "--lr", "1e-2", "--warmup-steps", "5", "--epochs", "3", "--patience", "30"]) == 0
    assert main(["export", str(tmp_path / "run" / "last.pt"), "-o", str(tmp_path / "two.pt"), "--int8"]) == 0
    one, two = load(tmp_path / "one.pt").model.state_dict(), load(tmp_path / "two.pt").model.state_dict()
    assert one.keys() == two.keys()
    for k in one:
        assert torch.equal(one[k], two[k]), k


def test_fine_tune_checks_run_on_the_threads_asked_and_restore_torchs_setting(tmp_path, lines, monkeypatch):
    """--threads covers the before/after greedy checks as well as training; the caller's setting comes back."""
    import inkread.finetune as ft
    seen = []
    real = ft.validate
    monkeypatch.setattr(ft, "validate", lambda *a, **k: (seen.append(torch.get_num_threads()), real(*a, **k))[1])
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        fine_tune([str(lines)], tmp_path / "mine.pt", str(save_tiny_model(tmp_path / "base.pt")), epochs=1, threads=1)
        assert seen == [1, 1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(old)


def test_finetune_command_names_every_skipped_file_with_its_reason(tmp_path, lines, capsys):
    write_ink(make_ink("ab").replace(text="", char_of_point=None), lines / "unlabelled.json")
    write_ink(make_ink("ab").replace(text="xyz"), lines / "foreign.json")
    (lines / "empty.json").write_text("")
    base = save_tiny_model(tmp_path / "base.pt")
    assert main(["finetune", str(lines), "--model", str(base), "-o", str(tmp_path / "m.pt"), "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "skipped 5:" in out
    named = {line.split(": ", 1)[0].strip(): line for line in out.splitlines()[1:]}
    assert len(named) == 5, out
    assert "no text label" in named[str(lines / "unlabelled.json")]
    assert "'x' 'y' 'z'" in named[str(lines / "foreign.json")] and "'é'" in named[str(lines / "accent.json")]
    assert "not valid JSON" in named[str(lines / "damaged.json")] and str(lines / "empty.json") in named
    assert all(line.count(".json") == 1 for line in named.values())  # each file named once
