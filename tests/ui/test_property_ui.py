"""不动产登记信息查询 (issue 14 item 2) through the real UI: the platform simulator's register, the emulated printer.

Searched by each of the three ways the seed names (坐落, 不动产权证书号, 不动产单元号); a wrong unit
number is explained part by part; restrictions are shown; the owner never is, on screen or paper.
"""
from __future__ import annotations

import pytest

from kiosk.domain.real_estate import UNIT_REASONS

pytestmark = pytest.mark.ui

ITEM = "QHB-BDC-004"


def _owners() -> list[str]:
    from standins.real_estate_registry import UNITS

    return [u["owner"]["name"] for u in UNITS]


def _all_text(app) -> str:
    """Every label's text on every screen (not only the visible ones)."""
    from screens.widgets import walk

    return "\n".join(str(getattr(w, "text", "")) for w in walk(app.root.sm) if getattr(w, "text", ""))


def _open(drv, app) -> object:
    app.go("guide", code=ITEM)
    drv.wait_screen("guide")
    drv.tap("guide-start")
    drv.wait_screen("property")
    return app.screen("property")


def _search(drv, ps) -> None:
    drv.tap("property-search")
    drv.wait_until(lambda: ps.stage in ("results", "input") and ps.message != "正在查询，请稍候……"
                   and ps.stage != "searching", what="search answered", timeout=20)


def _type_address(drv, initials: str, number: str) -> None:
    drv.type_keys(initials)
    drv.tap("word-0")
    drv.tap("key-NUM")
    drv.type_keys(list(number) + ["号"])


def _flat(text: str) -> str:
    return "".join(line.strip() for line in text.splitlines())


def test_reached_from_search_without_identification_and_address_finds_several_units(ui):
    app, drv, svc = ui
    assert ITEM not in {it.code for it in svc.browse.items_of_flow("query_print")}  # not a certificate to print
    app.go("search")
    drv.wait_screen("search")
    drv.type_keys("bdcdjxxcx")
    drv.tap(f"item-{ITEM}")
    drv.wait_screen("guide")
    assert "查看自然状况和限制信息" in " ".join(app.screen("guide").view["steps"])
    drv.tap("guide-start")
    drv.wait_screen("property")  # no card, no face: a public query
    assert "identify" not in app.screen_log
    ps = app.screen("property")
    _type_address(drv, "scl", "168")
    assert ps.query_text() == "丝绸路168号"
    _search(drv, ps)
    assert ps.stage == "results" and ps.message == "查到 2 处不动产"
    text = _all_text(app)
    assert "淄博市周村区丝绸路168号3号楼2单元502室" in text and "淄博市周村区丝绸路168号3号楼1单元601室" in text
    assert "限制信息：抵押" in text and "限制信息：无限制" in text
    assert "房屋建筑面积：98.56平方米" in text and "用途：住宅" in text
    assert "权利类型：国有建设用地使用权/房屋所有权" in text
    assert [n for n in _owners() if n in text] == []
    drv.screenshot(drv.artifacts / "property-address-results.png")
    assert not svc.ctx.session.data.identity

    # 「打印查询单」: the query, what it found, the time and the note; no owner on paper either
    emu = svc.ctx.devices["printer"].emulator
    prn = svc.ctx.devices["printer"]
    drv.wait_until(lambda: prn.status.state.value == "ready", what="printer ready", timeout=30)
    before = len(emu.complete_receipts)
    drv.tap("property-print")
    drv.wait_until(lambda: "已打印" in ps.print_message, what="slip printed", timeout=30)
    assert emu.wait_for_receipts(before + 1, timeout=30)
    raw = emu.complete_receipts[before].text()
    text = _flat(raw)
    assert "不动产登记信息查询单" in text and "查询方式：坐落：丝绸路168号" in text
    assert "淄博市周村区丝绸路168号3号楼2单元502室" in text and "淄博市周村区丝绸路168号3号楼1单元601室" in text
    assert "抵押（2021-07-02登记，一般抵押）" in text and "无限制" in text
    assert "查询时间：" in text and "本查询结果仅供参考" in text
    assert [n for n in _owners() if n in raw] == []
    emu.set_status("paper-out")
    try:
        drv.wait_until(lambda: prn.status.state.value != "ready", what="printer out of paper", timeout=30)
        drv.tap("property-print")
        drv.wait_until(lambda: not ps.printing, what="print answered", timeout=30)
        assert ps.print_message.startswith("打印机缺纸")
    finally:
        emu.set_status("ok")
    drv.tap("property-done")
    drv.wait_screen("home", timeout=10)
    assert not svc.property.has_result()  # the answer went with the visit


def test_certificate_number_search(ui):
    app, drv, svc = ui
    ps = _open(drv, app)
    drv.tap("property-by-certificate")
    drv.type_keys("20190003356")
    assert ps.query_text() == "鲁(2019)淄博市周村区不动产权第0003356号"
    _search(drv, ps)
    text = _all_text(app)
    assert ps.stage == "results" and "淄博市周村区正阳路66号1号商铺" in text
    assert "限制信息：查封、异议" in text  # in the standard's order
    assert "• 异议（2025-10-09登记，异议登记15日内有效）" in text and "• 查封（2025-10-20登记，轮候查封）" in text
    assert "用途：商业" in text and [n for n in _owners() if n in text] == []


def test_wrong_unit_number_is_explained_part_by_part_then_the_restricted_unit_is_found(ui, monkeypatch):
    app, drv, svc = ui
    sent = []
    real = svc.ctx.platform.search_real_estate
    monkeypatch.setattr(svc.ctx.platform, "search_real_estate", lambda body: sent.append(body) or real(body))
    ps = _open(drv, app)
    drv.tap("property-by-unit")
    drv.type_keys("370306101208JC00045A00010001")  # 定着物特征码 A: not F, L, Q or W
    drv.tap("property-search")
    assert ps.stage == "input" and ps.error
    assert ps.message == UNIT_REASONS["fixture_type"]  # 第20位（定着物特征码）应为F、L、Q或W
    assert "[color=#A4161A][b]A[/b][/color]" in ps.shown  # the wrong part marked
    drv.screenshot(drv.artifacts / "property-wrong-unit.png")
    drv.type_keys(["DEL"] * 9)
    drv.tap("property-search")
    assert ps.message == UNIT_REASONS["length"]
    assert sent == []  # refused before anything was sent
    drv.type_keys("F00010001")
    _search(drv, ps)
    assert len(sent) == 1 and sent[0] == {"by": "unit_number", "value": "370306101208JC00045F00010001"}
    text = _all_text(app)
    assert ps.stage == "results" and "淄博市周村区王村镇西铺村中心街27号" in text
    assert "权利类型：宅基地使用权/房屋所有权" in text
    assert "限制信息：查封" in text and "淄博市周村区人民法院" in text
    assert [n for n in _owners() if n in text] == []
    drv.screenshot(drv.artifacts / "property-unit-restricted.png")


def test_nothing_found_and_platform_offline_say_what_to_do(ui):
    app, drv, svc = ui
    ps = _open(drv, app)
    _type_address(drv, "zyl", "99")
    assert ps.query_text() == "正阳路99号"
    _search(drv, ps)
    assert ps.stage == "results" and ps.error and ps.message.startswith("没有查到这处不动产")
    assert not drv.find("property-print", only_visible=False).disabled  # a slip saying nothing was found
    drv.tap("property-again")
    svc.wiring.simulator.options.mode = "outage"
    try:
        _search(drv, ps)
        assert ps.stage == "input" and ps.error
        assert "网络中断" in ps.message and "不动产登记中心窗口" in ps.message
    finally:
        svc.wiring.simulator.options.mode = "normal"


def test_layout_and_read_aloud_in_elderly_mode(ui):
    """The tightest case (test_accessibility walks the 坐落 keyboard in both modes at every window size):
    the other two keyboards, the digit pad and the results, in elderly mode."""
    from test_accessibility import violations

    from screens.read_aloud import screen_reading

    app, drv, svc = ui
    ps = _open(drv, app)
    app.toggle_elderly()
    try:
        for tab in ("property-by-certificate", "property-by-unit"):
            drv.tap(tab)
            drv.type_keys("3")
            assert violations(ps, "elderly") == [], tab
        drv.tap("property-by-address")
        drv.tap("key-NUM")
        assert violations(ps, "elderly") == [], "address digits"
        r = screen_reading(ps)
        assert r.title == "不动产登记信息查询" and "查询" in r.choices and "按证书号" in r.choices
        drv.tap("key-ABC")
        _type_address(drv, "scl", "168")
        _search(drv, ps)
        drv.pump(0.1)
        assert violations(ps, "elderly") == [], "results"
        r = screen_reading(ps)
        assert r.title == "不动产登记信息查询结果" and "打印查询单" in r.choices
        assert any("限制信息：抵押" in t for t in r.text), r.text
        drv.screenshot(drv.artifacts / "property-results-elderly.png")
    finally:
        if svc.mode.elderly:
            app.toggle_elderly()
