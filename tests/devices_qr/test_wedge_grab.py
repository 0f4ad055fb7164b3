"""A keyboard-wedge scanner whose exclusive grab fails is in `error`, never read ungrabbed."""
from __future__ import annotations

import errno
import os
import threading

import pytest
from evdev import InputEvent, ecodes
from qr_helpers import Events  # type: ignore

from devices.base import DeviceState, EventKind, HealthLevel
from devices.qr import wedge
from kiosk.bootstrap import drivers

FAST = {"reconnect_initial_s": 0.05, "reconnect_max_s": 0.2, "dedupe_window_s": 0.0}


class BusySource:
    """Stands in for evdev.InputDevice (no /dev/uinput here): a pipe fd, and a grab that fails while `busy`."""

    def __init__(self, path: str, busy: threading.Event, unplugged: threading.Event):
        self.path, self.busy, self.unplugged = path, busy, unplugged
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        self._events: list[InputEvent] = []
        self.grabbed = self.closed = False
        self.reads = 0

    @property
    def fd(self) -> int:
        return self._r

    def send(self, events: list[InputEvent]) -> None:
        self._events += events
        os.write(self._w, b"!")

    def read(self) -> list[InputEvent]:
        self.reads += 1
        if self.unplugged.is_set():
            raise OSError(errno.ENODEV, "No such device")
        try:
            os.read(self._r, 4096)
        except BlockingIOError:
            pass
        got, self._events = self._events, []
        if not got:
            raise BlockingIOError
        return got

    def grab(self) -> None:
        if self.busy.is_set():
            raise OSError(errno.EBUSY, "Device or resource busy")
        self.grabbed = True

    def ungrab(self) -> None:
        self.grabbed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self._r)
            os.close(self._w)


def _typed(text: str) -> list[InputEvent]:
    inv = {ch: code for code, ch in wedge.PLAIN_KEYS.items()}
    out = []
    for ch in text:
        out += [InputEvent(0, 0, ecodes.EV_KEY, inv[ch], 1), InputEvent(0, 0, ecodes.EV_KEY, inv[ch], 0)]
    return out + [InputEvent(0, 0, ecodes.EV_KEY, ecodes.KEY_ENTER, 1)]


@pytest.fixture
def sources(monkeypatch):
    opened: list[BusySource] = []
    busy, unplugged = threading.Event(), threading.Event()

    def open_source(path: str) -> BusySource:
        opened.append(BusySource(path, busy, unplugged))
        return opened[-1]

    monkeypatch.setattr(wedge.KeyboardWedgeQrScanner, "open_source", open_source)
    return opened, busy, unplugged


def test_failed_grab_at_open_is_error_not_an_ungrabbed_reader(sources):
    opened, busy, _ = sources
    busy.set()
    dev = drivers.create("qr", {"driver": "evdev", "device": "/dev/input/event7", **FAST})
    with pytest.raises(wedge.ScannerNotGrabbed):
        dev.open()
    st = dev.status
    assert st.state is DeviceState.ERROR and st.code == "grab_failed" and "占用" in st.message
    assert opened[0].closed and not opened[0].grabbed and opened[0].reads == 0
    assert not dev.health(HealthLevel.INTERNAL).ok
    assert dev.statistics["last_error"] == "grab_failed"
    dev.close()


def test_grab_failing_after_a_replug_is_error_until_a_grab_succeeds(sources):
    opened, busy, unplugged = sources
    dev = drivers.create("qr", {"driver": "evdev", "device": "/dev/input/event7", **FAST})
    ev = Events(dev)
    with dev:
        dev.start_polling()
        assert opened[0].grabbed
        busy.set()  # something else takes the scanner while it is unplugged
        unplugged.set()
        opened[0].send([])  # wakes the reader's select(): the read then finds the device gone
        assert ev.wait(EventKind.DEVICE_LOST)
        unplugged.clear()
        assert dev.wait_for_state(DeviceState.ERROR, timeout=20)
        assert dev.status.code == "grab_failed"
        n = len(opened)
        assert all(s.closed and s.reads == 0 for s in opened[1:n - 1])  # never read while ungrabbed
        busy.clear()
        assert ev.wait(EventKind.DEVICE_BACK)
        assert dev.status.state is DeviceState.READY and opened[-1].grabbed
        opened[-1].send(_typed("after grab"))
        assert ev.wait(EventKind.CODE_SCANNED)
    assert ev.of(EventKind.CODE_SCANNED)[0].payload["text"] == "after grab"


def test_grab_off_is_an_explicit_setting(sources):
    opened, busy, _ = sources
    busy.set()
    dev = drivers.create("qr", {"driver": "evdev", "device": "/dev/input/event7", "grab": False, **FAST})
    with dev:
        assert dev.status.state is DeviceState.READY and not opened[0].grabbed


def test_technician_report_shows_the_scanner_in_error(sources, tmp_path):
    """The whole kiosk (simulated platform and other devices) with the wedge scanner whose grab fails."""
    from kiosk.bootstrap.app import build_kiosk
    from kiosk.config import load_config
    from kiosk.infra.speech import RecordingSpeech

    opened, busy, _ = sources
    busy.set()
    svc = build_kiosk(load_config(), simulate=True, state_dir=tmp_path, speech=RecordingSpeech(),
                      device_overrides={"qr": {"driver": "evdev", "device": "/dev/input/event7", **FAST}})
    svc.start()
    try:
        assert svc.station.refresh_status().devices["qr"] == "error"  # the station's device status
        report = svc.technician.technician_report()
        line = next(x for x in report.splitlines() if x.strip().startswith("qr "))
        assert line.strip().startswith("qr (evdev): error") and "占用" in line, report
        assert svc.ctx.devices["qr"].status.code == "grab_failed"
        assert opened and all(s.closed and s.reads == 0 for s in opened)
    finally:
        svc.stop()
