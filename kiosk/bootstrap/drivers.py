"""Which class implements which (kind, driver), and `create` to build an unopened adapter.

This table is part of the composition root: the only place that names concrete
drivers and stand-ins. Values are "module:Class" strings imported on first use,
so creating a simulated QR scanner never imports OpenCV or pyscard.
"""
from __future__ import annotations

import importlib
from typing import Any

from devices.base import DeviceAdapter, UnknownDriver, settings_to_dict

DRIVERS: dict[tuple[str, str], str] = {
    # ID-card reader
    ("idcard", "ga467-serial"): "devices.idcard.ga467_serial:GA467SerialReader",
    ("idcard", "simulated"): "standins.idcard:SimulatedIdCardReader",
    # Social security card (PC/SC)
    ("sscard", "pcsc"): "devices.idcard.sscard:SocialSecurityCardReader",
    ("sscard", "simulated"): "standins.sscard:SimulatedSocialSecurityReader",
    # QR scanner
    ("qr", "camera"): "devices.qr.camera:CameraQrScanner",
    ("qr", "serial"): "devices.qr.serial_scanner:SerialQrScanner",
    ("qr", "evdev"): "devices.qr.wedge:KeyboardWedgeQrScanner",
    ("qr", "simulated"): "standins.qr:SimulatedQrScanner",
    # Document camera (高拍仪)
    ("camera", "opencv"): "devices.camera.capture:OpenCvCamera",
    ("camera", "simulated"): "standins.camera:SimulatedCamera",
    # Receipt printer (ESC/POS): one class, the driver name picks the python-escpos transport
    # (devices.printer.adapter.TRANSPORTS)
    ("printer", "escpos-network"): "devices.printer.adapter:ReceiptPrinter",
    ("printer", "escpos-serial"): "devices.printer.adapter:ReceiptPrinter",
    ("printer", "escpos-usb"): "devices.printer.adapter:ReceiptPrinter",
    ("printer", "escpos-file"): "devices.printer.adapter:ReceiptPrinter",
    ("printer", "simulated"): "standins.printer:SimulatedReceiptPrinter",
}


def available_drivers(kind: str | None = None) -> list[tuple[str, str]]:
    return sorted(k for k in DRIVERS if kind is None or k[0] == kind)


def driver_class(kind: str, driver: str) -> type[DeviceAdapter]:
    target = DRIVERS.get((kind, driver))
    if target is None:
        known = ", ".join(d for k, d in available_drivers(kind)) or "无"
        raise UnknownDriver(detail=f"{kind}/{driver}; known: {known}")
    mod_name, _, cls_name = target.partition(":")
    cls: type[DeviceAdapter] = getattr(importlib.import_module(mod_name), cls_name)
    return cls


def create(kind: str, settings: Any) -> DeviceAdapter:
    """An unopened adapter for `kind`, its driver picked by ``settings.driver``."""
    d = settings_to_dict(settings)
    driver = d.get("driver")
    if not driver:
        raise UnknownDriver(detail=f"{kind}: no driver configured")
    return driver_class(kind, str(driver))(d)
