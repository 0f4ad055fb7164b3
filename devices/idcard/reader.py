"""The ID-card reader logic shared by every GA 467 transport: commands, read, poll loop.

A transport only moves bytes (:meth:`GA467Reader._exchange`): the serial driver
over pyserial, the simulated driver straight into a :class:`SamEmulator`.
The poll loop reports one ``card_inserted`` per card and one ``card_removed``;
a card that reads but must be refused (expired, malformed) is reported once as
``read_failed`` with the citizen message.
"""
from __future__ import annotations

import datetime as _dt
import time
from typing import Any, ClassVar

from devices.base import DeviceAdapter, DeviceError, EventKind, HealthLevel, HealthResult, PromptCallback
from devices.idcard.ga467 import OK_CODES, Command, GA467Frame, parse_read_data, sam_error
from devices.idcard.known_answer import read_response_frame, sample_card
from devices.idcard.text_block import check_card_usable, encode_text_block, parse_text_block
from kiosk.domain.identity_card import IdentityCard

__all__ = ["GA467Reader", "NoCard"]


class NoCard(DeviceError):
    code = "no_card"
    message = "请将身份证放在读卡区"


class GA467Reader(DeviceAdapter):
    kind: ClassVar[str] = "idcard"
    driver = "ga467"
    default_poll_interval_s = 0.3

    def __init__(self, settings: Any = None):
        super().__init__(settings)
        self.current_card: IdentityCard | None = None
        self._refused_present = False  # a refused card is still on the reader
        self._last_failure: str | None = None  # code of the last failed read of the card present

    # transport hook ------------------------------------------------------------
    def _exchange(self, request: GA467Frame, timeout: float) -> GA467Frame:
        raise NotImplementedError

    # commands -------------------------------------------------------------------
    @property
    def timeout_s(self) -> float:
        return float(self.param("timeout_s", 1.0))

    def command(self, cmd: tuple[int, int], data: bytes = b"", *, timeout: float | None = None,
                accept: set[int] = OK_CODES) -> GA467Frame:
        """Send one command and return the answer; SamError for a status outside `accept`."""
        ans = self._exchange(GA467Frame.request(cmd[0], cmd[1], data), timeout or self.timeout_s)
        if ans.sw3 not in accept:
            raise sam_error(ans.sw3)
        return ans

    def sam_status(self) -> None:
        self.command(Command.SAM_STATUS)

    def reset_sam(self) -> None:
        self.command(Command.RESET_SAM)

    def find_card(self) -> bool:
        ans = self.command(Command.FIND_CARD, accept={0x9F, 0x90, 0x80})
        return ans.sw3 != 0x80

    def select_card(self) -> None:
        self.command(Command.SELECT_CARD)

    def read_raw(self, fingerprint: bool = False) -> GA467Frame:
        """find + select + read; the raw answer frame (for capture and `decode`)."""
        if not self.find_card():
            raise NoCard()
        self.select_card()
        return self.command(Command.READ_BASE_FP if fingerprint else Command.READ_BASE,
                            timeout=max(self.timeout_s, float(self.param("read_timeout_s", 3.0))))

    def read_card(self, fingerprint: bool = False, *, today: _dt.date | None = None,
                  accept_expired: bool = False) -> IdentityCard:
        """Read the card on the reader; NoCard, SamError, MalformedText, CardRefused."""
        t0 = time.monotonic()
        try:
            ans = self.read_raw(fingerprint)
            parts = parse_read_data(ans.data)
            card = parse_text_block(parts.text, parts.photo, parts.fingerprint, today=today)
            if not accept_expired:
                check_card_usable(card, today)
        except DeviceError as e:
            if e.code != "no_card":
                self._stats.failure(e.code)
            raise
        self._stats.success(read_ms=(time.monotonic() - t0) * 1000)
        return card

    # poll loop ---------------------------------------------------------------------
    def _poll_once(self) -> None:
        present = self.find_card()
        if not present:
            if self.current_card is not None or self._refused_present or self._last_failure:
                self.current_card = None
                self._refused_present = False
                self._last_failure = None
                self._emit(EventKind.CARD_REMOVED)
            return
        if self.current_card is not None or self._refused_present:
            return  # same card still there
        try:
            card = self.read_card()
        except NoCard:
            return
        except DeviceError as e:
            if e.code in ("card_expired", "malformed_text", "unsupported_card", "unknown_card"):
                self._refused_present = True  # report once, until it is taken away
            if e.code != self._last_failure:  # a flaky read is retried every poll, reported once
                self._emit(EventKind.READ_FAILED, code=e.code, message=e.message)
            self._last_failure = e.code
            return
        self._last_failure = None
        self.current_card = card
        self._emit(EventKind.CARD_INSERTED, card=card)

    # health ---------------------------------------------------------------------------
    def _health_internal(self) -> HealthResult:
        card = sample_card()
        frame = read_response_frame(encode_text_block(card), card.photo_wlt)
        got = parse_read_data(GA467Frame.decode(frame.encode()).data)
        ok = parse_text_block(got.text, got.photo) == card
        return HealthResult(ok, HealthLevel.INTERNAL, "协议自检通过" if ok else "协议自检失败",
                            {"status": self.status.as_dict()})

    def _health_external(self) -> HealthResult:
        t0 = time.monotonic()
        self.sam_status()
        return HealthResult(True, HealthLevel.EXTERNAL, "读卡模块正常",
                            {"sam_ms": round((time.monotonic() - t0) * 1000, 1)})

    def _health_interactive(self, timeout: float, prompt: PromptCallback | None) -> HealthResult:
        if prompt:
            prompt("请在读卡区放一张身份证")
        end = time.monotonic() + timeout
        last: DeviceError | None = None
        while time.monotonic() < end:
            try:
                card = self.read_card(accept_expired=True)
            except DeviceError as e:
                last = e
                time.sleep(0.2)
                continue
            return HealthResult(True, HealthLevel.INTERACTIVE, "读卡成功", {"card": card.masked()})
        return HealthResult(False, HealthLevel.INTERACTIVE,
                            "未读到证件" + (f"：{last.message}" if last else ""),
                            {"code": last.code if last else "timeout"})
