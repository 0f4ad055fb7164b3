"""Who the citizen is: an ID card on the reader, an electronic ID QR, a face photo checked by the platform.

Device callbacks arrive on device threads and are only ever turned into UI
events here; the UI drains them on its clock. Every result carries the visit
token it was started under: a card read, a verification or a face photo that
finishes after its visit ended is dropped, never written into the next visit.
"""
from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Any

from kiosk.app.common import EIdentity, id_type, person_view, platform_message
from kiosk.app.context import AppContext
from kiosk.app.errors import logged_entry_points
from kiosk.app.imaging import camera_face
from kiosk.app.licences import LISTEN_KEY as LICENCE_LISTEN_KEY
from kiosk.domain.qr_payload import PayloadKind, PayloadRefused, QrPayload, check_identification
from kiosk.domain.session import InvalidTransition, VisitEnded

log = logging.getLogger(__name__)


@logged_entry_points
class IdentifyService:
    def __init__(self, ctx: AppContext, lookup_tracking: Callable[[str], None],
                 on_licence_code: Callable[[int, dict[str, Any]], None] | None = None) -> None:
        self.ctx = ctx
        self._lookup_tracking = lookup_tracking  # a scanned receipt QR while the progress screen listens
        self._on_licence_code = on_licence_code  # a scanned code while the materials screen offers an e-licence

    def citizen_code_allowed(self) -> bool:
        """Whether the 爱山东 居民码 may identify the citizen for the current item (no item yet: yes)."""
        it = self.ctx.current_item
        return it is None or bool(it.citizen_code_allowed)

    def start_identify(self) -> None:
        self.ctx.listening.add("identify")
        dev = self.ctx.idcard()
        if dev is not None and getattr(dev, "current_card", None) is not None:
            self.ctx.in_background(self._accept_card, dev.current_card)  # card already on the reader

    def stop_identify(self) -> None:
        self.ctx.listening.discard("identify")

    def person_view(self) -> dict[str, str]:
        return person_view(self.ctx.session)

    def on_device_event(self, ev: Any) -> None:
        """Device thread: turn device events into UI events; never touches a widget.

        The event belongs to the visit current when it arrives (its token goes with
        whatever it starts); a failure is logged here, not left to the device thread.
        """
        try:
            self._on_device_event(self.ctx.session.token, ev)
        except VisitEnded:
            log.debug("a device event of an ended visit dropped")
        except Exception:  # noqa: BLE001 - the adapter's thread must keep running; logged with its traceback
            log.exception("handling a device event failed")

    def _on_device_event(self, token: int, ev: Any) -> None:
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
            self._accept_card(token, ev.payload.get("card"))
        elif kind == "read_failed" and wanted:
            ctx.post_for(token, "identify_error", message=ev.payload.get("message") or "读卡失败，请重新放置身份证")
        elif kind == "code_scanned":
            self._on_code(token, ev.payload)

    def _accept_card(self, token: int, card: Any) -> None:
        ctx = self.ctx
        if card is None:
            return
        if not getattr(card, "id_number", ""):  # the previous visit's card, already wiped, still lying there
            ctx.post_for(token, "identify_error", message="请把身份证拿起来，再重新放到读卡区")
            return
        if hasattr(card, "is_expired") and card.is_expired():
            ctx.post_for(token, "identify_error", message="身份证已过期，请使用有效证件，或点「帮办代办」")
            return
        try:
            ctx.session.identify(card, names=(card.name,), token=token)
        except InvalidTransition:  # a new card in the middle of a case: a new visit for it
            ctx.session.end("restart")
            token = ctx.session.token
            ctx.session.identify(card, names=(card.name,), token=token)
        ctx.post_for(token, "identified", person=ctx.for_visit(token, self.person_view))

    def _on_code(self, token: int, payload: dict[str, Any]) -> None:
        ctx = self.ctx
        if LICENCE_LISTEN_KEY in ctx.listening and self._on_licence_code is not None:
            self._on_licence_code(token, payload)  # the materials screen offers an e-licence fetch
            return
        if payload.get("refused"):
            ctx.post_for(token, "identify_error" if "identify" in ctx.listening else "progress_error",
                         message=payload["refused"]["message"])
            return
        kind, value = payload.get("kind"), str(payload.get("value") or "")
        if kind == "tracking" and "progress" in ctx.listening:
            self._lookup_tracking(value)  # starts its own background look-up
        elif kind == "citizen_code" and "identify" in ctx.listening:
            try:  # the 居民码 identifies only where the item allows it (the catalog's citizen_code_allowed)
                check_identification(QrPayload(PayloadKind.CITIZEN_CODE, value), ctx.current_item)
            except PayloadRefused as e:
                ctx.post_for(token, "identify_error", message=e.message)
                return
            ctx.in_background(self._verify_ctid, value)

    def _verify_ctid(self, token: int, qr_token: str) -> None:
        ctx = self.ctx
        try:
            res = ctx.require_platform().verify_identity({"method": "ctid_qr", "token": qr_token})
        except Exception as e:  # noqa: BLE001 - told to the citizen, logged for the technician
            log.warning("electronic ID verification failed", exc_info=True)
            ctx.post_for(token, "identify_error", message=platform_message(e))
            return
        if not res.get("verified"):
            ctx.post_for(token, "identify_error", message=res.get("reason") or "电子身份证核验未通过")
            return
        ident = res.get("identity") or {}
        person = EIdentity(ident.get("name", ""), ident.get("id_number", ""), ident.get("id_type", "resident_id"))
        ctx.keep_for(token, "identity_token", res.get("identity_token"))
        ctx.session.identify(person, names=(person.name,), token=token)
        ctx.post_for(token, "identified", person=ctx.for_visit(token, self.person_view))

    @staticmethod
    def _who(ident: Any) -> dict[str, str]:
        return {"id_type": id_type(ident), "id_number": ident.id_number, "name": ident.name}

    def capture_face(self) -> None:
        self.ctx.in_background(self._capture_face)

    def _capture_face(self, token: int) -> None:
        ctx = self.ctx
        cam = ctx.camera()
        if cam is None:
            ctx.post_for(token, "face_result", ok=False, message="摄像头暂时不能使用，请点「帮办代办」")
            return
        try:
            photo = camera_face(cam)
        except Exception as e:  # noqa: BLE001 - a bad photo is a retake, told to the citizen
            log.info("face capture refused", exc_info=True)
            ctx.post_for(token, "face_result", ok=False,
                         message=getattr(e, "message", "没有拍清楚，请正对摄像头再拍一次"))
            return
        ctx.session.set_face_photo(photo, token=token)
        who = ctx.for_visit(token, lambda: self._who(ctx.session.data.identity))
        try:
            res = ctx.require_platform().verify_identity({
                "method": "card_face", **who, "face_photo": base64.b64encode(photo).decode()})
        except Exception as e:  # noqa: BLE001 - told to the citizen, logged for the technician
            log.warning("face verification failed", exc_info=True)
            ctx.post_for(token, "face_result", ok=False, message=platform_message(e))
            return
        if not res.get("verified"):
            ctx.post_for(token, "face_result", ok=False, message=res.get("reason") or "人脸核验未通过，请重试")
            return
        ctx.keep_for(token, "identity_token", res.get("identity_token"))
        ctx.post_for(token, "face_result", ok=True)
