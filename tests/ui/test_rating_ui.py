"""好差评 by the configured indicator set, through the real UI with the simulators (issue 14 item 3).

Right after a submission and later, by scanning the receipt's QR code on the home screen: every
evaluation carries the 办件编号 and the indicator set's version and reaches the platform simulator
through the outbox; 不满意 asks the set's reasons and an optional note; a second evaluation of a case
is refused plainly; an unfinished case offers none.
"""
from __future__ import annotations

import json
import random
import uuid

import pytest
from kivy.core.window import Window
from kivy.metrics import dp
from test_accessibility import set_window, violations
from test_flows import fill_form, identify, remove_card

from kiosk.config import EvaluationReason, EvaluationSection
from kiosk.domain.evaluation import EVALUATION_MESSAGES, build_evaluation
from screens.theme import MINIMUMS
from tests.platform.samples import application_body

pytestmark = pytest.mark.ui

APPLY_ITEM = "QHB-RS-018"  # 居民养老保险参保登记: phone + choice, no paper materials
DEFAULT = EvaluationSection()
RATED_RIGHT_AFTER: list[str] = []  # the first test's case, for a later test


def shot(drv, name):
    drv.screenshot(drv.artifacts / f"{name}.png")


def platform_ratings(svc) -> dict[str, dict]:
    """The evaluations the platform simulator accepted, by case number."""
    rows = svc.wiring.simulator.state.db.execute("SELECT body FROM records WHERE kind='evaluation'").fetchall()
    return {b["tracking_no"]: b for b in (json.loads(r[0]) for r in rows)}


def submit_to_rating(app, drv, svc) -> str:
    """A whole application through the UI up to the rating screen; the receipt's number."""
    app.go("guide", code=APPLY_ITEM)
    drv.tap("guide-start")
    identify(drv, svc)
    drv.wait_screen("form")
    fill_form(drv, app)
    drv.wait_screen("review")
    drv.tap("review-submit")
    drv.wait_screen("receipt")
    rc = app.screen("receipt")
    assert rc.tracking_no.startswith("SD") and not rc.queued
    drv.wait_until(lambda: "已打印" in rc.print_message, what="receipt printed")
    drv.tap("receipt-done")
    drv.wait_screen("rating")
    return rc.tracking_no


def platform_case(svc, finished: bool) -> str:
    """A case the platform knows (as if submitted on an earlier day); finished when its steps have passed."""
    sim = svc.wiring.simulator
    if finished:
        sim.options.progress_step_s = 0.001  # until the test's finished_cases fixture puts it back
    body = application_body(svc.ctx.platform.kiosk_id, rng=random.Random(uuid.uuid4().int))
    return svc.ctx.platform.submit_application(body, f"rating-ui-{uuid.uuid4().hex}")["tracking_no"]


@pytest.fixture
def finished_cases(kiosk):
    """Cases look finished while the test runs (the simulator's steps pass at once)."""
    sim = kiosk[2].wiring.simulator
    before = sim.options.progress_step_s
    yield
    sim.options.progress_step_s = before


@pytest.fixture(autouse=True)
def receipt_shown_again(kiosk):
    """Each scan is a receipt held to the scanner anew (the scanner drops the same code seen within 2 s)."""
    qr = kiosk[2].ctx.devices["qr"]
    before = qr.deduper.window_s
    qr.deduper.window_s = 0.0
    yield
    qr.deduper.window_s = before


def scan_receipt_on_home(drv, svc, tn: str):
    drv.wait_screen("home")
    svc.ctx.devices["qr"].scan(f"QHB1:{tn}")
    drv.wait_screen("progress")
    pr = drv.app.screen("progress")
    drv.wait_until(lambda: pr.has_results or pr.error, what="the case's progress")
    assert not pr.error, pr.message
    return pr


def level_texts(drv) -> list[str]:
    drv.wait_until(lambda: drv.has("rate-4"), what="the levels")
    return [drv.find(f"rate-{i}").text for i in range(5)]


def test_rating_right_after_a_submission_asks_the_reasons_and_reaches_the_platform(ui):
    """不满意 right after a submission (长辈版): the set's reasons, several of them, and the note."""
    app, drv, svc = ui
    tn = submit_to_rating(app, drv, svc)
    RATED_RIGHT_AFTER.append(tn)
    assert level_texts(drv) == DEFAULT.levels and not drv.has("rating-send") and drv.has("rating-skip")
    app.toggle_elderly()  # large targets on the reason stage too
    drv.tap("rate-3")  # 不满意
    rs = app.screen("rating")
    assert rs.asking_reason
    tiles = [drv.find(f"reason-{i}") for i in range(3)]
    assert not drv.has("reason-3")
    assert [t.text.split("　")[0] for t in tiles] == [r.text for r in DEFAULT.reasons]
    assert DEFAULT.reasons[0].hint in tiles[0].text
    assert violations(rs, "elderly") == []
    assert all(t.height >= dp(MINIMUMS["elderly"].target_dp) for t in tiles)
    drv.tap("rating-send")  # nothing chosen: told plainly, nothing sent
    assert rs.message == EVALUATION_MESSAGES["reasons_missing"] and app.current == "rating"
    set_window(drv, (1366, 768))  # the shortest kiosk screen, with the message shown
    try:
        assert violations(rs, "elderly") == []
    finally:
        set_window(drv, (1280, 800))
    drv.tap("reason-0")
    drv.tap("reason-2")
    drv.tap("reason-1")
    drv.tap("reason-1")  # a second tap takes it back
    assert rs.chosen == ["service_efficiency", "service_attitude"]
    assert drv.find("reason-0").text.startswith("√") and not drv.find("reason-1").text.startswith("√")
    drv.tap("rating-note")
    Window.dispatch("on_textinput", "排队太久了")  # what the input method commits
    drv.pump(0.05)
    assert drv.find("rating-note").text == "排队太久了"
    shot(drv, "01-rating-reasons-elderly")
    drv.tap("rating-send")
    drv.wait_screen("home", timeout=10)
    remove_card(svc)
    assert rs.note.text == "" and rs.chosen == []  # wiped with the visit
    drv.wait_until(lambda: tn in platform_ratings(svc), what="the rating at the platform (through the outbox)")
    body = platform_ratings(svc)[tn]
    assert body["level"] == "不满意" and body["indicator_set_version"] == DEFAULT.version
    assert body["item_code"] == APPLY_ITEM and body["channel"] == "self_service_terminal" and not body.get("later")
    assert body["reasons"] == ["service_efficiency", "service_attitude"] and body["note"] == "排队太久了"
    assert body["reason"] == "服务效率、服务态度：排队太久了"
    assert any(r.kind == "evaluation" and r.state == "done" for r in svc.ctx.outbox.list())


def test_a_set_with_other_labels_changes_what_the_screen_shows(ui):
    app, drv, svc = ui
    before = svc.ctx.config
    labels = ["很满意", "比较满意", "一般", "较不满意", "很不满意"]
    pushed = EvaluationSection(version="sd-2027.1", levels=labels, reasons_for=["较不满意", "很不满意"],
                               reasons=[EvaluationReason(code="too_many_trips", text="多次跑动", hint="来了好几趟"),
                                        EvaluationReason(code="guide_unclear", text="办事指南不清楚")])
    svc.station.apply_live_config(before.model_copy(update={"evaluation": pushed}), ["evaluation"])
    try:
        app.go("rating")
        assert level_texts(drv) == labels
        drv.tap("rate-4")  # 很不满意 asks why in this set
        assert [drv.find(f"reason-{i}").text.split("　")[0] for i in range(2)] == ["多次跑动", "办事指南不清楚"]
        assert not drv.has("reason-2")
        shot(drv, "03-rating-pushed-set")
        drv.tap("rating-skip")
        drv.wait_screen("home")
    finally:
        svc.station.apply_live_config(before, ["evaluation"])


def test_rating_later_by_the_receipt_qr_on_the_home_screen(ui, finished_cases):
    app, drv, svc = ui
    tn = platform_case(svc, finished=True)
    pr = scan_receipt_on_home(drv, svc, tn)
    assert tn in pr.results
    drv.wait_until(lambda: drv.has("progress-rate"), what="「评价」 offered")
    shot(drv, "04-progress-rate-later")
    drv.tap("progress-rate")
    drv.wait_screen("rating")
    rs = app.screen("rating")
    assert rs.later and tn in rs.case_line
    assert level_texts(drv) == DEFAULT.levels
    drv.tap("rate-0")  # 非常满意: no reasons asked, sent at once
    drv.wait_until(lambda: rs.thanks, what="thanks after the platform's answer")
    drv.wait_screen("home", timeout=10)
    body = platform_ratings(svc)[tn]  # delivered before the thanks
    assert body["later"] is True and body["level"] == "非常满意" and "reasons" not in body
    assert body["indicator_set_version"] == DEFAULT.version and body["tracking_no"] == tn
    # the same receipt again: known here, no second evaluation offered
    pr = scan_receipt_on_home(drv, svc, tn)
    assert "已评价" in pr.results and "已经评价过了" in pr.rate_note and not drv.has("progress-rate")
    drv.tap("progress-done")
    drv.wait_screen("home")


def test_a_case_rated_right_after_submitting_is_not_offered_again(ui, finished_cases):
    app, drv, svc = ui
    assert RATED_RIGHT_AFTER, "the first test rated its case on the rating screen"
    svc.wiring.simulator.options.progress_step_s = 0.001  # that case is finished now
    pr = scan_receipt_on_home(drv, svc, RATED_RIGHT_AFTER[0])
    assert "已经评价过了" in pr.rate_note and not drv.has("progress-rate")


def test_a_second_evaluation_is_refused_plainly_by_the_platform(ui, finished_cases):
    app, drv, svc = ui
    tn = platform_case(svc, finished=True)
    elsewhere = build_evaluation(DEFAULT, tracking_no=tn, level="满意", kiosk_id=svc.ctx.platform.kiosk_id,
                                 created_at="2026-11-30T10:00:00+08:00")
    svc.ctx.platform.submit_evaluation(elsewhere, f"elsewhere-{uuid.uuid4().hex}")  # rated at another channel
    scan_receipt_on_home(drv, svc, tn)
    drv.wait_until(lambda: drv.has("progress-rate"), what="「评价」 offered (not known here)")
    drv.tap("progress-rate")
    drv.wait_screen("rating")
    drv.tap("rate-0")
    rs = app.screen("rating")
    drv.wait_until(lambda: rs.refused, what="the platform's refusal", timeout=20)
    assert rs.message == EVALUATION_MESSAGES["already_rated"] and not rs.thanks
    assert drv.find("rating-skip").text == "返回首页"
    shot(drv, "05-rating-already-rated")
    assert platform_ratings(svc)[tn]["level"] == "满意"  # the first evaluation stands
    drv.tap("rating-skip")
    drv.wait_screen("home")
    pr = scan_receipt_on_home(drv, svc, tn)  # now known here too
    assert not drv.has("progress-rate") and "已经评价过了" in pr.rate_note


def test_an_unfinished_case_offers_no_evaluation(ui):
    app, drv, svc = ui
    tn = platform_case(svc, finished=False)
    pr = scan_receipt_on_home(drv, svc, tn)
    assert tn in pr.results and "已收件" in pr.results
    assert not drv.has("progress-rate") and "办结以后" in pr.rate_note
    drv.tap("progress-done")
    drv.wait_screen("home")
