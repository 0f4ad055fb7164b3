"""The serial GA 467 reader against the SAM emulator on a real pseudo-terminal."""
from __future__ import annotations

import datetime as dt
import time

import pytest
from event_recorder import Events  # noqa: E402

from devices.base import DeviceError, DeviceState, EventKind
from devices.idcard.ga467_serial import GA467SerialReader, SamTimeout
from devices.idcard.reader import NoCard
from devices.idcard.text_block import CardRefused
from kiosk.bootstrap import drivers
from kiosk.config import DeviceSettings
from standins.sam_emulator import random_noise, sample_card

FAST = {"reconnect_initial_s": 0.05, "reconnect_max_s": 0.2, "timeout_s": 1.0, "poll_interval_s": 0.05}


def reader(port, **kw):
    return drivers.create("idcard", DeviceSettings(driver="ga467-serial", port=port, **{**FAST, **kw}))


def test_read_card_through_pty(sam_pty):
    emu, _, port = sam_pty
    dev = reader(port)
    assert isinstance(dev, GA467SerialReader)
    with dev:
        assert dev.status.state == DeviceState.READY
        card = dev.read_card()
        assert card == sample_card()
        assert dev.statistics["read_ms"] > 0 and dev.statistics["operations"] == 1
        assert dev.health("external").ok
        assert dev.health("internal").ok
    assert emu.requests[0] == (0x11, 0xFF)  # status check on open
    assert (0x30, 0x01) in emu.requests


def test_fingerprint_read(sam_pty):
    emu, _, port = sam_pty
    emu.put_card(sample_card(), fingerprint=b"\x05" * 512)
    with reader(port) as dev:
        card = dev.read_card(fingerprint=True)
    assert card.fingerprint == b"\x05" * 512 and (0x30, 0x10) in emu.requests


def test_noise_and_split_frames(sam_pty):
    emu, _, port = sam_pty
    emu.faults.noise = random_noise(23, seed=3)
    emu.faults.split_every = 7
    emu.faults.split_pause_s = 0.001
    with reader(port) as dev:
        assert dev.read_card() == sample_card()


def test_wrong_checksum_is_retried_then_reported(sam_pty):
    emu, _, port = sam_pty
    with reader(port) as dev:
        emu.faults.corrupt_next = 1
        assert dev.read_card() == sample_card()
        assert dev.corrupt_answers == 1
        emu.faults.corrupt_next = 10
        with pytest.raises(DeviceError) as ei:
            dev.find_card()
        assert ei.value.code == "checksum_error" and "重新放置" in ei.value.message


def test_no_card_and_read_failure(sam_pty):
    emu, _, port = sam_pty
    emu.remove_card()
    with reader(port) as dev:
        with pytest.raises(NoCard) as ei:
            dev.read_card()
        assert "读卡区" in ei.value.message
        emu.put_card(sample_card())
        emu.faults.read_fails = 1
        with pytest.raises(DeviceError) as ei:
            dev.read_card()
        assert ei.value.code == "read_failed"
        assert dev.statistics["last_error"] == "read_failed"
        assert dev.read_card() == sample_card()


def test_expired_card_refused(sam_pty):
    emu, _, port = sam_pty
    emu.put_card(sample_card(valid_to=dt.date(2021, 1, 1)))
    with reader(port) as dev:
        with pytest.raises(CardRefused) as ei:
            dev.read_card()
    assert ei.value.code == "card_expired" and "有效期" in ei.value.message


def test_sam_self_test_failure_is_classified(sam_pty):
    emu, _, port = sam_pty
    with reader(port) as dev:
        emu.faults.self_test_fails = True
        h = dev.health("external")
    assert not h.ok and h.details["code"] == "sam_fault" and "工作人员" in h.message


def test_slow_answers_within_and_beyond_timeout(sam_pty):
    emu, _, port = sam_pty
    with reader(port, timeout_s=2.0, read_timeout_s=2.0) as dev:
        emu.faults.delay_s = 0.2
        assert dev.find_card()
    emu.faults.delay_s = 0
    with reader(port, timeout_s=0.2, timeouts_until_lost=5) as dev:
        emu.faults.delay_s = 0.6
        with pytest.raises(SamTimeout):
            dev.find_card()
        emu.faults.delay_s = 0
        for _ in range(500):  # wait until the late answer is sitting in the port
            if dev._serial.in_waiting:
                break
            time.sleep(0.01)
        assert dev._serial.in_waiting
        assert dev.find_card()  # the late answer was flushed, not taken for this one


def test_poll_loop_insert_remove_and_vanished_port(sam_pty):
    emu, server, port = sam_pty
    emu.remove_card()
    dev = reader(port)
    ev = Events(dev)
    with dev:
        dev.start_polling()
        emu.put_card(sample_card())
        assert ev.wait(EventKind.CARD_INSERTED)
        emu.remove_card()
        assert ev.wait(EventKind.CARD_REMOVED)
        # unplug: the port vanishes
        server.unplug()
        assert ev.wait(EventKind.DEVICE_LOST)
        assert dev.wait_for_state(DeviceState.OFFLINE)
        # replug at the same path: recovers without a restart
        emu.put_card(sample_card())
        server.replug()
        assert ev.wait(EventKind.DEVICE_BACK)
        assert ev.wait(EventKind.CARD_INSERTED, 2)
        assert dev.status.state == DeviceState.READY
    inserted = [e for e in ev.got if e.kind == EventKind.CARD_INSERTED]
    assert len(inserted) == 2 and inserted[0].payload["card"] == sample_card()
    assert ev.count(EventKind.CARD_REMOVED) == 1
    assert dev.statistics["failures"] >= 1


def test_poll_loop_reports_expired_card_once(sam_pty):
    emu, _, port = sam_pty
    emu.remove_card()
    dev = reader(port)
    ev = Events(dev)
    with dev:
        dev.start_polling()
        emu.put_card(sample_card(valid_to=dt.date(2021, 1, 1)))
        assert ev.wait(EventKind.READ_FAILED)
        emu.remove_card()
        assert ev.wait(EventKind.CARD_REMOVED)
    failed = [e for e in ev.got if e.kind == EventKind.READ_FAILED]
    assert len(failed) == 1 and failed[0].payload["code"] == "card_expired"
    assert ev.count(EventKind.CARD_INSERTED) == 0


def test_missing_port_at_start_goes_offline_and_recovers(tmp_path):
    from standins.sam_emulator import PtyServer, SamEmulator
    path = str(tmp_path / "ttyLATE")
    dev = reader(path)
    ev = Events(dev)
    dev.open()
    server = None
    try:
        assert dev.status.state == DeviceState.OFFLINE
        server = PtyServer(SamEmulator(sample_card()), path)
        assert ev.wait(EventKind.DEVICE_BACK)
        assert dev.read_card() == sample_card()
    finally:
        dev.close()
        if server:
            server.close()


def test_silent_module_goes_offline(sam_pty):
    emu, _, port = sam_pty
    dev = reader(port, timeout_s=0.1, timeouts_until_lost=2)
    ev = Events(dev)
    with dev:
        dev.start_polling()
        emu.faults.silent = True
        assert ev.wait(EventKind.DEVICE_LOST)
        assert dev.status.code in ("sam_silent", "timeout")
        emu.faults.silent = False
        assert ev.wait(EventKind.DEVICE_BACK)


def test_insert_remove_soak(sam_pty, full_counts):
    """One card_inserted and one card_removed per cycle, however many cycles."""
    emu, _, port = sam_pty
    emu.remove_card()
    cycles = 200 if full_counts else 8
    dev = reader(port, poll_interval_s=0.01)
    ev = Events(dev)
    with dev:
        dev.start_polling()
        for i in range(cycles):
            emu.put_card(sample_card())
            assert ev.wait(EventKind.CARD_INSERTED, i + 1)
            emu.remove_card()
            assert ev.wait(EventKind.CARD_REMOVED, i + 1)
    assert ev.count(EventKind.CARD_INSERTED) == cycles and ev.count(EventKind.CARD_REMOVED) == cycles
    assert dev.statistics["failures"] == 0


def test_flaky_read_reported_once_then_card_inserted(sam_pty):
    emu, _, port = sam_pty
    emu.remove_card()
    dev = reader(port)
    ev = Events(dev)
    with dev:
        dev.start_polling()
        emu.faults.read_fails = 3
        emu.put_card(sample_card())
        assert ev.wait(EventKind.CARD_INSERTED)
    failed = [e for e in ev.got if e.kind == EventKind.READ_FAILED]
    assert [e.payload["code"] for e in failed] == ["read_failed"]
    assert dev.statistics["failures"] == 3 and dev.statistics["last_error"] == "read_failed"


def test_the_emulator_remembers_only_the_latest_requests():
    """The reader polls all day; the emulator's record of requests (for tests) stays bounded."""
    from devices.idcard.ga467 import Command, GA467Frame
    from standins.sam_emulator import REQUESTS_KEPT, SamEmulator

    emu = SamEmulator()
    emu.answer(GA467Frame.request(*Command.SAM_STATUS))
    for _ in range(REQUESTS_KEPT):
        emu.answer(GA467Frame.request(*Command.FIND_CARD))
    assert len(emu.requests) == REQUESTS_KEPT and Command.SAM_STATUS not in emu.requests
    assert emu.requests[-1] == Command.FIND_CARD
