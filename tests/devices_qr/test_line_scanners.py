"""Serial line scanner on a pty, keyboard-wedge reader on raw input_event records, simulated scanner."""
from __future__ import annotations

import datetime as dt
import os

from evdev import ecodes

from kiosk.bootstrap import drivers
from qr_helpers import Events  # type: ignore
from devices.base import DeviceState, EventKind
from devices.qr.serial_scanner import LineSplitter
from devices.qr.wedge import KeyTranslator, pack_event
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


def _typed(text: str) -> bytes:
    inv = {}
    from devices.qr import wedge
    for code, ch in wedge._PLAIN.items():
        inv.setdefault(ch, (code, False))
    for code, ch in wedge._SHIFTED.items():
        inv.setdefault(ch, (code, True))
    out = b""
    for ch in text:
        code, shift = inv[ch]
        if shift:
            out += pack_event(ecodes.EV_KEY, ecodes.KEY_LEFTSHIFT, 1)
        out += pack_event(ecodes.EV_KEY, code, 1) + pack_event(ecodes.EV_SYN, 0, 0) + pack_event(ecodes.EV_KEY, code, 0)
        if shift:
            out += pack_event(ecodes.EV_KEY, ecodes.KEY_LEFTSHIFT, 0)
    return out + pack_event(ecodes.EV_KEY, ecodes.KEY_ENTER, 1) + pack_event(ecodes.EV_KEY, ecodes.KEY_ENTER, 0)


def test_key_translator_shift_caps_and_unknown():
    t = KeyTranslator()
    import struct
    from devices.qr.wedge import EVENT_FORMAT, EVENT_SIZE
    raw = _typed("QHB1:Ab-9_z")
    lines = []
    for off in range(0, len(raw), EVENT_SIZE):
        _, _, ty, code, val = struct.unpack_from(EVENT_FORMAT, raw, off)
        line = t.feed(ty, code, val)
        if line:
            lines.append(line)
    assert lines == ["QHB1:Ab-9_z"]
    t.feed(ecodes.EV_KEY, ecodes.KEY_CAPSLOCK, 1)
    t.feed(ecodes.EV_KEY, ecodes.KEY_A, 1)
    t.feed(ecodes.EV_KEY, ecodes.KEY_F1, 1)
    assert t.feed(ecodes.EV_KEY, ecodes.KEY_ENTER, 1) == "A" and t.unknown_keys == 1


def test_wedge_reader_on_event_stream(tmp_path):
    """No /dev/uinput in CI containers: the same input_event records arrive through a FIFO."""
    fifo = str(tmp_path / "event0")
    os.mkfifo(fifo)
    dev = drivers.create("qr", {"driver": "evdev", "device": fifo, **FAST})
    ev = Events(dev)
    wfd = os.open(fifo, os.O_RDWR)  # keep a writer so the reader never sees EOF
    try:
        with dev:
            dev.start_polling()
            data = _typed("QHB1:HELLO")
            os.write(wfd, data[:13])  # records split across reads
            os.write(wfd, data[13:])
            assert ev.wait(EventKind.CODE_SCANNED)
    finally:
        os.close(wfd)
    p = ev.of(EventKind.CODE_SCANNED)[0].payload
    assert p["text"] == "QHB1:HELLO" and p["refused"]["reason"] == "bad_tracking"


def test_simulated_scanner_dedupes_and_classifies():
    dev = drivers.create("qr", {"driver": "simulated", "dedupe_window_s": 60})
    ev = Events(dev)
    with dev:
        assert dev.scan("hello") and not dev.scan("hello") and dev.scan("world")
        dev.flush_events()
    assert [e.payload["text"] for e in ev.of(EventKind.CODE_SCANNED)] == ["hello", "world"]
    assert dev.statistics["operations"] == 2


from hypothesis import given, settings, strategies as st  # noqa: E402


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
