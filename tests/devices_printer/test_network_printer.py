"""The network printer against the emulator over TCP: receipts, QR, faults, reprint, a killed printer."""
from __future__ import annotations

import pytest
import zxingcpp
from PIL import Image

from devices.base import DeviceState, EventKind
from devices.printer.adapter import PrinterFault
from kiosk.bootstrap import drivers
from kiosk.domain.receipt import OFFLINE_NOTICE
from kiosk.domain.tracking import parse_qr_payload

from .conftest import FULL_ID, wait_until


def make_printer(port: int, **extra):
    settings = {"driver": "escpos-network", "host": "127.0.0.1", "port": port, "timeout_s": 2,
                "poll_interval_s": 0.1, "reconnect_initial_s": 0.05, "reconnect_max_s": 0.3}
    settings.update(extra)
    return drivers.create("printer", settings)


@pytest.fixture
def printer(emulator):
    p = make_printer(emulator.port)
    events = []
    p.add_listener(events.append)
    p.open()
    p.events = events
    yield p
    p.close()


def codes(events):
    return [e.payload["new"]["code"] for e in events if e.kind is EventKind.STATUS_CHANGED]


def test_receipt_png_has_the_tracking_qr(printer, emulator, receipt):
    res = printer.print_receipt(receipt)
    assert emulator.wait_for_receipts(1)
    rec = emulator.complete_receipts[0]
    assert res.condition.code == "ok"
    text = rec.text()
    assert "张**" in text and "370***********1234" in text and FULL_ID not in text
    assert receipt.tracking_no in text
    assert OFFLINE_NOTICE in text.replace("\n", "")
    # decoded with zxing-cpp from the PNG; the PNG's QR was drawn with `qrcode`
    found = zxingcpp.read_barcodes(Image.open(rec.png))
    assert [parse_qr_payload(f.text) for f in found] == [receipt.tracking_no]
    assert printer.status.state is DeviceState.READY
    assert printer.statistics["operations"] == 1


def test_paper_out_refuses_then_resumes(printer, emulator, receipt):
    emulator.set_status("paper-out")
    with pytest.raises(PrinterFault) as e:
        printer.print_receipt(receipt)
    assert e.value.code == "paper_out" and "缺纸" in e.value.message
    assert printer.status.state is DeviceState.ERROR
    assert len(printer.unprinted) == 1
    assert not emulator.receipts  # nothing came out
    printer.flush_events()
    assert "paper_out" in codes(printer.events)  # the device alert
    emulator.set_status("ok")
    assert printer.wait_for_state(DeviceState.READY, timeout=10)  # the poll noticed the refill
    assert printer.reprint_unprinted() == 1 and not printer.unprinted
    assert emulator.wait_for_receipts(1)
    assert receipt.tracking_no in emulator.complete_receipts[0].text()


def test_paper_runs_out_mid_job(printer, emulator, receipt):
    emulator.paper_lines_left = 6
    with pytest.raises(PrinterFault) as e:
        printer.print_receipt(receipt)
    assert e.value.after_print and e.value.code == "paper_out" and "未打印完整" in e.value.message
    assert len(printer.unprinted) == 1
    assert emulator.wait_for_receipts(1, complete_only=False)
    assert not emulator.complete_receipts and emulator.receipts[0].png is None  # the torn one
    emulator.set_status("ok")
    assert printer.reprint_unprinted() == 1
    assert emulator.wait_for_receipts(1)
    assert emulator.complete_receipts[0].png.exists()


def test_cover_open_and_near_end(printer, emulator, receipt):
    emulator.set_status("cover-open")
    with pytest.raises(PrinterFault) as e:
        printer.print_receipt(receipt)
    assert e.value.code == "cover_open" and "盖" in e.value.message
    emulator.set_status("paper-near-end")  # a warning: still prints
    assert printer.reprint_unprinted() == 1
    assert printer.status.state is DeviceState.READY and printer.status.code == "paper_near_end"
    assert emulator.wait_for_receipts(1)


def test_health_levels(printer, emulator):
    assert printer.health("internal").ok
    assert printer.health("external").ok
    emulator.set_status("offline")
    h = printer.health("external")
    assert not h.ok and h.details["code"] == "offline"
    emulator.set_status("ok")
    prompts = []
    assert printer.health("interactive", prompt=prompts.append).ok and prompts
    assert emulator.wait_for_receipts(1)


def test_printer_not_there_goes_offline_and_keeps_the_job(receipt):
    from .conftest import free_port
    p = make_printer(free_port(), poll_status=False)
    p.open()
    try:
        assert p.status.state is DeviceState.OFFLINE
        with pytest.raises(PrinterFault) as e:
            p.print_receipt(receipt)
        assert e.value.code == "offline" and len(p.unprinted) == 1
    finally:
        p.close()


def test_emulator_process_killed_and_restarted(emulator_process, receipt):
    proc = emulator_process().start()
    p = make_printer(proc.port)
    events = []
    p.add_listener(events.append)
    p.open()
    try:
        p.print_receipt(receipt)
        assert wait_until(lambda: len(list(proc.out.glob("*.png"))) == 1)
        proc.kill()
        assert wait_until(lambda: p.status.state is DeviceState.OFFLINE)  # the poll found it gone
        with pytest.raises(PrinterFault) as e:
            p.print_receipt(receipt)
        assert e.value.code == "offline" and len(p.unprinted) == 1
        proc.start()  # same port
        assert p.wait_for_state(DeviceState.READY, timeout=15)
        assert p.reprint_unprinted() == 1
        assert wait_until(lambda: len(list(proc.out.glob("*.png"))) == 2)
        p.flush_events()
        kinds = [e.kind for e in events]
        assert EventKind.DEVICE_LOST in kinds and EventKind.DEVICE_BACK in kinds
        assert proc.terminate() == 0  # SIGTERM stops it cleanly
    finally:
        p.close()


def test_emulator_process_started_with_paper_out(emulator_process, receipt):
    proc = emulator_process(status="paper-out").start()
    p = make_printer(proc.port, poll_status=False)
    p.open()
    try:
        assert p.status.state is DeviceState.ERROR and p.status.code == "paper_out"
        with pytest.raises(PrinterFault):
            p.print_receipt(receipt)
    finally:
        p.close()
    assert not list(proc.out.glob("*.png"))


def test_simulated_driver_is_the_network_driver(tmp_path, receipt):
    p = drivers.create("printer", {"driver": "simulated", "out_dir": str(tmp_path), "poll_status": False})
    p.open()
    try:
        p.print_receipt(receipt)
        assert p.emulator.wait_for_receipts(1)
        assert p.emulator.connections >= 1 and p.emulator.status_queries >= 8
        assert len(list(tmp_path.glob("*.png"))) == 1
    finally:
        p.close()


def test_printer_back_with_a_fault_reports_the_fault(tmp_path):
    from standins.printer_emulator import PrinterEmulator

    first = PrinterEmulator(port=0).start()
    p = make_printer(first.port)
    p.open()
    try:
        assert p.status.state is DeviceState.READY
        first.stop()
        assert wait_until(lambda: p.status.state is DeviceState.OFFLINE)
        second = PrinterEmulator(port=first.port, status="cover-open").start()
        try:
            assert p.wait_for_state(DeviceState.ERROR, timeout=15)
            assert p.status.code == "cover_open"
        finally:
            second.stop()
    finally:
        p.close()


def test_query_print_document_on_80mm(emulator):
    import datetime as dt

    from kiosk.domain.receipt import QueryDocument

    emulator.paper_mm = 80
    p = make_printer(emulator.port, paper_mm=80, poll_status=False)
    p.open()
    try:
        doc = QueryDocument(title="社会保险缴费证明", station="周村区城北路街道便民服务站", applicant_name="李四",
                            applicant_id=FULL_ID, table_header=["缴费年月", "险种", "个人缴费"],
                            table_rows=[["2026-0%d" % m, "养老", "360.00"] for m in range(1, 7)],
                            generated_at=dt.datetime(2026, 11, 27, 10, 0), verify_code="QHB1:VERIFY-123")
        p.print_document(doc)
        assert emulator.wait_for_receipts(1)
        rec = emulator.complete_receipts[0]
        assert "社会保险缴费证明" in rec.text() and "2026-06" in rec.text() and FULL_ID not in rec.text()
        assert Image.open(rec.png).width == 576 + 48  # 80 mm paper: 576 dots plus the margins
        assert [f.text for f in zxingcpp.read_barcodes(Image.open(rec.png))] == ["QHB1:VERIFY-123"]
    finally:
        p.close()


def test_the_emulator_keeps_no_thread_per_past_connection(emulator):
    """One connection per print for a day: the emulator (a test peer in the soak's own process) must not keep a
    finished thread for each, or the soak counts the peer's growth as the kiosk's."""
    import socket
    import threading

    for _ in range(12):
        with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as s:
            s.sendall(b"\x1b@")
    assert wait_until(lambda: emulator.connections == 12)
    assert wait_until(lambda: not any(t.name == "escpos-conn" for t in threading.enumerate()))  # all served
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=5):
        assert wait_until(lambda: emulator.connections == 13)
        assert [t.name for t in emulator._threads].count("escpos-conn") == 1  # only the live one
