"""Per-device diagnostics for technicians and fleet reports (like Home Assistant's).

Settings are included with anything that looks secret redacted; no personal data
lives in adapters' status, statistics or health, so the dict is safe to upload.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from devices.base import DeviceAdapter, HealthLevel
from kiosk.domain.redaction import redact_settings


def diagnostics(adapter: DeviceAdapter, *, run_health: HealthLevel | str | None = None) -> dict[str, Any]:
    """Status, statistics, last health (optionally running a non-interactive check first)."""
    if run_health is not None:
        lvl = HealthLevel(run_health)
        if lvl is HealthLevel.INTERACTIVE:
            raise ValueError("diagnostics never runs an interactive check")
        adapter.health(lvl)
    last = adapter.last_health
    return {
        "kind": adapter.kind,
        "driver": adapter.driver,
        "open": adapter.is_open,
        "status": adapter.status.as_dict(),
        "statistics": adapter.statistics,
        "last_health": last.as_dict() if last else None,
        "settings": redact_settings(adapter.settings),
        "generated_at": time.time(),
    }


def diagnostics_all(adapters: Iterable[DeviceAdapter], **kw: Any) -> dict[str, dict[str, Any]]:
    return {a.kind: diagnostics(a, **kw) for a in adapters}
