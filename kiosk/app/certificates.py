"""证明打印: a certificate fetched from the platform with the visit's identity token, shown and printed."""
from __future__ import annotations

import datetime as _dt
import logging

from kiosk.app.common import CERTIFICATE_KINDS, platform_message, walk_to_submitting
from kiosk.app.context import AppContext
from kiosk.app.receipts import ReceiptService
from kiosk.domain.receipt import QueryDocument, compose_document
from kiosk.domain.session import State

log = logging.getLogger(__name__)


class CertificateService:
    def __init__(self, ctx: AppContext, receipts: ReceiptService) -> None:
        self.ctx = ctx
        self._receipts = receipts

    def fetch_certificate(self) -> None:
        self.ctx.pool.submit(self._fetch_certificate)

    def print_certificate(self) -> None:
        self._receipts.print_document()

    def _fetch_certificate(self) -> None:
        ctx = self.ctx
        token = ctx.scratch.get("identity_token")
        try:
            it = ctx.require_item()
            if not token:
                raise RuntimeError("no identity token")
            kind = next((k for phrase, k in CERTIFICATE_KINDS.items() if phrase in it.title), it.code)
            doc = ctx.require_platform().get_certificate(kind, token)
        except Exception as e:  # noqa: BLE001 - told to the citizen, logged for the technician
            log.warning("certificate fetch failed", exc_info=True)
            ctx.events.post("certificate_error", message=platform_message(e))
            return
        ident = ctx.session.data.identity
        qd = QueryDocument(title=doc["title"], station=ctx.config.kiosk.station_name, brand=ctx.config.kiosk.brand,
                           applicant_name=getattr(ident, "name", ""), applicant_id=getattr(ident, "id_number", ""),
                           fields=[("证明编号", doc.get("serial", ""))], notes=list(doc["lines"]),
                           generated_at=_dt.datetime.now(), verify_code=doc.get("verify_url"))
        prn = ctx.printer()
        ctx.scratch["document_blocks"] = compose_document(qd, (prn.paper_mm if prn is not None else 80) or 80)
        s = ctx.session
        if s.state in (State.ITEM_CHOSEN, State.FORM, State.REVIEW):
            walk_to_submitting(s)
            s.submitted(doc.get("serial", "") or "ZM", queued=False, result={"kind": "certificate"})
        ctx.events.post("certificate", title=doc["title"],
                        lines=[f"持证人：{doc.get('holder', '')}", f"证明编号：{doc.get('serial', '')}"]
                        + list(doc["lines"]))
