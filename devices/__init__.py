"""Device adapters behind one contract (see devices/base.py).

``create(kind, settings)`` looks up ``settings.driver`` in devices/registry.py and
imports the driver module only then.
"""
from __future__ import annotations

import importlib
from typing import Any

from devices.base import (DeviceAdapter, DeviceError, DeviceEvent, DeviceLost, DeviceState, DeviceStatus,
                          EventKind, HealthLevel, HealthResult, UnknownDriver, settings_to_dict)
from devices.registry import DRIVERS

__all__ = ["create", "driver_class", "available_drivers", "DeviceAdapter", "DeviceError", "DeviceEvent",
           "DeviceLost", "DeviceState", "DeviceStatus", "EventKind", "HealthLevel", "HealthResult",
           "UnknownDriver"]


def available_drivers(kind: str | None = None) -> list[tuple[str, str]]:
    return sorted(k for k in DRIVERS if kind is None or k[0] == kind)


def driver_class(kind: str, driver: str) -> type[DeviceAdapter]:
    target = DRIVERS.get((kind, driver))
    if target is None:
        known = ", ".join(d for k, d in available_drivers(kind)) or "无"
        raise UnknownDriver(detail=f"{kind}/{driver}; known: {known}")
    mod_name, _, cls_name = target.partition(":")
    return getattr(importlib.import_module(mod_name), cls_name)


def create(kind: str, settings: Any) -> DeviceAdapter:
    """An unopened adapter for `kind`, its driver picked by ``settings.driver``."""
    d = settings_to_dict(settings)
    driver = d.get("driver")
    if not driver:
        raise UnknownDriver(detail=f"{kind}: no driver configured")
    return driver_class(kind, str(driver))(d)
