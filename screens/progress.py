"""Progress query: scan a receipt's QR or insert the ID card; the citizen's cases and their states.

A case found by its receipt that is finished and not yet rated here offers 「评价」 (rating later:
the rating screen for that case, see kiosk.app.evaluations).
"""
from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty, StringProperty

from kiosk.app.events import UiEvent
from screens.base import KioskScreen


class ProgressScreen(KioskScreen):
    prompt = "请把回执上的二维码对准扫码口，或者把身份证放在读卡区。"
    personal = True
    message = StringProperty("")
    results = StringProperty("")
    rate_note = StringProperty("")
    error = BooleanProperty(False)
    has_results = BooleanProperty(False)
    can_rate = BooleanProperty(False)

    _rate_case: dict[str, Any] | None = None

    def enter(self, by: str = "", tracking_no: str = "", **params: Any) -> None:
        self.error = False
        self.has_results = False
        self.results = ""
        self._clear_rating()
        self.message = "正在查询……" if tracking_no else "请扫描回执二维码，或放身份证"
        self.service.progress.start_progress_lookup()
        if by == "card":
            self.service.progress.query_progress_by_identity()
        elif tracking_no:
            self.service.progress.query_progress_by_tracking(tracking_no)

    def leave(self) -> None:
        self.service.progress.stop_progress_lookup()

    def _clear_rating(self) -> None:
        self._rate_case = None
        self.can_rate = False
        self.rate_note = ""

    def on_service_event(self, ev: UiEvent) -> None:
        if ev.kind == "progress_result":
            cases = ev.data.get("cases", [])
            self.error = False
            self.has_results = bool(cases)
            self._clear_rating()
            if not cases:
                self.message = "没有查到办件。如果刚刚提交，请过几分钟再查。"
                self.results = ""
            else:
                self.message = f"查到 {len(cases)} 件："
                self.results = "\n\n".join(
                    f"{c.get('item', '')}\n编号 {c.get('tracking_no', '')}　状态：{c.get('state', '')}"
                    + ("（已评价）" if c.get("rated") else "") for c in cases)
                if ev.data.get("by") == "receipt" and len(cases) == 1:
                    self._offer_rating(cases[0])
            self.service.mode.say(self.message + self.rate_note, key="progress")
        elif ev.kind == "progress_error":
            self.error = True
            self._clear_rating()
            self.message = ev.data.get("message", "查询没有成功，请稍后再试")
        elif ev.kind == "identified":
            self.message = "正在查询……"
            self.service.progress.query_progress_by_identity()
        elif ev.kind == "identify_error":
            self.error = True
            self.message = ev.data.get("message", "读卡失败")

    def _offer_rating(self, case: dict[str, Any]) -> None:
        """A receipt's case: 「评价」 when finished and not yet rated; otherwise say why not."""
        if case.get("rateable"):
            self._rate_case = case
            self.can_rate = True
            self.rate_note = "这件事已经办结，欢迎您点「评价」说说办得怎么样。"
        elif case.get("rated"):
            self.rate_note = "这件事已经评价过了，谢谢您。"
        else:
            self.rate_note = "办结以后，可以再扫回执上的二维码来评价。"

    def rate(self) -> None:
        c = self._rate_case
        if c is None:
            return
        self.app.go("rating", later=True, tracking_no=c.get("tracking_no", ""), item_code=c.get("item_code", ""),
                    item=c.get("item", ""), aliases=c.get("aliases", []))

    def wipe(self) -> None:
        self.results = ""
        self.has_results = False
        self.message = ""
        self._clear_rating()
