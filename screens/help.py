"""帮办代办 and home visits: ask for help now, or book a visit for an elderly or disabled person."""
from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty, ObjectProperty, StringProperty

from kiosk.app.events import UiEvent
from screens.base import KioskScreen
from screens.widgets import DIGITS, KButton, Tile, apply_key

TIMES = ("明天上午", "明天下午", "后天上午", "后天下午")


class HelpScreen(KioskScreen):
    prompt = "需要帮忙吗？可以现在叫工作人员，也可以预约上门服务。"
    personal = True
    stage = StringProperty("choose")  # choose | call | helped | visit | booked
    message = StringProperty("")
    phone = StringProperty("")
    when = StringProperty("")
    visit_item = StringProperty("")
    person = StringProperty("")  # masked name of the person the visit is for
    error = BooleanProperty(False)
    keypad = ObjectProperty(None)
    times_box = ObjectProperty(None)
    items_box = ObjectProperty(None)

    def on_kv_post(self, base_widget: Any) -> None:
        self.keypad.keys = [k for k in DIGITS if k[1] != "X"]
        self.keypad.on_key = self._key

    def enter(self, stage: str = "choose", **params: Any) -> None:
        self.stage = "choose"
        self.message = ""
        self.error = False
        self.phone = ""
        self.when = ""
        self.visit_item = ""
        if stage == "visit":
            self.start_visit()

    def help_now(self) -> None:
        self.stage = "call"
        self.message = "请留下您的手机号，工作人员会马上联系您。"

    def call(self) -> None:
        err = self.service.help.request_help(self.phone)
        if err:
            self.error = True
            self.message = err
            return
        self.error = False
        phone = self.service.ctx.config.kiosk.helper_phone
        self.stage = "helped"
        self.message = f"已通知工作人员，请稍等。也可以打电话：{phone}"
        self.service.mode.say(f"已通知工作人员，请稍等。电话是 {phone}。", key="help_now")

    def start_visit(self) -> None:
        if self.service.ctx.session.data.identity is None:
            self.app.go("identify", purpose="visit")
            return
        self.stage = "visit"
        self.message = ""
        self.person = "（%s）" % self.service.identify.person_view().get("name", "")
        self.times_box.clear_widgets()
        for i, t in enumerate(TIMES):
            b = KButton(text=t, key=f"time-{i}", payload=t, style="secondary")
            b.bind(on_release=self._pick_time)
            self.times_box.add_widget(b)
        self.items_box.clear_widgets()
        for i, it in enumerate(self.service.browse.most_used(2 if self.service.mode.elderly else 3)):
            name = it.sub_name or it.main_name
            b = Tile(text=name, key=f"visit-item-{i}", payload=it.code, style="secondary")
            b.bind(on_release=self._pick_item)
            self.items_box.add_widget(b)

    def _restyle(self, box: Any, chosen: Any) -> None:
        for b in box.children:
            b.style = "primary" if b.payload == chosen else "secondary"

    def _pick_time(self, btn: KButton) -> None:
        self.when = btn.payload
        self._restyle(self.times_box, btn.payload)

    def _pick_item(self, btn: KButton) -> None:
        self.visit_item = btn.payload
        self._restyle(self.items_box, btn.payload)

    def _key(self, key: str) -> None:
        self.phone = apply_key(self.phone, key, 11)
        self.error = False

    def book(self) -> None:
        err = self.service.help.book_home_visit(self.visit_item, self.phone, self.when)
        if err:
            self.error = True
            self.message = err
            return
        self.stage = "booked"
        self.error = False
        self.message = f"已预约{self.when}上门服务。工作人员会先打电话联系您。"
        self.service.mode.say(self.message, key="visit_booked")

    def on_service_event(self, ev: UiEvent) -> None:
        if ev.kind == "help_failed":  # the request could not be saved on this machine
            self.error = True
            self.message = ev.data.get("message", "本机暂时无法保存您的请求，请直接拨打服务电话")
            phone = self.service.ctx.config.kiosk.helper_phone or self.service.ctx.config.kiosk.service_phone
            if phone:
                self.message += f"：{phone}"
            self.service.mode.say(self.message, key="help_failed")

    def wipe(self) -> None:
        self.phone = ""
        self.person = ""
        self.message = ""
        self.stage = "choose"
