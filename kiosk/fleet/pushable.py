"""The one list of configuration keys a signed fleet bundle may change.

A bundle is signed by administrators, but what it may touch is still limited to
what is safe to change remotely: texts, item switches, hours, timeouts, voice,
log level and device tuning values. Everything else, and explicitly everything
security-relevant (production mode, the platform address, TLS and credentials, the
embedded simulator, storage and key paths, the log directory, fleet trust and
broker, the kiosk's identity, device drivers and ports, the technician PIN), is
refused with reason code ``forbidden_key``. This is an allow-list: a key added to
the schema later is not pushable until it is added here.

The verifier (``kiosk.fleet.verify``), the applier (``kiosk.fleet.apply``) and
``kiosk-admin sign``'s pre-check all ask :func:`forbidden_keys`.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kiosk.config import DEVICE_TUNING_TYPES

#: Dotted keys (or whole sections/lists) a bundle may set. ``*`` matches one name (a device kind).
PUSHABLE_KEYS: tuple[str, ...] = (
    "announcements",
    "catalog.disabled", "catalog.most_used",
    "hours",
    "calendar",
    "ui.idle_timeout_s", "ui.idle_warning_s", "ui.elderly_idle_timeout_s",
    "ui.items_per_page", "ui.elderly_items_per_page",
    "ui.elderly_mode", "ui.voice", "ui.voice_backend", "ui.voice_volume", "ui.voice_rate_wpm",
    "kiosk.station_name", "kiosk.helper_phone", "kiosk.service_phone", "kiosk.brand",
    "logging.level",
    "platform.connect_timeout_s", "platform.read_timeout_s",
    "evaluation",  # the 好差评 indicator set, province-wide and versioned
)

#: Device parameters that only tune a driver (timings, retries, sizes, image-quality thresholds).
#: Never the driver, its port/device/reader/host, output directories or files (face_cascade), the
#: scanner's exclusive grab, the QR URL allow-list, or the PSAM requirement. Which parameters a
#: given driver reads at all, and what values each takes, is the schema's business
#: (kiosk.config.DEVICE_PARAMETERS, kiosk.config.DEVICE_TUNING_TYPES).
DEVICE_TUNING_PARAMS: tuple[str, ...] = tuple(DEVICE_TUNING_TYPES)  # each value checked by the schema

_DEVICE_KEYS = tuple(f"devices.*.{p}" for p in DEVICE_TUNING_PARAMS)


def _allowed(path: tuple[str, ...]) -> bool:
    """True when `path` is a pushable key or lies inside one (e.g. hours.staffed inside hours)."""
    for pattern in PUSHABLE_KEYS + _DEVICE_KEYS:
        parts = pattern.split(".")
        if len(path) >= len(parts) and all(p in ("*", name) for p, name in zip(parts, path, strict=False)):
            return True
    return False


def _walk(node: Mapping[str, Any], path: tuple[str, ...], out: list[str]) -> None:
    for name, value in node.items():
        here = (*path, str(name))
        if _allowed(here):
            continue
        if isinstance(value, Mapping) and value:
            _walk(value, here, out)  # a section: some keys inside may be pushable
        elif not (isinstance(value, Mapping) and not value and _is_prefix(here)):
            out.append(".".join(here))


def _is_prefix(path: tuple[str, ...]) -> bool:
    """An empty table on the way to pushable keys (`[devices.printer]` with nothing in it) changes nothing."""
    for pattern in PUSHABLE_KEYS + _DEVICE_KEYS:
        parts = pattern.split(".")
        if len(path) < len(parts) and all(p in ("*", name) for p, name in zip(parts, path, strict=False)):
            return True
    return False


def forbidden_keys(overrides: Mapping[str, Any]) -> list[str]:
    """The dotted keys in `overrides` a bundle may not change (sorted; empty when all are pushable).

    Keys are matched name by name, so a TOML key that itself contains a dot
    (``"ui.production" = false``) never passes for a nested one.
    """
    out: list[str] = []
    _walk(overrides, (), out)
    return sorted(set(out))


def is_pushable(key: str) -> bool:
    """For documentation and tools: may a bundle set this dotted key?"""
    return _allowed(tuple(key.split(".")))


def describe_forbidden(keys: list[str]) -> str:
    """The refusal detail: the keys, named."""
    return "a bundle may not change " + ", ".join(keys) + " (not on the pushable allow-list)"
