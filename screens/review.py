"""Review and submit: a summary with masked personal data, then the submission with progress."""
from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty, ListProperty, StringProperty

from kiosk.app.events import UiEvent
from screens.base import KioskScreen


class ReviewScreen(KioskScreen):
    prompt = "请核对信息，没有问题请点确认提交。"
    personal = True
    lines = ListProperty([])
    summary = StringProperty("")
    busy = BooleanProperty(False)
    message = StringProperty("")
    error = BooleanProperty(False)

    def enter(self, **params: Any) -> None:
        self.busy = False
        self.error = False
        self.message = ""
        self.lines = self.service.visit.review_summary()
        self.summary = "\n".join(f"{k}：{v}" for k, v in self.lines)

    def submit(self) -> None:
        self.busy = True
        self.message = "正在提交，请稍候……"
        self.service.visit.submit()

    def on_service_event(self, ev: UiEvent) -> None:
        if ev.kind == "submitted":
            self.busy = False
            self.app.go("receipt", **ev.data)
        elif ev.kind == "submit_failed":
            self.busy = False
            self.error = True
            self.message = ev.data.get("message", "提交没有成功，请点「帮办代办」找工作人员")

    def wipe(self) -> None:
        self.lines = []
        self.summary = ""
        self.message = ""
