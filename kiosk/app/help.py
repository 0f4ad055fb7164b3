"""帮办代办: call the station's helper, or book a home visit for an elderly citizen; both go through the outbox.

The answer to the citizen (a wrong phone number, say) comes at once; the
fsynced enqueue, which may also wait for start-up, runs off the UI thread and
reports a failure as a `help_failed` event.
"""
from __future__ import annotations

import datetime as _dt
import logging
from typing import Any

from kiosk.app.common import VISIT_TIMES, id_type, now_iso
from kiosk.app.context import AppContext
from kiosk.app.errors import logged_entry_points
from kiosk.domain.contact import normalise_mobile

log = logging.getLogger(__name__)
SAVE_FAILED = "本机暂时无法保存您的请求，请直接拨打服务电话"


@logged_entry_points
class HelpService:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def request_help(self, phone: str) -> str | None:
        """Notify the station's helper through the platform (queued); a message when the phone is wrong."""
        mobile = normalise_mobile(phone)
        if mobile is None:
            return "请输入11位手机号码，工作人员会给您回电"
        ctx = self.ctx
        ident = ctx.session.data.identity
        body: dict[str, Any] = {"topic": "自助区现场帮办",
                                "contact": {"name": getattr(ident, "name", "") or "自助区群众", "phone": mobile},
                                "kiosk_id": ctx.config.kiosk.id, "created_at": now_iso()}
        it = ctx.current_item
        if it is not None:
            body["item_code"] = it.code
        ctx.in_background(self._enqueue, "help_request", body, "help")
        return None

    def _enqueue(self, token: int, kind: str, body: dict[str, Any], key_prefix: str) -> None:
        """Worker: the request is queued for the platform; a failure is told to the screen that asked."""
        try:
            self.ctx.enqueue(kind, body, key_prefix)
        except Exception:  # noqa: BLE001 - told to the citizen, logged for the technician
            log.exception("queueing a %s failed", kind)
            self.ctx.post_for(token, "help_failed", message=SAVE_FAILED)

    def book_home_visit(self, item_code: str, phone: str, when: str) -> str | None:
        """Queue a home visit; returns a message for the citizen when something is missing."""
        ctx = self.ctx
        ident = ctx.session.data.identity
        if ident is None:
            return "请先在读卡区放上被服务老人的身份证"
        if not item_code:
            return "请选择要办的事"
        if when not in VISIT_TIMES:
            return "请选择上门时间"
        mobile = normalise_mobile(phone)
        if mobile is None:
            return "请输入11位手机号码"
        date = _dt.date.today() + _dt.timedelta(days=VISIT_TIMES[when])
        body = {"item_code": item_code,
                "applicant": {"id_type": id_type(ident), "id_number": ident.id_number, "name": ident.name,
                              "phone": mobile},
                "address": getattr(ident, "address", "") or "见身份证", "preferred_date": date.isoformat(),
                "note": when, "kiosk_id": ctx.config.kiosk.id, "created_at": now_iso()}
        ctx.in_background(self._enqueue, "home_visit", body, "visit")
        return None
