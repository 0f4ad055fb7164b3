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

# Parallel workers (pytest-xdist): most tests wait on peers (pcscd, mosquitto, simulators, subprocesses),
# so three workers on two cores roughly halve the run. --dist loadfile keeps each file in one worker
# (the pcscd tests share one pcscd on vpcd's fixed port). KIOSK_TEST_WORKERS=0 runs serially.
# schemathesis's xdist report hook is left out: at session end it imports a module under pytest's
# assertion rewriting, which CPython 3.11.7 can fail with "AST constructor recursion depth mismatch"
# after pyscard's threads raised in __del__.
workers="${KIOSK_TEST_WORKERS:-3}"
xdist=(-p no:schemathesis-xdist)
if [ "$workers" != "0" ]; then
  xdist+=(-n "$workers" --dist loadfile)
fi
.venv/bin/python -m pytest "${xdist[@]}" "$@"
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
