"""What a kiosk reports about itself on `qhb/kiosk/{id}/health`.

Every figure comes from an injectable provider so the running application can
plug in its live device adapters, its outbox and its platform client; the
defaults work in a standalone agent and say plainly when something is not
available rather than inventing a value.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable

if TYPE_CHECKING:
    from kiosk.config import KioskConfig

DeviceProvider = Callable[[], dict[str, dict[str, Any]]]  # kind -> {"state", "code", "message", ...}
QueueProvider = Callable[[], dict[str, Any]]  # {"depth": int, "oldest_age_s": float | None}
ContactProvider = Callable[[], "str | None"]  # ISO time of the last successful platform call


def app_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qhb-kiosk")
    except PackageNotFoundError:
        return "unknown"


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def configured_devices(cfg: "KioskConfig") -> DeviceProvider:
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
        out = {}
        for a in adapters:
            st = a.status.as_dict()
            last = a.last_health
            out[a.kind] = {**st, "driver": a.driver, "health_ok": None if last is None else last.ok}
        return out

    return provide


def outbox_queue(cfg: "KioskConfig") -> QueueProvider | None:
    """The offline outbox's depth and oldest age (offline_cache.Outbox.stats); None without offline_cache."""
    try:
        from offline_cache.crypto import load_key
        from offline_cache.outbox import Outbox
    except ImportError:
        return None

    def provide() -> dict[str, Any]:
        path = cfg.data_dir / "outbox.db"
        if not path.exists():  # never create the database just to look at it
            return {"available": True, "depth": 0, "oldest_age_s": None, "failed": 0, "note": "no outbox yet"}
        try:
            with Outbox(path, load_key(cfg.resolve_path(cfg.storage.key_file))) as outbox:
                s = outbox.stats()
        except Exception as e:  # a broken queue is itself a finding
            return {"available": False, "error": f"{type(e).__name__}: {e}"[:200]}
        return {"available": True, "depth": s.get("pending", 0) + s.get("inflight", 0),
                "oldest_age_s": s.get("oldest_pending_age_s"), "failed": s.get("failed", 0)}

    return provide


@dataclass
class HealthProviders:
    devices: DeviceProvider | None = None
    queue: QueueProvider | None = None
    last_platform_contact: ContactProvider | None = None
    extra: Callable[[], dict[str, Any]] | None = None

    @classmethod
    def defaults(cls, cfg: "KioskConfig") -> "HealthProviders":
        return cls(devices=configured_devices(cfg), queue=outbox_queue(cfg))


@dataclass
class HealthReporter:
    cfg: "KioskConfig"
    providers: HealthProviders
    started: float = field(default_factory=time.monotonic)

    def _safe(self, fn: Callable[[], Any] | None, unavailable: Any) -> Any:
        if fn is None:
            return unavailable
        try:
            return fn()
        except Exception as e:
            return {"available": False, "error": type(e).__name__}

    def report(self, *, config_version: int, active_version: int, restart_pending: list[str]) -> dict[str, Any]:
        try:
            disk_free = shutil.disk_usage(self.cfg.data_dir if self.cfg.data_dir.exists() else "/").free
        except OSError:
            disk_free = None
        devices = self._safe(self.providers.devices, {})
        faults = sorted(k for k, d in devices.items()
                        if isinstance(d, dict) and (d.get("state") in ("error", "offline") or d.get("health_ok") is False))
        doc = {
            "kiosk_id": self.cfg.kiosk.id,
            "group": self.cfg.kiosk.group,
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
