"""PC/SC card readers through pyscard: discovery, card monitoring, APDUs with status-word errors.

Insertion and removal come from a :class:`CardWatch` per open adapter (pyscard's
public ``CardRequest.waitforcardevent``, filtered to our reader); reader presence
is checked by the poll loop, so a reader that is unplugged (or a pcscd that stops)
makes the adapter ``offline`` and it comes back by itself. Subclasses read their
application in :meth:`PcscCardReader._on_card`.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

from devices.base import DeviceAdapter, DeviceError, DeviceLost, EventKind, HealthLevel, HealthResult

log = logging.getLogger(__name__)

__all__ = ["PcscCardReader", "ApduError", "SW_MESSAGES", "Transmit", "transmit_checked", "list_readers"]

Transmit = Callable[[list[int]], tuple[list[int], int, int]]

#: ISO 7816-4 status words -> (code, Chinese message).
SW_MESSAGES: dict[int, tuple[str, str]] = {
    0x6283: ("file_invalidated", "卡片已失效，请到人工窗口办理"),
    0x6581: ("memory_failure", "卡片存储错误，请到人工窗口办理"),
    0x6700: ("wrong_length", "读卡命令长度错误，请联系工作人员"),
    0x6982: ("security_not_satisfied", "卡片信息受保护，需要安全认证"),
    0x6983: ("auth_blocked", "卡片密码已锁定，请到人工窗口办理"),
    0x6985: ("conditions_not_satisfied", "卡片状态不允许此操作"),
    0x6986: ("command_not_allowed", "卡片不允许此操作"),
    0x6A81: ("function_not_supported", "卡片不支持此功能"),
    0x6A82: ("not_found", "卡片上没有所需的应用或文件"),
    0x6A83: ("record_not_found", "卡片上没有所需的记录"),
    0x6A86: ("wrong_parameters", "读卡命令参数错误，请联系工作人员"),
    0x6D00: ("ins_not_supported", "卡片不支持此命令"),
    0x6E00: ("cla_not_supported", "卡片不支持此命令类别"),
}


class ApduError(DeviceError):
    def __init__(self, sw: int, context: str = ""):
        self.sw = sw
        code, msg = SW_MESSAGES.get(sw, ("card_error", "卡片返回错误，请重新插卡"))
        super().__init__(code, msg, detail=f"SW={sw:04X}" + (f" {context}" if context else ""))


def transmit_checked(transmit: Transmit, apdu: bytes, context: str = "") -> bytes:
    """Send one APDU; follow 61xx (GET RESPONSE) and 6Cxx (resend with Le); ApduError otherwise."""
    data, sw1, sw2 = transmit(list(apdu))
    out = bytes(data)
    for _ in range(8):
        if sw1 == 0x61:
            data, sw1, sw2 = transmit([0x00, 0xC0, 0x00, 0x00, sw2])
            out += bytes(data)
        elif sw1 == 0x6C:
            data, sw1, sw2 = transmit(list(apdu[:4]) + [sw2])
            out = bytes(data)
        else:
            break
    sw = (sw1 << 8) | sw2
    if sw != 0x9000:
        raise ApduError(sw, context)
    return out


def _connect(conn: Any) -> None:
    """Connect leaving the card powered afterwards: a reset would break another session's state."""
    from smartcard.scard import SCARD_LEAVE_CARD  # noqa: PLC0415 - pyscard needs libpcsclite; simulated readers do not

    conn.connect(disposition=SCARD_LEAVE_CARD)


def _disconnect(conn: Any) -> None:
    """Release a card connection; a card already pulled out (or a pcscd gone) leaves nothing to release."""
    try:
        conn.disconnect()
    except Exception:  # pyscard's errors share no base class
        log.debug("card disconnect failed", exc_info=True)


def list_readers() -> list[str]:
    """Reader names; DeviceLost when pcscd is not there."""
    from smartcard.System import readers  # noqa: PLC0415 - pyscard needs libpcsclite; simulated readers do not

    try:
        return [str(r) for r in readers()]
    except Exception as e:  # EstablishContextException and friends do not share one base class
        log.debug("listing PC/SC readers failed", exc_info=True)
        raise DeviceLost("pcsc_unavailable", "智能卡服务未运行，正在重试", detail=type(e).__name__) from None


CardCallback = Callable[[Any], None]


class CardWatch:
    """Card insertions and removals on one reader, from pyscard's public ``CardRequest.waitforcardevent``.

    Why not pyscard's ``CardMonitor``: it is a process-wide singleton whose thread
    stops for good when pcscd goes away, and a reader must come back without
    restarting the app. A watch belongs to one open adapter (its own PC/SC
    context) and ends with it; each open starts a fresh one. It does what
    CardMonitor's thread does (diff the present cards after each change), waking
    every ``wake_s`` to notice :meth:`stop`, so stopping never blocks.
    """

    def __init__(self, reader: str, on_added: CardCallback, on_removed: CardCallback, *, wake_s: float = 1.0,
                 retry_s: float = 0.5):
        self.reader = reader
        self.on_added, self.on_removed = on_added, on_removed
        self.wake_s, self.retry_s = wake_s, retry_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"cardwatch-{reader}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the watch to end; no callback runs after this returns (the thread ends within ``wake_s``)."""
        self._stopped.set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stopped.is_set()

    def _run(self) -> None:
        from smartcard.CardRequest import CardRequest  # noqa: PLC0415 - pyscard needs libpcsclite
        from smartcard.Exceptions import (  # noqa: PLC0415 - pyscard needs libpcsclite
            CardRequestTimeoutException,
            SmartcardException,
        )

        known: list[Any] = []
        request: Any = None
        while not self._stopped.is_set():
            try:
                if request is None:
                    request = CardRequest(timeout=self.wake_s)  # all readers + PnP: blocks even with none
                current = [c for c in request.waitforcardevent() if str(c.reader) == self.reader]
            except CardRequestTimeoutException:
                continue
            except SmartcardException:  # pcscd gone: the poll loop takes the adapter offline
                log.debug("card watch on %s: PC/SC failed", self.reader, exc_info=True)
                request = None
                self._stopped.wait(self.retry_s)
                continue
            added = [c for c in current if c not in known]
            removed = [c for c in known if c not in current]
            known = current
            for c in removed:
                if not self._stopped.is_set():
                    self.on_removed(c)
            for c in added:
                if not self._stopped.is_set():
                    self.on_added(c)


class PcscCardReader(DeviceAdapter):
    """Generic PC/SC reader: emits card_inserted {atr, ...} / card_removed for the configured reader.

    Settings: ``reader`` (substring of the reader name; default: the first reader).
    """

    kind: ClassVar[str] = "sscard"
    driver = "pcsc"
    default_poll_interval_s = 1.0

    def __init__(self, settings: Any = None):
        super().__init__(settings)
        self.reader_name: str | None = None
        self._watch: CardWatch | None = None
        self._cards: dict[str, Any] = {}  # atr hex -> result of _on_card
        self._card_lock = threading.Lock()
        self._session = threading.Lock()  # one card session at a time (monitor vs. synchronous read)

    # -- discovery -------------------------------------------------------------
    def _find_reader(self) -> str:
        names = list_readers()
        want = str(self.param("reader", "") or "")
        for n in names:
            if want in n:
                return n
        raise DeviceLost("reader_missing", "未找到读卡器，请检查连接", detail=f"wanted {want!r}")

    def _open_transport(self) -> None:
        self.reader_name = self._find_reader()
        self._start_monitor()

    def _close_transport(self) -> None:
        self._stop_monitor()

    def _poll_once(self) -> None:
        if self._find_reader() != self.reader_name:
            raise DeviceLost("reader_missing", "未找到读卡器，请检查连接")

    # -- card monitoring ----------------------------------------------------------
    def _start_monitor(self) -> None:
        if self._watch is None and self.reader_name is not None:
            self._watch = CardWatch(self.reader_name, self._card_added, self._card_removed)
            self._watch.start()

    def _stop_monitor(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.stop()  # never blocks close(): the thread may sit in SCardGetStatusChange for wake_s

    def _card_added(self, card: Any) -> None:
        atr = bytes(card.atr)
        t0 = time.monotonic()
        payload: dict[str, Any] = {"atr": atr.hex(" ").upper(), "reader": self.reader_name}
        try:
            with self._session:
                conn = card.createConnection()
                _connect(conn)
                try:
                    payload.update(self._on_card(conn.transmit, atr))
                finally:
                    _disconnect(conn)
        except DeviceError as e:
            self._stats.failure(e.code)
            payload["error"] = {"code": e.code, "message": e.message}
        except Exception as e:  # a card pulled out mid-read, a mute card (pyscard's errors share no base)
            log.warning("card read on %s failed", self.reader_name, exc_info=True)
            self._stats.failure("card_io")
            payload["error"] = {"code": "card_io", "message": "读卡失败，请重新插卡"}
            payload["detail"] = type(e).__name__
        else:
            self._stats.success(read_ms=(time.monotonic() - t0) * 1000)
        with self._card_lock:
            self._cards[payload["atr"]] = payload
        self._emit(EventKind.CARD_INSERTED, **payload)

    def _card_removed(self, card: Any) -> None:
        with self._card_lock:
            self._cards.pop(bytes(card.atr).hex(" ").upper(), None)
        self._emit(EventKind.CARD_REMOVED, reader=self.reader_name)

    def _on_card(self, transmit: Transmit, atr: bytes) -> dict[str, Any]:
        """Read the card's application; return extra event payload. Generic reader: ATR only."""
        return {}

    # -- synchronous use (CLI, health) --------------------------------------------------
    def read_present_card(self) -> dict[str, Any]:
        """Connect to the card now on the reader and read it (NoCard -> DeviceError no_card)."""
        from smartcard.Exceptions import (  # noqa: PLC0415 - pyscard needs libpcsclite
            CardConnectionException,
            NoCardException,
        )
        from smartcard.System import readers  # noqa: PLC0415 - pyscard needs libpcsclite

        rd = next((r for r in readers() if str(r) == self.reader_name), None)
        if rd is None:
            raise DeviceLost("reader_missing", "未找到读卡器，请检查连接")
        with self._session:
            conn = rd.createConnection()
            try:
                _connect(conn)
            except (NoCardException, CardConnectionException):
                raise DeviceError("no_card", "请插入卡片") from None
            try:
                atr = bytes(conn.getATR())
                out = {"atr": atr.hex(" ").upper(), "reader": self.reader_name}
                out.update(self._on_card(conn.transmit, atr))
                return out
            except (NoCardException, CardConnectionException):
                raise DeviceError("card_removed", "卡片已移开或接触不良，请重新插卡") from None
            finally:
                _disconnect(conn)

    def _health_interactive(self, timeout: float, prompt: Any) -> HealthResult:
        """Ask the technician to insert a card; pass when it reads within `timeout`."""
        if prompt:
            prompt("请插入一张卡片")
        end = time.monotonic() + timeout
        last: DeviceError | None = None
        while time.monotonic() < end:
            try:
                got = self.read_present_card()
            except DeviceError as e:
                last = e
                if e.code not in ("no_card", "card_removed"):
                    break
                time.sleep(0.2)
                continue
            return HealthResult(True, HealthLevel.INTERACTIVE, "读卡成功", {"atr": got["atr"]})
        return HealthResult(False, HealthLevel.INTERACTIVE, "未读到卡片" + (f"：{last.message}" if last else ""),
                            {"code": last.code if last else "timeout"})

    def _health_external(self) -> HealthResult:
        names = list_readers()
        ok = self.reader_name in names
        return HealthResult(ok, HealthLevel.EXTERNAL, "读卡器正常" if ok else "未找到读卡器",
                            {"readers": names, "reader": self.reader_name})
