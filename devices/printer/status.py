"""ESC/POS real-time status (DLE EOT n) in both directions: the printer adapter decodes, the emulator encodes.

Each answer is one byte; bits 1 and 4 are always 1, bits 0 and 7 always 0 (0x12 = nothing set).
n=1 printer: bit 3 offline. n=2 offline cause: bit 2 cover open, bit 5 stopped by paper end,
bit 6 error. n=3 error: bit 3 autocutter, bit 5 unrecoverable, bit 6 auto-recoverable.
n=4 paper sensor: 0x0C near end, 0x60 paper end.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["PrinterCondition", "NAMED_CONDITIONS", "encode_status", "decode_status", "QUERIES", "BASE"]

BASE = 0x12
QUERIES = (1, 2, 3, 4)


@dataclass(frozen=True)
class PrinterCondition:
    offline: bool = False
    cover_open: bool = False
    paper_end: bool = False
    paper_near_end: bool = False
    cutter_error: bool = False
    unrecoverable: bool = False

    @property
    def fault(self) -> bool:
        """True when the printer cannot print (near end is only a warning)."""
        return any((self.offline, self.cover_open, self.paper_end, self.cutter_error, self.unrecoverable))

    @property
    def code(self) -> str:
        """The most specific cause, for dashboards and logs."""
        if self.paper_end:
            return "paper_out"
        if self.cover_open:
            return "cover_open"
        if self.cutter_error:
            return "cutter_error"
        if self.unrecoverable:
            return "printer_error"
        if self.offline:
            return "offline"
        if self.paper_near_end:
            return "paper_near_end"
        return "ok"

    @property
    def message(self) -> str:
        """What the person at the kiosk (or the helper) should know and do."""
        return _MESSAGES[self.code]

    def flags(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name)]


_MESSAGES = {
    "ok": "打印机正常",
    "paper_near_end": "打印纸即将用完，请通知工作人员更换",
    "paper_out": "打印机缺纸，暂时无法打印回执。请扫描屏幕上的二维码或记下办件编号，稍后可在本机补打",
    "cover_open": "打印机盖未关好，暂时无法打印回执。请通知工作人员，稍后可在本机补打",
    "cutter_error": "打印机切纸故障，暂时无法打印回执。请通知工作人员，稍后可在本机补打",
    "printer_error": "打印机故障，暂时无法打印回执。请通知工作人员，稍后可在本机补打",
    "offline": "打印机未就绪，暂时无法打印回执。请扫描屏幕上的二维码保存办件编号，稍后可在本机补打",
}

#: Conditions an emulator can be put into (CLI `--status`).
NAMED_CONDITIONS: dict[str, PrinterCondition] = {
    "ok": PrinterCondition(),
    "paper-near-end": PrinterCondition(paper_near_end=True),
    "paper-out": PrinterCondition(offline=True, paper_end=True, paper_near_end=True),
    "cover-open": PrinterCondition(offline=True, cover_open=True),
    "offline": PrinterCondition(offline=True),
    "cutter-error": PrinterCondition(offline=True, cutter_error=True),
}


def encode_status(cond: PrinterCondition, n: int) -> int:
    """The byte a printer in `cond` answers to DLE EOT n."""
    b = BASE
    if n == 1:
        if cond.fault:
            b |= 0x08
    elif n == 2:
        if cond.cover_open:
            b |= 0x04
        if cond.paper_end:
            b |= 0x20
        if cond.cutter_error or cond.unrecoverable:
            b |= 0x40
    elif n == 3:
        if cond.cutter_error:
            b |= 0x08
        if cond.unrecoverable:
            b |= 0x20
    elif n == 4:
        if cond.paper_near_end or cond.paper_end:
            b |= 0x0C
        if cond.paper_end:
            b |= 0x60
    return b


class BadStatusByte(ValueError):
    pass


def _check(b: int) -> int:
    # Fixed bits identify a real status byte (a stray text byte fails this).
    if b & 0x93 != 0x12:
        raise BadStatusByte(f"not a status byte: 0x{b:02x}")
    return b


def decode_status(printer: int, offline_cause: int | None = None, error: int | None = None,
                  paper: int | None = None) -> PrinterCondition:
    """Combine the four answers (those not queried are None) into one condition."""
    p = _check(printer)
    oc = _check(offline_cause) if offline_cause is not None else BASE
    er = _check(error) if error is not None else BASE
    pa = _check(paper) if paper is not None else BASE
    return PrinterCondition(
        offline=bool(p & 0x08),
        cover_open=bool(oc & 0x04),
        paper_end=bool(oc & 0x20) or (pa & 0x60) == 0x60,
        paper_near_end=bool(pa & 0x0C),
        cutter_error=bool(er & 0x08),
        unrecoverable=bool(er & 0x20),
    )
