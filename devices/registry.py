"""Which class implements which (kind, driver): a literal dict, imported lazily.

Each device helper adds its own lines; values are "module:Class" so that creating
a simulated QR scanner never imports OpenCV or pyscard.
"""
from __future__ import annotations

DRIVERS: dict[tuple[str, str], str] = {
    # ID-card reader
    ("idcard", "simulated"): "devices.idcard.simulated:SimulatedIdCardReader",
    ("idcard", "ga467-serial"): "devices.idcard.ga467_serial:GA467SerialReader",
    # Social security card (PC/SC)
    ("sscard", "pcsc"): "devices.idcard.sscard:SocialSecurityCardReader",
    ("sscard", "simulated"): "devices.idcard.simulated:SimulatedSocialSecurityReader",
    # QR scanner
    ("qr", "simulated"): "devices.qr.simulated:SimulatedQrScanner",
    ("qr", "camera"): "devices.qr.camera:CameraQrScanner",
    ("qr", "serial"): "devices.qr.serial_scanner:SerialQrScanner",
    ("qr", "evdev"): "devices.qr.wedge:KeyboardWedgeQrScanner",
    # Document camera (高拍仪)
    ("camera", "simulated"): "devices.camera.capture:SimulatedCamera",
    ("camera", "opencv"): "devices.camera.capture:OpenCvCamera",
    # Receipt printer (ESC/POS)
    ("printer", "simulated"): "devices.printer.simulated:SimulatedReceiptPrinter",
    ("printer", "escpos-network"): "devices.printer.adapter:NetworkReceiptPrinter",
    ("printer", "escpos-serial"): "devices.printer.adapter:SerialReceiptPrinter",
    ("printer", "escpos-usb"): "devices.printer.adapter:UsbReceiptPrinter",
    ("printer", "escpos-file"): "devices.printer.adapter:FileReceiptPrinter",
}
