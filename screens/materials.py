"""Materials: live preview with a framing guide, capture, the cropped result, retake, a checklist."""
from __future__ import annotations

from typing import Any

from kivy.clock import Clock
from kivy.graphics.texture import Texture
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, ObjectProperty, StringProperty

from kiosk.app.events import UiEvent
from screens.base import KioskScreen


def to_texture(frame: Any) -> Texture | None:
    """An RGB uint8 numpy frame (h, w, 3) -> a Kivy texture (flipped: GL's origin is bottom-left)."""
    if frame is None:
        return None
    h, w = frame.shape[:2]
    tex = Texture.create(size=(w, h), colorfmt="rgb")
    tex.blit_buffer(frame[::-1].tobytes(), colorfmt="rgb", bufferfmt="ubyte")
    return tex


class MaterialsScreen(KioskScreen):
    prompt = "请把材料平放在拍摄区，放在框里面，然后点拍照。"
    needs = ("camera",)
    personal = True
    names = ListProperty([])
    done = ListProperty([])
    index = NumericProperty(0)
    message = StringProperty("")
    error = BooleanProperty(False)
    reviewing = BooleanProperty(False)  # showing the cropped result
    preview = ObjectProperty(None)
    checklist = StringProperty("")

    def enter(self, **params: Any) -> None:
        self.names = self.service.materials.materials_to_capture()
        self.done = [False] * len(self.names)
        self.index = 0
        self.reviewing = False
        self.error = False
        self.message = "请把「%s」放进框里，点「拍照」" % self.names[0] if self.names else ""
        self._update_checklist()
        self.service.materials.start_preview()
        self._ev = Clock.schedule_interval(self._refresh_preview, 0.2)

    def leave(self) -> None:
        ev = getattr(self, "_ev", None)
        if ev is not None:
            ev.cancel()
        self.service.materials.stop_preview()

    def _refresh_preview(self, _dt: float) -> None:
        if self.reviewing or self.preview is None:
            return
        tex = to_texture(self.service.materials.preview_frame())
        if tex is not None:
            self.preview.texture = tex

    def _update_checklist(self) -> None:
        lines = []
        for i, n in enumerate(self.names):
            mark = "【已拍好】" if self.done[i] else ("【正在拍】" if i == self.index else "【还没拍】")
            lines.append(f"{mark} {n}")
        self.checklist = "\n".join(lines)

    def capture(self) -> None:
        self.message = "正在拍照，请不要移动材料……"
        self.error = False
        self.service.materials.capture_material(self.names[self.index])

    def on_service_event(self, ev: UiEvent) -> None:
        if ev.kind != "capture_result":
            return
        if ev.data.get("ok"):
            self.reviewing = True
            tex = to_texture(ev.data.get("preview"))
            if tex is not None:
                self.preview.texture = tex
            self.done[self.index] = True
            self.message = "拍好了。看得清楚请点「下一份」，不清楚请点「重拍」。"
            self.service.mode.say("拍好了。看得清楚请点下一份，不清楚请点重拍。", key="captured")
        else:
            self.error = True
            self.message = ev.data.get("message", "没有拍清楚，请重拍")
            self.service.mode.say(self.message, key="capture_error")
        self._update_checklist()

    def retake(self) -> None:
        self.service.materials.discard_material(self.names[self.index])
        self.done[self.index] = False
        self.reviewing = False
        self.error = False
        self.message = "请把「%s」放进框里，点「拍照」" % self.names[self.index]
        self._update_checklist()

    def next(self) -> None:
        if self.index < len(self.names) - 1:
            self.index += 1
            self.reviewing = False
            self.message = "请把「%s」放进框里，点「拍照」" % self.names[self.index]
            self._update_checklist()
            return
        self.app.go(self.service.visit.next_screen("materials"))

    def missing_material(self) -> None:
        """「没带这份材料」: the visit stops here; the guide screen offers the 一次性告知单 to take home."""
        if self.names:
            self.app.go("guide", missing=[self.names[self.index]])

    def wipe(self) -> None:
        self.reviewing = False
        self.message = ""
        if self.preview is not None:
            self.preview.texture = None
