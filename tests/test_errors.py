"""Output paths the system refuses read as one line, and checking a path leaves nothing behind."""
import pytest

from inkread.cli import main
from inkread.errors import OptionError, check_writable

LONG = "a" * 300  # past NAME_MAX (255) on every file system we run on


def test_check_writable_refuses_a_name_too_long(tmp_path):
    with pytest.raises(OptionError, match="cannot write here") as err:
        check_writable(tmp_path / f"{LONG}.pt")
    assert "\n" not in str(err.value)
    with pytest.raises(OptionError):
        check_writable(tmp_path / LONG, folder=True)


def test_check_writable_leaves_no_file_and_keeps_an_existing_one(tmp_path):
    check_writable(tmp_path / "new.pt")
    check_writable(tmp_path / "run", folder=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"] and not any((tmp_path / "run").iterdir())
    (tmp_path / "old.pt").write_bytes(b"keep me")
    check_writable(tmp_path / "old.pt")
    assert (tmp_path / "old.pt").read_bytes() == b"keep me"


@pytest.mark.parametrize("argv", [
    ["render", "{sample}", "-o", "{tmp}/" + LONG + ".png"],
    ["convert", "{sample}", "{tmp}/" + LONG + ".json"],
    ["info", "{tmp}/" + LONG + ".json"],
])
def test_refused_paths_are_one_line(tmp_path, capsys, argv, sample_path):
    argv = [a.format(sample=sample_path, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"inkread {argv[0]}: error:") and "\n" not in err and "Traceback" not in err
    assert "too long" in err
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def sample_path(tmp_path_factory):
    from inkread.formats import write_ink
    from inkread.ink import Ink, Stroke
    path = tmp_path_factory.mktemp("ink") / "line.json"
    write_ink(Ink([Stroke([0, 1, 2], [0, 1, 0], [0, 0.01, 0.02])], text="a"), path)
    return path
