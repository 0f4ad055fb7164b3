"""The 不动产登记信息查询单 (issue 14 item 2): public fields only, restrictions in the standard's order, paper widths."""
from __future__ import annotations

import pytest

from kiosk.domain.property_slip import (
    NO_RESTRICTION,
    SLIP_NOTE,
    PropertySlip,
    compose_property_slip,
    natural_state,
    query_text,
    unit_from_platform,
    unit_views,
    units_from_answer,
)
from kiosk.domain.receipt import Cut, Line, columns_for_paper, plain_text, text_width

SHOP = {
    "unit_number": "370306002001GB00567F00020101", "certificate_number": "鲁(2019)淄博市周村区不动产权第0003356号",
    "address": "淄博市周村区正阳路66号1号商铺", "area_m2": 56.2, "land_area_m2": 9.8, "use": "商业",
    "right_type": "国有建设用地使用权/房屋所有权", "right_nature": "出让/市场化商品房",
    "restrictions": [{"kind": "查封", "registered_on": "2025-10-20", "note": "轮候查封"},
                     {"kind": "异议", "registered_on": "2025-10-09", "note": "异议登记15日内有效"}],
    # a platform that sends more than it should: never read
    "owner": {"name": "王秀英", "id_number": "370306198001011234"}, "owner_name": "王秀英",
}
PARCEL = {
    "unit_number": "370306005003GB00321W00000000", "certificate_number": "鲁(2022)淄博市周村区不动产权第0011020号",
    "address": "淄博市周村区北郊镇工业园纬三路8号", "area_m2": None, "land_area_m2": 5320.0, "use": "工业用地",
    "right_type": "国有建设用地使用权", "right_nature": "出让", "restrictions": [],
}


def _slip(*units, paper_mm=58, by="address", value="正阳路66号") -> str:
    slip = PropertySlip(brand="齐好办", station="周村区城北路街道便民服务站", by=by, value=value,
                        units=tuple(unit_from_platform(u) for u in units), queried_at="2026-11-30 15:02",
                        as_of="2026-11-30 15:01")
    return plain_text(compose_property_slip(slip, paper_mm), paper_mm)


def _flat(text: str) -> str:
    return "".join(line.strip() for line in text.splitlines())


def test_the_owner_is_never_read_from_the_answer():
    unit = unit_from_platform(SHOP)
    assert "owner" not in {f for f in vars(unit)}
    text = _slip(SHOP) + repr(unit) + repr(unit_views([unit]))
    assert "王秀英" not in text and "370306198001011234" not in text


def test_restrictions_are_summarised_in_the_standard_order_with_date_and_note():
    unit = unit_from_platform(SHOP)
    assert unit.restricted and unit.restriction_summary() == "查封、异议"
    assert unit_from_platform({**SHOP, "restrictions": list(reversed(SHOP["restrictions"]))}
                              ).restriction_summary() == "查封、异议"
    view = unit_views([unit])[0]
    assert view["restrictions"] == ["查封（2025-10-20登记，轮候查封）", "异议（2025-10-09登记，异议登记15日内有效）"]
    free = unit_from_platform(PARCEL)
    assert not free.restricted and free.restriction_summary() == NO_RESTRICTION
    assert unit_views([free])[0]["restrictions"] == [NO_RESTRICTION]


def test_natural_state_shows_what_the_unit_has():
    shop = dict(natural_state(unit_from_platform(SHOP)))
    assert shop["坐落"] == "淄博市周村区正阳路66号1号商铺"
    assert shop["不动产单元号"] == "370306 002001 GB00567 F00020101"
    assert shop["房屋建筑面积"] == "56.2平方米" and shop["土地面积"] == "9.8平方米"
    assert shop["用途"] == "商业" and shop["权利类型"] == "国有建设用地使用权/房屋所有权"
    parcel = dict(natural_state(unit_from_platform(PARCEL)))
    assert "房屋建筑面积" not in parcel and parcel["土地面积"] == "5320平方米"  # a parcel without buildings
    no_cert = dict(natural_state(unit_from_platform({**PARCEL, "certificate_number": None})))
    assert no_cert["不动产权证书号"] == "未发证"


def test_malformed_values_do_not_reach_the_slip():
    unit = unit_from_platform({"unit_number": "X", "address": 5, "area_m2": "98", "land_area_m2": -1,
                               "restrictions": ["抵押", {"kind": 3}]})
    assert unit.address == "" and unit.area_m2 is None and unit.land_area_m2 is None
    assert [r.kind for r in unit.restrictions] == ["限制"]
    assert units_from_answer({"results": [SHOP, "junk"]}) == (unit_from_platform(SHOP),)
    assert units_from_answer({}) == ()


@pytest.mark.parametrize("paper_mm", [58, 80])
def test_slip_has_query_results_time_and_note_and_fits_the_paper(paper_mm):
    text = _slip(SHOP, PARCEL, paper_mm=paper_mm)
    flat = _flat(text)
    assert "不动产登记信息查询单" in flat and "查询方式：坐落：正阳路66号" in flat
    assert "查询时间：2026-11-30 15:02" in flat and "登记信息截至：2026-11-30 15:01" in flat
    assert "查询结果：2 个不动产单元" in flat and "【第1个】" in flat and "【第2个】" in flat
    assert "淄博市周村区正阳路66号1号商铺" in flat and "淄博市周村区北郊镇工业园纬三路8号" in flat
    assert "查封（2025-10-20登记，轮候查封）" in flat and "•无限制" in flat.replace(" ", "")
    assert _flat(SLIP_NOTE) in flat and "本查询结果仅供参考" in flat
    cols = columns_for_paper(paper_mm)
    assert all(text_width(line) <= cols for line in text.splitlines())


def test_slip_for_nothing_found_and_by_unit_number():
    flat = _flat(_slip(by="unit_number", value="370306004002GB00123F00010999"))
    assert "查询方式：不动产单元号：370306004002GB00123F00010999" in flat.replace(" ", "")
    assert "370306 004002 GB00123 F00010999" in " ".join(_slip(by="unit_number", value="370306004002GB00123F00010999",
                                                               paper_mm=80).split())
    assert "查询结果：没有查到" in flat and "【自然状况】" not in flat
    assert query_text("certificate_number", "鲁(2021)淄博市周村区不动产权第0001234号") == \
        "不动产权证书号：鲁(2021)淄博市周村区不动产权第0001234号"


def test_restricted_lines_are_bold_and_the_slip_is_cut():
    slip = PropertySlip(brand="齐好办", station="站", by="address", value="正阳路66号",
                        units=(unit_from_platform(SHOP),), queried_at="2026-11-30 15:02")
    blocks = compose_property_slip(slip)
    assert isinstance(blocks[-1], Cut)
    restriction_lines = [b for b in blocks if isinstance(b, Line) and b.text.startswith("• ")]
    assert len(restriction_lines) == 2 and all(b.bold for b in restriction_lines)
    assert not any(isinstance(b, Line) and "登记信息截至" in b.text for b in blocks)  # no as_of given
