#!/usr/bin/env bash
# Reproduce docs/screenshot_app.png: the real PuppetCam window under Xvfb, driven by a real video
# with the bundled Mona Lisa, grabbed mid-animation.
# Needs: apt-get install -y xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 \
#          libxkbcommon-x11-0 libxcb-xinerama0 libxcb-randr0 libxcb-shape0 libxcb-cursor0
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
DRIVER=${1:-../shared/data/driving/lp_d3.mp4}
unset QT_QPA_PLATFORM  # use the X server Xvfb provides
xvfb-run -a -s "-screen 0 1600x1000x24" \
  "$PYTHON" -m app.gui.screenshot --driver "$DRIVER" --avatar app/assets/avatars/mona_lisa.jpg \
  --out docs/screenshot_app.png --at 4.5
