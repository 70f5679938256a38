"""Data specs -> iterables of :class:`Sample`.

A data spec is ``KIND:PATH[@SELECTOR]``:

* ``iamondb:ROOT[@trainset[,testset_v...]]``: IAM-OnDB lines in the database's
  own layout; no selector = every labelled line. Parsed once and cached in
  ``$INKREAD_CACHE`` (default ``~/.cache/inkread/datasets``), keyed by the
  files' sizes and modification times.
* ``inkml:PATH[@outer|@inner]``: an InkML file or folder (recursive).
* ``native:PATH``: a native JSON file or folder (recursive).
* ``synth:N[@SEED]``: N synthetic lines, generated on the fly.

Readers register with :func:`register`; :func:`load_spec` resolves a spec.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Optional, Sequence

import numpy as np

from .errors import DataSpecError, InkreadError
from .ink import Ink

log = logging.getLogger(__name__)


class Sample(NamedTuple):
    """One labelled unit of ink."""

    ink: Ink
    text: str
    id: str
    writer: Optional[str]


@dataclass
class Dataset:
    """Samples plus what was skipped and why (for ``inkread data``)."""

    spec: str
    samples: Sequence[Sample]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (id or path, reason)
    sources: dict[str, str] = field(default_factory=dict)  # sample id -> the file it came from (folders)

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)


# kind -> loader(path, selector, spec) -> Dataset
_LOADERS: dict[str, Callable[[str, Optional[str], str], Dataset]] = {}


def register(kind: str) -> Callable:
    def deco(fn: Callable[[str, Optional[str], str], Dataset]) -> Callable:
        _LOADERS[kind] = fn
        return fn
    return deco


def parse_spec(spec: str) -> tuple[str, str, Optional[str]]:
    """'KIND:PATH[@SELECTOR]' -> (kind, path, selector)."""
    if ":" not in spec:
        raise DataSpecError(f"data spec {spec!r} is not KIND:PATH[@SELECTOR] "
                            f"(kinds: {', '.join(sorted(_kinds()))})")
    kind, rest = spec.split(":", 1)
    path, sel = (rest.rsplit("@", 1) + [None])[:2] if "@" in rest else (rest, None)
    if kind not in _kinds():
        raise DataSpecError(f"unknown data kind {kind!r} in {spec!r} (kinds: {', '.join(sorted(_kinds()))})")
    if not path:
        raise DataSpecError(f"data spec {spec!r} has no path")
    return kind, path, sel


def _kinds() -> set[str]:
    _import_plugins()
    return set(_LOADERS)


def _import_plugins() -> None:
    try:  # synthetic ink registers its own kind when its package is present
        import inkread.synth  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name not in ("inkread.synth",):
            raise


def load_spec(spec: str) -> Dataset:
    """Resolve a data spec into a :class:`Dataset`."""
    kind, path, sel = parse_spec(spec)
    return _LOADERS[kind](path, sel, spec)


# --------------------------------------------------------------------- files
def _files(path: str, suffixes: tuple[str, ...], spec: str) -> list[Path]:
    p = Path(path).expanduser()
    if p.is_file():
        return [p]
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in suffixes)
    raise DataSpecError(f"no such file or folder: {path}", spec)


def _unique_ids(found: list[tuple[Path, Sample]], path: str, ds: Dataset) -> list[Sample]:
    """Samples whose ids repeat (``sentence1`` in every writer's folder) get the file's path
    under the spec's folder instead of its stem, so that `eval --errors` and `compare` can
    tell the lines apart. Each sample's file goes into ``ds.sources``, so that a message about
    a sample can name the file (its id may be one written inside it)."""
    counts = Counter(s.id for _, s in found)
    root = Path(path).expanduser()
    out = []
    for f, s in found:
        if counts[s.id] > 1 and root.is_dir():
            rel = f.relative_to(root).with_suffix("").as_posix()
            if s.id == f.stem:
                s = s._replace(id=rel)
            elif s.id.startswith(f.stem + ":"):
                s = s._replace(id=rel + s.id[len(f.stem):])
            else:
                s = s._replace(id=f"{rel}:{s.id}")
        ds.sources.setdefault(s.id, str(f))
        out.append(s)
    return out


@register("native")
def _load_native(path: str, sel: Optional[str], spec: str) -> Dataset:
    from .formats import read_ink
    ds, found = Dataset(spec, []), []
    for f in _files(path, (".json",), spec):
        try:
            ink = read_ink(f, "native")
        except InkreadError as exc:
            ds.skipped.append((str(f), exc.detail))
            continue
        if not ink.text:
            ds.skipped.append((str(f), "no text label"))
            continue
        found.append((f, Sample(ink, ink.text, ink.id or f.stem, ink.writer)))
    ds.samples = _unique_ids(found, path, ds)
    return ds


@register("inkml")
def _load_inkml(path: str, sel: Optional[str], spec: str) -> Dataset:
    from .formats import inkml
    if sel not in (None, "outer", "inner"):
        raise DataSpecError(f"inkml selector must be 'outer' or 'inner', not {sel!r}", spec)
    ds, found = Dataset(spec, []), []
    for f in _files(path, (".inkml",), spec):
        try:
            units = inkml.read_units(f, sel or "outer")
        except InkreadError as exc:
            ds.skipped.append((str(f), exc.detail))
            continue
        if not units:
            ds.skipped.append((str(f), "no labelled unit"))
        for ink in units:
            found.append((f, Sample(ink, ink.text, ink.id or f.stem, ink.writer)))
    ds.samples = _unique_ids(found, path, ds)
    return ds


# ------------------------------------------------------------------ IAM-OnDB
IAM_SPLITS = ("trainset", "testset_v", "testset_t", "testset_f")


def _cache_dir() -> Path:
    return Path(os.environ.get("INKREAD_CACHE", Path.home() / ".cache" / "inkread" / "datasets"))


def _iam_line_files(root: Path, forms: Optional[set[str]]) -> list[Path]:
    base = root / "lineStrokes"
    if not base.is_dir():
        raise DataSpecError(f"{root} has no lineStrokes/ folder: not an IAM-OnDB root")
    files = sorted(base.glob("*/*/*.xml"))
    if forms is not None:
        files = [f for f in files if f.stem.rsplit("-", 1)[0] in forms]
    return files


def _iam_forms(root: Path, splits: list[str], spec: str) -> Optional[set[str]]:
    if not splits:
        return None
    forms: set[str] = set()
    for s in splits:
        f = root / f"{s}.txt"
        if not f.is_file():
            raise DataSpecError(f"IAM-OnDB split {s!r} not found ({f} missing)", spec)
        forms.update(ln.strip() for ln in f.read_text().splitlines() if ln.strip())
    return forms


def _iam_read_one(f: Path) -> tuple[str, Optional[np.ndarray], Optional[str], Optional[str]]:
    """(id, (N,4) array or None, text, skip reason) for one line file."""
    from .formats import iamondb
    try:
        ink = iamondb.read(f)
    except InkreadError as exc:
        return f.stem, None, None, str(exc)
    if ink.is_empty:
        return f.stem, None, None, "no points"
    if not ink.text:
        return f.stem, None, None, "no transcription line for this file"
    return f.stem, ink.to_array().astype(np.float32), ink.text, None


def _iam_key(root: Path, files: list[Path]) -> str:
    h = hashlib.sha1(str(root.resolve()).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    for a in sorted((root / "ascii").glob("*/*/*.txt")):
        st = a.stat()
        h.update(f"{a.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def _iam_parse_all(files: list[Path]) -> list[tuple]:
    workers = min(len(files) // 200 + 1, os.cpu_count() or 1)
    if workers <= 1:
        return [_iam_read_one(f) for f in files]
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(workers) as ex:
        return list(ex.map(_iam_read_one, files, chunksize=64))


def _iam_save(path: Path, rows: list[tuple]) -> None:
    ok = [r for r in rows if r[1] is not None]
    lengths = np.array([len(r[1]) for r in ok], dtype=np.int64)
    points = np.concatenate([r[1] for r in ok]) if ok else np.zeros((0, 4), np.float32)
    meta = {"ids": [r[0] for r in ok], "texts": [r[2] for r in ok],
            "skipped": [[r[0], r[3]] for r in rows if r[1] is None]}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, points=points, lengths=lengths, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    os.replace(tmp, path)


def _iam_load_cache(path: Path) -> tuple[list[tuple], list]:
    with np.load(path, allow_pickle=False) as z:
        points, lengths = z["points"], z["lengths"]
        meta = json.loads(z["meta"].tobytes().decode())
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    rows = [(i, points[offsets[k]:offsets[k + 1]], t)
            for k, (i, t) in enumerate(zip(meta["ids"], meta["texts"]))]
    return rows, meta["skipped"]


@register("iamondb")
def _load_iamondb(path: str, sel: Optional[str], spec: str) -> Dataset:
    root = Path(path).expanduser()
    splits = [s for s in (sel or "").split(",") if s]
    forms = _iam_forms(root, splits, spec)
    files = _iam_line_files(root, forms)
    cache = _cache_dir() / f"iamondb-{_iam_key(root, files)}.npz"
    if not cache.exists():
        log.info("parsing %d IAM-OnDB line files (cached in %s)", len(files), cache)
        _iam_save(cache, _iam_parse_all(files))
    rows, skipped = _iam_load_cache(cache)
    ds = Dataset(spec, [], [tuple(s) for s in skipped])
    for lid, arr, text in rows:
        form = lid.rsplit("-", 1)[0]
        ink = Ink.from_array(arr.astype(np.float64), text=text, id=lid,
                             metadata={"source": "iamondb", "form": form})
        ds.samples.append(Sample(ink, text, lid, None))
    if forms is not None:
        missing = forms - {s.id.rsplit("-", 1)[0] for s in ds.samples} - {s[0].rsplit("-", 1)[0] for s in ds.skipped}
        ds.skipped.extend((f, "form listed in split but no line files found") for f in sorted(missing))
    return ds
