#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian machine: system packages, then a .venv
# with the project and its dev extras. A second run does nothing slow.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  xvfb xauth libgl1 libgl1-mesa-dri libegl1 libmtdev1   # Kivy's GL/EGL, headless X
  xdotool                                               # the lockdown test presses F1, Escape, Alt+F4 under Xvfb
  fonts-wqy-microhei                                    # CJK font for UI and receipts
  libzbar0                                              # pyzbar
  libpcsclite-dev pcscd vsmartcard-vpcd                 # pyscard + virtual reader for tests
  mosquitto                                             # fleet MQTT broker for tests
  postgresql                                            # the fleet console's PostgreSQL path in tests
  chromium chromium-driver                              # the fleet console's pages in headless Chromium (Selenium)
  espeak-ng                                             # offline Mandarin voice prompts
  tesseract-ocr tesseract-ocr-chi-sim                   # OCR for the legibility benchmark and its test (chi_sim)
  gcc python3-dev python3-venv make                     # pyscard / evdev build from source; venv
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  [[ "$p" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.stamp-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
  echo "setup: installing the project into .venv"
  .venv/bin/python -m pip install -q --upgrade pip setuptools wheel
  .venv/bin/python -m pip install -q -e '.[dev]'
  rm -f .venv/.stamp-*
  touch "$stamp"
fi
