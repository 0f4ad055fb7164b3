"""The public real-estate query (issue 14 item 2) against `kiosk platform-sim` in its own process."""
from __future__ import annotations

import json

import pytest

from kiosk.domain.real_estate import RESTRICTION_KINDS, UNIT_REASONS, parse_property_query
from kiosk.platform.client import PlatformClient
from kiosk.ports.platform import PermanentError
from standins.real_estate_registry import UNITS


@pytest.fixture
def pc(sim_proc, creds):
    c = PlatformClient(sim_proc.url, creds.kiosk_id, creds.secret, read_timeout=10)
    yield c
    c.close()


def _search(pc, text, by=None):
    return pc.search_real_estate(parse_property_query(text, by=by).as_body())


def test_by_address_text_finds_the_building_without_owners(pc):
    res = _search(pc, "丝绸路168号")
    assert res["by"] == "address" and res["as_of"]
    units = {u["unit_number"] for u in res["results"]}
    assert units == {"370306004002GB00123F00010502", "370306004002GB00123F00010601"}
    text = json.dumps(res, ensure_ascii=False)
    for u in UNITS:  # the register's owners never leave the platform
        assert u["owner"]["name"] not in text
    for unit in res["results"]:
        assert "owner" not in unit and {"address", "area_m2", "use", "right_type", "restrictions"} <= set(unit)


def test_by_certificate_number_with_full_width_brackets(pc):
    res = _search(pc, "鲁（2021）淄博市周村区不动产权第0001234号")
    [unit] = res["results"]
    assert unit["address"] == "淄博市周村区丝绸路168号3号楼2单元502室" and unit["area_m2"] == 98.56
    assert unit["use"] == "住宅" and unit["right_type"] == "国有建设用地使用权/房屋所有权"
    assert [r["kind"] for r in unit["restrictions"]] == ["抵押"] and unit["restricted"]


def test_by_unit_number_as_printed(pc):
    [unit] = _search(pc, "370306 002001 GB00567 F00020101")["results"]
    assert {r["kind"] for r in unit["restrictions"]} == {"异议", "查封"}
    assert unit["unit_number_display"] == "370306 002001 GB00567 F00020101"


def test_every_restriction_kind_occurs_in_the_data_set(pc):
    kinds = set()
    for u in UNITS:
        [unit] = _search(pc, u["unit_number"])["results"]
        kinds |= {r["kind"] for r in unit["restrictions"]}
    assert kinds == set(RESTRICTION_KINDS)


def test_nothing_found_is_an_empty_list(pc):
    assert _search(pc, "370306004002GB00123F00019999")["results"] == []
    assert _search(pc, "周村区不存在路1号")["results"] == []


@pytest.mark.parametrize("value,reason", [
    ("370306004002GB00123F0001050", "length"),
    ("370306004002GQ00123F00010502", "parcel_type"),
    ("370306004002GB00000F00010502", "parcel_number"),
    ("370306004002GB00123K00010502", "fixture_type"),
    ("370306004002GB00123W00010502", "fixture_unit"),
    ("990306004002GB00123F00010502", "division"),
])
def test_a_wrong_unit_number_is_refused_naming_the_part(pc, value, reason):
    with pytest.raises(PermanentError) as e:
        pc.search_real_estate({"by": "unit_number", "value": value})
    assert e.value.status == 422 and e.value.code == "validation_failed"
    assert e.value.errors["value"] == UNIT_REASONS[reason]


def test_a_malformed_request(pc):
    with pytest.raises(PermanentError) as e:
        pc.search_real_estate({"by": "owner_name", "value": "张桂兰"})
    assert "by" in e.value.errors
