"""Serial line scanner on a pty, keyboard-wedge reader on evdev InputEvents, simulated scanner."""
from __future__ import annotations

import datetime as dt
import errno
import os
import threading

from evdev import InputEvent, ecodes
from hypothesis import given, settings
from hypothesis import strategies as st
from qr_helpers import Events  # type: ignore

from devices.base import DeviceState, EventKind
from devices.qr import wedge
from devices.qr.serial_scanner import LineSplitter
from devices.qr.wedge import KeyTranslator
from kiosk.bootstrap import drivers
from kiosk.domain.tracking import new_tracking_no, qr_payload

FAST = {"reconnect_initial_s": 0.05, "reconnect_max_s": 0.2, "dedupe_window_s": 0.0}


def test_line_splitter_crlf_split_and_overlong():
    s = LineSplitter(max_line=10)
    assert s.feed(b"abc\r") == [b"abc"]
    assert s.feed(b"\nde") == [] and s.feed(b"f\n") == [b"def"]
    assert s.feed(b"x" * 20 + b"\r\nok\n") == [b"ok"] and s.overlong == 1


def test_serial_scanner_on_pty_with_unplug(pty_port):
    tn = new_tracking_no("LQ", dt.date(2026, 11, 27))
    dev = drivers.create("qr", {"driver": "serial", "port": pty_port.link, **FAST})
    ev = Events(dev)
    with dev:
        dev.start_polling()
        pty_port.write(qr_payload(tn).encode()[:7])
        pty_port.write(qr_payload(tn).encode()[7:] + b"\r\n")
        pty_port.write("居民码测试".encode("gb18030") + b"\r")
        pty_port.write(b"bad\x07bell\n")
        assert ev.wait(EventKind.CODE_SCANNED, 3)
        pty_port.unplug()
        assert ev.wait(EventKind.DEVICE_LOST)
        pty_port.replug()
        assert ev.wait(EventKind.DEVICE_BACK)
        assert dev.status.state == DeviceState.READY
        pty_port.write(b"after replug\n")
        assert ev.wait(EventKind.CODE_SCANNED, 4)
    scanned = ev.of(EventKind.CODE_SCANNED)
    assert scanned[0].payload["kind"] == "tracking" and scanned[0].payload["value"] == tn
    assert scanned[1].payload["text"] == "居民码测试" and scanned[1].payload["kind"] == "unrecognised"
    assert scanned[2].payload["refused"]["reason"] == "control_chars"
    assert scanned[3].payload["text"] == "after replug"


def test_serial_scanner_overlong_line_is_refused(pty_port):
    dev = drivers.create("qr", {"driver": "serial", "port": pty_port.link, "max_line": 64, **FAST})
    ev = Events(dev)
    with dev:
        dev.start_polling()
        pty_port.write(b"A" * 500 + b"\r\nshort\r\n")
        assert ev.wait(EventKind.CODE_SCANNED)
        assert ev.wait(EventKind.READ_FAILED)
    assert [e.payload["text"] for e in ev.of(EventKind.CODE_SCANNED)] == ["short"]
    assert ev.of(EventKind.READ_FAILED)[0].payload["code"] == "too_long"


def _typed(text: str) -> list[InputEvent]:
    """The events a wedge scanner sends for `text` and Enter (key down, SYN, key up; Shift around capitals)."""
    inv = {}
    for code, ch in wedge.PLAIN_KEYS.items():
        inv.setdefault(ch, (code, False))
    for code, ch in wedge.SHIFTED_KEYS.items():
        inv.setdefault(ch, (code, True))
    out: list[InputEvent] = []

    def key(code: int, value: int) -> None:
        out.append(InputEvent(0, 0, ecodes.EV_KEY, code, value))

    for ch in text:
        code, shift = inv[ch]
        if shift:
            key(ecodes.KEY_LEFTSHIFT, 1)
        key(code, 1)
        out.append(InputEvent(0, 0, ecodes.EV_SYN, ecodes.SYN_REPORT, 0))
        key(code, 0)
        if shift:
            key(ecodes.KEY_LEFTSHIFT, 0)
    key(ecodes.KEY_ENTER, 1)
    key(ecodes.KEY_ENTER, 0)
    return out


def test_key_translator_shift_caps_and_unknown():
    t = KeyTranslator()
    lines = []
    for event in _typed("QHB1:Ab-9_z"):
        line = t.feed_event(event)
        if line:
            lines.append(line)
    assert lines == ["QHB1:Ab-9_z"]
    t.feed(ecodes.EV_KEY, ecodes.KEY_CAPSLOCK, 1)
    t.feed(ecodes.EV_KEY, ecodes.KEY_A, 1)
    t.feed(ecodes.EV_KEY, ecodes.KEY_F1, 1)
    assert t.feed(ecodes.EV_KEY, ecodes.KEY_ENTER, 1) == "A" and t.unknown_keys == 1


class EventPipe:
    """Stands in for ``evdev.InputDevice``: no /dev/uinput in CI containers, so no virtual keyboard.

    A pipe gives the driver a real fd to select() on; ``send`` queues evdev InputEvents
    and ``read`` hands them out the way InputDevice.read does (BlockingIOError when none).
    """

    def __init__(self, path: str):
        self.path = path
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        self._events: list[InputEvent] = []
        self._lock = threading.Lock()
        self.grabbed = False
        self.closed = False
        self.unplugged = False

    @property
    def fd(self) -> int:
        return self._r

    def send(self, events: list[InputEvent]) -> None:
        with self._lock:
            self._events += events
        os.write(self._w, b"!")

    def unplug(self) -> None:
        self.unplugged = True
        os.write(self._w, b"!")

    def read(self) -> list[InputEvent]:
        if self.unplugged:
            raise OSError(errno.ENODEV, "No such device")
        try:
            os.read(self._r, 4096)
        except BlockingIOError:
            pass
        with self._lock:
            got, self._events = self._events, []
        if not got:
            raise BlockingIOError
        return got

    def grab(self) -> None:
        self.grabbed = True

    def ungrab(self) -> None:
        self.grabbed = False

    def close(self) -> None:
        self.closed = True
        os.close(self._r)
        os.close(self._w)


def test_wedge_reader_on_event_stream(monkeypatch):
    """No /dev/uinput in CI containers: the same InputEvents arrive through an EventPipe."""
    opened: list[EventPipe] = []

    def open_source(path: str) -> EventPipe:
        opened.append(EventPipe(path))
        return opened[-1]

    monkeypatch.setattr(wedge.KeyboardWedgeQrScanner, "open_source", open_source)
    dev = drivers.create("qr", {"driver": "evdev", "device": "/dev/input/by-id/usb-scanner-event-kbd", **FAST})
    ev = Events(dev)
    with dev:
        dev.start_polling()
        src = opened[0]
        assert src.grabbed
        data = _typed("QHB1:HELLO")
        src.send(data[:13])  # events split across reads
        src.send(data[13:])
        assert ev.wait(EventKind.CODE_SCANNED)
    assert src.closed and not src.grabbed
    p = ev.of(EventKind.CODE_SCANNED)[0].payload
    assert p["text"] == "QHB1:HELLO" and p["refused"]["reason"] == "bad_tracking"


def test_wedge_reader_unplugged_goes_offline_and_comes_back(monkeypatch):
    opened: list[EventPipe] = []

    def open_source(path: str) -> EventPipe:
        opened.append(EventPipe(path))
        return opened[-1]

    monkeypatch.setattr(wedge.KeyboardWedgeQrScanner, "open_source", open_source)
    dev = drivers.create("qr", {"driver": "evdev", "device": "/dev/input/event7", **FAST})
    ev = Events(dev)
    with dev:
        dev.start_polling()
        opened[0].unplug()
        assert ev.wait(EventKind.DEVICE_LOST)
        assert ev.wait(EventKind.DEVICE_BACK)
        assert len(opened) >= 2 and opened[0].closed and opened[-1].grabbed
        opened[-1].send(_typed("after replug"))
        assert ev.wait(EventKind.CODE_SCANNED)
    assert ev.of(EventKind.CODE_SCANNED)[0].payload["text"] == "after replug"


def test_simulated_scanner_dedupes_and_classifies():
    dev = drivers.create("qr", {"driver": "simulated", "dedupe_window_s": 60})
    ev = Events(dev)
    with dev:
        assert dev.scan("hello") and not dev.scan("hello") and dev.scan("world")
        dev.flush_events()
    assert [e.payload["text"] for e in ev.of(EventKind.CODE_SCANNED)] == ["hello", "world"]
    assert dev.statistics["operations"] == 2



@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")
                                                      ).filter(bool), max_size=8),
       st.sampled_from([b"\r", b"\n", b"\r\n"]), st.integers(1, 17))
def test_line_splitter_any_chunking_gives_the_same_lines(lines, eol, chunk):
    wire = b"".join(line + eol for line in lines)
    s = LineSplitter(max_line=64)
    out = []
    for i in range(0, len(wire), chunk):
        out += s.feed(wire[i:i + chunk])
    assert out == lines


def test_interactive_health_of_serial_scanner(pty_port):
    dev = drivers.create("qr", {"driver": "serial", "port": pty_port.link, **FAST})
    prompts = []

    def prompt(msg):
        prompts.append(msg)
        pty_port.write(b"QHB1:ANY\r\n")  # the technician scans a code

    with dev:
        h = dev.health("interactive", timeout=10, prompt=prompt)
        assert h.ok and h.details["length"] == 8 and prompts == ["请扫描任意二维码"]
        h = dev.health("interactive", timeout=0.3)
        assert not h.ok and "扫码器" in h.message
