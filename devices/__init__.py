"""Device adapters behind one contract (see devices/base.py); real drivers only.

Which driver serves which kind is decided by the composition root
(`kiosk.bootstrap.drivers`), never here.
"""
from __future__ import annotations

from devices.base import (
    DeviceAdapter,
    DeviceError,
    DeviceEvent,
    DeviceLost,
    DeviceState,
    DeviceStatus,
    EventKind,
    HealthLevel,
    HealthResult,
    UnknownDriver,
    settings_to_dict,
)

__all__ = ["DeviceAdapter", "DeviceError", "DeviceEvent", "DeviceLost", "DeviceState", "DeviceStatus",
           "EventKind", "HealthLevel", "HealthResult", "UnknownDriver", "settings_to_dict"]
