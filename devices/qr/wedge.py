"""HID keyboard-wedge QR scanners read through evdev, so scanned text never lands in a text field.

The scanner "types" the code and presses Enter. We read ``struct input_event``
records from the event device (grabbed through python-evdev so the UI does not
also receive the keystrokes), translate key codes with Shift to characters, and
report each Enter-terminated line. Settings: ``device`` (/dev/input/eventN or a
by-id path), ``grab`` (default true), ``max_line``.
"""
from __future__ import annotations

import os
import select
import struct
from typing import Any

from evdev import ecodes

from devices.base import DeviceLost, EventKind
from devices.qr.common import QrScannerBase

__all__ = ["KeyboardWedgeQrScanner", "KeyTranslator", "EVENT_FORMAT", "pack_event"]

EVENT_FORMAT = "llHHi"  # struct input_event: timeval, type, code, value
EVENT_SIZE = struct.calcsize(EVENT_FORMAT)

_PLAIN: dict[int, str] = {}
_SHIFTED: dict[int, str] = {}
for _i, _c in enumerate("abcdefghijklmnopqrstuvwxyz"):
    _code = getattr(ecodes, f"KEY_{_c.upper()}")
    _PLAIN[_code], _SHIFTED[_code] = _c, _c.upper()
for _d, _s in zip("1234567890", "!@#$%^&*()"):
    _code = getattr(ecodes, f"KEY_{_d}")
    _PLAIN[_code], _SHIFTED[_code] = _d, _s
for _name, _p, _s in [("MINUS", "-", "_"), ("EQUAL", "=", "+"), ("LEFTBRACE", "[", "{"),
                      ("RIGHTBRACE", "]", "}"), ("BACKSLASH", "\\", "|"), ("SEMICOLON", ";", ":"),
                      ("APOSTROPHE", "'", '"'), ("GRAVE", "`", "~"), ("COMMA", ",", "<"), ("DOT", ".", ">"),
                      ("SLASH", "/", "?"), ("SPACE", " ", " ")]:
    _code = getattr(ecodes, f"KEY_{_name}")
    _PLAIN[_code], _SHIFTED[_code] = _p, _s
_SHIFT_KEYS = {ecodes.KEY_LEFTSHIFT, ecodes.KEY_RIGHTSHIFT}
_ENTER_KEYS = {ecodes.KEY_ENTER, ecodes.KEY_KPENTER}


def pack_event(etype: int, code: int, value: int, sec: int = 0, usec: int = 0) -> bytes:
    return struct.pack(EVENT_FORMAT, sec, usec, etype, code, value)


class KeyTranslator:
    """EV_KEY events -> lines (US layout, Shift and Caps Lock); unknown keys are counted, not guessed."""

    def __init__(self, max_line: int = 4096):
        self.max_line = max_line
        self._shift = 0
        self._caps = False
        self._buf: list[str] = []
        self.unknown_keys = 0
        self.overlong = 0

    def feed(self, etype: int, code: int, value: int) -> str | None:
        """One event; returns a completed line on Enter."""
        if etype != ecodes.EV_KEY:
            return None
        if code in _SHIFT_KEYS:
            self._shift = max(0, self._shift + (1 if value == 1 else -1 if value == 0 else 0))
            return None
        if value != 1:  # only key-down (no autorepeat from a scanner)
            return None
        if code == ecodes.KEY_CAPSLOCK:
            self._caps = not self._caps
            return None
        if code in _ENTER_KEYS:
            line, self._buf = "".join(self._buf), []
            return line or None
        ch = (_SHIFTED if self._shift else _PLAIN).get(code)
        if ch is None:
            self.unknown_keys += 1
            return None
        if self._caps and ch.isalpha():
            ch = ch.swapcase()
        if len(self._buf) >= self.max_line:
            self.overlong += 1
            self._buf = []
            return None
        self._buf.append(ch)
        return None


class KeyboardWedgeQrScanner(QrScannerBase):
    driver = "evdev"
    default_poll_interval_s = 0.0

    def __init__(self, settings: Any = None):
        super().__init__(settings)
        self._fd: int | None = None
        self._evdev = None
        self._pending = b""
        self.translator = KeyTranslator(int(self.param("max_line", 4096)))

    def _open_transport(self) -> None:
        path = self.param("device")
        if not path:
            raise DeviceLost("no_device", "未配置扫码枪输入设备")
        try:
            self._fd = os.open(str(path), os.O_RDONLY | os.O_NONBLOCK)
        except OSError as e:
            raise DeviceLost(detail=type(e).__name__) from None
        import stat
        if stat.S_ISCHR(os.fstat(self._fd).st_mode) and self.param("grab", True):
            try:
                from evdev import InputDevice
                self._evdev = InputDevice(str(path))
                self._evdev.grab()  # keystrokes go to us only
            except OSError:
                self._evdev = None
        self._pending = b""
        self.translator = KeyTranslator(self.translator.max_line)

    def _close_transport(self) -> None:
        if self._evdev is not None:
            try:
                self._evdev.ungrab()
                self._evdev.close()
            except Exception:
                pass
            self._evdev = None
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def _poll_once(self) -> None:
        fd = self._fd
        if fd is None:
            raise DeviceLost()
        r, _, _ = select.select([fd], [], [], 0.1)
        if not r:
            return
        try:
            data = os.read(fd, EVENT_SIZE * 64)
        except BlockingIOError:
            return
        except OSError as e:  # ENODEV when unplugged
            raise DeviceLost(detail=type(e).__name__) from None
        if not data:
            raise DeviceLost(detail="end of input")
        data = self._pending + data
        n = len(data) // EVENT_SIZE * EVENT_SIZE
        self._pending = data[n:]
        before = self.translator.overlong
        for off in range(0, n, EVENT_SIZE):
            _s, _u, etype, code, value = struct.unpack_from(EVENT_FORMAT, data, off)
            line = self.translator.feed(etype, code, value)
            if line is not None:
                self._report(line, "QR_CODE")
        if self.translator.overlong != before:
            self._stats.failure("too_long")
            self._emit(EventKind.READ_FAILED, code="too_long", message="二维码内容过长，无法识别")
