"""What a production kiosk refuses to run with: every development value, named by key with the reason.

`production_problems` is the one check. `kiosk config check FILE` prints it and
exits 1, `kiosk run` exits 78 (EX_CONFIG) before any window opens, and the fleet
agent runs it before a pushed bundle takes effect. `check_site` runs it even when
the schema refuses some keys (a threshold above the distinct admin keys, say), so
one look lists every offending key, not only the first kind. It is active only when
``[ui] production = true``: development and the tests run the same schema
without it.
"""
from __future__ import annotations

import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from kiosk.config import (
    DEV_CREDENTIALS_FILE,
    DEVELOPMENT_PROFILE,
    ConfigError,
    KioskConfig,
    LoadedConfig,
    admin_key_bytes,
    distinct_admin_keys,
    load_config_layers,
)
from kiosk.infra.pin_hash import MIN_PIN_DIGITS, hash_strength_problem

__all__ = ["EX_CONFIG", "ProductionProblem", "SiteCheck", "check_site", "format_problems", "production_problems"]

#: `kiosk run`'s exit status when the configuration is not fit for production (sysexits EX_CONFIG).
EX_CONFIG = 78


@dataclass(frozen=True)
class ProductionProblem:
    """One offending key and why production refuses it (`source`: the layer that set it, when known)."""

    key: str
    reason: str
    source: str = ""


def format_problems(problems: list[ProductionProblem]) -> str:
    """One line per problem, for the technician's terminal and the journal."""
    lines = [f"{p.key}: {p.reason}" + (f" (in {p.source})" if p.source else "") for p in problems]
    return "not fit for production ([ui] production = true):\n  " + "\n  ".join(lines)


def _secret_of(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            return str(tomllib.load(f).get("secret", "")).strip().lower() or None
    except (OSError, tomllib.TOMLDecodeError):
        return None


def _is_development_credential(path: Path) -> bool:
    try:
        if path.resolve() == DEV_CREDENTIALS_FILE.resolve():
            return True
    except OSError:
        pass
    dev = _secret_of(DEV_CREDENTIALS_FILE)
    return dev is not None and _secret_of(path) == dev


def _secret_file_problem(path: Path, required: bool) -> str | None:
    """Missing (when required), not a regular file, or open to group/others."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return f"file not found: {path}" if required else None
    except OSError as e:
        return f"cannot read {path}: {e.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file"
    if st.st_mode & 0o077:
        return (f"{path} is readable or writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
                f"chmod 600 and chown it to the kiosk's user")
    return None


def production_problems(loaded: LoadedConfig) -> list[ProductionProblem]:
    """Every key that production refuses, with the reason; [] when fine or when production is off."""
    cfg = loaded.config
    if not cfg.ui.production:
        return []
    out: list[ProductionProblem] = []

    def add(key: str, reason: str, blame: str = "") -> None:
        """`blame`: the key whose layer made this a problem, when `key` itself was left at its default."""
        parts = (blame or key).split(".")
        while parts and ".".join(parts) not in loaded.sources:  # a table set whole names its keys' source
            parts.pop()
        out.append(ProductionProblem(key, reason, loaded.sources.get(".".join(parts), "")))

    if loaded.profile == DEVELOPMENT_PROFILE:
        out.append(ProductionProblem("(profile)", "the development profile is loaded (KIOSK_PROFILE=development or "
                                     "--simulate); a real kiosk runs on the defaults and its site file",
                                     "KIOSK_PROFILE"))
    p = cfg.platform
    if p.embedded_simulator:
        add("platform.embedded_simulator", "the embedded platform simulator must be off: it invents tracking "
                                           "numbers and keeps citizens' data unencrypted on this kiosk")
    cred = cfg.resolve_path(p.credentials_file)
    if _is_development_credential(cred):
        add("platform.credentials_file", "the development credential is published with the source code; "
                                         "issue this kiosk its own with `kiosk-admin enroll`")
    else:
        problem = _secret_file_problem(cred, required=True)
        if problem:
            add("platform.credentials_file", problem)
    if not p.base_url.lower().startswith("https://"):
        add("platform.base_url", f"the platform must be reached over https:// (not {p.base_url.split('://')[0]}://)")
    if not p.verify_tls:
        add("platform.verify_tls", "TLS certificate verification must stay on (use ca_bundle for a private CA)")

    problem = _secret_file_problem(cfg.resolve_path(cfg.storage.key_file), required=False)
    if problem:  # the key that encrypts citizens' queued data (made 0600 by `kiosk queue init-key`)
        add("storage.key_file", problem)

    ui = cfg.ui
    if ui.technician_pin:
        add("ui.technician_pin", "a plain-text PIN; the site file holds only technician_pin_hash "
                                 "(`kiosk-admin pin-hash`)")
        if len(ui.technician_pin) < MIN_PIN_DIGITS:
            add("ui.technician_pin", f"the PIN is shorter than {MIN_PIN_DIGITS} digits")
    if ui.technician_pin_hash:
        weak = hash_strength_problem(ui.technician_pin_hash)
        if weak:
            add("ui.technician_pin_hash", weak)
    elif not ui.technician_pin:
        add("ui.technician_pin_hash", "no technician PIN: make one with `kiosk-admin pin-hash`")

    for kind, dev in sorted(cfg.devices.items()):
        if dev.driver == "simulated":
            add(f"devices.{kind}.driver", "a simulated device driver; choose the real one (or enabled = false)")

    f = cfg.fleet
    if f.enabled:
        if not f.admin_keys:
            add("fleet.admin_keys", "the fleet is enabled but no administrator key is pinned", blame="fleet.enabled")
        else:
            distinct = distinct_admin_keys(f.admin_keys)
            if f.threshold > distinct:
                add("fleet.threshold", f"threshold {f.threshold} is above the {distinct} distinct admin key(s)")
            bad = [k for k in f.admin_keys if admin_key_bytes(k) is None]
            if bad:
                add("fleet.admin_keys", f"{len(bad)} entr{'y is' if len(bad) == 1 else 'ies are'} not an "
                                        "ed25519:<base64 32 bytes> public key")
        if f.password_file:
            problem = _secret_file_problem(cfg.resolve_path(f.password_file), required=False)
            if problem:
                add("fleet.password_file", problem)
        if f.tls_key:
            problem = _secret_file_problem(cfg.resolve_path(f.tls_key), required=False)
            if problem:
                add("fleet.tls_key", problem)
    site = loaded.site_file
    if site is None or loaded.sources.get("fleet.min_version") != site:
        out.append(ProductionProblem("fleet.min_version", "the site file must pin [fleet] min_version (the lowest "
                                     "bundle version this kiosk may ever accept)", site or ""))
    return out


@dataclass(frozen=True)
class SiteCheck:
    """What `check_site` found: the schema's problems (key, source, message) and production's refusals."""

    loaded: LoadedConfig | None  # None when the schema refused the configuration
    schema: list[tuple[str, str, str]]
    production: list[ProductionProblem]

    @property
    def ok(self) -> bool:
        return not self.schema and not self.production

    def text(self) -> str:
        parts = [str(ConfigError(self.schema))] if self.schema else []
        if self.production:
            parts.append(format_problems(self.production))
        return "\n".join(parts)


_NO_DEFAULT = object()


def _schema_default(key: str) -> Any:
    """The schema's default for dotted `key` (a field of a section), or _NO_DEFAULT when it has none."""
    model: type[BaseModel] = KioskConfig
    parts = key.split(".")
    for i, name in enumerate(parts):
        field = model.model_fields.get(name)
        if field is None:
            return _NO_DEFAULT
        if i == len(parts) - 1:
            return _NO_DEFAULT if field.is_required() else field.get_default(call_default_factory=True)
        sub = field.annotation
        if not (isinstance(sub, type) and issubclass(sub, BaseModel)):
            return _NO_DEFAULT
        model = sub
    return _NO_DEFAULT


def check_site(site_file: str | None, *, env: Mapping[str, str] | None = None,
               profile: str | None = None) -> SiteCheck:
    """The schema and, in production, the production check of defaults (+ profile) + `site_file` + environment.

    When the schema refuses a key that has a default (``fleet.threshold = 3`` with two keys,
    say), the production check still runs on the rest, with that key at its default, so
    every offending key is named at once. Unknown or missing keys stop it there.
    """
    try:
        loaded = load_config_layers(site_file=site_file, env=env, profile=profile)
    except ConfigError as e:
        schema = list(e.problems)
    else:
        return SiteCheck(loaded, [], production_problems(loaded))
    stand_in: dict[str, Any] = {}
    for key, _src, _msg in schema:
        default = _schema_default(key)
        if default is _NO_DEFAULT:
            return SiteCheck(None, schema, [])
        *path, last = key.split(".")
        node = stand_in
        for part in path:
            node = node.setdefault(part, {})
        node[last] = default
    try:
        rest = load_config_layers(site_file=site_file, env=env, profile=profile, cli=stand_in)
    except ConfigError:
        return SiteCheck(None, schema, [])
    named = {key for key, _src, _msg in schema}
    return SiteCheck(None, schema, [p for p in production_problems(rest) if p.key not in named])
