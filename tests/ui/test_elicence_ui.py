"""E-licences as materials and the 居民码 (issue 14 item 1) through the real UI, with the platform simulator.

The item: 个体工商户变更登记（变更地址） (QHB-SS-003), whose 经营场所使用证明 an e-licence 不动产权证书 may
stand in for. The citizen is 张桂兰 of the simulator's e-licence library (standins/licence_registry.py).
"""
from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from kiosk.domain.elicence import reason_message

pytestmark = pytest.mark.ui

ITEM = "QHB-SS-003"
MATERIAL = "经营场所使用证明（房产证或租房合同）"
CARD_ONLY_ITEM = "QHB-RS-030"  # 社会保障卡密码重置: the catalog does not let the 居民码 identify
HER_CERTIFICATE = "ELZB0000000104"  # 张桂兰's 不动产权证书
HIS_LICENCE = "ELZB0000000202"  # 李建国's 营业执照: someone else's


def _zhang():
    from devices.idcard.known_answer import sample_card
    from standins.licence_registry import PEOPLE

    p = PEOPLE["zhang"]
    return sample_card(name=p["name"], sex="女", birth_date=dt.date(1952, 3, 15), id_number=p["id_number"])


@pytest.fixture
def fetches(ui, monkeypatch):
    """Every body the kiosk sends to POST /v1/licences/fetch (the real client, counted)."""
    _app, _drv, svc = ui
    sent: list[dict] = []
    real = svc.ctx.platform.fetch_licence

    def counted(body):
        sent.append(dict(body))
        return real(body)

    monkeypatch.setattr(svc.ctx.platform, "fetch_licence", counted)
    return sent


def _to_materials(app, drv, svc, *, through_form: bool = False) -> object:
    """Her card read on the identify screen, the form answered, then the materials screen (on the e-licence
    panel). ``through_form``: from the guide's 「开始办理」 through the form screen, as a citizen goes."""
    reader = svc.ctx.devices["idcard"]
    reader.remove_card()
    # the reader must see the last visit's card go before hers is put down, as a hand lifting one card and laying
    # another does; otherwise it takes hers for the wiped card still lying there (请把身份证拿起来，再重新放到读卡区)
    drv.wait_until(lambda: reader.current_card is None, what="the last card taken away")
    if through_form:
        app.go("guide", code=ITEM)
        drv.tap("guide-start")
    else:
        svc.visit.choose_item(ITEM)
        app.go("identify")
    drv.wait_screen("identify")
    reader.insert_card(_zhang())
    drv.wait_until(lambda: drv.has("identify-next"), what="identified")
    # the new address is a Chinese text field (the station helper types it in); the phone is pre-filled too
    svc.visit.set_form({"new_premises": "山东省淄博市周村区丝绸路8号", "phone": "13912345678"})
    if through_form:
        drv.tap("identify-next")
        drv.wait_screen("form")
        drv.tap("form-next")
        drv.tap("form-next")
    else:
        app.go("materials")
    drv.wait_screen("materials")
    ms = app.screen("materials")
    assert ms.names == [MATERIAL]
    return ms


def _scan(svc, text: str) -> None:
    assert svc.ctx.devices["qr"].scan(text)


def _wait_answer(drv, ms) -> None:
    drv.wait_until(lambda: ms.fetched or (ms.error and not ms.fetching), what="licence answer", timeout=20)


def _applications(svc, item: str) -> list[dict]:
    rows = svc.wiring.simulator.state.db.execute(
        "SELECT body FROM applications WHERE item_code=? ORDER BY created_at", (item,)).fetchall()
    return [json.loads(r[0]) for r in rows]


def _end(drv, svc) -> None:
    drv.tap("nav-home")
    drv.wait_screen("home")
    svc.ctx.devices["idcard"].remove_card()


def test_licence_by_qr_replaces_the_photo_in_the_submitted_application(ui, fetches):
    from standins.licence_registry import make_licence_qr

    app, drv, svc = ui
    before = len(_applications(svc, ITEM))
    ms = _to_materials(app, drv, svc, through_form=True)
    # the e-licence first, the camera second
    assert ms.mode == "licence" and "不动产权证书" in ms.licence_title
    assert drv.has("materials-licence-consent") and drv.has("materials-licence-camera")
    assert not drv.has("materials-capture") and not drv.has("materials-next")
    _scan(svc, make_licence_qr(HER_CERTIFICATE))
    _wait_answer(drv, ms)
    assert ms.fetched and not ms.error, ms.message
    drv.screenshot(drv.artifacts / "licence-fetched.png")
    shown = ms.licence_text
    assert "不动产权证书" in ms.licence_title and "鲁(2021)淄博市周村区不动产权第0001234号" in shown
    assert "2021-06-18 至 长期" in shown and "持证人：张** 370" in shown
    assert "张桂兰" not in " ".join(drv.texts()) and _zhang().id_number not in " ".join(drv.texts())
    assert [b["method"] for b in fetches] == ["qr"] and fetches[0]["consent"] is True
    assert "【已调取】" in ms.checklist
    drv.tap("materials-next")
    drv.wait_screen("review")
    assert "电子证照" in app.screen("review").summary
    drv.tap("review-submit")
    drv.wait_screen("receipt", timeout=30)
    drv.wait_until(lambda: len(_applications(svc, ITEM)) > before, what="application at the platform", timeout=30)
    body = _applications(svc, ITEM)[-1]
    assert body["licences"] == [{"licence_ref": HER_CERTIFICATE, "licence_type": "real_estate_certificate",
                                 "material": MATERIAL}]
    assert body["materials"] == []  # no photo for that material
    _end(drv, svc)
    assert svc.ctx.session.data.licences == []


def test_licence_by_consent_and_nothing_of_it_outlives_the_visit(ui, fetches):
    app, drv, svc = ui
    ms = _to_materials(app, drv, svc)
    assert fetches == []  # showing the offer fetches nothing
    drv.tap("materials-licence-consent")  # 同意调取
    _wait_answer(drv, ms)
    assert ms.fetched, ms.message
    assert fetches == [{"method": "holder", "licence_type": "real_estate_certificate", "consent": True,
                        "holder": {"id_type": "resident_id", "id_number": _zhang().id_number}}]
    assert "鲁(2021)淄博市周村区不动产权第0001234号" in ms.licence_text
    assert [x.licence_ref for x in svc.ctx.session.data.licences] == [HER_CERTIFICATE]
    _end(drv, svc)  # the citizen walks away: the visit ends
    assert svc.ctx.session.data.licences == []
    assert ms.licence_text == "" and not ms.fetched
    assert not [t for t in drv.texts() if "不动产权第0001234号" in t or "张**" in t]
    assert "licence_material" not in svc.ctx.scratch and "licence" not in svc.ctx.listening


def test_no_consent_nothing_fetched(ui, fetches):
    from standins.licence_registry import make_licence_qr

    app, drv, svc = ui
    ms = _to_materials(app, drv, svc)
    drv.tap("materials-licence-camera")  # 拍照上传: no e-licence
    assert ms.mode == "camera" and drv.has("materials-capture") and drv.has("materials-licence")
    _scan(svc, make_licence_qr(HER_CERTIFICATE))  # shown at the camera: not a consent
    drv.pump(0.5)
    assert fetches == [] and svc.ctx.session.data.licences == [] and not ms.fetched
    _end(drv, svc)


def test_unknown_licence_says_so_and_offers_the_camera(ui, fetches):
    app, drv, svc = ui
    ms = _to_materials(app, drv, svc)
    _scan(svc, f"EL1:ELZB0000009999:{int(time.time()) + 300:010d}:AAAAAAAAAAAAAAAAAAAAAAAA")
    _wait_answer(drv, ms)
    assert not ms.fetched and reason_message("unknown_licence") in ms.message
    assert len(fetches) == 1 and svc.ctx.session.data.licences == []
    drv.tap("materials-licence-camera")  # the camera path
    assert drv.has("materials-capture")
    _end(drv, svc)


def test_expired_licence_qr_is_refused_at_the_kiosk(ui, fetches):
    from standins.licence_registry import make_licence_qr

    app, drv, svc = ui
    ms = _to_materials(app, drv, svc)
    _scan(svc, make_licence_qr(HER_CERTIFICATE, now=time.time() - 3600))  # the app's code, an hour old
    _wait_answer(drv, ms)
    assert not ms.fetched and reason_message("elicence_expired") in ms.message
    assert fetches == []  # refused before anything was sent
    assert drv.has("materials-licence-camera")
    _end(drv, svc)


def test_someone_elses_licence_is_refused(ui, fetches):
    from standins.licence_registry import make_licence_qr

    app, drv, svc = ui
    ms = _to_materials(app, drv, svc)
    _scan(svc, make_licence_qr(HIS_LICENCE))
    _wait_answer(drv, ms)
    assert not ms.fetched and reason_message("not_holder") in ms.message
    assert svc.ctx.session.data.licences == [] and drv.has("materials-licence-camera")
    _end(drv, svc)


def test_citizen_code_identifies_where_the_item_allows_it(ui):
    from standins.platform_sim import make_ctid_token

    app, drv, svc = ui
    z = _zhang()
    svc.ctx.devices["idcard"].remove_card()
    app.go("guide", code=CARD_ONLY_ITEM)
    drv.tap("guide-start")
    drv.wait_screen("identify")
    ids = app.screen("identify")
    assert not ids.code_allowed
    _scan(svc, make_ctid_token("resident_id", z.id_number, z.name))
    drv.wait_until(lambda: ids.error, what="居民码 refused")
    assert not ids.done and "需要刷身份证" in ids.message and svc.ctx.session.data.identity is None
    drv.tap("nav-home")
    drv.wait_screen("home")
    app.go("guide", code=ITEM)
    drv.tap("guide-start")
    drv.wait_screen("identify")
    assert ids.code_allowed
    _scan(svc, make_ctid_token("resident_id", z.id_number, z.name, ts=time.time() + 1))
    drv.wait_until(lambda: ids.done or ids.error, what="居民码 verified")
    assert ids.done and ids.person["name"] == "张**", ids.message
    assert svc.ctx.session.data.identity.id_number == z.id_number
    drv.tap("nav-home")
    drv.wait_screen("home")
    assert svc.ctx.session.data.identity is None


def test_licence_panel_meets_the_minimums_in_both_modes(ui):
    """The e-licence panel (offered, then fetched) held against the 适老化 minimums, normal and elderly."""
    from test_accessibility import violations

    from standins.licence_registry import make_licence_qr

    app, drv, svc = ui
    problems = {}
    try:
        for elderly in (False, True):
            if elderly != svc.mode.elderly:
                app.toggle_elderly()
            ms = _to_materials(app, drv, svc)
            drv.pump(0.3)
            mode = "elderly" if elderly else "normal"
            problems[f"{mode}/offer"] = violations(app.root, mode)
            _scan(svc, make_licence_qr(HIS_LICENCE, now=time.time() + elderly))  # a refusal's message
            _wait_answer(drv, ms)
            drv.pump(0.3)
            problems[f"{mode}/refused"] = violations(app.root, mode)
            drv.screenshot(drv.artifacts / f"{mode}-licence-refused.png")
            drv.tap("materials-licence-consent")
            _wait_answer(drv, ms)
            assert ms.fetched, ms.message
            drv.pump(0.3)
            problems[f"{mode}/fetched"] = violations(app.root, mode)
            drv.screenshot(drv.artifacts / f"{mode}-licence-fetched.png")
            _end(drv, svc)
    finally:
        if svc.mode.elderly:
            app.toggle_elderly()
    assert not {k: v for k, v in problems.items() if v}


def test_switching_between_camera_and_licence_gives_the_shown_one_the_room(ui):
    """The panel shown gets the room and the hidden one none, however often the citizen switches (a height set
    once by the layout used to stay: the e-licence panel came back empty after the camera had been used)."""
    app, drv, svc = ui
    ms = _to_materials(app, drv, svc)
    camera, panel = ms.ids.camera_area, ms.ids.licence_panel
    for tap, shown, hidden in (("materials-licence-camera", camera, panel), ("materials-licence", panel, camera),
                               ("materials-licence-camera", camera, panel)):
        drv.tap(tap)
        drv.pump(0.2)
        assert shown.height > 100 and hidden.height == 0, (tap, shown.height, hidden.height)
    _end(drv, svc)
