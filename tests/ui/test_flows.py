"""Complete visits driven by touches through the real app, simulated devices and the platform simulator."""
from __future__ import annotations

import pytest

from kiosk.domain.tracking import is_tracking_no

pytestmark = pytest.mark.ui

APPLY_ITEM = "QHB-RS-018"  # 居民养老保险参保登记: phone + choice, no paper materials
PAY_ITEM = "QHB-RS-005"  # 居民养老保险保险费的缴纳
MATERIALS_ITEM = "QHB-RS-027"  # 就业困难人员认定: phone + choice + one paper (申请表)
CERT_ITEM = "QHB-RS-008"  # 个人参保缴费证明查询打印 (query_print)
CERTIFY_ITEM = "QHB-RS-022"  # 居民养老保险待遇领取资格认证 (certify)


@pytest.fixture
def face_in_front(kiosk, tmp_path):
    """A citizen standing in front of the document camera (a synthetic face frame)."""
    import cv2

    from standins.camera_scenes import make_face_frame

    path = tmp_path / "face.png"
    cv2.imwrite(str(path), make_face_frame([(0.5, 0.45, 0.3)], size=(1632, 1224)))
    cam = kiosk[2].ctx.devices["camera"]
    cam.images = [str(path)]
    yield
    cam.images = []


def take_face(drv, app):
    ids = app.screen("identify")
    drv.wait_until(lambda: drv.has("identify-face"), what="face button")
    drv.tap("identify-face")
    drv.wait_until(lambda: ids.face_done or ids.error, what="face check", timeout=30)
    assert ids.face_done, ids.message
    drv.tap("identify-next")


def shot(drv, name):
    drv.screenshot(drv.artifacts / f"{name}.png")


def card_name(svc) -> str:
    from standins.sam_emulator import sample_card

    return sample_card().name


def personal_texts_left(drv, svc) -> list[str]:
    """Visible or hidden widget texts that still carry the citizen's name or ID number."""
    from standins.sam_emulator import sample_card

    c = sample_card()
    from kiosk.domain.identity import mask_id_number, mask_name

    needles = [c.name, c.id_number, mask_id_number(c.id_number), mask_name(c.name), "13912345678", "139****5678"]
    return [t for t in drv.texts() if any(n and n in t for n in needles)]


def fill_form(drv, app, phone="13912345678"):
    """Answer every field of the form: first choice for choices, the phone on the keypad."""
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


def identify(drv, svc, card=None):
    drv.wait_screen("identify")
    svc.ctx.devices["idcard"].insert_card(card)
    drv.wait_until(lambda: drv.has("identify-next"), what="identified")
    drv.tap("identify-next")


def remove_card(svc):
    svc.ctx.devices["idcard"].remove_card()


def test_apply_visit_online(ui):
    app, drv, svc = ui
    shot(drv, "01-home")
    drv.tap("home-search")
    drv.type_keys("jmyl")
    shot(drv, "02-search")
    drv.tap(f"item-{APPLY_ITEM}") if drv.has(f"item-{APPLY_ITEM}") else app.go("guide", code=APPLY_ITEM)
    drv.wait_screen("guide")
    shot(drv, "03-guide")
    drv.tap("guide-start")
    drv.wait_screen("identify")
    shot(drv, "04-identify")
    identify(drv, svc)
    drv.wait_screen("form")
    shot(drv, "05-form")
    fill_form(drv, app)
    drv.wait_screen("review")
    shot(drv, "06-review")
    summary = app.screen("review").summary
    assert "139****5678" in summary and card_name(svc) not in summary  # masked
    drv.tap("review-submit")
    drv.wait_screen("receipt")
    rc = app.screen("receipt")
    assert rc.tracking_no.startswith("SD") and not rc.queued  # the platform's number
    drv.wait_until(lambda: "已打印" in rc.print_message, what="receipt printed")
    shot(drv, "07-receipt")
    emu = svc.ctx.devices["printer"].emulator
    assert emu.receipts and rc.tracking_no in emu.receipts[-1].text()
    drv.tap("receipt-done")
    drv.wait_screen("rating")
    shot(drv, "08-rating")
    drv.tap("rate-0")
    drv.wait_screen("home", timeout=10)
    remove_card(svc)
    assert app.screen_log[:8] == ["search", "guide", "identify", "form", "review", "receipt", "rating", "home"][:8] \
        or app.screen_log[-7:] == ["guide", "identify", "form", "review", "receipt", "rating", "home"]
    assert svc.ctx.session.data.identity is None
    assert personal_texts_left(drv, svc) == []
    # the rating went through the outbox to the platform
    drv.wait_until(lambda: any(r.kind == "evaluation" and r.state == "done" for r in svc.ctx.outbox.list()),
                   what="rating delivered")
    apps = svc.wiring.simulator.state.db.execute("SELECT count(*) FROM applications").fetchone()[0]
    assert apps >= 1


def test_apply_with_materials(ui):
    app, drv, svc = ui
    cam = svc.ctx.devices["camera"]
    app.go("guide", code=MATERIALS_ITEM)
    drv.tap("guide-start")
    identify(drv, svc)
    drv.wait_screen("form")
    fill_form(drv, app)
    drv.wait_screen("materials")
    ms = app.screen("materials")
    drv.wait_until(lambda: ms.preview.texture is not None, what="live preview")
    shot(drv, "14-materials-preview")
    cam.variant = "too_dark"  # a poor photo first: the quality message, then a retake
    drv.tap("materials-capture")
    drv.wait_until(lambda: ms.error, what="quality message", timeout=30)
    assert ms.message and not ms.reviewing
    shot(drv, "15-materials-quality")
    cam.variant = "good"
    drv.tap("materials-capture")
    drv.wait_until(lambda: ms.reviewing, what="cropped result", timeout=30)
    shot(drv, "16-materials-cropped")
    drv.tap("materials-retake")
    assert not ms.reviewing and not svc.ctx.session.data.materials
    drv.tap("materials-capture")
    drv.wait_until(lambda: ms.reviewing, what="cropped result", timeout=30)
    drv.tap("materials-next")
    drv.wait_screen("review")
    assert "申请表" in app.screen("review").summary
    drv.tap("review-submit")
    drv.wait_screen("receipt", timeout=20)
    tn = app.screen("receipt").tracking_no
    assert tn.startswith("SD")
    import json

    body = json.loads(svc.wiring.simulator.state.db.execute("SELECT body FROM applications WHERE tracking_no=?",
                                                     (tn,)).fetchone()[0])
    assert len(body["materials"]) == 1 and svc.wiring.simulator.state.material_path(body["materials"][0]).exists()
    drv.tap("receipt-done")
    drv.wait_screen("rating")
    drv.tap("rating-skip")
    drv.wait_screen("home")
    remove_card(svc)
    assert ms.preview.texture is None  # the photo of the paper is gone from the screen


def test_certificate_print_visit(ui, face_in_front):
    app, drv, svc = ui
    drv.tap("home-certificate")
    drv.wait_screen("certificate")
    shot(drv, "60-certificates")
    drv.tap(f"item-{CERT_ITEM}")
    drv.wait_screen("identify")
    svc.ctx.devices["idcard"].insert_card()
    take_face(drv, app)
    drv.wait_screen("form")
    fill_form(drv, app)
    drv.wait_screen("certificate")
    cs = app.screen("certificate")
    drv.wait_until(lambda: cs.stage == "preview" or cs.error, what="certificate preview", timeout=20)
    assert cs.stage == "preview", cs.message
    assert "持证人：张**" in cs.body
    shot(drv, "61-certificate-preview")
    drv.tap("certificate-print")
    drv.wait_until(lambda: cs.stage == "printed", what="printed")
    assert "已打印" in cs.message
    assert "证明编号" in svc.ctx.devices["printer"].emulator.receipts[-1].text()
    drv.tap("certificate-done")
    drv.wait_screen("rating")
    drv.tap("rate-2")
    drv.wait_screen("home")
    remove_card(svc)
    assert personal_texts_left(drv, svc) == []
    assert svc.ctx.session.data.face_photo is None


def test_certify_visit(ui, face_in_front):
    app, drv, svc = ui
    app.go("guide", code=CERTIFY_ITEM)
    drv.tap("guide-start")
    drv.wait_screen("identify")
    svc.ctx.devices["idcard"].insert_card()
    take_face(drv, app)
    drv.wait_screen("form")
    fill_form(drv, app)
    drv.wait_screen("review")
    assert "已拍摄并核验" in app.screen("review").summary
    drv.tap("review-submit")
    drv.wait_screen("receipt", timeout=20)
    assert app.screen("receipt").tracking_no.startswith("SD")
    drv.tap("receipt-done")
    drv.wait_screen("rating")
    drv.tap("rate-0")
    drv.wait_screen("home")
    remove_card(svc)


def test_offline_submission_queues_then_drains(ui):
    app, drv, svc = ui
    svc.wiring.simulator.options.mode = "outage"
    try:
        app.go("guide", code=APPLY_ITEM)
        drv.tap("guide-start")
        identify(drv, svc)
        drv.wait_screen("form")
        fill_form(drv, app)
        drv.wait_screen("review")
        drv.tap("review-submit")
        drv.wait_screen("receipt", timeout=20)
        rc = app.screen("receipt")
        assert rc.queued and rc.tracking_no.startswith("LQ") and is_tracking_no(rc.tracking_no)
        assert "网络恢复后自动提交" in rc.headline
        drv.wait_until(lambda: "已打印" in rc.print_message, what="receipt printed")
        shot(drv, "10-receipt-queued")
        local_no = rc.tracking_no
        rec = svc.ctx.outbox.get(local_no)
        assert rec is not None and rec.state in ("pending", "inflight")
        drv.tap("receipt-done")
        drv.wait_screen("rating")
        drv.tap("rate-4")  # 非常不满意 asks for a reason
        assert app.screen("rating").asking_reason
        shot(drv, "11-rating-reason")
        drv.tap("reason-0")
        drv.tap("rating-send")  # reasons are a multi-select: sent by the button
        drv.wait_screen("home", timeout=10)
        remove_card(svc)
        drv.wait_until(lambda: not svc.ctx.status.online, what="offline indicator", timeout=15)
        assert app.root.status.text == "网络中断：申请将在恢复后自动提交"
        shot(drv, "12-home-offline")
    finally:
        svc.wiring.simulator.options.mode = "normal"
    svc.ctx.drainer.notify()
    drv.wait_until(lambda: svc.ctx.outbox.get(local_no).state == "done", what="queue drained", timeout=30)
    assert svc.ctx.outbox.get(local_no).platform_ref.startswith("SD")


def test_printer_out_of_paper_shows_qr(ui):
    app, drv, svc = ui
    emu = svc.ctx.devices["printer"].emulator
    emu.set_status("paper-out")
    try:
        app.go("guide", code=APPLY_ITEM)
        drv.tap("guide-start")
        identify(drv, svc)
        fill_form(drv, app)
        drv.wait_screen("review")
        drv.tap("review-submit")
        drv.wait_screen("receipt")
        rc = app.screen("receipt")
        drv.wait_until(lambda: rc.print_fault, what="printer fault shown")
        assert rc.print_message.startswith("打印机缺纸，请联系工作人员")
        assert rc.show_qr and rc.qr.texture is not None
        shot(drv, "13-receipt-paper-out")
        tracking = svc.ctx.session.data.tracking_no
        drv.tap("receipt-done")
        drv.wait_screen("rating")
        drv.tap("rating-skip")
        drv.wait_screen("home")
        remove_card(svc)
    finally:
        emu.set_status("ok")
    # nothing lost silently: the technician sees the receipt that never came out, and reprints it
    missing = [r for r in svc.receipts.unprinted_receipts() if tracking in (r.local_no, r.tracking_no)]
    assert len(missing) == 1
    assert "未打印的回执：" in svc.technician.technician_report() and missing[0].tracking_no in svc.technician.technician_report()
    before = len(emu.receipts)
    drv.wait_until(lambda: svc.ctx.devices["printer"].status.state.value == "ready", what="paper back", timeout=20)
    assert svc.receipts.reprint_receipt(missing[0].local_no).startswith("已补打回执")
    assert len(emu.receipts) == before + 1
    text = emu.receipts[-1].text()
    assert missing[0].tracking_no in text and card_name(svc) not in text  # masked on paper
    assert all(r.local_no != missing[0].local_no for r in svc.receipts.unprinted_receipts())


def open_payment(drv, app, svc):
    """A `pay` item from its guide to the payment screen: identify, answer the form."""
    app.go("guide", code=PAY_ITEM)
    drv.tap("guide-start")
    identify(drv, svc)
    drv.wait_screen("form")
    fill_form(drv, app)
    drv.wait_screen("payment")
    return app.screen("payment")


def test_pay_visit(ui):
    app, drv, svc = ui
    pay = open_payment(drv, app, svc)
    drv.wait_until(lambda: pay.waiting, what="payment QR")
    shot(drv, "20-payment")
    assert "应缴金额" in pay.bill and pay.qr.texture is not None
    pid = svc.ctx.scratch["payment_id"]
    import requests

    requests.post(f"{svc.wiring.simulator.url}/__sim/payments/{pid}/pay", timeout=5)
    drv.wait_screen("receipt", timeout=20)
    drv.wait_until(lambda: "已打印" in app.screen("receipt").print_message, what="receipt printed")
    drv.tap("receipt-done")
    drv.wait_screen("rating")
    drv.tap("rate-1")
    drv.wait_screen("home")
    remove_card(svc)
    assert app.screen_log[-6:] == ["form", "payment", "receipt", "rating", "home"][-6:] or "payment" in app.screen_log
    # the rating of a payment case is delivered, not dead-lettered
    svc.ctx.drainer.notify()
    drv.wait_until(lambda: svc.ctx.outbox.stats()["pending"] == 0, what="rating delivered", timeout=30)
    assert svc.ctx.outbox.stats()["failed"] == 0
    evals = svc.wiring.simulator.state.db.execute("SELECT body FROM records WHERE kind='evaluation'").fetchall()
    assert any(pid in row[0] for row in evals)


def test_payment_not_made_times_out_without_charging(ui):
    app, drv, svc = ui
    before = svc.ctx.timings.payment_timeout_s
    svc.ctx.timings.payment_timeout_s = 2.0
    try:
        pay = open_payment(drv, app, svc)
        drv.wait_until(lambda: pay.error, what="payment timeout", timeout=30)
        shot(drv, "21-payment-timeout")
        assert "超时" in pay.message and "没有扣款" in pay.message
        assert app.current == "payment" and pay.qr.texture is None
    finally:
        svc.ctx.timings.payment_timeout_s = before
        svc.visit.end_visit("done")
        remove_card(svc)
        drv.pump(0.3)


def test_progress_query_by_receipt_qr(ui):
    app, drv, svc = ui
    rows = svc.wiring.simulator.state.db.execute("SELECT tracking_no FROM applications").fetchall()
    assert rows, "an earlier test submitted a case"
    tn = rows[0][0]
    drv.tap("home-progress")
    drv.wait_screen("progress")
    svc.ctx.devices["qr"].scan(f"QHB1:{tn}")
    pr = app.screen("progress")
    drv.wait_until(lambda: pr.has_results, what="progress result")
    assert tn in pr.results
    shot(drv, "30-progress")
    drv.tap("progress-done")
    drv.wait_screen("home")


def test_progress_query_by_card(ui):
    app, drv, svc = ui
    drv.tap("home-progress")
    drv.wait_screen("progress")
    svc.ctx.devices["idcard"].insert_card()
    pr = app.screen("progress")
    drv.wait_until(lambda: pr.has_results, what="cases of the card holder")
    assert "编号 SD" in pr.results
    drv.tap("progress-done")
    drv.wait_screen("home")
    remove_card(svc)
    assert personal_texts_left(drv, svc) == []


def test_help_request_goes_through_outbox(ui):
    app, drv, svc = ui
    drv.tap("home-help")
    drv.wait_screen("help")
    shot(drv, "40-help")
    drv.tap("help-now")
    drv.type_keys("13912345678")
    drv.tap("help-call")
    hs = app.screen("help")
    assert hs.stage == "helped" and svc.ctx.config.kiosk.helper_phone in hs.message
    shot(drv, "41-help-called")
    drv.wait_until(lambda: any(r.kind == "help_request" and r.state == "done" for r in svc.ctx.outbox.list()),
                   what="help request delivered")
    drv.tap("nav-home")
    drv.wait_screen("home")
    assert personal_texts_left(drv, svc) == []


def test_home_visit_booking(ui):
    app, drv, svc = ui
    drv.tap("home-help")
    drv.tap("help-visit")
    identify(drv, svc)
    drv.wait_screen("help")
    drv.tap("visit-item-0")
    drv.tap("time-0")
    drv.type_keys("13912345678")
    shot(drv, "42-home-visit")
    drv.tap("visit-book")
    assert app.screen("help").stage == "booked"
    drv.wait_until(lambda: any(r.kind == "home_visit" and r.state == "done" for r in svc.ctx.outbox.list()),
                   what="home visit delivered")
    drv.tap("nav-home")
    drv.wait_screen("home")
    remove_card(svc)


def test_expired_card_is_refused(ui):
    app, drv, svc = ui
    import dataclasses
    import datetime as dt

    from standins.sam_emulator import sample_card

    old = dataclasses.replace(sample_card(), valid_from=dt.date(2000, 1, 1), valid_to=dt.date(2010, 1, 1))
    app.go("guide", code=APPLY_ITEM)
    drv.tap("guide-start")
    drv.wait_screen("identify")
    svc.ctx.devices["idcard"].insert_card(old)
    ids = app.screen("identify")
    drv.wait_until(lambda: ids.error, what="refusal")
    assert "有效期" in ids.message and not ids.done
    shot(drv, "50-identify-expired")
    remove_card(svc)
    drv.tap("nav-home")
    drv.wait_screen("home")


def test_reader_down_shows_out_of_service_with_what_still_works(ui):
    app, drv, svc = ui
    reader = svc.ctx.devices["idcard"]
    reader.plugged_in = False
    try:
        drv.wait_until(lambda: svc.ctx.status.devices.get("idcard") == "offline", what="reader offline", timeout=15)
        app.go("guide", code=APPLY_ITEM)
        drv.tap("guide-start")
        drv.wait_screen("out_of_service")
        oos = app.screen("out_of_service")
        assert "身份证读卡器暂时不能使用" in oos.message and "办件查询" in oos.message
        assert svc.ctx.config.kiosk.helper_phone in oos.message
        shot(drv, "70-out-of-service")
        drv.tap("oos-home")
        drv.wait_screen("home")
    finally:
        reader.plugged_in = True
    drv.wait_until(lambda: svc.ctx.status.devices.get("idcard") == "ready", what="reader back", timeout=30)


def test_identify_with_electronic_id_qr(ui):
    app, drv, svc = ui
    from standins.platform_sim import make_ctid_token
    from standins.sam_emulator import sample_card

    c = sample_card()
    app.go("guide", code=APPLY_ITEM)
    drv.tap("guide-start")
    drv.wait_screen("identify")
    svc.ctx.devices["qr"].scan(make_ctid_token("resident_id", c.id_number, c.name))
    ids = app.screen("identify")
    drv.wait_until(lambda: ids.done or ids.error, what="e-ID verified")
    assert ids.done and ids.person["name"] == "张**", ids.message
    drv.tap("identify-next")
    drv.wait_screen("form")
    drv.tap("nav-home")
    drv.wait_screen("home")
    assert svc.ctx.session.data.identity is None


def test_everything_down_shows_the_calm_page_and_returns_home(ui, monkeypatch):
    app, drv, svc = ui
    app.go("home")
    drv.pump(0.2)
    monkeypatch.setattr(svc.station, "everything_down", lambda: True)
    svc.ctx.events.post("status")
    drv.wait_screen("out_of_service")
    oos = app.screen("out_of_service")
    assert oos.everything_down and "暂时不能使用" in oos.message and svc.ctx.config.kiosk.helper_phone in oos.message
    shot(drv, "71-everything-down")
    monkeypatch.setattr(svc.station, "everything_down", lambda: False)
    svc.ctx.events.post("status")
    drv.wait_screen("home")
