"""Progress query: scan a receipt's QR or insert the ID card; the citizen's cases and their states."""
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
    error = BooleanProperty(False)
    has_results = BooleanProperty(False)

    def enter(self, by: str = "", tracking_no: str = "", **params: Any) -> None:
        self.error = False
        self.has_results = False
        self.results = ""
        self.message = "请扫描回执二维码，或放身份证"
        self.service.progress.start_progress_lookup()
        if by == "card":
            self.service.progress.query_progress_by_identity()
        elif tracking_no:
            self.service.progress.query_progress_by_tracking(tracking_no)

    def leave(self) -> None:
        self.service.progress.stop_progress_lookup()

    def on_service_event(self, ev: UiEvent) -> None:
        if ev.kind == "progress_result":
            cases = ev.data.get("cases", [])
            self.error = False
            self.has_results = bool(cases)
            if not cases:
                self.message = "没有查到办件。如果刚刚提交，请过几分钟再查。"
                self.results = ""
            else:
                self.message = f"查到 {len(cases)} 件："
                self.results = "\n\n".join(
                    f"{c.get('item', '')}\n编号 {c.get('tracking_no', '')}　状态：{c.get('state', '')}" for c in cases)
            self.service.mode.say(self.message, key="progress")
        elif ev.kind == "progress_error":
            self.error = True
            self.message = ev.data.get("message", "查询没有成功，请稍后再试")
        elif ev.kind == "identified":
            self.message = "正在查询……"
            self.service.progress.query_progress_by_identity()
        elif ev.kind == "identify_error":
            self.error = True
            self.message = ev.data.get("message", "读卡失败")

    def wipe(self) -> None:
        self.results = ""
        self.has_results = False
        self.message = ""
