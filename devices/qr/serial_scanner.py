"""A QR scanner on a serial port that sends each code as a CR/LF-terminated line."""
from __future__ import annotations

import logging
import termios
from typing import Any

import serial

from devices.base import DeviceLost, EventKind
from devices.qr.common import QrScannerBase

log = logging.getLogger(__name__)

__all__ = ["SerialQrScanner", "LineSplitter"]


class LineSplitter:
    """Bytes -> complete lines (CR, LF or CRLF); an overlong line is dropped and flagged."""

    def __init__(self, max_line: int = 4096):
        self.max_line = max_line
        self._buf = bytearray()
        self._discarding = False
        self.overlong = 0

    def feed(self, data: bytes) -> list[bytes]:
        out = []
        for b in data:
            if b in (0x0D, 0x0A):
                if self._discarding:
                    self._discarding = False
                elif self._buf:
                    out.append(bytes(self._buf))
                self._buf.clear()
                continue
            if self._discarding:
                continue
            self._buf.append(b)
            if len(self._buf) > self.max_line:
                self._buf.clear()
                self._discarding = True
                self.overlong += 1
        return out


class SerialQrScanner(QrScannerBase):
    driver = "serial"
    default_poll_interval_s = 0.0

    def __init__(self, settings: Any = None):
        super().__init__(settings)
        self._serial: serial.Serial | None = None
        self.splitter = LineSplitter(int(self.param("max_line", 4096)))

    def _open_transport(self) -> None:
        port = self.param("port")
        if not port:
            raise DeviceLost("no_port", "未配置扫码器串口")
        try:
            self._serial = serial.Serial(str(port), baudrate=int(self.param("baudrate", 9600)), timeout=0.1)
        except (serial.SerialException, OSError, termios.error) as e:
            raise DeviceLost(detail=type(e).__name__) from None
        self.splitter = LineSplitter(self.splitter.max_line)

    def _close_transport(self) -> None:
        s, self._serial = self._serial, None
        if s is not None:
            try:
                s.close()
            except Exception:  # a port already unplugged may fail to close any way
                log.debug("QR scanner port close failed", exc_info=True)

    def _poll_once(self) -> None:
        s = self._serial
        if s is None:
            raise DeviceLost()
        try:
            data = s.read(s.in_waiting or 1)
        except (serial.SerialException, OSError, termios.error) as e:
            raise DeviceLost(detail=type(e).__name__) from None
        before = self.splitter.overlong
        for line in self.splitter.feed(data):
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                try:
                    text = line.decode("gb18030")  # many scanners default to GBK output
                except UnicodeDecodeError:
                    self._stats.failure("not_text")
                    self._emit(EventKind.READ_FAILED, code="not_text", message="二维码内容不是文字，无法识别")
                    continue
            self._report(text, "QR_CODE")
        if self.splitter.overlong != before:
            self._stats.failure("too_long")
            self._emit(EventKind.READ_FAILED, code="too_long", message="二维码内容过长，无法识别")
