"""The public real-estate query's rules: 不动产单元号 part by part, 不动产权证书号, 坐落 text."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.domain.real_estate import (
    UNIT_REASONS,
    InvalidPropertyQuery,
    format_unit_number,
    parse_property_query,
    validate_address,
    validate_certificate_number,
    validate_unit_number,
)

GOOD = "370306004002GB00123F00010502"
TODAY = dt.date(2026, 11, 30)


def _with(part: slice, text: str) -> str:
    return GOOD[:part.start] + text + GOOD[part.stop:]


def test_good_unit_numbers_in_print_and_typed_forms():
    assert validate_unit_number(GOOD) == GOOD
    assert validate_unit_number("370306 004002 GB00123 F00010502") == GOOD  # as printed on a certificate
    assert validate_unit_number("370306004002gb00123f00010502") == GOOD
    assert validate_unit_number("３７０３０６004002GB00123F00010502") == GOOD  # full-width digits from an IME
    assert validate_unit_number("370306101208JC00045F00010001")  # homestead on collective land
    assert validate_unit_number("370306005003GB00321W00000000")  # a parcel without buildings
    assert format_unit_number(GOOD) == "370306 004002 GB00123 F00010502"


@pytest.mark.parametrize("bad,reason", [
    (GOOD[:-1], "length"),
    (GOOD + "1", "length"),
    (_with(slice(10, 11), "*"), "charset"),
    (_with(slice(0, 6), "990306"), "division"),          # no province 99
    (_with(slice(0, 6), "370000"), "division"),          # a province, not a county
    (_with(slice(0, 6), "37A306"), "division"),
    (_with(slice(6, 12), "00400A"), "cadastral_zone"),
    (_with(slice(12, 14), "GQ"), "parcel_type"),          # no use Q
    (_with(slice(12, 14), "XB"), "parcel_type"),          # no owner X
    (_with(slice(12, 14), "GA"), "parcel_type"),          # 集体土地所有权宗地 only on collective land
    (_with(slice(12, 14), "GC"), "parcel_type"),          # 宅基地 only on collective land
    (_with(slice(12, 14), "12"), "parcel_type"),
    (_with(slice(14, 19), "00000"), "parcel_number"),
    (_with(slice(14, 19), "0012B"), "parcel_number"),
    (_with(slice(19, 20), "K"), "fixture_type"),
    (_with(slice(19, 20), "1"), "fixture_type"),
    (_with(slice(19, 28), "W00010502"), "fixture_unit"),  # no fixture, yet a unit number
    (_with(slice(19, 28), "F00000000"), "fixture_unit"),  # a building without a unit
    (_with(slice(19, 28), "F0001050A"), "fixture_unit"),
])
def test_each_wrong_part_has_its_own_reason(bad, reason):
    assert len(bad) == 28 or reason == "length"
    with pytest.raises(InvalidPropertyQuery) as e:
        validate_unit_number(bad)
    assert e.value.reason == reason and e.value.message == UNIT_REASONS[reason]
    assert bad not in e.value.message


@pytest.mark.parametrize("text", ["鲁(2021)淄博市周村区不动产权第0001234号", "鲁（2021）淄博市周村区不动产权第0001234号",
                                  " 鲁(2021) 淄博市周村区不动产权第0001234号 "])
def test_certificate_number_with_either_bracket_width(text):
    assert validate_certificate_number(text, TODAY) == "鲁(2021)淄博市周村区不动产权第0001234号"


@pytest.mark.parametrize("text,reason", [
    ("鲁2021淄博市周村区不动产权第0001234号", "cert_shape"),
    ("鲁(2021)淄博市周村区房权证第0001234号", "cert_shape"),
    ("X(2021)淄博市周村区不动产权第0001234号", "cert_province"),
    ("鲁(2009)淄博市周村区不动产权第0001234号", "cert_year"),
    ("鲁(2027)淄博市周村区不动产权第0001234号", "cert_year"),
    ("鲁(2021)Zibo不动产权第0001234号", "cert_place"),
    ("鲁(2021)淄博市周村区不动产权第001234号", "cert_serial"),
    ("鲁(2021)淄博市周村区不动产权第00012345号", "cert_serial"),
])
def test_wrong_certificate_numbers(text, reason):
    with pytest.raises(InvalidPropertyQuery) as e:
        validate_certificate_number(text, TODAY)
    assert e.value.reason == reason and e.value.message


def test_address_text():
    assert validate_address(" 丝绸路 168号 ") == "丝绸路168号"
    for text, reason in (("丝绸", "address_short"), ("路" * 61, "address_long"), ("丝绸路168号<script>", "address_chars"),
                         ("1680502", "address_short")):
        with pytest.raises(InvalidPropertyQuery) as e:
            validate_address(text)
        assert e.value.reason == reason


def test_which_search_a_text_is():
    assert parse_property_query("370306 004002 GB00123 F00010502").by == "unit_number"
    assert parse_property_query("鲁（2021）淄博市周村区不动产权第0001234号", today=TODAY).by == "certificate_number"
    assert parse_property_query("周村区丝绸路168号").by == "address"
    with pytest.raises(InvalidPropertyQuery) as e:
        parse_property_query("370306 004002 GB00123 F0001050")  # one digit short: a unit number, wrong
    assert e.value.reason == "length"
    assert parse_property_query("丝绸路168号", by="address").as_body() == {"by": "address", "value": "丝绸路168号"}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_text_is_a_query_or_a_reason(text):
    try:
        q = parse_property_query(text, today=TODAY)
    except InvalidPropertyQuery as e:
        assert e.message
        return
    assert q.by in ("unit_number", "certificate_number", "address") and q.value
