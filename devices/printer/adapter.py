"""ReceiptPrinter: the ESC/POS receipt printer behind the device contract, over any python-escpos transport.

Every job checks the printer's real-time status (DLE EOT) before and after
printing. A fault (paper end, cover open, cutter error, offline) refuses the job
with a :class:`PrinterFault` whose message the kiosk can show as is, moves the
device to ``error`` (a ``status_changed`` event: the device alert) and keeps the
job in :attr:`ReceiptPrinter.unprinted`, so no receipt is lost silently: the UI
shows the tracking code as an on-screen QR and :meth:`reprint_unprinted` prints
it once the fault is cleared. A background status poll notices the clearing and
reports ``ready`` again.

Transports are python-escpos's own printer classes: network (9100), serial, USB
and a device file. :data:`TRANSPORTS` maps each driver name to its class and to
how our settings become that class's constructor arguments.
"""
from __future__ import annotations

import datetime as _dt
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from escpos.exceptions import DeviceNotFoundError

from devices.base import (
    DeviceAdapter,
    DeviceError,
    DeviceLost,
    DeviceState,
    DeviceStatus,
    HealthLevel,
    HealthResult,
    PromptCallback,
    UnknownDriver,
    settings_to_dict,
)
from devices.printer.escpos_out import write_blocks
from devices.printer.status import PrinterCondition, decode_status
from kiosk.domain.receipt import Cut, Feed, Line, Qr, Rule, columns_for_paper, compose_document, compose_receipt

log = logging.getLogger(__name__)

__all__ = ["PrinterFault", "PrintJob", "PrintResult", "ReceiptPrinter", "Transport", "TRANSPORTS"]

_job_ids = itertools.count(1)


class PrinterFault(DeviceError):
    """The job was refused or may not have come out complete; it is kept for reprinting."""

    code = "printer_fault"
    message = "打印机暂时无法打印，请稍后在本机补打"

    def __init__(self, condition: PrinterCondition | None = None, *, code: str | None = None,
                 message: str | None = None, job_id: int | None = None, after_print: bool = False):
        self.condition = condition
        self.job_id = job_id
        self.after_print = after_print
        code = code or (condition.code if condition else None)
        msg = message or (condition.message if condition else None)
        if after_print and msg:
            msg = "回执可能未打印完整。" + msg
        super().__init__(code, msg)


@dataclass
class PrintJob:
    blocks: Sequence[Any]
    title: str = "receipt"  # receipt | document | test-page (never personal data)
    id: int = field(default_factory=lambda: next(_job_ids))
    created: float = field(default_factory=time.time)
    attempts: int = 0


@dataclass(frozen=True)
class PrintResult:
    job_id: int
    condition: PrinterCondition
    ms: float


Param = Callable[[str, Any], Any]  # DeviceAdapter.param: a setting or its default


def _int(v: Any) -> int | None:
    """USB ids and endpoints from config: 1046, "0x0416" or unset."""
    if v is None:
        return None
    return int(v, 0) if isinstance(v, str) else int(v)


@dataclass(frozen=True)
class Transport:
    """One python-escpos printer class, the constructor arguments our settings give it, and what its reads mean."""

    escpos_class: str  # the class in escpos.printer (imported on first open: python-escpos is slow to import)
    args: Callable[[Param], dict[str, Any]]
    status_readable: bool = True  # DLE EOT answers come back (not from a write-only device file)
    eof_means_lost: bool = False  # an empty read is EOF, the peer closed (TCP), not a timeout tick (serial/USB)


#: driver name -> python-escpos transport
TRANSPORTS: dict[str, Transport] = {
    # a 9100-style network printer (raw TCP)
    "escpos-network": Transport("Network", lambda p: {
        "host": str(p("host", "127.0.0.1")), "port": int(p("port", 9100)), "timeout": float(p("timeout_s", 3.0))},
        eof_means_lost=True),
    # RS-232 / USB-serial printers (pyserial)
    "escpos-serial": Transport("Serial", lambda p: {
        "devfile": str(p("devfile", "/dev/ttyUSB0")), "baudrate": int(p("baudrate", 9600)),
        "timeout": float(p("timeout_s", 0.5)), "dsrdtr": bool(p("dsrdtr", False))}),
    # USB printer-class devices through pyusb (vendor/product ids from config)
    "escpos-usb": Transport("Usb", lambda p: {
        "idVendor": _int(p("id_vendor", None)), "idProduct": _int(p("id_product", None)),
        "timeout": int(p("timeout_ms", 2000)), "in_ep": _int(p("in_ep", 0x82)), "out_ep": _int(p("out_ep", 0x01))}),
    # a device file such as /dev/usb/lp0: write-only, so the printer's status cannot be read
    "escpos-file": Transport("File", lambda p: {"devfile": str(p("devfile", "/dev/usb/lp0"))},
                             status_readable=False),
}


class ReceiptPrinter(DeviceAdapter):
    """One class for every transport: the configured driver name picks the :data:`TRANSPORTS` entry.

    A subclass may fix the transport (``transport_name``) and keep its own driver name (the simulated printer).
    """

    kind: ClassVar[str] = "printer"
    driver = "escpos"
    default_poll_interval_s: ClassVar[float] = 2.0
    #: None: the transport is the configured driver (escpos-network, escpos-serial, ...)
    transport_name: ClassVar[str | None] = None

    def __init__(self, settings: Any = None):
        d = settings_to_dict(settings)
        name = self.transport_name or str(d.get("driver") or "")
        if name not in TRANSPORTS:
            raise UnknownDriver(detail=f"printer/{name}; known: {', '.join(TRANSPORTS)}")
        if self.transport_name is None:
            self.driver = name
        self.transport = TRANSPORTS[name]
        super().__init__(d)
        self.paper_mm = int(self.param("paper_mm", 58))
        if self.paper_mm not in (58, 80):
            raise DeviceError("bad_config", "打印机纸宽配置错误（应为58或80）", detail=f"paper_mm={self.paper_mm}")
        self.status_timeout_s = float(self.param("status_timeout_s", 2.0))
        self._p: Any = None
        self.condition = PrinterCondition()
        self.unprinted: list[PrintJob] = []

    # -- transport -------------------------------------------------------------
    @property
    def supports_status(self) -> bool:
        return self.transport.status_readable

    def _make_escpos(self) -> Any:
        from escpos import printer  # noqa: PLC0415 - python-escpos loads its printer database (~1.7 s) on import

        return getattr(printer, self.transport.escpos_class)(**self.transport.args(self.param))

    def _open_transport(self) -> None:
        p = self._make_escpos()
        try:
            p.open(raise_not_found=True)
        except DeviceNotFoundError as e:
            raise DeviceLost(detail=type(e).__name__) from None
        self._p = p
        if self.supports_status:
            self.condition = self._query_condition()

    def _close_transport(self) -> None:
        p, self._p = self._p, None
        if p is not None:
            try:
                p.close()
            except Exception:  # the peer is already gone; a socket/serial/USB close may fail any way
                log.debug("printer close failed", exc_info=True)

    def open(self) -> None:
        super().open()
        if self.status.state == DeviceState.READY:
            self._apply_condition(self.condition)
        if self.supports_status and self.param("poll_status", True):
            self.start_polling()

    # -- status ----------------------------------------------------------------
    def _read_status_byte(self, n: int) -> int:
        """Send DLE EOT n and return the one-byte answer; DeviceLost when the peer is gone."""
        self._p._raw(bytes([0x10, 0x04, n]))
        end = time.monotonic() + self.status_timeout_s
        while True:
            try:
                data = bytes(self._p._read())
            except TimeoutError:
                data = b""
                if time.monotonic() >= end:
                    raise DeviceLost("no_status", "打印机无响应", detail=f"DLE EOT {n}") from None
                continue
            if data:
                return data[-1]  # a late answer to an earlier query would come first
            if time.monotonic() >= end or self.transport.eof_means_lost:
                raise DeviceLost("no_status", "打印机无响应", detail=f"DLE EOT {n}")

    def _query_condition(self) -> PrinterCondition:
        if not self.supports_status:
            return PrinterCondition()
        if self._p is None:
            raise DeviceLost()
        try:
            answers = [self._read_status_byte(n) for n in (1, 2, 3, 4)]
            return decode_status(*answers)
        except DeviceLost:
            raise
        except ValueError as e:  # not a status byte: a confused line
            raise DeviceLost("bad_status", "打印机状态异常", detail=str(e)) from None
        except OSError as e:
            raise DeviceLost(detail=type(e).__name__) from None

    def _apply_condition(self, cond: PrinterCondition) -> None:
        self.condition = cond
        if cond.fault:
            self._set_status(DeviceStatus(DeviceState.ERROR, cond.code, cond.message))
        else:
            message = "设备正常" if cond.code == "ok" else cond.message
            self._set_status(DeviceStatus(DeviceState.READY, cond.code, message))

    def _set_status(self, st: DeviceStatus) -> None:
        # The base class reports a reopened transport as plain "ready"; say what the printer said.
        if st.state is DeviceState.READY and st.code == "ok" and self.condition.code != "ok":
            c = self.condition
            st = (DeviceStatus(DeviceState.ERROR, c.code, c.message) if c.fault
                  else DeviceStatus(DeviceState.READY, c.code, c.message))
        super()._set_status(st)

    def refresh_status(self) -> PrinterCondition:
        """Query the printer now; a vanished printer goes offline and reconnects."""
        with self._lock:
            if not self.is_open:
                raise DeviceError("closed", "打印机未打开")
            if self._p is None:
                raise DeviceLost()
            try:
                cond = self._query_condition()
            except DeviceLost as e:
                self._lost(e)
                raise
            self._apply_condition(cond)
            return cond

    def _poll_once(self) -> None:
        if self.status.state in (DeviceState.READY, DeviceState.ERROR) and self._p is not None:
            try:
                self.refresh_status()
            except DeviceLost:
                pass

    def _poll_loop(self, interval: float) -> None:
        # like the base loop, but an ERROR printer is polled too so a cleared fault is noticed
        while not self._stop.is_set():
            try:
                self._poll_once()
            except Exception:
                log.exception("printer status poll failed")
            if self._stop.wait(interval):
                return

    # -- printing ----------------------------------------------------------------
    def _reconnect_now(self) -> bool:
        """One immediate reconnect attempt (a printer that restarted while idle)."""
        self._close_transport()
        try:
            self._open_transport()
        except (DeviceLost, OSError):
            return False
        return True

    def print_blocks(self, blocks: Sequence[Any], title: str = "receipt") -> PrintResult:
        """Print layout blocks (kiosk.domain.receipt); PrinterFault (job kept in `unprinted`) when it cannot."""
        return self._run(PrintJob(list(blocks), title))

    def print_receipt(self, receipt: Any) -> PrintResult:
        return self.print_blocks(compose_receipt(receipt, self.paper_mm), "receipt")

    def print_document(self, doc: Any) -> PrintResult:
        return self.print_blocks(compose_document(doc, self.paper_mm), "document")

    def test_page(self) -> PrintResult:
        return self.print_blocks(test_page_blocks(self.paper_mm, self.driver), "test-page")

    def reprint_unprinted(self) -> int:
        """Print the kept jobs in order; returns how many came out. Stops at the first fault."""
        printed = 0
        while self.unprinted:
            job = self.unprinted[0]
            self._run(job, keep=False)
            self.unprinted.pop(0)
            printed += 1
        return printed

    def _keep(self, job: PrintJob, keep: bool) -> None:
        if keep and job not in self.unprinted:
            self.unprinted.append(job)

    def _run(self, job: PrintJob, keep: bool = True) -> PrintResult:
        job.attempts += 1
        t0 = time.perf_counter()
        with self._lock:
            if not self.is_open or self._p is None:
                self._keep(job, keep)
                cond = PrinterCondition(offline=True)
                self._stats.failure(cond.code)
                raise PrinterFault(cond, job_id=job.id)
            # before: is it able to print?
            try:
                cond = self._query_condition()
            except DeviceLost:
                if not self._reconnect_now():
                    self._keep(job, keep)
                    self._lost(DeviceLost())
                    raise PrinterFault(PrinterCondition(offline=True), job_id=job.id) from None
                cond = self.condition
            if cond.fault:
                self._keep(job, keep)
                self._apply_condition(cond)
                self._stats.failure(cond.code)
                raise PrinterFault(cond, job_id=job.id)
            self._set_status(DeviceStatus(DeviceState.BUSY, "printing", "正在打印"))
            try:
                write_blocks(self._p, job.blocks, self.paper_mm)
                after = self._query_condition()
            except (DeviceLost, OSError) as e:
                self._keep(job, keep)
                self._lost(e if isinstance(e, DeviceLost) else DeviceLost(detail=type(e).__name__))
                raise PrinterFault(PrinterCondition(offline=True), job_id=job.id, after_print=True) from None
            self._apply_condition(after)
            if after.fault:
                self._keep(job, keep)
                self._stats.failure(after.code)
                raise PrinterFault(after, job_id=job.id, after_print=True)
            ms = (time.perf_counter() - t0) * 1000
            self._stats.success(print_ms=ms)
            return PrintResult(job.id, after, ms)

    # -- health ------------------------------------------------------------------------
    def _health_external(self) -> HealthResult:
        if not self.supports_status:
            ok = self.status.state == DeviceState.READY
            return HealthResult(ok, HealthLevel.EXTERNAL, "此连接方式无法读取打印机状态" if ok else self.status.message,
                                {"status": self.status.as_dict(), "status_readable": False})
        try:
            cond = self.refresh_status()
        except DeviceError as e:
            return HealthResult(False, HealthLevel.EXTERNAL, e.message, {"code": e.code})
        return HealthResult(not cond.fault, HealthLevel.EXTERNAL, cond.message,
                            {"condition": cond.flags(), "code": cond.code, "unprinted": len(self.unprinted)})

    def _health_interactive(self, timeout: float, prompt: PromptCallback | None) -> HealthResult:
        if prompt:
            prompt("即将打印测试页，请查看打印机是否出纸、文字和二维码是否清晰")
        try:
            res = self.test_page()
        except DeviceError as e:
            return HealthResult(False, HealthLevel.INTERACTIVE, e.message, {"code": e.code})
        return HealthResult(True, HealthLevel.INTERACTIVE, "测试页已打印",
                            {"job_id": res.job_id, "ms": round(res.ms, 1)})


def test_page_blocks(paper_mm: int, driver: str = "") -> list[Any]:
    cols = columns_for_paper(paper_mm)
    digits = "".join(str(i % 10) for i in range(1, cols + 1))
    return [
        Line("齐好办", align="center", bold=True, scale=2),
        Line("打印机测试页", align="center", bold=True),
        Rule(),
        Line(f"纸宽：{paper_mm}mm  每行{cols}列"),
        Line(f"驱动：{driver}"[:cols]),
        Line(digits),
        Line("中文" * (cols // 4)),
        Line("粗体 Bold", bold=True),
        Line("居中 center", align="center"),
        Line("右对齐 right", align="right"),
        Line(_dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")),
        Qr("QHB1:TEST-PAGE"),
        Line("扫码应显示 QHB1:TEST-PAGE", align="center"),
        Feed(3),
        Cut(),
    ]
