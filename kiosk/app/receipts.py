"""Paper: the receipt of a submitted case, a fetched certificate, reprints of receipts that never came out."""
from __future__ import annotations

import datetime as _dt
import logging
from typing import Any

from kiosk.app.common import is_paper_out, limit_text
from kiosk.app.context import AppContext
from kiosk.app.errors import logged_entry_points
from kiosk.domain.receipt import Receipt, compose_receipt
from kiosk.domain.session import State, VisitEnded
from kiosk.domain.tracking import qr_payload
from kiosk.ports.outbox import StoredReceipt

log = logging.getLogger(__name__)


@logged_entry_points
class ReceiptService:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def receipt_data(self) -> Receipt:
        ctx = self.ctx
        d = ctx.session.data
        it = ctx.require_item()
        ident = d.identity
        kiosk = ctx.config.kiosk
        return Receipt(
            station=kiosk.station_name, brand=kiosk.brand, item=it.title,
            applicant_name=getattr(ident, "name", "") or "", applicant_id=getattr(ident, "id_number", "") or "",
            tracking_no=d.tracking_no or "", submitted_at=_dt.datetime.now(),
            promised_text=limit_text(it.promised_limit), queued=ctx.session.state is State.QUEUED,
            service_phone=kiosk.service_phone, helper_phone=kiosk.helper_phone)

    def print_receipt(self) -> None:
        self.ctx.in_background(self._print, "receipt")

    def print_document(self) -> None:
        """The certificate fetched in this visit (its blocks were composed when it arrived)."""
        self.ctx.in_background(self._print, "document")

    def _paper(self, what: str, paper_mm: int) -> tuple[str, str | None, list[Any]]:
        """(tracking number, local number, blocks) of the visit's receipt or document, read in one go."""
        ctx = self.ctx
        tracking = ctx.session.data.tracking_no or ""
        if what == "receipt":
            blocks = compose_receipt(self.receipt_data(), paper_mm)
        else:
            blocks = ctx.scratch.get("document_blocks") or []
        return tracking, ctx.scratch.get("local_no"), blocks

    def _print(self, token: int, what: str) -> None:
        """Worker: composed under the visit's token (a visit that has ended prints nothing), then printed."""
        ctx = self.ctx
        prn = ctx.printer()
        tracking = ctx.for_visit(token, lambda: ctx.session.data.tracking_no or "")
        try:
            tracking, local_no, blocks = ctx.for_visit(token, lambda: self._paper(
                what, (prn.paper_mm if prn is not None else 58) if what == "receipt" else 0))
            ctx.last_receipt = blocks
            if prn is None:
                raise RuntimeError("no printer")
            prn.print_blocks(blocks, what)
        except VisitEnded:
            raise
        except Exception as e:  # noqa: BLE001 - the citizen gets the QR instead; logged for the technician
            log.warning("printing the %s failed", what, exc_info=True)
            msg = getattr(e, "message", None) or "打印机故障，请联系工作人员"
            if is_paper_out(e):
                msg = "打印机缺纸，请联系工作人员"
            ctx.post_for(token, "printed", ok=False, message=msg,
                         qr_text=qr_payload(tracking) if tracking else "")
            return
        if what == "receipt" and local_no and ctx.outbox is not None:
            ctx.outbox.receipts.mark_printed(local_no)
        ctx.post_for(token, "printed", ok=True)

    def unprinted_receipts(self, limit: int = 50) -> list[StoredReceipt]:
        """Applications whose receipt never came out of the printer (survives a restart): for the technician."""
        if self.ctx.outbox is None:
            return []
        return [r for r in self.ctx.outbox.receipts.recent(limit)
                if r.kind == "application" and r.printed_count == 0]

    def reprint_receipt(self, number: str) -> str:
        """Print a stored application's receipt again, from its masked summary (technician action)."""
        ctx = self.ctx
        outbox = ctx.outbox
        r = outbox.receipts.get(number) if outbox is not None else None
        if outbox is None or r is None or r.kind != "application":
            return "没有找到这张回执"
        item = ctx.catalog.find(r.summary.get("item_code") or "") if ctx.catalog is not None else None
        kiosk = ctx.config.kiosk
        rc = Receipt(
            station=kiosk.station_name, brand=kiosk.brand,
            item=item.title if item is not None else (r.summary.get("item_code") or ""),
            applicant_name=r.summary.get("name") or "", applicant_id=r.summary.get("id_number") or "",
            tracking_no=r.tracking_no, submitted_at=_dt.datetime.fromtimestamp(r.created_at),
            promised_text=limit_text(item.promised_limit) if item is not None else "", queued=r.platform_no is None,
            service_phone=kiosk.service_phone, helper_phone=kiosk.helper_phone)
        prn = ctx.printer()
        try:
            if prn is None:
                raise RuntimeError("no printer")
            prn.print_blocks(compose_receipt(rc, prn.paper_mm), "receipt")
        except Exception as e:  # noqa: BLE001 - the technician reads the reason on the screen
            log.warning("reprint failed", exc_info=True)
            return "补打失败：" + (getattr(e, "message", None) or "打印机故障")
        outbox.receipts.mark_printed(r.local_no)
        return f"已补打回执 {r.tracking_no}"

    def last_blocks(self) -> list[Any] | None:
        """The blocks of the last receipt or document sent to the printer (tests, demo)."""
        return self.ctx.last_receipt
