"""办件查询: a case's progress by its receipt's tracking number (scanned or typed) or by the citizen's ID.

A receipt's QR code scanned on the home screen (``listen_for_receipts``) opens its case here; a case
that is finished and not yet rated at this kiosk is marked ``rateable`` (kiosk.domain.evaluation.
can_rate_later) so the screen can offer 「评价」 (kiosk.app.evaluations).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kiosk.app.common import id_type, platform_message
from kiosk.app.context import AppContext
from kiosk.app.errors import logged_entry_points
from kiosk.domain.evaluation import can_rate_later
from kiosk.domain.session import VisitEnded
from kiosk.domain.tracking import tracking_origin

log = logging.getLogger(__name__)

CASE_STATES = {"received": "已收件", "accepted": "已受理", "in_review": "审核中", "done": "已办结",
               "queued": "本机已保存，等待网络恢复后提交"}


@logged_entry_points
class ProgressService:
    def __init__(self, ctx: AppContext, is_rated: Callable[..., bool] = lambda *numbers: False) -> None:
        self.ctx = ctx
        self._is_rated = is_rated  # EvaluationService.is_rated: a case rated at this kiosk (reads a file: workers only)

    # ------------------------------------------------------------------ a receipt scanned on the home screen
    def listen_for_receipts(self) -> None:
        """The home screen is up: a scanned receipt QR opens its case (``receipt_scanned``)."""
        self.ctx.listening.add("receipt")

    def stop_listening_for_receipts(self) -> None:
        self.ctx.listening.discard("receipt")

    def on_device_event(self, ev: Any) -> None:
        """Device thread: a receipt's tracking code scanned while the home screen listens becomes a UI event."""
        ctx = self.ctx
        try:
            if "receipt" not in ctx.listening or "progress" in ctx.listening:
                return  # the progress screen looks the case up itself (IdentifyService)
            kind = ev.kind.value if hasattr(ev.kind, "value") else str(ev.kind)
            payload = ev.payload or {}
            if kind == "code_scanned" and payload.get("kind") == "tracking" and payload.get("value"):
                ctx.post_for(ctx.session.token, "receipt_scanned", tracking_no=str(payload["value"]))
        except VisitEnded:
            log.debug("a receipt scanned as its visit ended: dropped")
        except Exception:  # noqa: BLE001 - the adapter's thread must keep running; logged with its traceback
            log.exception("handling a scanned receipt failed")

    # ------------------------------------------------------------------ look-ups
    def start_progress_lookup(self) -> None:
        self.ctx.listening.add("progress")

    def stop_progress_lookup(self) -> None:
        self.ctx.listening.discard("progress")

    def query_progress_by_tracking(self, tracking_no: str) -> None:
        self.ctx.in_background(lambda token: self.progress_by_tracking(tracking_no, token))

    def query_progress_by_identity(self) -> None:
        self.ctx.in_background(self._progress_by_identity)

    def _case_view(self, a: dict[str, Any], *aliases: str) -> dict[str, Any]:
        """One case for the screen (worker thread): ``rateable`` when finished and not yet rated here."""
        code = a.get("item_code", "")
        it = self.ctx.catalog.find(code) if self.ctx.catalog is not None else None
        status = a.get("status", "")
        state = "已退回：" + (a.get("reason") or "") if status == "returned" else CASE_STATES.get(status, status)
        tracking_no = a.get("tracking_no", "")
        numbers = list(dict.fromkeys(n for n in (tracking_no, *aliases) if n))  # as printed on the receipt
        rated = self._is_rated(*numbers)
        return {"tracking_no": tracking_no, "item": (it.title if it is not None else code), "state": state,
                "status": status, "item_code": code, "aliases": [n for n in numbers if n != tracking_no],
                "rated": rated, "rateable": can_rate_later(status, already_rated=rated)}

    def progress_by_tracking(self, tracking_no: str, token: int | None = None) -> None:
        """Look one case up (worker thread): a local number is resolved through the outbox first.

        The answer goes to the screen only while the visit (`token`) that asked is current.
        """
        ctx = self.ctx
        scanned = tracking_no
        try:
            if tracking_origin(tracking_no) == "local":
                platform_no = ctx.outbox.resolve(tracking_no) if ctx.outbox else None
                if not platform_no:
                    ctx.post_for(token, "progress_result", cases=[{"tracking_no": tracking_no, "item": "",
                                                                   "state": "本机已保存，等待网络恢复后提交",
                                                                   "status": "queued", "rateable": False}])
                    return
                tracking_no = platform_no
            a = ctx.require_platform().get_application(tracking_no)
            ctx.post_for(token, "progress_result", cases=[self._case_view(a, scanned)], by="receipt")
        except Exception as e:  # noqa: BLE001 - told to the citizen, logged for the technician
            log.warning("progress lookup failed", exc_info=True)
            ctx.post_for(token, "progress_error", message=platform_message(e))
            self._scan_again_later()

    def _scan_again_later(self) -> None:
        """The citizen may still hold the receipt to the scanner: it counts once more after the dedupe
        window, so "请稍后再试" needs no lowering and raising of the receipt (nor a burst of retries)."""
        qr = self.ctx.qr()
        if qr is not None:
            qr.rearm()

    def _progress_by_identity(self, token: int) -> None:
        ctx = self.ctx

        def who() -> tuple[str, str] | None:
            ident = ctx.session.data.identity
            return None if ident is None else (id_type(ident), ident.id_number)

        asked = ctx.for_visit(token, who)
        if asked is None:
            return
        try:
            apps = ctx.require_platform().search_applications(*asked)
            ctx.post_for(token, "progress_result", cases=[self._case_view(a) for a in apps])
        except Exception as e:  # noqa: BLE001 - told to the citizen, logged for the technician
            log.warning("progress search failed", exc_info=True)
            ctx.post_for(token, "progress_error", message=platform_message(e))
