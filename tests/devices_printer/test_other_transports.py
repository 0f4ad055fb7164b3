"""Serial (a pty pair with the emulator on the master side) and device-file transports."""
from __future__ import annotations

import os
import tty

import pytest

from devices.base import DeviceState
from devices.printer.adapter import PrinterFault
from kiosk.bootstrap import drivers
from standins.escpos_parser import parse
from standins.printer_emulator import PrinterEmulator
from standins.printer_render import split_receipts


@pytest.fixture
def serial_pair():
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    emu = PrinterEmulator()
    emu.serve_fd(master)
    yield emu, os.ttyname(slave)
    emu.stop()
    os.close(slave)
    os.close(master)


def test_serial_printer_over_a_pty(serial_pair, receipt):
    emu, path = serial_pair
    p = drivers.create("printer", {"driver": "escpos-serial", "devfile": path, "baudrate": 115200,
                                   "timeout_s": 0.2, "poll_status": False})
    p.open()
    try:
        assert p.status.state is DeviceState.READY
        p.print_receipt(receipt)
        assert emu.wait_for_receipts(1)
        assert receipt.tracking_no in emu.complete_receipts[0].text()
        emu.set_status("cover-open")
        with pytest.raises(PrinterFault) as e:
            p.print_receipt(receipt)
        assert e.value.code == "cover_open"
    finally:
        p.close()


def test_serial_port_missing_is_offline(tmp_path):
    p = drivers.create("printer", {"driver": "escpos-serial", "devfile": str(tmp_path / "ttyNONE"),
                                   "poll_status": False})
    p.open()
    try:
        assert p.status.state is DeviceState.OFFLINE
    finally:
        p.close()


def test_file_printer_writes_the_stream(tmp_path, receipt):
    dev = tmp_path / "lp0"
    dev.touch()
    p = drivers.create("printer", {"driver": "escpos-file", "devfile": str(dev), "paper_mm": 80})
    p.open()
    try:
        p.print_receipt(receipt)
        h = p.health("external")
        assert h.ok and h.details["status_readable"] is False
    finally:
        p.close()
    receipts, rest = split_receipts(parse(dev.read_bytes()))
    assert len(receipts) == 1
    text = "".join(getattr(o, "text", "") for o in receipts[0])
    assert receipt.tracking_no in text


def test_usb_printer_without_device_is_offline():
    p = drivers.create("printer", {"driver": "escpos-usb", "id_vendor": "0x0416", "id_product": "0x5011",
                                   "poll_status": False})
    p.open()
    try:
        assert p.status.state is DeviceState.OFFLINE
    finally:
        p.close()
