"""Who the citizen is: an ID card on the reader, an electronic ID QR, a face photo checked by the platform.

Device callbacks arrive on device threads and are only ever turned into UI
events here; the UI drains them on its clock.
"""
from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Any

from kiosk.app.common import EIdentity, id_type, person_view, platform_message
from kiosk.app.context import AppContext
from kiosk.app.imaging import camera_face
from kiosk.domain.session import InvalidTransition

log = logging.getLogger(__name__)


class IdentifyService:
    def __init__(self, ctx: AppContext, lookup_tracking: Callable[[str], None]) -> None:
        self.ctx = ctx
        self._lookup_tracking = lookup_tracking  # a scanned receipt QR while the progress screen listens

    def start_identify(self) -> None:
        self.ctx.listening.add("identify")
        dev = self.ctx.idcard()
        if dev is not None and getattr(dev, "current_card", None) is not None:
            self.ctx.pool.submit(self._accept_card, dev.current_card)  # card already on the reader

    def stop_identify(self) -> None:
        self.ctx.listening.discard("identify")

    def person_view(self) -> dict[str, str]:
        return person_view(self.ctx.session)

    def on_device_event(self, ev: Any) -> None:
        """Device thread: turn device events into UI events; never touches a widget."""
        ctx = self.ctx
        kind = ev.kind.value if hasattr(ev.kind, "value") else str(ev.kind)
        if kind in ("status_changed", "device_lost", "device_back"):
            dev = ctx.devices.get(ev.device_kind)
            if dev is not None:
                ctx.status.devices[ev.device_kind] = dev.status.state.value
            ctx.events.post("status")
            return
        wanted = "identify" in ctx.listening or "progress" in ctx.listening
        if kind == "card_inserted" and wanted:
            self._accept_card(ev.payload.get("card"))
        elif kind == "read_failed" and wanted:
            ctx.events.post("identify_error", message=ev.payload.get("message") or "读卡失败，请重新放置身份证")
        elif kind == "code_scanned":
            self._on_code(ev.payload)

    def _accept_card(self, card: Any) -> None:
        ctx = self.ctx
        if card is None:
            return
        if not getattr(card, "id_number", ""):  # the previous visit's card, already wiped, still lying there
            ctx.events.post("identify_error", message="请把身份证拿起来，再重新放到读卡区")
            return
        if hasattr(card, "is_expired") and card.is_expired():
            ctx.events.post("identify_error", message="身份证已过期，请使用有效证件，或点「帮办代办」")
            return
        try:
            ctx.session.identify(card, names=(card.name,))
        except InvalidTransition:
            ctx.session.end("restart")
            ctx.session.identify(card, names=(card.name,))
        ctx.events.post("identified", person=self.person_view())

    def _on_code(self, payload: dict[str, Any]) -> None:
        ctx = self.ctx
        if payload.get("refused"):
            ctx.events.post("identify_error" if "identify" in ctx.listening else "progress_error",
                            message=payload["refused"]["message"])
            return
        kind, value = payload.get("kind"), str(payload.get("value") or "")
        if kind == "tracking" and "progress" in ctx.listening:
            ctx.pool.submit(self._lookup_tracking, value)
        elif kind == "citizen_code" and "identify" in ctx.listening:
            ctx.pool.submit(self._verify_ctid, value)

    def _verify_ctid(self, token: str) -> None:
        ctx = self.ctx
        try:
            res = ctx.require_platform().verify_identity({"method": "ctid_qr", "token": token})
        except Exception as e:  # noqa: BLE001 - told to the citizen, logged for the technician
            log.warning("electronic ID verification failed", exc_info=True)
            ctx.events.post("identify_error", message=platform_message(e))
            return
        if not res.get("verified"):
            ctx.events.post("identify_error", message=res.get("reason") or "电子身份证核验未通过")
            return
        ident = res.get("identity") or {}
        person = EIdentity(ident.get("name", ""), ident.get("id_number", ""), ident.get("id_type", "resident_id"))
        ctx.scratch["identity_token"] = res.get("identity_token")
        ctx.session.identify(person, names=(person.name,))
        ctx.events.post("identified", person=self.person_view())

    def capture_face(self) -> None:
        self.ctx.pool.submit(self._capture_face)

    def _capture_face(self) -> None:
        ctx = self.ctx
        cam = ctx.camera()
        if cam is None:
            ctx.events.post("face_result", ok=False, message="摄像头暂时不能使用，请点「帮办代办」")
            return
        try:
            photo = camera_face(cam)
        except Exception as e:  # noqa: BLE001 - a bad photo is a retake, told to the citizen
            log.info("face capture refused", exc_info=True)
            ctx.events.post("face_result", ok=False, message=getattr(e, "message", "没有拍清楚，请正对摄像头再拍一次"))
            return
        ctx.session.set_face_photo(photo)
        ident = ctx.session.data.identity
        try:
            res = ctx.require_platform().verify_identity({
                "method": "card_face", "id_type": id_type(ident), "id_number": ident.id_number,
                "name": ident.name, "face_photo": base64.b64encode(photo).decode()})
        except Exception as e:  # noqa: BLE001 - told to the citizen, logged for the technician
            log.warning("face verification failed", exc_info=True)
            ctx.events.post("face_result", ok=False, message=platform_message(e))
            return
        if not res.get("verified"):
            ctx.events.post("face_result", ok=False, message=res.get("reason") or "人脸核验未通过，请重试")
            return
        ctx.scratch["identity_token"] = res.get("identity_token")
        ctx.events.post("face_result", ok=True)
