"""One citizen's visit: choosing an item, the flow's next screen, the form, review, submit, rating, idle and wipe.

Submitting goes through the durable outbox: the case is on disk before the
citizen sees a number, and the drainer delivers it when the platform answers.
"""
from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from kiosk.app.common import ITEM_SCREENS, id_type, mask_value, now_iso, person_view
from kiosk.app.context import AppContext
from kiosk.app.errors import logged_entry_points
from kiosk.app.licences import application_licences
from kiosk.app.materials import MaterialsService
from kiosk.app.status import StatusService
from kiosk.domain.catalog import Item
from kiosk.domain.contact import normalise_mobile
from kiosk.domain.fields import validate_form
from kiosk.domain.session import InvalidTransition, State, VisitEnded
from kiosk.ports.outbox import FULL_DISK_MESSAGE, OutboxFullError

log = logging.getLogger(__name__)

#: the screen each flow goes to after identify/form instead of materials/review
FLOW_TARGETS = {"query_print": "certificate_fetch", "pay": "payment", "certify": "review"}


@logged_entry_points
class VisitService:
    def __init__(self, ctx: AppContext, materials: MaterialsService, status: StatusService) -> None:
        self.ctx = ctx
        self._materials = materials
        self._status = status
        self._clear_listeners: list[Callable[[str], object]] = []
        self._last_touch = ctx.clock()
        ctx.session.on("wipe", self._on_wipe)
        ctx.session.on("warning", lambda left: ctx.events.post("idle_warning", remaining=left))

    # ------------------------------------------------------------------ idle and wipe
    def add_clear_listener(self, fn: Callable[[str], object]) -> None:
        """`fn(reason)` runs when the visit ends or times out: the UI clears every screen."""
        self._clear_listeners.append(fn)

    def touch(self) -> None:
        self._last_touch = self.ctx.clock()
        self.ctx.session.touch()

    def tick(self, away_from_home: bool = False) -> None:
        """Drive the idle timeout. Away from home without a visit (a half-typed search or phone
        number), the same timeout brings the screen home and clears it."""
        ctx = self.ctx
        ctx.session.tick()
        if away_from_home and ctx.session.state is State.IDLE and \
                ctx.clock() - self._last_touch > ctx.timeout_for(ctx.elderly):
            self._last_touch = ctx.clock()
            self.end_visit("timeout")

    def seconds_left(self) -> float | None:
        return self.ctx.session.seconds_left()

    @property
    def visit_active(self) -> bool:
        return self.ctx.session.state is not State.IDLE

    def end_visit(self, reason: str = "finished") -> None:
        """End the visit: the session wipes everything personal and listeners clear the screen."""
        self.ctx.session.end(reason)

    def _on_wipe(self, reason: str) -> None:
        self.ctx.listening.clear()
        self.ctx.scratch.clear()
        self._materials.stop_preview()
        for fn in list(self._clear_listeners):
            fn(reason)

    # ------------------------------------------------------------------ routing
    @property
    def current_item(self) -> Item | None:
        return self.ctx.current_item

    def current_flow(self) -> str:
        it = self.ctx.current_item
        return it.flow if it is not None else ""

    def choose_item(self, code: str) -> None:
        s = self.ctx.session
        if s.state in (State.IDLE, State.IDENTIFIED, State.ITEM_CHOSEN, State.DONE, State.QUEUED):
            s.choose_item(code)
        else:  # started over from the home screen in the middle of a case
            s.end("restart")
            s.choose_item(code)

    def next_screen(self, after: str) -> str:
        """The flow: which screen follows `after` for the current item."""
        it = self.ctx.current_item
        flow = it.flow if it is not None else "apply"
        if it is not None and it.code in ITEM_SCREENS and after in ("guide", "identify", "form"):
            return ITEM_SCREENS[it.code]
        if after == "guide":
            return "identify"
        if after == "identify" and it is not None and it.fields:
            return "form"
        if after in ("identify", "form"):
            if flow in FLOW_TARGETS:
                return FLOW_TARGETS[flow]
            return "materials" if self._materials.materials_to_capture() else "review"
        if after == "materials":
            return "review"
        if after in ("receipt", "certificate"):
            return "rating"
        return "home"

    # ------------------------------------------------------------------ form
    def form_fields(self) -> list[dict[str, Any]]:
        it = self.ctx.current_item
        return [{"name": f.name, "label": f.label, "type": f.type, "required": f.required,
                 "choices": list(f.choices)} for f in (it.fields if it else [])]

    def prefill(self) -> dict[str, Any]:
        """Values known from the card: the citizen confirms instead of typing."""
        data = self.ctx.session.data
        ident = data.identity
        out: dict[str, Any] = dict(data.form)
        if ident is None:
            return out
        known = {"name": getattr(ident, "name", ""), "id_number": getattr(ident, "id_number", ""),
                 "address": getattr(ident, "address", ""), "sex": getattr(ident, "sex", "")}
        for f in self.form_fields():
            if f["name"] in known and known[f["name"]] and f["name"] not in out:
                out[f["name"]] = known[f["name"]]
        return out

    def validate_form(self, values: dict[str, Any]) -> dict[str, str]:
        it = self.ctx.require_item()
        errors = validate_form(it, values)
        if it.flow in ("apply", "certify"):  # the platform's applicant needs a mobile number
            for f in it.fields:
                v = str(values.get(f.name) or "")
                if f.type == "phone" and f.name not in errors and normalise_mobile(v) is None:
                    errors[f.name] = "请填写11位手机号码，办理结果会发短信通知您"
        return errors

    def set_form(self, values: dict[str, Any]) -> None:
        s = self.ctx.session
        if s.state is State.ITEM_CHOSEN:
            s.start_form(requires_id=bool(self.ctx.require_item().requires_id))
        s.set_form(values)

    # ------------------------------------------------------------------ review and submit
    def person_view(self) -> dict[str, str]:
        return person_view(self.ctx.session)

    def review_summary(self) -> list[tuple[str, str]]:
        s = self.ctx.session
        if s.state in (State.FORM, State.MATERIALS):
            s.to_review()
        elif s.state is State.ITEM_CHOSEN and self.current_flow() == "apply":
            s.start_form(requires_id=bool(self.ctx.require_item().requires_id))
            s.to_review()
        it = self.ctx.require_item()
        out: list[tuple[str, str]] = [("办理事项", it.title)]
        p = self.person_view()
        if p:
            out += [("申请人", p["name"]), ("身份证号", p["id_number"])]
        types = {f["name"]: f for f in self.form_fields()}
        for k, v in s.data.form.items():
            f = types.get(k)
            if f is None or v in (None, ""):
                continue
            out.append((f["label"], mask_value(f["type"], k, str(v))))
        if s.data.materials:
            out.append(("已拍材料", "、".join(m.name for m in s.data.materials)))
        if s.data.licences:
            out.append(("电子证照", "、".join(f"{x.shown.get('name', '')}（{x.material}）" for x in s.data.licences)))
        if s.data.face_photo:
            out.append(("本人照片", "已拍摄并核验"))
        return out

    def submit(self) -> None:
        s = self.ctx.session
        if s.state is State.FORM:
            s.to_review()
        s.begin_submit()  # from REVIEW, or ITEM_CHOSEN (an item without form)
        self.ctx.in_background(self._submit)

    def application_payload(self) -> tuple[dict[str, Any], list[bytes]]:
        ctx = self.ctx
        d = ctx.session.data
        ident = d.identity
        form = dict(d.form)
        phone = str(form.get("phone") or form.get("contact_phone") or "")
        payload: dict[str, Any] = {
            "item_code": d.item_code,
            "applicant": {"id_type": id_type(ident), "id_number": ident.id_number, "name": ident.name,
                          "phone": phone},
            "form": form,
            "kiosk_id": ctx.config.kiosk.id,
            "created_at": now_iso(),
        }
        licences = application_licences(d)  # e-licences fetched instead of photos: references only
        if licences:
            payload["licences"] = licences
        given = {x["material"] for x in licences}
        attachments = [bytes(m.data) for m in d.materials if m.name not in given]
        if d.face_photo:
            attachments.append(bytes(d.face_photo))
        return payload, attachments

    def _submit(self, token: int) -> None:
        """Worker: the payload is read under the visit's token; the durable enqueue, then the platform's number."""
        ctx = self.ctx
        ctx.wait_ready()
        try:
            payload, attachments = ctx.for_visit(token, self.application_payload)
            local_no = ctx.require_outbox().enqueue("application", payload, attachments,
                                                    idempotency_key=f"app-{uuid.uuid4().hex}")
        except VisitEnded:
            raise
        except OutboxFullError:  # the disk is full: say plainly this machine cannot take applications now
            log.exception("enqueue refused: the disk is full")
            ctx.session.submit_failed(token=token)
            ctx.post_for(token, "submit_failed", message=FULL_DISK_MESSAGE)
            return
        except Exception:  # noqa: BLE001 - told to the citizen, logged for the technician
            log.exception("enqueue failed")
            ctx.session.submit_failed(token=token)
            ctx.post_for(token, "submit_failed", message="本机保存失败，请点「帮办代办」找工作人员")
            return
        # the application is on disk for its citizen; only the screens of the visit still hear of it
        ctx.keep_for(token, "local_no", local_no)  # the durable receipt row: marked once the paper is out
        tracking, queued = self._wait_delivered(local_no)
        ctx.keep_for(token, "promised_date", None)
        try:
            ctx.session.submitted(tracking, queued=queued, token=token)
        except InvalidTransition:
            log.debug("submitted after the case left SUBMITTING; nothing shown")
            return
        self._status.refresh_status()
        ctx.post_for(token, "submitted", tracking_no=tracking, queued=queued)

    def _wait_delivered(self, local_no: str) -> tuple[str, bool]:
        """Nudge the drainer and wait a little: the platform's number if it answers, else the local one."""
        ctx = self.ctx
        if ctx.drainer is None or ctx.outbox is None:
            return local_no, True
        ctx.drainer.notify()
        end = time.monotonic() + ctx.timings.submit_wait_s
        while time.monotonic() < end:
            rec = ctx.outbox.get(local_no, decrypt=False)
            if rec is not None and rec.state == "done" and rec.platform_ref:
                return rec.platform_ref, False
            if rec is not None and (rec.state == "failed" or (rec.state == "pending" and rec.attempts > 0)):
                break  # refused, or tried and the platform is unreachable: it stays queued
            time.sleep(0.1)
        return local_no, True

    # ------------------------------------------------------------------ rating
    # the 好差评 record itself: kiosk.app.evaluations (EvaluationService.rate_case / rate_later)
    @property
    def thanks_s(self) -> float:
        return self.ctx.timings.thanks_s
