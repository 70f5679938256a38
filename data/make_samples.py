"""Regenerate data/samples/: the same few handwritten-looking words in every format.

Run from the project root::

    python data/make_samples.py [--text "hello world"] [--out data/samples]

The ink is made here, not recorded: glyphs of the Hershey "scripts" font
(single-stroke cursive, public domain) are laid out, joined where one letter
ends where the next begins, rounded with Chaikin corner cutting, slanted,
jittered a little, and sampled at 100 Hz with a pen speed that follows the
two-thirds power law (slower in tight curves), with pen-up pauses between
strokes. Coordinates are rounded to
integers (tablet units, y down) so that every format, UNIPEN included,
holds exactly the same ink. Each point carries the index of the character
that produced it (``char_of_point``), kept by the native JSON and InkML
files. Nothing here comes from any dataset.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inkread.formats import read_ink, write_ink  # noqa: E402
from inkread.formats import unipen  # noqa: E402
from inkread.ink import Ink, Stroke  # noqa: E402

RATE = 100.0          # samples per second
UNIT = 8.0            # tablet units per font unit
SPEED = 700.0         # mean pen speed, tablet units per second
SLANT = 0.18          # shear: x += SLANT * (baseline - y)


def glyph_strokes(text: str, font: str = "scripts") -> list[tuple[np.ndarray, np.ndarray]]:
    """Per pen-down stroke: (N, 2) font-unit points (y down) and (N,) character indices."""
    from HersheyFonts import HersheyFonts
    hf = HersheyFonts()
    hf.load_default_font(font)
    out, xofs = [], 0.0
    for ci, ch in enumerate(text):
        glyph = next(iter(hf.glyphs_for_text(ch)), None)
        if glyph is None:
            continue
        for stroke in glyph.strokes:
            pts = np.array([(xofs + x - glyph.left_offset, y) for x, y in stroke], dtype=np.float64)
            owner = np.full(len(pts), ci)
            if out and np.hypot(*(out[-1][0][-1] - pts[0])) < 0.5:  # cursive join: one pen-down
                out[-1] = (np.vstack([out[-1][0], pts[1:]]), np.concatenate([out[-1][1], owner[1:]]))
            else:
                out.append((pts, owner))
        xofs += glyph.char_width
    return out


def chaikin(pts: np.ndarray, owner: np.ndarray, rounds: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Cut corners (keeping the end points) so the polyline looks drawn, not plotted."""
    for _ in range(rounds):
        if len(pts) < 3:
            break
        a, b = pts[:-1], pts[1:]
        q, r = 0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b
        mid = np.empty((2 * len(a), 2))
        mid[0::2], mid[1::2] = q, r
        pts = np.vstack([pts[:1], mid[1:-1], pts[-1:]])
        own = np.repeat(owner[:-1], 2)
        owner = np.concatenate([owner[:1], own[1:-1], owner[-1:]])
    return pts, owner


def sample_stroke(pts: np.ndarray, owner: np.ndarray, rng: np.random.Generator):
    """Points at RATE Hz along the path; speed follows the two-thirds power law.

    Pen speed is proportional to the cube root of the radius of curvature
    (slow in tight turns, fast on straight runs) and eases in and out at the
    ends of the stroke; the profile is scaled to a mean of about SPEED.
    """
    seg = np.hypot(*np.diff(pts, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    length = arc[-1]
    if length <= 0:
        return pts[:1], owner[:1]
    s = np.linspace(0.0, length, max(int(length), 2) + 1)   # ~1 tablet unit apart
    x, y = np.interp(s, arc, pts[:, 0]), np.interp(s, arc, pts[:, 1])
    heading = np.unwrap(np.arctan2(np.diff(y), np.diff(x)))
    turn = np.abs(np.diff(heading, prepend=heading[:1], append=heading[-1:]))
    curv = np.convolve(turn, np.ones(9) / 9, mode="same") / (s[1] - s[0])
    speed = np.clip((1.0 / (curv + 1e-3)) ** (1 / 3), 0.5, 12.0)
    ramp = np.clip(np.minimum(s, length - s) / min(40.0, length / 3), 0.15, 1.0)
    speed = speed * np.sin(ramp * np.pi / 2)
    dt = np.diff(s) / (0.5 * (speed[1:] + speed[:-1]))
    t = np.concatenate([[0.0], np.cumsum(dt)])
    t *= length / (SPEED * rng.uniform(0.85, 1.15)) / t[-1]
    tq = np.arange(0.0, t[-1] + 0.5 / RATE, 1.0 / RATE)
    sq = np.interp(tq, t, s)
    xy = np.column_stack([np.interp(sq, arc, pts[:, 0]), np.interp(sq, arc, pts[:, 1])])
    idx = np.clip(np.searchsorted(arc, sq, side="right") - 1, 0, len(owner) - 1)
    return xy, owner[idx]


def make_ink(text: str, seed: int = 7) -> Ink:
    """Handwriting-like ink for ``text`` with per-point character truth."""
    rng = np.random.default_rng(seed)
    strokes, owners, t0 = [], [], 0.0
    for pts, owner in glyph_strokes(text):
        pts = pts * UNIT
        pts[:, 0] += SLANT * (9 * UNIT - pts[:, 1])               # baseline at font y = 9
        pts[:, 1] += 6 * np.sin(pts[:, 0] / 180.0)                # a gently wavy baseline
        pts += rng.normal(0.0, 0.8, size=pts.shape)
        pts, owner = chaikin(pts, owner)
        xy, own = sample_stroke(pts, owner, rng)
        xy = np.round(xy + [200.0, 300.0])
        t = t0 + np.arange(len(xy)) / RATE
        strokes.append(Stroke(xy[:, 0], xy[:, 1], np.round(t, 2)))
        owners.append(own)
        t0 = float(t[-1]) + rng.choice([0.12, 0.15, 0.18, 0.22])   # pen-up pause, a whole number of samples
    return Ink(strokes=strokes, text=text, writer="hershey-scripts", id="hello",
               metadata={"source": "data/make_samples.py", "font": "Hershey scripts", "seed": seed},
               char_of_point=np.concatenate(owners)).validated()


def iamondb_xml(ink: Ink, start: float = 1000.0) -> str:
    """An IAM-OnDB-style lineStrokes XML of ``ink`` (absolute times, 2 decimals)."""
    x0, y0, x1, y1 = ink.bbox()
    out = ['<?xml version="1.0" encoding="ISO-8859-1"?>', "<WhiteboardCaptureSession>",
           "  <WhiteboardDescription>", '    <SensorLocation corner="top_left"/>',
           f'    <DiagonallyOppositeCoords x="{int(x1) + 100}" y="{int(y1) + 100}"/>',
           f'    <VerticallyOppositeCoords x="{int(x0) - 100}" y="{int(y1) + 100}"/>',
           f'    <HorizontallyOppositeCoords x="{int(x1) + 100}" y="{int(y0) - 100}"/>',
           "  </WhiteboardDescription>", "  <StrokeSet>"]
    for s in ink.strokes:
        out.append(f'    <Stroke colour="black" start_time={quoteattr(f"{start + s.t[0]:.2f}")} '
                   f'end_time={quoteattr(f"{start + s.t[-1]:.2f}")}>')
        out.extend(f'      <Point x="{int(x)}" y="{int(y)}" time="{start + t:.2f}"/>'
                   for x, y, t in zip(s.x, s.y, s.t))
        out.append("    </Stroke>")
    out += ["  </StrokeSet>", "</WhiteboardCaptureSession>", ""]
    return "\n".join(out)


SECOND_LINE = "ink to text"
FORM = "z01-000z"   # an id no IAM-OnDB form has: writer z01 does not exist


def write_iamondb_form(root: Path, inks: list[Ink]) -> None:
    """A one-form database in IAM-OnDB's layout: line XMLs, the form's transcription, a split."""
    lines = root / "lineStrokes" / FORM[:3] / FORM[:7]
    ascii_dir = root / "ascii" / FORM[:3] / FORM[:7]
    lines.mkdir(parents=True, exist_ok=True)
    ascii_dir.mkdir(parents=True, exist_ok=True)
    for n, ink in enumerate(inks, 1):
        (lines / f"{FORM}-{n:02d}.xml").write_text(iamondb_xml(ink), encoding="iso-8859-1")
    prompt = " ".join(ink.text for ink in inks)
    body = "\n".join(ink.text for ink in inks)
    (ascii_dir / f"{FORM}.txt").write_text(f"OCR:\n\n{prompt}\n\nCSR:\n\n{body}\n", encoding="iso-8859-1")
    (root / "trainset.txt").write_text(f"{FORM}\n", encoding="ascii")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--text", default="hello world")
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "samples")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    ink = make_ink(args.text, args.seed)
    write_ink(ink, args.out / "hello.json")
    write_ink(ink, args.out / "hello.inkml")
    write_ink(ink, args.out / "hello.npy")
    (args.out / "hello.unipen").write_text(unipen.dumps(ink, rate=RATE), encoding="ascii")
    write_iamondb_form(args.out / "iamondb", [ink, make_ink(SECOND_LINE, args.seed + 1)])
    for f in sorted(p for p in args.out.rglob("*") if p.is_file() and p.suffix != ".txt"):
        back = read_ink(f)
        print(f"{str(f.relative_to(args.out)):<45} {len(back.strokes):>3} strokes {back.num_points:>5} points"
              f"  text={back.text!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
