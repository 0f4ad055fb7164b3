"""Restart keys with a boot counter: a pushed layer that keeps the app from starting is undone.

Keys that need a restart (device tuning, log level, voice backend, ...) are
applied, and the guard is armed with the layer that last booted (the fallback).
Each start of ``kiosk run`` counts itself *before* the configuration is loaded
(:func:`note_start`); reaching READY (:func:`note_ready`) disarms the guard. When
two starts in a row did not reach READY (a crash, or systemd's watchdog killing a
hung start), the third start restores the fallback layer before it loads anything
and leaves a failure report that the fleet agent sends in its next
acknowledgement (reason ``restart_failed``).

State, in the fleet state directory, written atomically:
``boot_guard.json`` ``{"version", "restart_keys", "fallback", "starts", "armed_at"}``
and ``boot_failure.json`` (the report, until an agent has sent it).
"""
from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk.fleet.trust import LAST_GOOD, PUSHED, read_json
from kiosk.infra.atomic_file import atomic_write_json

log = logging.getLogger(__name__)

GUARD = "boot_guard.json"
FAILURE = "boot_failure.json"
#: Starts that may fail to reach READY under a new restart-key layer before it is undone.
MAX_FAILED_STARTS = 2


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def arm(state_dir: str | os.PathLike[str], version: int, restart_keys: list[str],
        fallback: dict[str, Any] | None) -> None:
    """A layer with restart keys was just applied; `fallback` is the layer that last booted (None: none).

    A second restart-key bundle before the restart keeps the first one's fallback:
    that is still the last layer known to boot.
    """
    d = Path(state_dir)
    current = read_json(d / GUARD)
    if isinstance(current, dict) and "fallback" in current:
        fallback = current["fallback"]
    atomic_write_json(d / GUARD, {"version": version, "restart_keys": sorted(restart_keys), "fallback": fallback,
                                  "starts": 0, "armed_at": _now()})


def armed(state_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    doc = read_json(Path(state_dir) / GUARD)
    return doc if isinstance(doc, dict) else None


def start(state_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Count one start; past MAX_FAILED_STARTS failed ones, restore the fallback. Returns the report if it did."""
    d = Path(state_dir)
    guard = armed(d)
    if guard is None:
        return None
    starts = int(guard.get("starts", 0)) + 1
    if starts <= MAX_FAILED_STARTS:
        atomic_write_json(d / GUARD, guard | {"starts": starts})
        return None
    fallback = guard.get("fallback")
    if isinstance(fallback, dict):
        atomic_write_json(d / PUSHED, fallback)
        atomic_write_json(d / LAST_GOOD, fallback)
    else:
        _unlink(d / PUSHED)
        _unlink(d / LAST_GOOD)
    report = {
        "version": guard.get("version"),
        "restart_keys": guard.get("restart_keys", []),
        "failed_starts": starts - 1,
        "restored_version": fallback.get("version") if isinstance(fallback, dict) else None,
        "at": _now(),
    }
    atomic_write_json(d / FAILURE, report)
    _unlink(d / GUARD)
    log.error("pushed configuration did not reach READY after %d starts; last-known-good layer restored",
              starts - 1, extra={"version": report["version"], "restored_version": report["restored_version"]})
    return report


def ready(state_dir: str | os.PathLike[str]) -> bool:
    """The app reached READY: a guard counted by a start of *this* layer is disarmed. True if it was."""
    d = Path(state_dir)
    guard = armed(d)
    if guard is None or int(guard.get("starts", 0)) < 1:
        return False  # armed after this process had started: its own restart has not happened yet
    _unlink(d / GUARD)
    log.info("pushed configuration booted", extra={"version": guard.get("version")})
    return True


def failure_report(state_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The restored layer's report, until an agent has acknowledged it (:func:`clear_failure`)."""
    doc = read_json(Path(state_dir) / FAILURE)
    return doc if isinstance(doc, dict) else None


def clear_failure(state_dir: str | os.PathLike[str]) -> None:
    _unlink(Path(state_dir) / FAILURE)


def describe(report: dict[str, Any]) -> str:
    """The acknowledgement's detail."""
    restored = report.get("restored_version")
    return (f"did not reach READY within its watchdog after {report.get('failed_starts')} restarts for "
            f"{', '.join(report.get('restart_keys') or []) or 'its restart keys'}; last-known-good layer restored "
            f"({'v' + str(restored) if restored else 'site configuration only'})")
