"""缴费: a payment order from the platform, its QR on the screen, and waiting until it is paid."""
from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from kiosk.app.common import platform_message, walk_to_submitting
from kiosk.app.context import AppContext
from kiosk.app.errors import logged_entry_points
from kiosk.domain.money import check_amount_cents
from kiosk.domain.session import State, VisitEnded

log = logging.getLogger(__name__)


@logged_entry_points
class PaymentService:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def create_payment(self) -> None:
        self.ctx.scratch.pop("payment_cancel", None)
        self.ctx.in_background(self._create_payment)

    def cancel_payment_wait(self) -> None:
        # the payment screen also cancels when it is left after the visit ended: nothing to cancel then, and
        # the next visit must start with an empty scratch
        if self.ctx.session.state is not State.IDLE:
            self.ctx.scratch["payment_cancel"] = True

    @property
    def payment_id(self) -> str | None:
        """The visit's current payment order (tests pay it through the simulator)."""
        return self.ctx.scratch.get("payment_id")

    def _order(self) -> tuple[Any, dict[str, Any]]:
        """The item and the order body, read together from the visit (under its token)."""
        ctx = self.ctx
        it = ctx.require_item()
        body: dict[str, Any] = {"item_code": it.code, "kiosk_id": ctx.config.kiosk.id}
        if ctx.scratch.get("identity_token"):
            body["identity_token"] = ctx.scratch["identity_token"]
        return it, body

    def _still_waiting(self, token: int, pid: str) -> bool:
        """The visit that ordered `pid` is current and still waits for it (not cancelled, no newer order)."""
        scratch = self.ctx.scratch
        return self.ctx.session.run_if_current(token, lambda: None) and not scratch.get("payment_cancel") \
            and scratch.get("payment_id") == pid

    def _paid(self, pid: str) -> None:
        s = self.ctx.session
        if s.state in (State.ITEM_CHOSEN, State.FORM, State.REVIEW):
            walk_to_submitting(s)
            s.submitted(pid, queued=False, result={"kind": "payment"})
        self.ctx.events.post("payment_paid", tracking_no=pid)

    def _create_payment(self, token: int) -> None:
        ctx = self.ctx
        try:
            it, body = ctx.for_visit(token, self._order)
            platform = ctx.require_platform()
            pay = platform.create_payment(body, idempotency_key=f"pay-{uuid.uuid4().hex}")
            # whatever port answered: an amount that is not a bounded integer is refused here, with its reason,
            # not met later by the formatting below (10**400 / 100 raises OverflowError in the pool thread)
            cents = check_amount_cents(pay["amount_cents"])
        except VisitEnded:
            raise
        except Exception as e:  # noqa: BLE001 - told to the citizen, logged for the technician
            log.warning("payment order failed", exc_info=True)
            ctx.post_for(token, "payment_error", message=platform_message(e))
            return
        pid = pay["payment_id"]
        ctx.keep_for(token, "payment_id", pid)
        yuan = f"{cents // 100}.{cents % 100:02d}"  # integer arithmetic: no float between the cents and the screen
        ctx.post_for(token, "payment", qr_text=pay["qr_payload"], payment_id=pid,
                     lines=[f"缴费事项：{it.title}", f"应缴金额：{yuan} 元", f"缴费单号：{pid}"])
        end = time.monotonic() + ctx.timings.payment_timeout_s
        failures = 0
        while time.monotonic() < end and not ctx.stopping.is_set():
            if not self._still_waiting(token, pid):
                log.debug("payment wait ended (visit over, cancelled or a newer order)")
                return
            try:
                st = platform.get_payment(pid)
                failures = 0
            except Exception:  # noqa: BLE001 - keep waiting through a blip
                failures += 1  # the first failure of a run with its traceback, the rest quietly
                (log.warning if failures == 1 else log.debug)("payment status poll failed", exc_info=True)
                st = {"status": "unpaid"}
            if st["status"] == "paid":
                if not ctx.session.run_if_current(token, lambda: self._paid(pid)):
                    log.debug("a payment was completed after its visit ended; nothing shown")
                return
            if st["status"] == "expired":
                break
            ctx.post_for(token, "payment_wait", remaining=end - time.monotonic())
            ctx.stopping.wait(ctx.timings.payment_poll_s)
        ctx.post_for(token, "payment_error", message="等待付款超时，没有扣款。需要时请点「重新付款」")
