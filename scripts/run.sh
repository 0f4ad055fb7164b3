#!/usr/bin/env bash
# The README's run command (also `make run`): set-up, then the kiosk window with simulated devices and
# the embedded platform simulator when there is a display; otherwise the scripted demo,
# rendered offscreen, with its screenshots in var/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  exec .venv/bin/kiosk run --simulate "$@"
fi
echo "run: no display found; running the scripted walk-through instead (offscreen rendering)"
.venv/bin/kiosk demo --out var/demo
echo "run: screenshots in $(pwd)/var/demo/NN-step.png, receipts in var/demo/receipts/, steps in var/demo/walkthrough.json"
