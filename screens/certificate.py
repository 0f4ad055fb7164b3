"""Certificates (query_print items): choose, identify, fetch, preview, print."""
from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty, ObjectProperty, StringProperty

from kiosk.app.events import UiEvent
from screens.base import KioskScreen
from screens.browse import item_entry


class CertificateScreen(KioskScreen):
    prompt = "请选择要打印的证明。"
    personal = True
    stage = StringProperty("choose")  # choose | fetching | preview | printed
    title = StringProperty("")
    body = StringProperty("")
    message = StringProperty("")
    error = BooleanProperty(False)
    pager = ObjectProperty(None)

    def enter(self, stage: str = "choose", **params: Any) -> None:
        self.stage = stage
        self.error = False
        self.message = ""
        if stage == "choose":
            self.title, self.body = "", ""
            # an explanation line sits above the list here: one row fewer than the browse screen
            self.pager.per_page = max(1, self.service.mode.items_per_page - (1 if self.service.mode.elderly else 2))
            self.pager.cols = 1 if self.service.mode.elderly else 2
            self.pager.entries = [item_entry(it) for it in self.service.browse.items_of_flow("query_print")]
            self.pager.on_choose = self._choose
        else:
            self.stage = "fetching"
            self.message = "正在查询，请稍候……"
            self.service.certificates.fetch_certificate()

    def _choose(self, code: str) -> None:
        self.service.visit.choose_item(code)
        self.app.go("identify")

    def on_service_event(self, ev: UiEvent) -> None:
        if ev.kind == "certificate":
            self.stage = "preview"
            self.title = ev.data.get("title", "")
            self.body = "\n".join(ev.data.get("lines", []))
            self.message = "请核对内容，点「打印」。"
        elif ev.kind == "certificate_error":
            self.error = True
            self.message = ev.data.get("message", "没有查到，请点「帮办代办」找工作人员")
        elif ev.kind == "printed":
            self.stage = "printed"
            if ev.data.get("ok"):
                self.message = "证明已打印，请从下方出纸口取走。"
            else:
                self.error = True
                self.message = ev.data.get("message", "打印机故障，请联系工作人员")

    def print_it(self) -> None:
        self.message = "正在打印……"
        self.service.certificates.print_certificate()

    def finish(self) -> None:
        self.app.go(self.service.visit.next_screen("certificate"))

    def wipe(self) -> None:
        self.title, self.body, self.message = "", "", ""
        self.stage = "choose"
