"""The papers the citizen shows the document camera: which ones, the live preview, capture, retake."""
from __future__ import annotations

import logging
import threading
from typing import Any

from kiosk.app.context import AppContext
from kiosk.app.errors import logged_entry_points
from kiosk.app.imaging import bgr_to_rgb, camera_document
from kiosk.domain.session import State

log = logging.getLogger(__name__)


@logged_entry_points
class MaterialsService:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._preview_on = False

    def materials_to_capture(self) -> list[str]:
        """Materials the citizen must show the camera: not shared data, not the ID card just read."""
        it = self.ctx.current_item
        if it is None:
            return []
        return [m.name for m in it.materials if not m.exempt_shared and "身份证" not in m.name]

    def start_preview(self) -> None:
        ctx = self.ctx
        if not self._preview_on and "camera" in ctx.devices:
            self._preview_on = True
            threading.Thread(target=self._preview_loop, name="camera-preview", daemon=True).start()
        self._preview_on = True
        s = ctx.session
        if s.state is State.FORM:
            s.to_materials()
        elif s.state is State.ITEM_CHOSEN:
            s.start_form(requires_id=bool(ctx.require_item().requires_id))
            s.set_form({})
            s.to_materials()

    def stop_preview(self) -> None:
        self._preview_on = False

    def _preview_loop(self) -> None:
        """Keeps the camera's latest preview fresh while the materials screen is open."""
        cam = self.ctx.camera()
        stopping = self.ctx.stopping
        failures = 0
        while cam is not None and self._preview_on and not stopping.is_set():
            try:
                cam.preview_frame()
                failures = 0
            except Exception:  # noqa: BLE001 - the status event tells the UI; keep trying
                failures += 1  # the first failure of a run with its traceback, the rest quietly
                (log.warning if failures == 1 else log.debug)("preview frame failed", exc_info=True)
            stopping.wait(0.3)

    def preview_frame(self) -> Any:
        """The camera's latest preview as an RGB array (UI thread, cheap), or None."""
        cam = self.ctx.camera()
        if cam is None or not self._preview_on:
            return None
        return bgr_to_rgb(cam.latest_preview)

    def capture_material(self, name: str) -> None:
        self.ctx.in_background(self._capture_material, name)

    def _capture_material(self, token: int, name: str) -> None:
        ctx = self.ctx
        cam = ctx.camera()
        if cam is None:
            ctx.post_for(token, "capture_result", ok=False, message="拍摄仪暂时不能使用，请点「帮办代办」")
            return
        try:
            jpeg, preview = camera_document(cam)
        except Exception as e:  # noqa: BLE001 - a bad capture is a retake, told to the citizen
            log.info("material capture refused", exc_info=True)
            ctx.post_for(token, "capture_result", ok=False, message=getattr(e, "message", "没有拍清楚，请重拍"))
            return
        ctx.session.add_material(name, jpeg, token=token)  # VisitEnded when the citizen has gone meanwhile
        ctx.post_for(token, "capture_result", ok=True, preview=preview)

    def discard_material(self, name: str) -> None:
        mats = self.ctx.session.data.materials
        for m in [m for m in mats if m.name == name]:
            m.wipe()
            mats.remove(m)
