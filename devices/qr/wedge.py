"""HID keyboard-wedge QR scanners read through python-evdev, so scanned text never lands in a text field.

The scanner "types" the code and presses Enter. We open its event device with
``evdev.InputDevice``, ``grab()`` it (so the UI does not also receive the
keystrokes), read ``InputEvent`` objects, translate key codes (``evdev.ecodes``)
with Shift and Caps Lock to characters, and report each Enter-terminated line.
Settings: ``device`` (/dev/input/eventN or a by-id path), ``grab`` (default
true), ``max_line``. When the grab fails (another process holds the device) the
scanner is not read at all: its status is ``error`` with code ``grab_failed``,
never a silent fallback to reading it ungrabbed while the window also gets the keys.
After an unplug the reconnect loop keeps trying, and the status stays ``error``
until a grab succeeds.
"""
from __future__ import annotations

import logging
import select
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Protocol

import evdev
from evdev import ecodes

from devices.base import DeviceError, DeviceLost, DeviceState, DeviceStatus, EventKind
from devices.qr.common import QrScannerBase

log = logging.getLogger(__name__)

__all__ = ["KeyboardWedgeQrScanner", "KeyTranslator", "ScannerNotGrabbed", "EventSource", "PLAIN_KEYS", "SHIFTED_KEYS"]


def _key(name: str) -> int:
    return int(ecodes.ecodes[f"KEY_{name}"])


#: key code -> character without / with Shift (US layout, what scanners emulate)
PLAIN_KEYS: dict[int, str] = {}
SHIFTED_KEYS: dict[int, str] = {}
for _c in "abcdefghijklmnopqrstuvwxyz":
    PLAIN_KEYS[_key(_c.upper())], SHIFTED_KEYS[_key(_c.upper())] = _c, _c.upper()
for _d, _s in zip("1234567890", "!@#$%^&*()", strict=True):
    PLAIN_KEYS[_key(_d)], SHIFTED_KEYS[_key(_d)] = _d, _s
for _name, _p, _s in [("MINUS", "-", "_"), ("EQUAL", "=", "+"), ("LEFTBRACE", "[", "{"),
                      ("RIGHTBRACE", "]", "}"), ("BACKSLASH", "\\", "|"), ("SEMICOLON", ";", ":"),
                      ("APOSTROPHE", "'", '"'), ("GRAVE", "`", "~"), ("COMMA", ",", "<"), ("DOT", ".", ">"),
                      ("SLASH", "/", "?"), ("SPACE", " ", " ")]:
    PLAIN_KEYS[_key(_name)], SHIFTED_KEYS[_key(_name)] = _p, _s
_SHIFT_KEYS = {ecodes.KEY_LEFTSHIFT, ecodes.KEY_RIGHTSHIFT}
_ENTER_KEYS = {ecodes.KEY_ENTER, ecodes.KEY_KPENTER}


class KeyTranslator:
    """EV_KEY events -> lines (US layout, Shift and Caps Lock); unknown keys are counted, not guessed."""

    def __init__(self, max_line: int = 4096):
        self.max_line = max_line
        self._shift = 0
        self._caps = False
        self._buf: list[str] = []
        self.unknown_keys = 0
        self.overlong = 0

    def feed_event(self, event: evdev.InputEvent) -> str | None:
        """One evdev event (only key events count); returns a completed line on Enter."""
        key = evdev.categorize(event)
        if not isinstance(key, evdev.KeyEvent):
            return None
        return self.feed(ecodes.EV_KEY, key.scancode, key.keystate)

    def feed(self, etype: int, code: int, value: int) -> str | None:
        """One event as (type, code, value); returns a completed line on Enter."""
        if etype != ecodes.EV_KEY:
            return None
        if code in _SHIFT_KEYS:
            up, down = evdev.KeyEvent.key_up, evdev.KeyEvent.key_down
            self._shift = max(0, self._shift + (1 if value == down else -1 if value == up else 0))
            return None
        if value != evdev.KeyEvent.key_down:  # only key-down (no autorepeat from a scanner)
            return None
        if code == ecodes.KEY_CAPSLOCK:
            self._caps = not self._caps
            return None
        if code in _ENTER_KEYS:
            line, self._buf = "".join(self._buf), []
            return line or None
        ch = (SHIFTED_KEYS if self._shift else PLAIN_KEYS).get(code)
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


class EventSource(Protocol):
    """What the driver needs of an input device: ``evdev.InputDevice`` is the real one."""

    @property
    def fd(self) -> int: ...

    def read(self) -> Iterable[evdev.InputEvent]: ...

    def grab(self) -> None: ...

    def ungrab(self) -> None: ...

    def close(self) -> None: ...


class ScannerNotGrabbed(DeviceError):
    """The exclusive grab failed: the scanner is in ``error`` rather than read ungrabbed."""

    code = "grab_failed"
    message = "扫码枪被其他程序占用，无法独占读取，请联系技术人员"


class KeyboardWedgeQrScanner(QrScannerBase):
    driver = "evdev"
    default_poll_interval_s = 0.0
    #: Opens the configured device path; tests without /dev/uinput swap in a source of InputEvents.
    open_source: ClassVar[Callable[[str], EventSource]] = evdev.InputDevice

    def __init__(self, settings: Any = None):
        super().__init__(settings)
        self._dev: EventSource | None = None
        self._grabbed = False
        self.translator = KeyTranslator(int(self.param("max_line", 4096)))

    def _open_transport(self) -> None:
        path = self.param("device")
        if not path:
            raise DeviceLost("no_device", "未配置扫码枪输入设备")
        try:
            dev: EventSource = type(self).open_source(str(path))
        except OSError as e:
            raise DeviceLost(detail=type(e).__name__) from None
        if self.param("grab", True):
            try:
                dev.grab()  # keystrokes go to us only
            except OSError as e:
                # Another process holds it. Reading anyway would let every scanned code also reach
                # the focused window as keystrokes (Kivy, a shell): refuse, and say so in the status.
                dev.close()
                err = ScannerNotGrabbed(detail=type(e).__name__)
                log.error("qr scanner %s: exclusive grab failed (%s); not reading it", path, type(e).__name__)
                self._stats.failure(err.code)
                self._set_status(DeviceStatus(DeviceState.ERROR, err.code, err.message))
                raise err from None
            self._dev, self._grabbed = dev, True
        else:  # configured not to grab (a scanner on its own input seat): an explicit choice, not a fallback
            self._dev, self._grabbed = dev, False
        self.translator = KeyTranslator(self.translator.max_line)

    def _close_transport(self) -> None:
        dev, self._dev = self._dev, None
        if dev is None:
            return
        try:
            if self._grabbed:
                dev.ungrab()
        except OSError:  # already unplugged: nothing left to release
            pass
        finally:
            self._grabbed = False
            dev.close()

    def _poll_once(self) -> None:
        dev = self._dev
        if dev is None:
            raise DeviceLost()
        r, _, _ = select.select([dev.fd], [], [], 0.1)
        if not r:
            return
        try:
            events = list(dev.read())
        except BlockingIOError:
            return
        except OSError as e:  # ENODEV when unplugged
            raise DeviceLost(detail=type(e).__name__) from None
        before = self.translator.overlong
        for event in events:
            line = self.translator.feed_event(event)
            if line is not None:
                self._report(line, "QR_CODE")
        if self.translator.overlong != before:
            self._stats.failure("too_long")
            self._emit(EventKind.READ_FAILED, code="too_long", message="二维码内容过长，无法识别")
