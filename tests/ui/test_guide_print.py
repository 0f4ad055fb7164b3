"""The 一次性告知单 (issue 14 item 4) through the real UI: printed by the emulated ESC/POS printer (GB18030)."""
from __future__ import annotations

import pytest

from kiosk.domain.guide_slip import item_page_url

pytestmark = pytest.mark.ui

ITEM = "QHB-RS-027"  # 就业困难人员认定: 身份证 (e-licence), 户口簿 (shared), 申请表 (bring it)


def _needles() -> list[str]:
    from kiosk.domain.identity import mask_id_number, mask_name
    from standins.sam_emulator import sample_card

    c = sample_card()
    return [c.name, c.id_number, mask_id_number(c.id_number), mask_name(c.name), "13912345678", "139****5678"]


def _printed(svc, before: int):
    emu = svc.ctx.devices["printer"].emulator
    assert emu.wait_for_receipts(before + 1, timeout=30), "no slip came out"
    return emu.complete_receipts[before]


def _print_and_read(drv, app, svc):
    emu = svc.ctx.devices["printer"].emulator
    before = len(emu.complete_receipts)
    gs = app.screen("guide")
    prn = svc.ctx.devices["printer"]
    drv.wait_until(lambda: prn.status.state.value == "ready", what="printer ready", timeout=30)
    drv.tap("guide-print")
    drv.wait_until(lambda: "已打印" in gs.print_message, what="guide printed", timeout=30)
    return _printed(svc, before)


def _applications(svc) -> int:
    return svc.wiring.simulator.state.db.execute("SELECT count(*) FROM applications").fetchone()[0]


def _flat(text: str) -> str:
    """The slip's text without line breaks and padding (wrapped lines joined again)."""
    return "".join(line.strip() for line in text.splitlines())


def test_guide_prints_conditions_materials_fee_hours_and_item_qr(ui):
    app, drv, svc = ui
    app.go("guide", code=ITEM)
    drv.wait_screen("guide")
    rec = _print_and_read(drv, app, svc)
    drv.screenshot(drv.artifacts / "guide-printed.png")
    text = _flat(rec.text())
    item = svc.ctx.catalog.get(ITEM)
    cfg = svc.ctx.config
    assert "一次性告知单" in text and item.title in text and cfg.kiosk.station_name in text
    for c in item.conditions:
        assert c.replace(" ", "") in text.replace(" ", "")
    # each material with what replaces it: an e-licence, shared by departments, or bring it
    assert "本人身份证（必须）" in text and "可用电子证照代替（居民身份证）" in text
    assert "户口簿" in text and "免提交：部门间共享，不用带" in text
    assert "申请表（必须）" in text and "请带原件" in text
    assert f"【收费】{item.fee}" in text
    assert "承诺时限：" in text and "法定时限：" in text
    assert "工作人员在岗：周一至周五08:30-12:00、13:30-17:30" in text
    assert f"帮办代办电话：{cfg.kiosk.helper_phone}" in text
    assert rec.qr_data() == [item_page_url(cfg.kiosk.item_page_url, code=ITEM, region=cfg.kiosk.region_code)]
    assert "您这次还缺" not in text
    assert app.current == "guide"  # printing does not move the citizen on


def test_missing_material_stops_the_visit_with_a_slip_without_personal_data(ui):
    app, drv, svc = ui
    apps_before = _applications(svc)
    app.go("guide", code=ITEM)
    drv.tap("guide-start")
    drv.wait_screen("identify")
    svc.ctx.devices["idcard"].insert_card(None)
    drv.wait_until(lambda: drv.has("identify-next"), what="identified")
    drv.tap("identify-next")
    drv.wait_screen("form")
    form = app.screen("form")
    for _ in range(len(form.fields)):
        f = form.field
        if f["type"] == "choice":
            drv.tap("choice-0")
        elif f["type"] == "phone":
            drv.type_keys("13912345678")
        elif f["type"] == "number":
            drv.type_keys("1")
        drv.tap("form-next")
    drv.wait_screen("materials")
    assert app.screen("materials").names == ["申请表"]
    drv.tap("materials-missing")  # the citizen did not bring the 申请表
    drv.wait_screen("guide")
    gs = app.screen("guide")
    assert "申请表" in gs.print_message
    rec = _print_and_read(drv, app, svc)
    text = _flat(rec.text())
    assert "您这次还缺：申请表" in text and "备齐后带上本单再来办理" in text
    assert [n for n in _needles() if n in rec.text()] == []  # nothing about the citizen on paper
    drv.tap("guide-start")  # 结束办理: the visit ends here
    drv.wait_screen("home", timeout=10)
    svc.ctx.devices["idcard"].remove_card()
    assert svc.ctx.session.data.identity is None
    assert _applications(svc) == apps_before  # nothing was submitted
