"""Take the README screenshots of the real app, written by a simulated hand under Xvfb.

The app runs as a user runs it (``python -m inkread gui``) on a private X
server (Xvfb, 1280x800); xdotool moves the mouse along synthetic handwriting
(:func:`inkread.synth.generate_line`) at the speed it was written, so every
stroke goes through the canvas's normal mouse handling and live
recognition. Settings and autosave go to a temporary XDG directory, so a
user's own preferences are untouched.

Needs: Xvfb, xdotool and ImageMagick's ``import`` (apt-get install xvfb
xdotool imagemagick), and the Qt xcb plugin's libraries (see
gui/screenshots/take.sh). Run via take.sh; ``--help`` lists the options.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CANVAS_BG = (255, 255, 253)  # InkCanvas paper colour, used to find the canvas
LINE_SPACING = 120           # InkCanvas.LINE_SPACING
FIRST_BASELINE = 96          # 0.8 * LINE_SPACING


def run(cmd: list[str], **kw) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def start_xvfb(display: str, screen: str = "1280x800") -> subprocess.Popen:
    proc = subprocess.Popen(["Xvfb", display, "-screen", "0", f"{screen}x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if Path(f"/tmp/.X11-unix/X{display[1:]}").exists():
            return proc
        time.sleep(0.05)
    proc.terminate()
    raise SystemExit(f"Xvfb did not start on {display}")


def screenshot(path: Path, env: dict) -> None:
    run(["import", "-window", "root", str(path)], env=env)


def canvas_origin(png: Path) -> tuple[int, int]:
    """Top-left of the canvas: the first paper-coloured pixel down column 20."""
    from PIL import Image
    img = np.asarray(Image.open(png).convert("RGB"))
    rows = np.flatnonzero((img[:, 20] == CANVAS_BG).all(axis=1))
    if not rows.size:
        raise SystemExit(f"{png}: cannot find the canvas (is the app on screen?)")
    cols = np.flatnonzero((img[rows[0] + 5] == CANVAS_BG).all(axis=1))
    return int(cols[0]), int(rows[0])


def handwriting(text: str, seed: int, height: float) -> list[np.ndarray]:
    """Strokes of ``text`` as (n, 3) arrays x, y, t; x-height about ``height`` pixels."""
    from inkread.synth import generate_line
    from inkread.synth.style import sample_style
    style = sample_style(np.random.default_rng(seed), script=True)
    ink = generate_line(text, seed=seed, style=style)
    arr = ink.to_array()
    xh = np.percentile(arr[:, 1], 75) - np.percentile(arr[:, 1], 25)
    s = height / max(xh, 1e-9)
    x0, base = arr[:, 0].min(), np.percentile(arr[:, 1], 80)
    t0 = arr[0, 2]
    return [np.column_stack([(st.x - x0) * s, (st.y - base) * s, st.t - t0]) for st in ink.strokes]


def xdotool_script(strokes: list[np.ndarray], ox: float, oy: float, speed: float) -> str:
    """Commands that write ``strokes`` at offset (ox, oy), ``speed`` times real time."""
    out, last_t = [], 0.0
    for st in strokes:
        pts = np.round(st[:, :2] + [ox, oy]).astype(int)
        keep = np.concatenate([[True], np.any(np.diff(pts, axis=0) != 0, axis=1)])
        pts, ts = pts[keep], st[keep, 2]
        out.append(f"sleep {max(ts[0] - last_t, 0.05) / speed:.3f}")
        out.append(f"mousemove {pts[0, 0]} {pts[0, 1]}")
        out.append("mousedown 1")
        for (x, y), dt in zip(pts[1:], np.diff(ts)):
            out.append(f"sleep {max(dt, 0.004) / speed:.3f}")
            out.append(f"mousemove {x} {y}")
        out.append("mouseup 1")
        last_t = ts[-1]
    return "\n".join(out) + "\n"


def write_lines(lines: list[str], origin: tuple[int, int], env: dict, speed: float, tmp: Path) -> list:
    placed = []
    for k, text in enumerate(lines):
        strokes = handwriting(text, seed=11 + k, height=17.0)
        ox, oy = origin[0] + 40, origin[1] + FIRST_BASELINE + k * LINE_SPACING
        script = tmp / f"line{k}.xdo"
        script.write_text(xdotool_script(strokes, ox, oy, speed))
        run(["xdotool", str(script)], env=env)
        placed.append((strokes, ox, oy))
    return placed


def session(args: argparse.Namespace, env: dict, tmp: Path, out: Path) -> None:
    """Start the app, write the lines, and take the three screenshots."""
    cmd = [sys.executable, "-m", "inkread", "gui"] + (["--model", args.model] if args.model else [])
    with open(tmp / "app.log", "w") as log:
        app = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        run(["xdotool", "search", "--sync", "--onlyvisible", "--name", "inkread"], env=env, timeout=60)
        time.sleep(3.0)  # the model loads in the background
        screenshot(tmp / "start.png", env)
        placed = write_lines(args.lines, canvas_origin(tmp / "start.png"), env, args.speed, tmp)
        time.sleep(2.5)
        screenshot(out / "gui-live-recognition.png", env)
        select_char(placed[0], env, args.char_stroke)
        time.sleep(args.saliency_wait)
        screenshot(out / "gui-saliency.png", env)
        run(["xdotool", "key", "ctrl+r"], env=env)  # demo panel: replay the current line
        time.sleep(args.saliency_wait + 2.0)
        screenshot(out / "gui-demo.png", env)
    finally:
        app.terminate()
        app.wait(10)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model file (default: the app's default model)")
    p.add_argument("--out", default=str(HERE), help="folder for the PNGs (default: here)")
    p.add_argument("--display", default=":77")
    p.add_argument("--speed", type=float, default=1.5, help="writing speed vs. real time")
    p.add_argument("--lines", nargs="+", default=["the quick brown fox", "jumps over the lazy dog"])
    p.add_argument("--char-stroke", type=int, default=2,
                   help="right-click the middle of this stroke of line 1 to explain its character")
    p.add_argument("--saliency-wait", type=float, default=5.0, help="seconds to wait for saliency")
    args = p.parse_args()
    for tool in ("Xvfb", "xdotool", "import"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: apt-get install xvfb xdotool imagemagick")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="inkread-shots-"))
    env = dict(os.environ, DISPLAY=args.display, QT_QPA_PLATFORM="xcb",
               XDG_CONFIG_HOME=str(tmp / "config"), XDG_DATA_HOME=str(tmp / "data"))
    xvfb = start_xvfb(args.display)
    try:
        session(args, env, tmp, out)
    finally:
        xvfb.terminate()
        xvfb.wait(10)
    print(f"wrote gui-live-recognition.png, gui-saliency.png, gui-demo.png to {out} "
          f"(app log: {tmp / 'app.log'})")
    return 0


def select_char(line: tuple, env: dict, stroke: int = 2) -> None:
    """Right-click the middle of one stroke of the first line: selects the box under it."""
    strokes, ox, oy = line
    st = strokes[min(stroke, len(strokes) - 1)]
    x, y = np.round(st[len(st) // 2, :2] + [ox, oy]).astype(int)
    run(["xdotool", "mousemove", str(x), str(y), "click", "3"], env=env)


if __name__ == "__main__":
    raise SystemExit(main())
