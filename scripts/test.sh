#!/usr/bin/env bash
# The README's test command. Services the tests need (pcscd, mosquitto, the
# platform and printer simulators, Xvfb) are started and stopped by the test
# fixtures themselves, so a single pytest run is the whole story.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh || exit 1
export PYTHONHASHSEED=0
.venv/bin/python -m pytest "$@"
rc=$?
if [ $rc -eq 5 ]; then
  echo "test: no tests were collected; that is a failure" >&2
  exit 1
fi
exit $rc
