"""Visit isolation: work still in flight when a visit ends never reaches the next citizen.

A slow capture, a look-up, a submission and a payment poll are each held behind a
gate (a fake behind the port that waits until the test opens it). The first
citizen walks away (回首页) while it is held; the next citizen reaches the very
state the late result would write into; then the gate opens. Nothing of the first
visit may appear: on screen (no UI event of it is handled), in the session, or in
the next application sent to the platform.
"""
from __future__ import annotations

import datetime as _dt
import json
import threading
from typing import Any

import pytest
import requests
from ui_support import Gate

from standins.sam_emulator import sample_card

pytestmark = pytest.mark.ui

APPLY_ITEM = "QHB-RS-018"  # phone + choice, no paper
PAY_ITEM = "QHB-RS-005"
MATERIALS_ITEM = "QHB-RS-027"  # phone + choice + one paper (申请表)



def first_card() -> Any:
    """The first citizen's card (a fresh object each time: the session wipes the one it held)."""
    return sample_card()  # 张小明


def next_card() -> Any:
    return sample_card(name="李桂兰", sex="女", birth_date=_dt.date(1958, 3, 12), id_number="370303195803120041",
                       address="山东省淄博市张店区华光路9号")


FIRST, NEXT = first_card(), next_card()  # for comparing only: never handed to the reader


class EventLog:
    """Every UI event the app handles (what could reach the screen), with the moment the first visit ended."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.mark = 0
        self._orig = app.handle_event
        app.handle_event = self._record

    def _record(self, ev: Any) -> None:
        self.events.append((ev.kind, dict(ev.data)))
        self._orig(ev)

    def visit_ended(self) -> None:
        self.mark = len(self.events)

    def after_end(self, *kinds: str) -> list[tuple[str, dict[str, Any]]]:
        return [e for e in self.events[self.mark:] if not kinds or e[0] in kinds]

    def close(self) -> None:
        self.app.handle_event = self._orig


@pytest.fixture
def seen(ui):
    log = EventLog(ui[0])
    yield log
    log.close()


def fill_form(drv, app, phone: str) -> None:
    form = app.screen("form")
    for _ in range(len(form.fields)):
        f = form.field
        if f["type"] == "choice":
            drv.tap("choice-0")
        elif f["type"] == "phone":
            drv.type_keys(phone)
        elif f["type"] == "number":
            drv.type_keys("1")
        drv.tap("form-next")


def start_visit(app, drv, svc, code: str, card: Any, phone: str) -> None:
    """From the home screen: guide, card on the reader, the form answered."""
    drv.wait_screen("home")
    app.go("guide", code=code)
    drv.tap("guide-start")
    drv.wait_screen("identify")
    svc.ctx.devices["idcard"].insert_card(card)
    ids = app.screen("identify")
    drv.wait_until(lambda: drv.has("identify-next"), what=f"identified ({ids.message})")
    drv.tap("identify-next")
    drv.wait_screen("form")
    fill_form(drv, app, phone)


def walk_away(app, drv, svc, seen: EventLog) -> None:
    """The citizen takes the card and leaves mid-task (回首页 ends the visit)."""
    svc.ctx.devices["idcard"].remove_card()
    drv.tap("nav-home")
    drv.wait_screen("home")
    drv.wait_until(lambda: svc.ctx.events.pending() == 0, what="clear handled")
    seen.visit_ended()


def nothing_of(first_visit_texts: list[str], drv) -> list[str]:
    return [t for t in drv.texts() if any(n and n in t for n in first_visit_texts)]


def first_visit_needles() -> list[str]:
    from kiosk.domain.identity import mask_id_number, mask_name

    return [FIRST.name, FIRST.id_number, mask_id_number(FIRST.id_number), mask_name(FIRST.name),
            "13911112222", "139****2222"]


def finish_and_read_application(app, drv, svc) -> dict[str, Any]:
    """Submit the current visit and read back what the platform received."""
    drv.wait_screen("review")
    drv.tap("review-submit")
    drv.wait_screen("receipt", timeout=20)
    tn = app.screen("receipt").tracking_no
    row = svc.wiring.simulator.state.db.execute("SELECT body FROM applications WHERE tracking_no=?",
                                                (tn,)).fetchone()
    assert row is not None, tn
    drv.tap("receipt-done")
    drv.wait_screen("rating")
    drv.tap("rating-skip")
    drv.wait_screen("home")
    svc.ctx.devices["idcard"].remove_card()
    return json.loads(row[0])


def test_a_slow_capture_never_lands_in_the_next_visit(ui, seen):
    app, drv, svc = ui
    cam = svc.ctx.devices["camera"]
    gate = Gate(first_only=True)
    cam.scan = gate.wrap(cam.scan)  # the port method the capture calls
    try:
        start_visit(app, drv, svc, MATERIALS_ITEM, first_card(), "13911112222")
        drv.wait_screen("materials")
        drv.tap("materials-capture")
        drv.wait_until(gate.entered.is_set, what="gate entered", timeout=30)
        walk_away(app, drv, svc, seen)
        # the next citizen reaches the materials screen: the state a late page would be written into
        start_visit(app, drv, svc, MATERIALS_ITEM, next_card(), "13933334444")
        drv.wait_screen("materials")
        gate.open()
        drv.wait_until(gate.returned.is_set, what="gate finished", timeout=30)
        drv.pump(0.3)
        ms = app.screen("materials")
        assert seen.after_end("capture_result") == []
        assert not ms.reviewing and ms.done == [False] * len(ms.names)
        assert svc.ctx.session.data.materials == []
        assert nothing_of(first_visit_needles(), drv) == []
        # the next citizen's own page, then the application: only theirs
        drv.tap("materials-capture")
        drv.wait_until(lambda: ms.reviewing, what="the next citizen's page", timeout=30)
        assert len(svc.ctx.session.data.materials) == 1
        drv.tap("materials-next")
        body = finish_and_read_application(app, drv, svc)
    finally:
        del cam.scan
        gate.open()
    assert len(body["materials"]) == 1
    assert body["applicant"]["name"] == NEXT.name and body["applicant"]["id_number"] == NEXT.id_number
    assert body["applicant"]["phone"] == "13933334444"


def test_a_slow_look_up_never_shows_in_the_next_visit(ui, seen):
    app, drv, svc = ui
    platform = svc.ctx.platform
    gate = Gate(first_only=True)
    platform.search_applications = gate.wrap(platform.search_applications)
    try:
        drv.tap("home-progress")
        drv.wait_screen("progress")
        svc.ctx.devices["idcard"].insert_card(first_card())  # the first citizen's cases, looked up by card
        drv.wait_until(gate.entered.is_set, what="gate entered", timeout=30)
        walk_away(app, drv, svc, seen)
        drv.tap("home-progress")  # the next citizen opens the progress screen too
        drv.wait_screen("progress")
        gate.open()
        drv.wait_until(gate.returned.is_set, what="gate finished", timeout=30)
        drv.pump(0.3)
        pr = app.screen("progress")
        assert seen.after_end("progress_result", "progress_error", "identified") == []
        assert pr.results == "" and not pr.has_results
        assert svc.ctx.session.data.identity is None
        drv.tap("progress-done")
        drv.wait_screen("home")
    finally:
        del platform.search_applications
        gate.open()
        svc.ctx.devices["idcard"].remove_card()


def test_a_slow_submission_never_completes_the_next_visit(ui, seen):
    app, drv, svc = ui
    outbox = svc.ctx.outbox
    gate = Gate(first_only=True)
    outbox.enqueue = gate.wrap(outbox.enqueue)
    try:
        start_visit(app, drv, svc, APPLY_ITEM, first_card(), "13911112222")
        drv.wait_screen("review")
        drv.tap("review-submit")
        drv.wait_until(gate.entered.is_set, what="gate entered", timeout=30)
        walk_away(app, drv, svc, seen)
        start_visit(app, drv, svc, APPLY_ITEM, next_card(), "13933334444")
        drv.wait_screen("review")
        gate.open()
        drv.wait_until(gate.returned.is_set, what="gate finished", timeout=30)
        drv.wait_until(lambda: svc.ctx.pool._work_queue.empty(), what="the first visit's submission done")
        drv.pump(0.5)
        assert seen.after_end("submitted", "submit_failed") == []
        assert app.current == "review"
        s = svc.ctx.session
        assert s.state.value == "review" and s.data.tracking_no is None
        assert "local_no" not in svc.ctx.scratch
        body = finish_and_read_application(app, drv, svc)
    finally:
        del outbox.enqueue
        gate.open()
    assert body["applicant"]["name"] == NEXT.name and body["applicant"]["phone"] == "13933334444"
    assert FIRST.id_number not in json.dumps(body, ensure_ascii=False)


def test_a_payment_poll_never_pays_for_the_next_visit(ui, seen):
    app, drv, svc = ui
    ended = threading.Event()
    poll = svc.payments._create_payment

    def watched(token: int) -> None:
        try:
            poll(token)
        finally:
            ended.set()

    svc.payments._create_payment = watched  # only to know when the first visit's poll has returned
    try:
        start_visit(app, drv, svc, PAY_ITEM, first_card(), "13911112222")
        drv.wait_screen("payment")
        pay = app.screen("payment")
        drv.wait_until(lambda: pay.waiting, what="payment QR")
        first_pid = svc.ctx.scratch["payment_id"]
        walk_away(app, drv, svc, seen)
        del svc.payments._create_payment
        start_visit(app, drv, svc, PAY_ITEM, next_card(), "13933334444")
        drv.wait_screen("payment")
        drv.wait_until(lambda: pay.waiting, what="the next citizen's payment QR")
        assert svc.ctx.scratch["payment_id"] != first_pid
        # the first citizen pays on their phone after walking away
        requests.post(f"{svc.wiring.simulator.url}/__sim/payments/{first_pid}/pay", timeout=5)
        drv.wait_until(ended.is_set, what="the first poll ended", timeout=30)
        drv.pump(0.3)
        assert [e for e in seen.after_end() if first_pid in json.dumps(e[1], ensure_ascii=False)] == []
        assert app.current == "payment" and svc.ctx.session.state.value != "done"
        assert svc.ctx.session.data.tracking_no is None
    finally:
        vars(svc.payments).pop("_create_payment", None)
        drv.tap("nav-home")
        drv.wait_screen("home")
        svc.ctx.devices["idcard"].remove_card()
