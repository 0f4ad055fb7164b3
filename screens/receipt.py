"""Receipt: printed; on a printer fault the screen says so and shows the tracking code as a QR."""
from __future__ import annotations

import io
from typing import Any

from kivy.core.image import Image as CoreImage
from kivy.properties import BooleanProperty, ObjectProperty, StringProperty

from kiosk.app.events import UiEvent
from screens.base import KioskScreen


def qr_texture(text: str) -> Any:
    """A QR code as a Kivy texture (qrcode -> PNG -> texture)."""
    import qrcode  # noqa: PLC0415 - qrcode and PIL only when a receipt falls back to a QR

    img = qrcode.make(text, box_size=8, border=2)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    buf.seek(0)
    return CoreImage(buf, ext="png").texture


class ReceiptScreen(KioskScreen):
    prompt = "已经提交。请取走回执。"
    personal = True
    tracking_no = StringProperty("")
    queued = BooleanProperty(False)
    headline = StringProperty("")
    explanation = StringProperty("")
    print_message = StringProperty("")
    print_fault = BooleanProperty(False)
    show_qr = BooleanProperty(False)
    qr = ObjectProperty(None)

    def enter(self, tracking_no: str = "", queued: bool = False, message: str = "", **params: Any) -> None:
        self.tracking_no = tracking_no
        self.queued = bool(queued)
        self.headline = "已保存，网络恢复后自动提交" if self.queued else "提交成功"
        self.explanation = message or (
            "现在网络中断。您的申请已经安全保存在本机，网络恢复后会自动提交，不用再来一次。"
            "回执上的编号可以用来查询进度。" if self.queued else "请收好回执，凭回执上的编号可以查询办理进度。")
        self.print_fault = False
        self.show_qr = False
        self.print_message = "正在打印回执……"
        if self.qr is not None:
            self.qr.texture = None
        self.service.receipts.print_receipt()

    def on_service_event(self, ev: UiEvent) -> None:
        if ev.kind != "printed":
            return
        if ev.data.get("ok"):
            self.print_message = "回执已打印，请从下方出纸口取走。"
            self.service.mode.say(self.print_message, key="printed")
        else:
            self.print_fault = True
            self.print_message = ev.data.get("message", "打印机故障，请联系工作人员")
            self.print_message += "。请用手机拍下右边的二维码，它就是您的回执编号。"
            self.show_qr = True
            self.qr.texture = qr_texture(ev.data.get("qr_text") or self.tracking_no)
            self.service.mode.say("打印机出了问题。请用手机拍下屏幕上的二维码。", key="print_fault")

    def finish(self) -> None:
        self.app.go(self.service.visit.next_screen("receipt"))

    def wipe(self) -> None:
        self.tracking_no = ""
        self.show_qr = False
        if self.qr is not None:
            self.qr.texture = None
