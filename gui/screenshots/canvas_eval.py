"""Write lines of a dataset into the real app with the mouse and score the text it shows.

The app runs as a user runs it (``python -m inkread gui``) on a private X
server (Xvfb); xdotool moves the mouse along each line's recorded strokes at
the speed they were written (times ``--speed``), so the ink reaches the
recogniser only through the canvas: whole screen pixels, the mouse events X
delivers, the app's own line finding and live recognition. After each page
of lines the text is taken from the app's "Copy text" (Ctrl+C, read back with
xclip) and compared with the transcriptions; the same lines' recorded ink is
also recognised directly, with the same model and LM, for reference.

Needs what take.sh needs, plus xclip (apt-get install xclip). Settings and
autosave go to a temporary XDG directory, removed at the end. No ink or
screenshot is kept unless ``--keep DIR`` is given: then each page's screenshot
and the app's autosave of its ink (native JSON) stay there. Do not commit
IAM-OnDB's: its terms forbid.

    python gui/screenshots/canvas_eval.py --data iamondb:$IAM@testset_v --lines 40
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

from inkread.commands.argtypes import number, whole

sys.path.insert(0, str(Path(__file__).resolve().parent))
from take import CANVAS_BG, FIRST_BASELINE, LINE_SPACING, canvas_origin, run, screenshot, start_xvfb, xdotool_script  # noqa: E402

SCREEN = (2560, 1200)


def placed_strokes(ink, height: float, width: float) -> list[np.ndarray]:
    """The ink's strokes as (n, 3) x, y, t in pixels from its left end and baseline.

    Scaled so that the middle half of its y-range is ``height`` pixels (about
    an x-height), or less when the line would be wider than ``width``.
    """
    arr = ink.to_array()
    body = np.percentile(arr[:, 1], 75) - np.percentile(arr[:, 1], 25)
    s = height / max(body, 1e-9)
    s = min(s, width / max(np.ptp(arr[:, 0]), 1e-9))
    x0, base, t0 = arr[:, 0].min(), np.percentile(arr[:, 1], 80), arr[0, 2]
    return [np.column_stack([(st.x - x0) * s, (st.y - base) * s, st.t - t0]) for st in ink.strokes]


def canvas_right(png: Path, top: int) -> int:
    """The canvas's right edge: the last paper-coloured pixel along a row just below its top."""
    from PIL import Image
    img = np.asarray(Image.open(png).convert("RGB"))
    return int(np.flatnonzero((img[top + 5] == CANVAS_BG).all(axis=1))[-1])


def app_text(env: dict, want: int, timeout: float = 30.0) -> list[str]:
    """The app's recognised text (Ctrl+C, then the clipboard), once it holds ``want`` lines and is stable."""
    last, deadline = None, time.time() + timeout
    while time.time() < deadline:
        run(["xdotool", "key", "ctrl+c"], env=env)
        time.sleep(0.3)
        got = subprocess.run(["xclip", "-o", "-selection", "clipboard"], env=env,
                             capture_output=True, text=True).stdout
        lines = [s.strip() for s in got.splitlines()]
        if len(lines) >= want and got == last:
            return lines
        last = got
        time.sleep(1.0)
    return [s.strip() for s in (last or "").splitlines()]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, metavar="SPEC", help="dataset spec (inkread data SPEC)")
    p.add_argument("--lines", type=whole(1), default=40, help="how many lines")
    p.add_argument("--skip", type=whole(0), default=0, help="start after this many lines of the data")
    p.add_argument("--per-page", type=whole(1, 8), default=6,
                   help="lines written before the page is read and cleared")
    p.add_argument("--height", type=number(4, 60), default=17.0, help="x-height in screen pixels")
    p.add_argument("--speed", type=number(above=0), default=2.0, help="writing speed vs. real time")
    p.add_argument("--model", help="model file (default: the app's default model)")
    p.add_argument("--display", default=":78")
    p.add_argument("--keep", metavar="DIR", help="keep each page's screenshot and the app's ink here")
    args = p.parse_args()
    for tool in ("Xvfb", "xdotool", "import", "xclip"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: apt-get install xvfb xdotool imagemagick xclip")
    from inkread.datasets import load_spec
    from inkread.recognizer import Recognizer
    from inkread.train import error_rates
    from inkread.errors import InkreadError
    try:
        samples = [s for s in load_spec(args.data) if not s.ink.is_empty][args.skip:args.skip + args.lines]
    except InkreadError as exc:
        raise SystemExit(f"canvas_eval.py: {exc}")
    if not samples:
        raise SystemExit(f"canvas_eval.py: {args.data} holds no line with ink after the first {args.skip}")
    tmp = Path(tempfile.mkdtemp(prefix="inkread-canvas-"))
    keep = Path(args.keep) if args.keep else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DISPLAY=args.display, QT_QPA_PLATFORM="xcb",
               XDG_CONFIG_HOME=str(tmp / "config"), XDG_DATA_HOME=str(tmp / "data"))
    xvfb = start_xvfb(args.display, f"{SCREEN[0]}x{SCREEN[1]}")
    hyps: list[str] = []
    miscounted: list[int] = []  # pages on which the app found another number of lines
    try:
        cmd = [sys.executable, "-m", "inkread", "gui"] + (["--model", args.model] if args.model else [])
        with open(tmp / "app.log", "w") as log:
            app = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            win = run(["xdotool", "search", "--sync", "--onlyvisible", "--name", "inkread"],
                      env=env, timeout=60).split()[0]
            run(["xdotool", "windowmove", win, "0", "0", "windowsize", win,
                 str(SCREEN[0] - 20), str(SCREEN[1] - 20)], env=env)
            time.sleep(3.0)  # the model loads in the background
            screenshot(tmp / "start.png", env)
            ox, oy = canvas_origin(tmp / "start.png")
            width = canvas_right(tmp / "start.png", oy) - ox - 80
            for start in range(0, len(samples), args.per_page):
                page = samples[start:start + args.per_page]
                run(["xdotool", "key", "Delete"], env=env)  # Clear page
                time.sleep(0.5)
                for k, s in enumerate(page):
                    strokes = placed_strokes(s.ink, args.height, width)
                    script = tmp / "line.xdo"
                    script.write_text(xdotool_script(strokes, ox + 40, oy + FIRST_BASELINE + k * LINE_SPACING,
                                                     args.speed))
                    run(["xdotool", str(script)], env=env)
                got = app_text(env, len(page))
                if keep:
                    screenshot(keep / f"page{start // args.per_page:03d}.png", env)
                    time.sleep(3.5)  # the autosave's delay
                    for saved in (tmp / "data").rglob("*.json"):
                        shutil.copy(saved, keep / f"page{start // args.per_page:03d}.json")
                if len(got) != len(page):
                    miscounted.append(start // args.per_page)
                    print(f"page {start // args.per_page}: the app shows {len(got)} lines for "
                          f"{len(page)} written", flush=True)
                got = (got + [""] * len(page))[: len(page)]
                hyps += got
                print(f"lines {start + 1}-{start + len(page)} of {len(samples)}", flush=True)
        finally:
            app.terminate()
            app.wait(10)
    finally:
        xvfb.terminate()
        xvfb.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    refs = [s.text for s in samples]
    rec = Recognizer.load(args.model)  # None: the default model, as the app
    direct = [r.text for r in rec.recognize_batch([s.ink for s in samples])]
    cer, wer = error_rates(refs, hyps)
    dcer, dwer = error_rates(refs, direct)
    settled = [k for k in range(len(samples)) if k // args.per_page not in miscounted]
    for s, h, d in zip(samples, hyps, direct):
        if h != d:
            print(f"{s.id}\n  ref    {s.text}\n  canvas {h}\n  direct {d}")
    pages = (len(samples) + args.per_page - 1) // args.per_page
    print(f"{len(samples)} lines of {args.data} from line {args.skip + 1}, x-height {args.height:g} px, "
          f"{args.speed:g}x real time; the app found another number of lines on {len(miscounted)} of {pages} pages")
    print(f"through the canvas: CER {100 * cer:.2f}% WER {100 * wer:.2f}%")
    print(f"recorded ink, recognised directly: CER {100 * dcer:.2f}% WER {100 * dwer:.2f}%")
    if miscounted and settled:
        for name, texts in (("through the canvas", hyps), ("recognised directly", direct)):
            c, w = error_rates([refs[k] for k in settled], [texts[k] for k in settled])
            print(f"the {len(settled)} lines of the other pages, {name}: CER {100 * c:.2f}% WER {100 * w:.2f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
