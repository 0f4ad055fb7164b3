"""Payments (pay items): the bill, the payment QR for the citizen's phone, waiting with a timeout, receipt."""
from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty, NumericProperty, ObjectProperty, StringProperty

from kiosk.app.events import UiEvent
from screens.base import KioskScreen
from screens.receipt import qr_texture


class PaymentScreen(KioskScreen):
    prompt = "请核对账单，用手机扫码付款。"
    personal = True
    bill = StringProperty("")
    message = StringProperty("")
    error = BooleanProperty(False)
    waiting = BooleanProperty(False)
    remaining = NumericProperty(0)
    qr = ObjectProperty(None)

    def enter(self, **params: Any) -> None:
        self.bill = ""
        self.error = False
        self.waiting = False
        self.message = "正在查询账单……"
        if self.qr is not None:
            self.qr.texture = None
        self.service.payments.create_payment()

    def leave(self) -> None:
        self.service.payments.cancel_payment_wait()

    def on_service_event(self, ev: UiEvent) -> None:
        if ev.kind == "payment":
            self.bill = "\n".join(ev.data.get("lines", []))
            self.qr.texture = qr_texture(ev.data["qr_text"])
            self.waiting = True
            self.message = "请用手机微信、支付宝或爱山东扫右边的二维码付款。付好后屏幕会自动跳转。"
            self.service.mode.say("请用手机扫屏幕上的二维码付款。", key="pay_qr")
        elif ev.kind == "payment_wait":
            self.remaining = int(ev.data.get("remaining", 0))
        elif ev.kind == "payment_paid":
            self.waiting = False
            self.app.go("receipt", tracking_no=ev.data.get("tracking_no", ""), queued=False,
                        message="缴费成功。请收好回执。")
        elif ev.kind == "payment_error":
            self.waiting = False
            self.error = True
            self.message = ev.data.get("message", "付款没有完成，请重试或点「帮办代办」")
            if self.qr is not None:
                self.qr.texture = None

    def retry(self) -> None:
        self.enter()

    def wipe(self) -> None:
        self.bill = ""
        self.message = ""
        if self.qr is not None:
            self.qr.texture = None
