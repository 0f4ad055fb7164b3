"""PC/SC card readers through pyscard: discovery, card monitoring, APDUs with status-word errors.

Insertion and removal come from pyscard's ``CardMonitor`` (an observer filtered to
our reader); reader presence is checked by the poll loop, so a reader that is
unplugged (or a pcscd that stops) makes the adapter ``offline`` and it comes back
by itself. Subclasses read their application in :meth:`PcscCardReader._on_card`.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

from devices.base import DeviceAdapter, DeviceError, DeviceLost, EventKind, HealthLevel, HealthResult

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
    from smartcard.scard import SCARD_LEAVE_CARD
    conn.connect(disposition=SCARD_LEAVE_CARD)


def list_readers() -> list[str]:
    """Reader names; DeviceLost when pcscd is not there."""
    from smartcard.System import readers
    try:
        return [str(r) for r in readers()]
    except Exception as e:  # EstablishContextException and friends do not share one base class
        raise DeviceLost("pcsc_unavailable", "智能卡服务未运行，正在重试", detail=type(e).__name__) from None


def _card_monitor() -> Any:
    """pyscard's CardMonitor, renewed when its (process-wide) thread has died.

    The monitor thread stops for good when pcscd goes away (SCARD_E_NO_SERVICE);
    a reader must come back without restarting the app, so a dead singleton is
    replaced by a fresh one (this process has no other CardMonitor users).
    """
    from smartcard import CardMonitoring as cm
    with cm.CardMonitor.lock:
        mon = cm.CardMonitor.instance
        thread = cm.CardMonitoringThread.instance
        dead = mon is not None and getattr(mon, "rmthread", None) is not None and (
            thread is None or not thread.is_alive())
        if dead:
            cm.CardMonitoringThread.instance = None
            cm.CardMonitor.instance = None
    return cm.CardMonitor()


class PcscCardReader(DeviceAdapter):
    """Generic PC/SC reader: emits card_inserted {atr, ...} / card_removed for the configured reader.

    Settings: ``reader`` (substring of the reader name; default: the first reader).
    """

    kind: ClassVar[str] = "sscard"
    driver: ClassVar[str] = "pcsc"
    default_poll_interval_s = 1.0

    def __init__(self, settings: Any = None):
        super().__init__(settings)
        self.reader_name: str | None = None
        self._observer = None
        self._monitor: Any = None
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
        from smartcard.CardMonitoring import CardObserver

        adapter = self

        class _Observer(CardObserver):
            def update(self, observable: Any, cards: tuple[list[Any], list[Any]]) -> None:
                added, removed = cards
                for c in removed:
                    if str(c.reader) == adapter.reader_name:
                        adapter._card_removed(c)
                for c in added:
                    if str(c.reader) == adapter.reader_name:
                        adapter._card_added(c)

        if self._observer is None:
            self._observer = _Observer()
            self._monitor = _card_monitor()
            self._monitor.addObserver(self._observer)

    def _stop_monitor(self) -> None:
        obs, self._observer = self._observer, None
        if obs is None:
            return
        # with on-demand start, deleting the last observer joins pyscard's monitor thread, which
        # may sit in a long SCardGetStatusChange: never block close() on it
        threading.Thread(target=self._monitor.deleteObserver, args=(obs,), daemon=True).start()

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
                    try:
                        conn.disconnect()
                    except Exception:
                        pass
        except DeviceError as e:
            self._stats.failure(e.code)
            payload["error"] = {"code": e.code, "message": e.message}
        except Exception as e:  # a card pulled out mid-read, a mute card
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
        from smartcard.Exceptions import CardConnectionException, NoCardException
        from smartcard.System import readers
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
                try:
                    conn.disconnect()
                except Exception:
                    pass

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
