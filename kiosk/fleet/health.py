"""What a kiosk reports about itself on `qhb/kiosk/{id}/health`.

Every figure comes from an injectable provider so the running application can
plug in its live device adapters, its outbox and its platform client; the
defaults work in a standalone agent and say plainly when something is not
available rather than inventing a value.

The outbox is reached only through kiosk.ports.outbox.OutboxPort: whoever
composes the agent (the CLI, the application) hands in how to open it
(``open_outbox``, e.g. offline_cache.drainer.open_outbox) or its live stats.
"""
from __future__ import annotations

import functools
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from kiosk.config import KioskConfig
from kiosk.ports.outbox import OutboxPort

log = logging.getLogger(__name__)

DeviceProvider = Callable[[], dict[str, dict[str, Any]]]  # kind -> {"state", "code", "message", ...}
QueueProvider = Callable[[], dict[str, Any]]  # {"depth": int, "oldest_age_s": float | None}
ContactProvider = Callable[[], str | None]  # ISO time of the last successful platform call
OutboxOpener = Callable[[KioskConfig], OutboxPort]  # opens the configured outbox (offline_cache.drainer.open_outbox)
StatsSource = Callable[[], Mapping[str, Any]]  # a live outbox's stats (OutboxPort.stats)


@functools.cache  # importlib.metadata reads the dist-info each time: ~5 ms per health report
def app_version() -> str:
    try:
        return version("qhb-kiosk")
    except PackageNotFoundError:
        return "unknown"


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def configured_devices(cfg: KioskConfig) -> DeviceProvider:
    """Standalone agent: the devices belong to the app process, so only their configuration is known."""

    def provide() -> dict[str, dict[str, Any]]:
        return {kind: {"state": "unknown", "code": "not_observed", "driver": s.driver,
                       "message": "agent runs outside the kiosk application"}
                for kind, s in cfg.devices.items() if s.enabled}

    return provide


def adapter_devices(adapters: Iterable[Any]) -> DeviceProvider:
    """In-app: live status of opened `devices` adapters (no personal data lives there)."""
    adapters = list(adapters)

    def provide() -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for a in adapters:
            st = a.status.as_dict()
            last = a.last_health
            out[a.kind] = {**st, "driver": a.driver, "health_ok": None if last is None else last.ok}
        return out

    return provide


def queue_figures(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The health document's queue figures from an outbox's stats (OutboxPort.stats)."""
    out = {"available": True, "depth": stats.get("pending", 0) + stats.get("inflight", 0),
           "oldest_age_s": stats.get("oldest_pending_age_s"), "failed": stats.get("failed", 0)}
    if stats.get("moved_aside"):  # a corrupt queue was moved aside at start: the technician must look
        out["moved_aside"] = list(stats["moved_aside"])
    return out


def stats_queue(stats: StatsSource) -> QueueProvider:
    """In-app: the queue figures of the application's own open outbox (pass ``outbox.stats``)."""

    def provide() -> dict[str, Any]:
        return queue_figures(stats())

    return provide


def outbox_queue(cfg: KioskConfig, open_outbox: OutboxOpener | None = None) -> QueueProvider | None:
    """The offline outbox's depth and oldest age, opening it per report; None when no opener was given.

    ``open_outbox(cfg)`` opens the configured outbox (offline_cache.drainer.open_outbox);
    the composition root hands it in, so this module never imports the outbox itself.
    """
    if open_outbox is None:
        return None
    opener = open_outbox

    def provide() -> dict[str, Any]:
        path = cfg.data_dir / "outbox.db"
        if not path.exists():  # never create the database just to look at it
            return {"available": True, "depth": 0, "oldest_age_s": None, "failed": 0, "note": "no outbox yet"}
        try:
            with closing(opener(cfg)) as outbox:
                s = outbox.stats()
        except Exception as e:  # noqa: BLE001 - logged; a broken queue is itself a finding
            log.exception("outbox unreadable for the health report")
            return {"available": False, "error": f"{type(e).__name__}: {e}"[:200]}
        return queue_figures(s)

    return provide


@dataclass
class HealthProviders:
    devices: DeviceProvider | None = None
    queue: QueueProvider | None = None
    last_platform_contact: ContactProvider | None = None
    extra: Callable[[], dict[str, Any]] | None = None

    @classmethod
    def defaults(cls, cfg: KioskConfig, open_outbox: OutboxOpener | None = None) -> HealthProviders:
        """Standalone agent: configured devices, and the outbox when the caller says how to open it."""
        return cls(devices=configured_devices(cfg), queue=outbox_queue(cfg, open_outbox))


@dataclass
class HealthReporter:
    cfg: KioskConfig
    providers: HealthProviders
    started: float = field(default_factory=time.monotonic)

    def _safe(self, fn: Callable[[], Any] | None, unavailable: Any) -> Any:
        if fn is None:
            return unavailable
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - logged; one failing figure must not stop the report
            log.exception("health provider failed")
            return {"available": False, "error": type(e).__name__}

    def report(self, *, config_version: int, active_version: int, restart_pending: list[str]) -> dict[str, Any]:
        try:
            disk_free = shutil.disk_usage(self.cfg.data_dir if self.cfg.data_dir.exists() else "/").free
        except OSError:
            disk_free = None
        devices = self._safe(self.providers.devices, {})
        faults = sorted(k for k, d in devices.items()
                        if isinstance(d, dict)
                        and (d.get("state") in ("error", "offline") or d.get("health_ok") is False))
        doc = {
            "kiosk_id": self.cfg.kiosk.id,
            "group": self.cfg.kiosk.group,
            "station_name": self.cfg.kiosk.station_name,  # the fleet console's kiosk list
            "online": True,
            "at": utc_now_iso(),
            "ts": time.time(),
            "uptime_s": round(time.monotonic() - self.started, 1),
            "app_version": app_version(),
            "config_version": config_version,
            "active_config_version": active_version,
            "restart_pending": restart_pending,
            "devices": devices,
            "device_faults": faults,
            "queue": self._safe(self.providers.queue, {"available": False}),
            "disk_free_bytes": disk_free,
            "last_platform_contact": self._safe(self.providers.last_platform_contact, None),
        }
        if self.providers.extra:
            doc.update(self._safe(self.providers.extra, {}))
        return doc
