#!/bin/sh
# Retake the README screenshots: the real app under Xvfb, written with xdotool.
#   gui/screenshots/take.sh [--model models/default.pt] [other take.py options]
# Needs (Debian/Ubuntu): xvfb xdotool imagemagick, and the Qt xcb plugin's libraries:
#   apt-get install xvfb xdotool imagemagick libxcb-cursor0 libxcb-icccm4 libxcb-image0 \
#     libxcb-keysyms1 libxcb-render-util0 libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0 \
#     libegl1 libgl1 libfontconfig1
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
exec "${PYTHON:-python}" gui/screenshots/take.py "$@"
