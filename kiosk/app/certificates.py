"""证明打印: a certificate fetched from the platform with the visit's identity token, shown and printed."""
from __future__ import annotations

import datetime as _dt
import logging
from typing import Any

from kiosk.app.common import CERTIFICATE_KINDS, platform_message, walk_to_submitting
from kiosk.app.context import AppContext
from kiosk.app.errors import logged_entry_points
from kiosk.app.receipts import ReceiptService
from kiosk.domain.receipt import QueryDocument, compose_document
from kiosk.domain.session import State, VisitEnded

log = logging.getLogger(__name__)


@logged_entry_points
class CertificateService:
    def __init__(self, ctx: AppContext, receipts: ReceiptService) -> None:
        self.ctx = ctx
        self._receipts = receipts

    def fetch_certificate(self) -> None:
        self.ctx.in_background(self._fetch_certificate)

    def print_certificate(self) -> None:
        self._receipts.print_document()

    def _request(self) -> tuple[str, str | None]:
        """(certificate kind, identity token) of the visit's item."""
        it = self.ctx.require_item()
        kind = next((k for phrase, k in CERTIFICATE_KINDS.items() if phrase in it.title), it.code)
        return kind, self.ctx.scratch.get("identity_token")

    def _keep(self, doc: dict[str, Any]) -> None:
        """Under the visit's token: compose the document for the printer and complete the case."""
        ctx = self.ctx
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

    def _fetch_certificate(self, token: int) -> None:
        ctx = self.ctx
        try:
            kind, identity_token = ctx.for_visit(token, self._request)
            if not identity_token:
                raise RuntimeError("no identity token")
            doc = ctx.require_platform().get_certificate(kind, identity_token)
        except VisitEnded:
            raise
        except Exception as e:  # noqa: BLE001 - told to the citizen, logged for the technician
            log.warning("certificate fetch failed", exc_info=True)
            ctx.post_for(token, "certificate_error", message=platform_message(e))
            return
        ctx.for_visit(token, lambda: self._keep(doc))
