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
    """One material at a time. A material the catalog lets an e-licence stand in for (``licence_type``)
    opens on the 「调取电子证照」 panel (scan the licence's QR, or 「同意调取」); the camera is second."""

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
    #: e-licences: the current material can be fetched; 'licence' (the fetch panel) or 'camera'
    can_fetch = BooleanProperty(False)
    mode = StringProperty("camera")
    licence_title = StringProperty("")
    licence_text = StringProperty("")
    fetching = BooleanProperty(False)
    fetched = BooleanProperty(False)  # the current material is given as a fetched e-licence

    def enter(self, **params: Any) -> None:
        self.names = self.service.materials.materials_to_capture()
        self.done = [self.service.licences.fetched(n) is not None for n in self.names]
        self.index = 0
        self.service.materials.start_preview()
        self._show_material()
        self._ev = Clock.schedule_interval(self._refresh_preview, 0.2)

    def leave(self) -> None:
        ev = getattr(self, "_ev", None)
        if ev is not None:
            ev.cancel()
        self.service.licences.withdraw()
        self.service.materials.stop_preview()

    def _current(self) -> str:
        return self.names[self.index] if self.names else ""

    def _show_material(self) -> None:
        """The current material: the e-licence panel first where the catalog allows one, else the camera."""
        name = self._current()
        self.reviewing = False
        self.error = False
        self.fetching = False
        lic_name = self.service.licences.licence_name_for(name) if name else ""
        self.can_fetch = bool(lic_name)
        shown = self.service.licences.fetched(name) if name else None
        self.fetched = shown is not None
        self.licence_title = ""
        if shown is not None:
            self._show_licence(shown)
        elif self.can_fetch:
            self._licence_mode()
        else:
            self._camera_mode()
        self._update_checklist()

    def _licence_mode(self) -> None:
        name = self._current()
        lic_name = self.service.licences.licence_name_for(name)
        self.mode = "licence"
        self.licence_title = f"调取电子证照：{lic_name}"
        self.licence_text = (
            f"方法一：打开爱山东APP，出示{lic_name}二维码，对准扫码口。\n"
            f"方法二：点「同意调取」，从全省电子证照库调取本人的{lic_name}。\n"
            "出示二维码或点「同意调取」即表示同意调取；只用于这次办理，办完即删除。")
        self.message = "请出示二维码，或点「同意调取」"
        self.service.licences.offer(name)

    def _camera_mode(self) -> None:
        self.mode = "camera"
        self.service.licences.withdraw()
        self.message = "请把「%s」放进框里，点「拍照」" % self._current() if self.names else ""

    def _show_licence(self, shown: dict[str, str]) -> None:
        self.mode = "licence"
        self.service.licences.withdraw()
        self.licence_title = f"已调取电子证照：{shown.get('name', '')}"
        self.licence_text = "\n".join([
            f"证照号码：{shown.get('number', '')}",
            f"有效期：{shown.get('valid_from', '')} 至 {shown.get('valid_until', '')}",
            f"持证人：{shown.get('holder', '')}",
        ])
        self.message = "已调取，不用拍照。请点「%s」" % self._next_label()

    def _next_label(self) -> str:
        return "下一份" if self.index < len(self.names) - 1 else "完成"

    def _refresh_preview(self, _dt: float) -> None:
        if self.reviewing or self.preview is None or self.mode != "camera":
            return
        tex = to_texture(self.service.materials.preview_frame())
        if tex is not None:
            self.preview.texture = tex

    def _update_checklist(self) -> None:
        lines = []
        for i, n in enumerate(self.names):
            given = self.done[i] and self.service.licences.fetched(n) is not None
            mark = ("【已调取】" if given else "【已拍好】") if self.done[i] else (
                "【正在办】" if i == self.index else "【还没办】")
            lines.append(f"{mark} {n}")
        self.checklist = "\n".join(lines)

    # ------------------------------------------------------------------ the e-licence panel
    def use_licence(self) -> None:
        """「调取电子证照」 from the camera: back to the fetch panel (a photo taken is dropped)."""
        if not self.can_fetch:
            return
        if self.reviewing:
            self.service.materials.discard_material(self._current())
            self.done[self.index] = False
        self.reviewing = False
        self.error = False
        self._licence_mode()
        self._update_checklist()

    def consent(self) -> None:
        """「同意调取」: the citizen agreed; the kiosk fetches their licence of this type."""
        if self.fetching or self.fetched:
            return
        if self.service.licences.fetch_with_consent(self._current(), consent=True):
            self._fetching()

    def _fetching(self) -> None:
        self.fetching = True
        self.error = False
        self.message = "正在从全省电子证照库调取，请稍候……"

    def use_camera(self) -> None:
        """「拍照上传」: no e-licence for this material; nothing is fetched from here on."""
        if self.fetched:
            self.service.licences.discard(self._current())
            self.fetched = False
            self.done[self.index] = False
        self.fetching = False
        self.error = False
        self._camera_mode()
        self._update_checklist()

    def primary(self) -> None:
        """The big button: 「同意调取」 on the e-licence panel, 「拍照」 at the camera."""
        if self.mode == "licence":
            self.consent()
        else:
            self.capture()

    def capture(self) -> None:
        self.message = "正在拍照，请不要移动材料……"
        self.error = False
        self.service.materials.capture_material(self.names[self.index])

    def on_service_event(self, ev: UiEvent) -> None:
        if ev.kind == "licence_fetching" and ev.data.get("material") == self._current():
            self._fetching()
            return
        if ev.kind == "licence_result":
            self._on_licence(ev)
            return
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

    def _on_licence(self, ev: UiEvent) -> None:
        if ev.data.get("material") != self._current() or self.mode != "licence":
            return
        self.fetching = False
        if ev.data.get("ok"):
            self.fetched = True
            self.error = False
            self.done[self.index] = True
            self._show_licence(dict(ev.data.get("licence") or {}))
            self.service.mode.say("电子证照已调取，不用拍照。", key="licence_ok")
        else:  # a plain reason, then the camera path is offered
            self.error = True
            msg = str(ev.data.get("message") or "暂时无法调取电子证照").rstrip("。")
            self.message = msg + ("。" if "拍照" in msg else "。也可以点「拍照上传」。")
            self.service.mode.say(self.message, key="licence_error")
        self._update_checklist()

    def retake(self) -> None:
        if self.fetched:  # 「重新调取」: drop the fetched licence and offer the fetch again
            self.service.licences.discard(self._current())
            self.fetched = False
            self.done[self.index] = False
            self._licence_mode()
            self._update_checklist()
            return
        self.service.materials.discard_material(self.names[self.index])
        self.done[self.index] = False
        self.reviewing = False
        self.error = False
        self.message = "请把「%s」放进框里，点「拍照」" % self.names[self.index]
        self._update_checklist()

    def next(self) -> None:
        if self.index < len(self.names) - 1:
            self.index += 1
            self._show_material()
            return
        self.app.go(self.service.visit.next_screen("materials"))

    def missing_material(self) -> None:
        """「没带这份材料」: the visit stops here; the guide screen offers the 一次性告知单 to take home."""
        if self.names:
            self.app.go("guide", missing=[self.names[self.index]])

    def wipe(self) -> None:
        self.reviewing = False
        self.message = ""
        self.licence_text = ""
        self.licence_title = ""
        self.fetched = False
        self.fetching = False
        self.mode = "camera"
        if self.preview is not None:
            self.preview.texture = None
