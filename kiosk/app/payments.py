"""缴费: a payment order from the platform, its QR on the screen, and waiting until it is paid."""
from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from kiosk.app.common import platform_message, walk_to_submitting
from kiosk.app.context import AppContext
from kiosk.domain.session import State

log = logging.getLogger(__name__)


class PaymentService:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def create_payment(self) -> None:
        self.ctx.scratch.pop("payment_cancel", None)
        self.ctx.pool.submit(self._create_payment)

    def cancel_payment_wait(self) -> None:
        self.ctx.scratch["payment_cancel"] = True

    @property
    def payment_id(self) -> str | None:
        """The visit's current payment order (tests pay it through the simulator)."""
        return self.ctx.scratch.get("payment_id")

    def _create_payment(self) -> None:
        ctx = self.ctx
        scratch = ctx.scratch
        try:
            it = ctx.require_item()
            body: dict[str, Any] = {"item_code": it.code, "kiosk_id": ctx.config.kiosk.id}
            if scratch.get("identity_token"):
                body["identity_token"] = scratch["identity_token"]
            platform = ctx.require_platform()
            pay = platform.create_payment(body, idempotency_key=f"pay-{uuid.uuid4().hex}")
        except Exception as e:  # noqa: BLE001 - told to the citizen, logged for the technician
            log.warning("payment order failed", exc_info=True)
            ctx.events.post("payment_error", message=platform_message(e))
            return
        pid = pay["payment_id"]
        scratch["payment_id"] = pid
        yuan = pay["amount_cents"] / 100
        ctx.events.post("payment", qr_text=pay["qr_payload"], payment_id=pid,
                        lines=[f"缴费事项：{it.title}", f"应缴金额：{yuan:.2f} 元", f"缴费单号：{pid}"])
        end = time.monotonic() + ctx.timings.payment_timeout_s
        while time.monotonic() < end and not ctx.stopping.is_set():
            if scratch.get("payment_cancel") or scratch.get("payment_id") != pid:
                return
            try:
                st = platform.get_payment(pid)
            except Exception:  # noqa: BLE001 - keep waiting through a blip
                log.debug("payment status poll failed", exc_info=True)
                st = {"status": "unpaid"}
            if st["status"] == "paid":
                s = ctx.session
                if s.state in (State.ITEM_CHOSEN, State.FORM, State.REVIEW):
                    walk_to_submitting(s)
                    s.submitted(pid, queued=False, result={"kind": "payment"})
                ctx.events.post("payment_paid", tracking_no=pid)
                return
            if st["status"] == "expired":
                break
            ctx.events.post("payment_wait", remaining=end - time.monotonic())
            time.sleep(1.0)
        ctx.events.post("payment_error", message="等待付款超时，没有扣款。需要时请点「重新付款」")
