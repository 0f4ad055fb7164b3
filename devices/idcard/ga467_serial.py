"""GA 467 reader on a serial port (pyserial), 115200 8N1 by default.

Robust to what cheap USB-serial modules do: noise before answers, answers split
across reads, corrupted checksums (one retry), slow answers (a timeout per
command), and a port that vanishes (DeviceLost -> offline -> reconnect with backoff).
"""
from __future__ import annotations

import logging
import termios
import time
from typing import Any

import serial

from devices.base import DeviceError, DeviceLost
from devices.idcard.ga467 import FrameDecoder, GA467Frame
from devices.idcard.reader import GA467Reader

log = logging.getLogger(__name__)

__all__ = ["GA467SerialReader", "SamTimeout"]


class SamTimeout(DeviceError):
    code = "timeout"
    message = "读卡模块无响应，请联系工作人员"


class _CorruptAnswer(Exception):
    """An answer arrived but failed its checksum: ask again."""


class GA467SerialReader(GA467Reader):
    driver = "ga467-serial"
    corrupt_answers = 0

    def __init__(self, settings: Any = None):
        super().__init__(settings)
        self._serial: serial.Serial | None = None
        self.decoder = FrameDecoder()
        self._timeouts_in_row = 0

    @property
    def port(self) -> str:
        p = self.param("port")
        if not p:
            raise DeviceError("no_port", "未配置读卡器串口", detail="devices.idcard.port")
        return str(p)

    def _open_transport(self) -> None:
        try:
            self._serial = serial.Serial(self.port, baudrate=int(self.param("baudrate", 115200)),
                                         bytesize=8, parity="N", stopbits=1, timeout=0.05,
                                         write_timeout=1.0, exclusive=True)
        except (serial.SerialException, OSError, termios.error) as e:
            raise DeviceLost(detail=f"cannot open port: {type(e).__name__}") from None
        self.decoder.reset()
        self._timeouts_in_row = 0
        # A module that does not answer its status is not there (or not a SAM).
        if bool(self.param("check_on_open", True)):
            try:
                self.sam_status()
            except DeviceError as e:
                self._close_transport()
                if isinstance(e, DeviceLost):
                    raise
                raise DeviceLost(e.code, "读卡模块无响应，正在重试", detail=e.detail) from None

    def _close_transport(self) -> None:
        s, self._serial = self._serial, None
        if s is not None:
            try:
                s.close()
            except Exception:  # a port already unplugged may fail to close any way
                log.debug("ID-card reader port close failed", exc_info=True)

    def _exchange(self, request: GA467Frame, timeout: float) -> GA467Frame:
        retries = int(self.param("checksum_retries", 2))
        with self._lock:
            for attempt in range(retries + 1):
                try:
                    return self._exchange_once(request, timeout)
                except _CorruptAnswer:
                    self.corrupt_answers += 1
                    if attempt == retries:
                        raise DeviceError("checksum_error", "读卡模块数据传输错误，请重新放置证件",
                                          detail="answers kept failing their checksum") from None
            raise SamTimeout()  # pragma: no cover

    def _exchange_once(self, request: GA467Frame, timeout: float) -> GA467Frame:
        s = self._serial
        if s is None:
            raise DeviceLost(detail="port closed")
        try:
            s.reset_input_buffer()  # drop a late answer to an earlier command
            self.decoder.reset()
            s.write(request.encode())
            end = time.monotonic() + timeout
            bad_before = self.decoder.bad_checksums
            while time.monotonic() < end:
                chunk = s.read(s.in_waiting or 1)
                if chunk:
                    frames = self.decoder.feed(chunk)
                    if frames:
                        self._timeouts_in_row = 0
                        return frames[0]
                    if self.decoder.bad_checksums != bad_before:
                        raise _CorruptAnswer()
        except (serial.SerialException, OSError, termios.error) as e:
            raise DeviceLost(detail=type(e).__name__) from None
        self._timeouts_in_row += 1
        if self._timeouts_in_row >= int(self.param("timeouts_until_lost", 3)):
            raise DeviceLost("sam_silent", "读卡模块无响应，正在重新连接")
        raise SamTimeout()
