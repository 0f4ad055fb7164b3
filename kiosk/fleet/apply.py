"""Apply a trusted bundle: validate, write atomically, health-check, roll back on failure.

The pushed overrides are one layer of kiosk.config (defaults < site file < pushed
overrides < environment/CLI). The active layer is ``state_dir/pushed.json``; the
one that last passed its health check is ``state_dir/last_good.json``. A bundle
replaces the whole pushed layer: it is the complete remote configuration for its
targets, so the outcome never depends on which earlier bundles a kiosk saw.

What a bundle may change at all is the allow-list in ``kiosk.fleet.pushable``.
Before a bundle takes effect, the configuration it would produce runs through the
production check (``kiosk.infra.production``) when ``[ui] production`` is on, and
keys that need a restart arm the boot counter (``kiosk.fleet.boot_guard``).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from kiosk.config import ENV_PREFIX, ConfigError, KioskConfig, LoadedConfig, load_config_layers
from kiosk.fleet import boot_guard
from kiosk.fleet.pushable import describe_forbidden, forbidden_keys
from kiosk.fleet.trust import LAST_GOOD, PUSHED, TrustStore, read_json
from kiosk.fleet.verify import TrustPolicy, Verdict, verify_bundle
from kiosk.infra.atomic_file import atomic_write_json
from kiosk.infra.production import production_problems

log = logging.getLogger(__name__)

__all__ = ["LAST_GOOD", "PUSHED", "ApplyResult", "ConfigApplier", "HealthResult", "PushedConfigWatcher",
           "boot_ready", "boot_started", "check_overrides", "classify", "load_effective"]

# Keys the running kiosk picks up without restarting; everything else waits for a restart at idle.
LIVE_PREFIXES = (
    "catalog.disabled", "catalog.most_used",
    "announcements",
    "hours",
    "calendar",
    "evaluation",  # the 好差评 indicator set: read afresh each time the rating screen opens
    "ui.idle_timeout_s", "ui.idle_warning_s", "ui.elderly_idle_timeout_s",
    "ui.items_per_page", "ui.elderly_items_per_page", "ui.voice", "ui.elderly_mode",
    "kiosk.station_name", "kiosk.helper_phone", "kiosk.service_phone", "kiosk.brand",
)


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict) and obj:
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj}


def is_live_key(key: str) -> bool:
    return any(key == p or key.startswith(p + ".") for p in LIVE_PREFIXES)


def classify(keys: list[str]) -> tuple[list[str], list[str]]:
    """(live-applicable, restart-at-next-idle)."""
    live = sorted(k for k in keys if is_live_key(k))
    return live, sorted(k for k in keys if not is_live_key(k))


def changed_keys(before: KioskConfig, after: KioskConfig) -> list[str]:
    """Dotted keys whose value differs; lists (announcements, hours.staffed) count as one key."""
    a, b = _flatten(before.model_dump(mode="json")), _flatten(after.model_dump(mode="json"))
    return sorted(k for k in set(a) | set(b) if a.get(k, object()) != b.get(k, object()))


def pushed_layers(state_dir: str | os.PathLike[str]) -> list[tuple[str, dict[str, Any]]]:
    """The active pushed overrides as a `load_config_layers(overrides=...)` list."""
    doc = read_json(Path(state_dir) / PUSHED)
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
        return []
    bad = forbidden_keys(doc["config"])
    if bad:  # written by an older release, or by hand: a key no bundle may set never takes effect
        log.error("stored fleet layer ignored: %s", describe_forbidden(bad), extra={"version": doc.get("version")})
        return []
    return [(f"fleet bundle v{doc.get('version')}", doc["config"])]


def _state_dir_for(site_file: str | os.PathLike[str] | None, env: Mapping[str, str] | None) -> Path:
    base = load_config_layers(site_file, env=env)
    return base.config.resolve_path(base.config.fleet.state_dir)


def load_effective(site_file: str | os.PathLike[str] | None = None,
                   env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Site configuration plus the pushed layer: what the kiosk runs with."""
    state_dir = _state_dir_for(site_file, env)
    return load_config_layers(site_file, overrides=pushed_layers(state_dir), env=env)


def check_overrides(overrides: Mapping[str, Any], site_file: str | os.PathLike[str] | None = None,
                    env: Mapping[str, str] | None = None, *, only_touched: bool = False) -> str | None:
    """None when the overrides are pushable and validate with the kiosk's own schema, else what is wrong.

    `only_touched` (for `kiosk-admin sign`, which has no kiosk's site file): report
    only problems of the keys the overrides set, not keys a site file would supply.
    """
    bad = forbidden_keys(overrides)
    if bad:
        return describe_forbidden(bad)
    try:
        load_config_layers(site_file, overrides=[("bundle", dict(overrides))], env=env)
    except ConfigError as e:
        touched = set(_flatten(dict(overrides)))
        problems = [(key, msg) for key, _src, msg in e.problems
                    if not only_touched or any(key == t or key.startswith(t + ".") or t.startswith(key + ".")
                                               for t in touched)]
        return "; ".join(f"{key}: {msg}" for key, msg in problems) or None
    return None


def safety_problems(loaded: LoadedConfig) -> list[str]:
    """With [ui] production on: what the production check refuses in `loaded` (else nothing)."""
    if not loaded.config.ui.production:
        return []
    return [f"{p.key}: {p.reason}" for p in production_problems(loaded)]


# ------------------------------------------------------------------ health
@dataclass
class HealthResult:
    ok: bool
    problems: list[str] = field(default_factory=list)


HealthCheck = Callable[[KioskConfig, KioskConfig], HealthResult]  # (before, after)


def platform_reachable(cfg: KioskConfig, timeout: float = 2.0) -> bool:
    """Any HTTP answer from the platform's base URL within `cfg`'s own timeouts (capped at `timeout`) counts."""
    p = cfg.platform
    try:
        requests.get(p.base_url, timeout=(min(timeout, p.connect_timeout_s), min(timeout, p.read_timeout_s)),
                     verify=p.verify_tls and (p.ca_bundle or True))
        return True
    except requests.RequestException:
        return False


def default_health_check(before: KioskConfig, after: KioskConfig) -> HealthResult:
    """Fail when the new configuration breaks something that worked with the old one.

    The platform route: when the address or the timeouts change, a platform that
    answered with the old settings must still answer with the new ones.
    """
    problems = []
    b, a = before.platform, after.platform
    if ((a.base_url, a.connect_timeout_s, a.read_timeout_s) != (b.base_url, b.connect_timeout_s, b.read_timeout_s)
            and platform_reachable(before) and not platform_reachable(after)):
        problems.append(f"platform at {a.base_url} does not answer with the new settings "
                        f"(connect {a.connect_timeout_s} s, read {a.read_timeout_s} s)")
    return HealthResult(not problems, problems)


@dataclass
class ApplyResult:
    status: str  # "applied" | "rolled_back"
    version: int
    reason: str = "ok"  # "ok" | "health_check_failed" | "unsafe_config"
    live_keys: list[str] = field(default_factory=list)
    restart_keys: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "version": self.version, "reason": self.reason,
                "live_keys": self.live_keys, "restart_keys": self.restart_keys, "problems": self.problems}


class ConfigApplier:
    """Owns pushed.json / last_good.json in `state_dir` and the trusted version."""

    def __init__(
        self,
        site_file: str | os.PathLike[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        health_check: HealthCheck | None = None,
        on_live_change: Callable[[KioskConfig, list[str]], None] | None = None,
        on_restart_needed: Callable[[list[str]], None] | None = None,
    ):
        self.site_file = site_file
        self.env = env
        self.state_dir = _state_dir_for(site_file, env)
        self.trust = TrustStore(self.state_dir)
        self.health_check = health_check or default_health_check
        self.on_live_change = on_live_change
        self.on_restart_needed = on_restart_needed

    # -- reading
    def effective(self) -> LoadedConfig:
        return load_config_layers(self.site_file, overrides=pushed_layers(self.state_dir), env=self.env)

    def content_check(self, overrides: Mapping[str, Any]) -> str | None:
        return check_overrides(overrides, self.site_file, self.env)

    def min_version(self) -> int:
        """The site file's [fleet] min_version: the rollback floor that survives a lost state directory."""
        base = load_config_layers(self.site_file, env=self.env).config
        return int(base.fleet.min_version)

    def verify(self, raw: bytes, policy: TrustPolicy | None = None, *, now: datetime | None = None) -> Verdict:
        """The kiosk's whole decision on `raw`: verify_bundle with this kiosk's floor and checks.

        A bundle that verifies is also refused (``unsafe_config``) when, with
        ``[ui] production`` on, the configuration it would produce fails the
        production check: the same check `kiosk run` makes before it starts.
        """
        try:
            floor = self.min_version()
            if policy is None:
                policy = TrustPolicy.from_config(self.effective().config)
        except ConfigError as e:  # the site file was broken after start: nothing can be judged safely
            return Verdict(False, "invalid_content", None, f"this kiosk's own configuration does not load: {e}")
        verdict = verify_bundle(raw, policy, self.trust.current_version(), now=now,
                                content_check=self.content_check, min_version=floor)
        if verdict.accepted and verdict.bundle is not None:
            problems = self._would_be_unsafe(verdict.bundle.config)
            if problems:
                return Verdict(False, "unsafe_config", verdict.version, "; ".join(problems))
        return verdict

    def _would_be_unsafe(self, overrides: Mapping[str, Any]) -> list[str]:
        try:
            loaded = load_config_layers(self.site_file, overrides=[("fleet bundle", dict(overrides))], env=self.env)
        except ConfigError as e:
            return [str(e)]
        return safety_problems(loaded)

    def active_version(self) -> int:
        doc = read_json(self.state_dir / PUSHED)
        return int(doc.get("version", 0)) if isinstance(doc, dict) else 0

    # -- writing
    def _restore_last_good(self) -> None:
        good = read_json(self.state_dir / LAST_GOOD)
        if isinstance(good, dict):
            atomic_write_json(self.state_dir / PUSHED, good)
        else:
            try:
                (self.state_dir / PUSHED).unlink()
            except FileNotFoundError:
                pass

    def recover(self) -> bool:
        """After a crash mid-apply, go back to the last-known-good layer. True if it did."""
        pushed, good = read_json(self.state_dir / PUSHED), read_json(self.state_dir / LAST_GOOD)
        if pushed is not None and pushed != good:
            log.warning("unconfirmed pushed configuration found; restoring last-known-good")
            self._restore_last_good()
            return True
        return False

    def apply(self, bundle: Any, raw: bytes) -> ApplyResult:
        """Apply an already verified bundle (see verify) and make it the trusted one."""
        before = self.effective().config
        previous = read_json(self.state_dir / LAST_GOOD)
        new_layer = {"version": bundle.version, "digest": bundle.digest(), "config": bundle.config}
        bad = forbidden_keys(bundle.config)
        if bad:  # verify refuses these already; never write them, whoever calls
            raise ValueError(describe_forbidden(bad))
        atomic_write_json(self.state_dir / PUSHED, new_layer)
        reason = "health_check_failed"
        try:
            loaded = self.effective()
            after = loaded.config
            unsafe = safety_problems(loaded)
            if unsafe:
                reason = "unsafe_config"
                health = HealthResult(False, unsafe)
            else:
                health = self.health_check(before, after)
        except ConfigError as e:
            health = HealthResult(False, [f"configuration does not load: {e}"])
        except Exception as e:  # noqa: BLE001 - logged; a crashing check is a failed check
            log.exception("health check crashed")
            health = HealthResult(False, [f"health check crashed: {type(e).__name__}: {e}"])
        if not health.ok:
            self._restore_last_good()
            self.trust.record(raw, bundle.version, bundle.digest(), "rolled_back")
            log.warning("bundle rolled back", extra={"version": bundle.version, "problems": health.problems})
            return ApplyResult("rolled_back", bundle.version, reason, problems=health.problems)
        live, restart = classify(changed_keys(before, after))
        if restart:  # confirmed only when the app reaches READY on it after the restart
            boot_guard.arm(self.state_dir, bundle.version, restart, previous if isinstance(previous, dict) else None)
        atomic_write_json(self.state_dir / LAST_GOOD, new_layer)
        self.trust.record(raw, bundle.version, bundle.digest(), "applied")
        if live and self.on_live_change:
            self.on_live_change(after, live)
        if restart and self.on_restart_needed:
            self.on_restart_needed(restart)
        return ApplyResult("applied", bundle.version, "ok", live, restart)


def boot_started(site_file: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> None:
    """`kiosk run`, before it loads its configuration: count this start (kiosk.fleet.boot_guard).

    Never raises: a site file that does not load is reported by the loading that follows.
    """
    try:
        boot_guard.start(_guard_dir(site_file, env))
    except (ConfigError, OSError, ValueError):
        log.exception("boot counter not updated")


def boot_ready(site_file: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> None:
    """`kiosk run`, when it notifies READY: the configuration it runs with has booted."""
    try:
        boot_guard.ready(_guard_dir(site_file, env))
    except (ConfigError, OSError, ValueError):
        log.exception("boot counter not cleared")


def _guard_dir(site_file: str | os.PathLike[str] | None, env: Mapping[str, str] | None) -> Path:
    """The fleet state directory, also when the environment's overrides make the configuration invalid.

    A start that fails on its configuration is a start that did not reach READY,
    so it must still be counted.
    """
    try:
        return _state_dir_for(site_file, env)
    except ConfigError:
        full = os.environ if env is None else env
        return _state_dir_for(site_file, {k: v for k, v in full.items() if not k.startswith(ENV_PREFIX)})


class PushedConfigWatcher:
    """For the kiosk app when the fleet agent runs as its own service.

    Poll it from the app's clock: it notices a newly *confirmed* bundle (last_good.json
    changes only after the health check passed) and returns the new configuration with
    the changed keys split into live-applicable and restart-at-next-idle.
    """

    def __init__(self, site_file: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None):
        self.site_file, self.env = site_file, env
        self.state_dir = _state_dir_for(site_file, env)
        self._stamp = self._read_stamp()
        self.config = load_effective(site_file, env).config

    def _read_stamp(self) -> Any:
        doc = read_json(self.state_dir / LAST_GOOD)
        return (doc.get("version"), doc.get("digest")) if isinstance(doc, dict) else None

    def poll(self) -> tuple[KioskConfig, list[str], list[str]] | None:
        stamp = self._read_stamp()
        if stamp == self._stamp:
            return None
        try:
            new = load_effective(self.site_file, self.env).config
        except ConfigError:
            log.exception("confirmed fleet configuration no longer loads; keeping the running one")
            return None
        live, restart = classify(changed_keys(self.config, new))
        self.config, self._stamp = new, stamp
        return new, live, restart
