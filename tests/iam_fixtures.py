"""The fake IAM-OnDB of the tests, written out at test time.

The line files are kept here as point lists rather than as XML files in the
database's layout, so the repository holds nothing that looks like a copy of
the restricted dataset. The strokes and texts are invented (a few zig-zags);
the transcriptions and split lists stay in tests/fixtures/iamondb/.
Form a01-000u is in trainset.txt (two lines, the second with stroke start
times out of order), b01-001 in testset_v.txt (one transcribed line and one
line file without a transcription line, which must be skipped).
"""
from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

SOURCE = Path(__file__).parent / "fixtures"
BOARD = ('  <WhiteboardDescription>\n    <SensorLocation corner="top_left"/>\n'
         '    <DiagonallyOppositeCoords x="3000" y="1500"/>\n  </WhiteboardDescription>\n')

# line file -> (with a board description, strokes of (x, y, time) points)
LINES = {
    "a01/a01-000/a01-000u-01.xml": (True, [
        [(1000, 1100, 100.00), (1010, 1060, 100.01), (1020, 1100, 100.01), (1030, 1060, 100.03),
         (1040, 1100, 100.04)],
        [(1100, 1050, 100.20), (1110, 1100, 100.21), (1120, 1050, 100.22), (1130, 1100, 100.23)]]),
    "a01/a01-000/a01-000u-02.xml": (False, [
        [(1300, 1200, 200.50), (1310, 1240, 200.51), (1320, 1200, 200.52)],
        [(1200, 1240, 200.00), (1210, 1200, 200.01), (1220, 1240, 200.02)]]),
    "b01/b01-001/b01-001-01.xml": (False, [
        [(500, 700, 5.00), (520, 660, 5.01), (540, 700, 5.02), (560, 660, 5.03)]]),
    "b01/b01-001/b01-001-02.xml": (False, [[(600, 700, 9.00), (620, 660, 9.01)]]),
}


def line_xml(board: bool, strokes: list) -> str:
    """One line file in the database's XML layout."""
    out = ['<?xml version="1.0" encoding="ISO-8859-1"?>\n<WhiteboardCaptureSession>\n',
           BOARD if board else "", "  <StrokeSet>\n"]
    for pts in strokes:
        out.append(f'    <Stroke colour="black" start_time="{pts[0][2]:.2f}" end_time="{pts[-1][2]:.2f}">\n')
        out.extend(f'      <Point x="{x}" y="{y}" time="{t:.2f}"/>\n' for x, y, t in pts)
        out.append("    </Stroke>\n")
    out.append("  </StrokeSet>\n</WhiteboardCaptureSession>\n")
    return "".join(out)


def build() -> Path:
    """A temporary copy of tests/fixtures with the fake IAM-OnDB line files written in."""
    root = Path(tempfile.mkdtemp(prefix="inkread-fixtures-"))
    atexit.register(shutil.rmtree, root, True)
    tree = root / "fixtures"
    shutil.copytree(SOURCE, tree)
    for rel, (board, strokes) in LINES.items():
        path = tree / "iamondb" / "lineStrokes" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(line_xml(board, strokes), encoding="iso-8859-1")
    return tree


FIXTURES = build()
