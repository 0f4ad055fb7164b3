"""好差评: five large labelled choices; the two lowest ask for a reason from a short list."""
from __future__ import annotations

from typing import Any

from kivy.clock import Clock
from kivy.properties import BooleanProperty, ObjectProperty, StringProperty

from screens.base import KioskScreen
from screens.widgets import KButton, Tile

LEVELS = ("非常满意", "满意", "基本满意", "不满意", "非常不满意")
BAD = ("不满意", "非常不满意")
REASONS = ("等待时间太长", "操作太复杂", "看不懂提示", "机器有故障", "没办成事")


class RatingScreen(KioskScreen):
    prompt = "请为这次办理打个分。"
    level = StringProperty("")
    asking_reason = BooleanProperty(False)
    thanks = BooleanProperty(False)
    box = ObjectProperty(None)

    def enter(self, **params: Any) -> None:
        self.level = ""
        self.thanks = False
        self.asking_reason = False
        self._fill(LEVELS, self._pick_level, "rate")

    def _fill(self, options: tuple[str, ...], cb: Any, prefix: str) -> None:
        self.box.clear_widgets()
        self.box.cols = len(options) if prefix == "rate" else (1 if self.service.mode.elderly else 2)
        styles = {"非常满意": "ok", "满意": "ok", "基本满意": "primary", "不满意": "danger", "非常不满意": "danger"}
        for i, text in enumerate(options):
            b = Tile(text=text, key=f"{prefix}-{i}", payload=text, style=styles.get(text, "secondary"))
            b.bind(on_release=cb)
            self.box.add_widget(b)

    def _pick_level(self, btn: KButton) -> None:
        self.level = btn.payload
        if self.level in BAD:
            self.asking_reason = True
            self._fill(REASONS, self._pick_reason, "reason")
            self.service.mode.say("请告诉我们哪里不满意。", key="rating_reason")
        else:
            self._send(None)

    def _pick_reason(self, btn: KButton) -> None:
        self._send(btn.payload)

    def _send(self, reason: str | None) -> None:
        self.service.visit.rate(self.level, reason)  # queued off the UI thread
        self.thanks = True
        self.box.clear_widgets()
        self.service.mode.say("谢谢您的评价，再见。", key="thanks")
        Clock.schedule_once(lambda _dt: self.service.visit.end_visit("finished"), self.service.visit.thanks_s)

    def skip(self) -> None:
        self.service.visit.end_visit("finished")
