"""`kiosk diagnose`: what is wrong with this kiosk, for the technician standing in front of it.

Each check answers ok / warn / fail / unavailable with one plain line and the
details behind it. Anything that fails needs a technician and makes the command
exit non-zero. The support bundle packs the same report with redacted logs,
the configuration without secrets and device statistics.
"""
from __future__ import annotations

import io
import json
import logging
import re
import shutil
import sqlite3
import tarfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import requests

from kiosk.config import ConfigError, KioskConfig
from kiosk.domain.redaction import REDACTOR, SECRET_PLACEHOLDER, is_secret_key
from kiosk.fleet.apply import ConfigApplier, load_effective
from kiosk.fleet.health import OutboxOpener, outbox_queue
from kiosk.ports.devices import DeviceFactory, DevicePort

log = logging.getLogger(__name__)

OK, WARN, FAIL, UNAVAILABLE = "ok", "warn", "fail", "unavailable"
SKEW_WARN_S, SKEW_FAIL_S = 30.0, 300.0
DISK_FAIL_BYTES, DISK_WARN_BYTES = 500 * 2**20, 2 * 2**30
DB_SUFFIXES = (".db", ".sqlite", ".sqlite3")
LOG_TAIL_BYTES = 2 * 2**20


@dataclass
class Check:
    name: str
    status: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    checks: list[Check]
    generated_at: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))

    @property
    def needs_technician(self) -> bool:
        return any(c.status == FAIL for c in self.checks)

    def as_json(self) -> dict[str, Any]:
        return {"needs_technician": self.needs_technician, "generated_at": self.generated_at,
                "checks": [asdict(c) for c in self.checks]}


# ------------------------------------------------------------------ checks
def check_config(site_file: str | None, env: Mapping[str, str] | None) -> tuple[Check, Any]:
    try:
        applier = ConfigApplier(site_file, env=env)
        loaded = applier.effective()
    except ConfigError as e:
        return Check("config", FAIL, "配置文件有错误 (configuration invalid)",
                     {"problems": [{"key": k, "source": s, "message": m} for k, s, m in e.problems]}), None
    trust = applier.trust.meta
    details = {
        "files": loaded.files,
        "trusted_bundle_version": applier.trust.current_version(),
        "active_bundle_version": applier.active_version(),
        "last_bundle_outcome": trust.get("outcome"),
        "last_bundle_accepted_at": trust.get("accepted_at"),
        "keys_from_bundle": sorted(k for k, s in loaded.sources.items() if s.startswith("fleet bundle")),
        "keys_from_environment": sorted(k for k, s in loaded.sources.items() if s == "environment"),
    }
    summary = (f"configuration valid; fleet bundle v{details['active_bundle_version']} active"
               if details["active_bundle_version"] else "configuration valid; no fleet bundle applied")
    return Check("config", OK, summary, details), loaded


def check_devices(cfg: KioskConfig, level: str = "external", timeout: float = 10.0,
                  create: DeviceFactory | None = None) -> list[Check]:
    """Open each enabled device with `create` (the composition root's driver table) and run its health checks."""
    if create is None:
        return [Check("devices", UNAVAILABLE, "devices package not available", {})]
    checks = []
    for kind, settings in sorted(cfg.devices.items()):
        if not settings.enabled:
            checks.append(Check(f"device.{kind}", OK, "disabled in configuration", {"driver": settings.driver}))
            continue
        adapter: DevicePort | None = None
        try:
            adapter = create(kind, settings)
            adapter.open()
            internal = adapter.health("internal", timeout=timeout)
            external = adapter.health(level, timeout=timeout) if level != "internal" else internal
            ok = internal.ok and external.ok
            details = {"driver": settings.driver, "status": adapter.status.as_dict(),
                       "internal": internal.as_dict(), "external": external.as_dict(),
                       "statistics": adapter.statistics}
            msg = "设备正常" if ok else (external.message if not external.ok else internal.message)
            checks.append(Check(f"device.{kind}", OK if ok else FAIL, msg, details))
        except Exception as e:  # noqa: BLE001 - a failing device is the finding; DeviceError has message and code
            log.info("device %s check failed", kind, exc_info=True)
            checks.append(Check(f"device.{kind}", FAIL, getattr(e, "message", None) or f"{type(e).__name__}",
                                {"driver": settings.driver, "code": getattr(e, "code", type(e).__name__)}))
        finally:
            if adapter is not None:
                try:
                    adapter.close()
                except Exception:  # noqa: BLE001 - the check already has its answer
                    log.info("closing %s after its check failed", kind, exc_info=True)
    return checks


def check_platform(cfg: Any, timeout: float = 5.0) -> Check:
    url = cfg.platform.base_url
    t0 = time.time()
    try:
        r = requests.get(url, timeout=(min(timeout, cfg.platform.connect_timeout_s), timeout),
                         verify=cfg.platform.verify_tls and (cfg.platform.ca_bundle or True), allow_redirects=False)
    except requests.RequestException as e:
        return Check("platform", FAIL, "无法连接政务服务平台 (platform unreachable); check the network",
                     {"url": url, "error": type(e).__name__})
    t1 = time.time()
    details: dict[str, Any] = {"url": url, "http_status": r.status_code, "round_trip_ms": round((t1 - t0) * 1000)}
    date = r.headers.get("Date")
    if not date:
        return Check("platform", WARN, "platform reachable; it sent no Date header, clock skew unknown", details)
    try:
        server = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return Check("platform", WARN, "platform reachable; its Date header is unreadable", details)
    skew = (t0 + t1) / 2 - server  # positive: our clock is ahead
    details["clock_skew_s"] = round(skew, 1)
    if abs(skew) >= SKEW_FAIL_S:
        return Check("platform", FAIL, f"本机时钟偏差 {skew:+.0f} 秒 (clock skew); fix NTP", details)
    if abs(skew) >= SKEW_WARN_S:
        return Check("platform", WARN, f"clock skew {skew:+.0f} s", details)
    return Check("platform", OK, f"platform reachable, clock skew {skew:+.1f} s", details)


def check_queue(cfg: KioskConfig, open_outbox: OutboxOpener | None = None) -> Check:
    """Depth and age of the offline queue, opened read-only through `open_outbox` (from the composition root)."""
    provider = outbox_queue(cfg, open_outbox)
    if provider is None:
        return Check("queue", UNAVAILABLE, "not available: the offline outbox (offline_cache) is not installed", {})
    s = provider()
    if not s.get("available"):
        return Check("queue", FAIL, "离线队列无法打开 (outbox unreadable)", s)
    age = s.get("oldest_age_s")
    if s.get("moved_aside"):
        return Check("queue", WARN, "离线队列数据库曾损坏，已移开并重建 (corrupt outbox moved aside): "
                     + ", ".join(s["moved_aside"]), s)
    if s.get("failed"):
        return Check("queue", WARN, f"{s['failed']} record(s) refused by the platform need follow-up", s)
    if age is not None and age > 86400:
        return Check("queue", WARN,
                     f"{s['depth']} waiting, oldest {age / 3600:.0f} h old: is the platform reachable?", s)
    return Check("queue", OK, f"{s.get('depth', 0)} record(s) waiting", s)


def find_databases(data_dir: Path) -> list[Path]:
    if not data_dir.exists():
        return []
    return sorted(p for p in data_dir.rglob("*") if p.is_file() and p.suffix in DB_SUFFIXES)


def check_databases(data_dir: Path) -> Check:
    results: dict[str, str] = {}
    for db in find_databases(data_dir):
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
            try:
                rows = con.execute("PRAGMA integrity_check").fetchall()
            finally:
                con.close()
            results[str(db.relative_to(data_dir))] = "ok" if rows == [("ok",)] else "; ".join(r[0] for r in rows)[:300]
        except sqlite3.DatabaseError as e:
            results[str(db.relative_to(data_dir))] = f"unreadable: {e}"
    bad = {k: v for k, v in results.items() if v != "ok"}
    if bad:
        return Check("databases", FAIL, f"数据库损坏 (database damaged): {', '.join(sorted(bad))}", results)
    return Check("databases", OK, f"{len(results)} database(s) pass integrity_check", results)


def check_disk(data_dir: Path) -> Check:
    path = data_dir if data_dir.exists() else Path("/")
    u = shutil.disk_usage(path)
    details = {"path": str(path), "free_bytes": u.free, "total_bytes": u.total}
    free_mb = u.free / 2**20
    if u.free < DISK_FAIL_BYTES:
        return Check("disk", FAIL, f"磁盘空间不足 (disk nearly full): {free_mb:.0f} MB free", details)
    if u.free < DISK_WARN_BYTES:
        return Check("disk", WARN, f"{free_mb:.0f} MB free", details)
    return Check("disk", OK, f"{free_mb / 1024:.1f} GB free", details)


def run_diagnostics(site_file: str | None = None, *, env: Mapping[str, str] | None = None,
                    devices: bool = True, device_level: str = "external", http_timeout: float = 5.0,
                    create_device: DeviceFactory | None = None, open_outbox: OutboxOpener | None = None) -> Report:
    """Every check; devices and the queue through the factories the caller (the CLI) hands in."""
    cfg_check, loaded = check_config(site_file, env)
    checks = [cfg_check]
    if loaded is None:
        return Report(checks)
    cfg = loaded.config
    if devices:
        checks += check_devices(cfg, device_level, create=create_device)
    checks += [check_platform(cfg, http_timeout), check_queue(cfg, open_outbox), check_databases(cfg.data_dir),
               check_disk(cfg.data_dir)]
    return Report(checks)


# ------------------------------------------------------------------ support bundle
def _redact_text(text: str) -> str:
    return REDACTOR.redact(text)


def config_without_secrets(loaded: Any) -> dict[str, Any]:
    def scrub(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: (SECRET_PLACEHOLDER if is_secret_key(k) and v not in (None, "", [])
                        else scrub(v)) for k, v in obj.items()}
        if isinstance(obj, list):
            return [scrub(x) for x in obj]
        return obj

    return {"config": scrub(loaded.config.model_dump(mode="json")), "files": loaded.files,
            "sources": loaded.sources}


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
    tar.addfile(info, io.BytesIO(data))


def write_support_bundle(out: str | Path, report: Report, site_file: str | None = None,
                         env: Mapping[str, str] | None = None) -> list[str]:
    """OUT.tar.gz: diagnose.json, config.json (no secrets), devices.json, logs/ (redacted), fleet/."""
    names = []
    with tarfile.open(out, "w:gz") as tar:
        def add(name: str, data: bytes) -> None:
            _add(tar, f"qhb-diagnose/{name}", data)
            names.append(name)

        add("diagnose.json", json.dumps(report.as_json(), ensure_ascii=False, indent=1, default=str).encode())
        devices = {c.name: c.details for c in report.checks if c.name.startswith("device.")}
        add("devices.json", json.dumps(devices, ensure_ascii=False, indent=1, default=str).encode())
        try:
            loaded = load_effective(site_file, env=env)
        except Exception as e:  # noqa: BLE001 - the bundle still goes out, saying why the config is missing
            log.info("configuration unreadable for the support bundle", exc_info=True)
            add("config.json", json.dumps({"error": str(e)}, ensure_ascii=False).encode())
            return names
        cfg = loaded.config
        add("config.json", json.dumps(config_without_secrets(loaded), ensure_ascii=False, indent=1).encode())
        log_dir = cfg.resolve_path(cfg.logging.dir)
        if log_dir.exists():
            for i, p in enumerate(sorted(q for q in log_dir.iterdir() if q.is_file())):
                with open(p, "rb") as f:
                    f.seek(max(0, p.stat().st_size - LOG_TAIL_BYTES))
                    text = f.read().decode("utf-8", "replace")
                safe_name = re.sub(r"[^A-Za-z0-9_.-]", "_", p.name)[:60] or f"log{i}"
                add(f"logs/{safe_name}", _redact_text(text).encode("utf-8"))
        state = cfg.resolve_path(cfg.fleet.state_dir)
        for name in ("trusted.json", "seen.json"):
            if (state / name).exists():
                add(f"fleet/{name}", (state / name).read_bytes())
    return names
