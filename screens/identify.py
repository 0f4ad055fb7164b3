"""Identify: insert the ID card or scan the 爱山东 居民码 (where the item allows it); certify items also take a live
face photo."""
from __future__ import annotations

from typing import Any

from kivy.animation import Animation
from kivy.properties import BooleanProperty, DictProperty, ObjectProperty, StringProperty

from kiosk.app.events import UiEvent
from screens.base import KioskScreen


class IdentifyScreen(KioskScreen):
    prompt = "请把身份证放在读卡区，或者用手机电子身份证扫码。"
    needs = ("idcard",)
    personal = True
    message = StringProperty("")
    error = BooleanProperty(False)
    person = DictProperty({})
    done = BooleanProperty(False)
    need_face = BooleanProperty(False)
    face_done = BooleanProperty(False)
    card = ObjectProperty(None)
    purpose = StringProperty("item")  # item | progress | visit
    code_allowed = BooleanProperty(True)  # the 爱山东 居民码 may identify for this item

    def enter(self, purpose: str = "item", **params: Any) -> None:
        self.purpose = purpose
        self.wipe()
        self.need_face = purpose == "item" and self.service.visit.current_flow() in ("certify", "query_print")
        self.code_allowed = purpose != "item" or self.service.identify.citizen_code_allowed()
        self.message = "正在等待读卡……"
        self.service.identify.start_identify()
        self._animate()

    def _animate(self) -> None:
        """The card picture slides down onto the reader and back up, again and again."""
        if self.card is None:
            return
        Animation.cancel_all(self.card)
        anim = Animation(y_off=-40, duration=1.2, t="in_out_sine") + Animation(y_off=0, duration=1.2, t="in_out_sine")
        anim.repeat = True
        anim.start(self.card)

    def leave(self) -> None:
        if self.card is not None:
            Animation.cancel_all(self.card)
        self.service.identify.stop_identify()

    def on_service_event(self, ev: UiEvent) -> None:
        if ev.kind == "identified":
            self.person = dict(ev.data.get("person", {}))
            self.done = True
            self.error = False
            if self.need_face:
                self.message = "身份已确认。还需要拍一张本人照片，请正对摄像头，点「拍照」。"
                self.service.mode.say("请正对摄像头，点拍照。", key="face")
            else:
                self.message = "身份已确认，请点「下一步」。"
                self.service.mode.say("身份已确认，请点下一步。", key="identified")
        elif ev.kind == "identify_error":
            self.error = True
            self.message = ev.data.get("message", "读卡失败，请重新放置身份证")
            self.service.mode.say(self.message, key="identify_error")
        elif ev.kind == "face_result":
            if ev.data.get("ok"):
                self.face_done = True
                self.error = False
                self.message = "照片已拍好，请点「下一步」。"
            else:
                self.error = True
                self.message = ev.data.get("message", "没有拍清楚，请正对摄像头再拍一次")

    def take_face(self) -> None:
        self.message = "正在拍照，请不要动……"
        self.service.identify.capture_face()

    def next(self) -> None:
        if self.purpose == "progress":
            self.app.go("progress", by="card")
        elif self.purpose == "visit":
            self.app.go("help", stage="visit")
        else:
            self.app.go(self.service.visit.next_screen("identify"))

    def wipe(self) -> None:
        self.person = {}
        self.done = False
        self.face_done = False
        self.error = False
        self.message = ""
