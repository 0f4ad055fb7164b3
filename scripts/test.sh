#!/usr/bin/env bash
# The README's test command. First the house rules (ruff, mypy, import-linter: see
# CONTRIBUTING.md), then every test. Services the tests need (pcscd, mosquitto, the
# platform and printer simulators, Xvfb) are started and stopped by the test
# fixtures themselves, so a single pytest run is the whole story.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh || exit 1
export PYTHONHASHSEED=0

lint_rc=0
echo "test: ruff"
.venv/bin/ruff check kiosk devices offline_cache screens standins tests bench scripts || lint_rc=1
echo "test: mypy"
.venv/bin/mypy || lint_rc=1
echo "test: import-linter"
.venv/bin/lint-imports --no-cache || lint_rc=1

.venv/bin/python -m pytest "$@"
rc=$?
if [ $rc -eq 5 ]; then
  echo "test: no tests were collected; that is a failure" >&2
  exit 1
fi
if [ $rc -eq 0 ] && [ $lint_rc -ne 0 ]; then
  echo "test: the tests passed but ruff, mypy or import-linter found a violation (above)" >&2
  exit 1
fi
exit $rc
