"""The 256-byte text block: three layouts, validation, refusals, and the IdentityCard model."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.idcard.text_block import (
    CardRefused,
    MalformedText,
    UnsupportedCard,
    check_card_usable,
    encode_text_block,
    parse_text_block,
)
from kiosk.domain.identity_card import NATIONS, IdentityCard, nation_name
from standins.sam_emulator import sample_card, sample_id_number

TODAY = dt.date(2026, 11, 27)


def test_nation_table_complete():
    assert len(NATIONS) == 58 and nation_name("46") == "德昂" and nation_name("1") == "汉"
    assert NATIONS["56"] == "基诺" and NATIONS["97"] == "其他" and NATIONS["98"] == "外国血统中国籍人士"


def test_resident_roundtrip_and_fields():
    card = sample_card(nation="德昂", sex="女", id_number=sample_id_number(seq="124"), valid_to=None)
    block = encode_text_block(card)
    assert block[30:32].decode("utf-16-le") == "2" and block[32:36].decode("utf-16-le") == "46"
    assert block[204:208].decode("utf-16-le") == "长期"
    got = parse_text_block(block, card.photo_wlt, today=TODAY)
    assert got == card and got.valid_to is None and not got.is_expired(dt.date(2999, 1, 1))
    assert got.nation == "德昂" and got.sex == "女"


def test_published_example_number_parses():
    card = sample_card(id_number="11010519491231002X", birth_date=dt.date(1949, 12, 31), sex="女")
    assert parse_text_block(encode_text_block(card), today=TODAY).id_number == "11010519491231002X"


def test_hmt_permit_layout():
    num17 = "81000019900101123"
    from kiosk.domain.identity import check_digit
    card = sample_card(card_type="hmt_permit", nation="", id_number=num17 + check_digit(num17),
                       pass_number="H12345678", issue_count="01", address="山东省淄博市张店区")
    got = parse_text_block(encode_text_block(card), today=TODAY)
    assert got.card_type == "hmt_permit" and got.pass_number == "H12345678" and got.issue_count == "01"
    assert got.card_type_name == "港澳台居民居住证"
    # J layout with a resident number is refused as malformed
    bad = sample_card(card_type="hmt_permit", nation="", pass_number="H1", issue_count="01")
    with pytest.raises(MalformedText):
        parse_text_block(encode_text_block(bad), today=TODAY)


def test_foreigner_layout():
    card = IdentityCard(name="约翰", sex="男", nation="", birth_date=dt.date(1980, 5, 6), address="",
                        id_number="USA370080050601", authority="1500", valid_from=dt.date(2020, 1, 1),
                        valid_to=dt.date(2030, 1, 1), card_type="foreigner", english_name="SMITH, JOHN",
                        nationality="USA", card_version="20")
    block = encode_text_block(card)
    assert block[248:250].decode("utf-16-le") == "I"
    got = parse_text_block(block, today=TODAY)
    assert got == card and got.masked()["english_name"].startswith("S*")


def test_unknown_card_type_refused_clearly():
    block = bytearray(encode_text_block(sample_card()))
    block[248:250] = "Z".encode("utf-16-le")
    with pytest.raises(UnsupportedCard) as ei:
        parse_text_block(bytes(block), today=TODAY)
    assert "人工窗口" in ei.value.message


@pytest.mark.parametrize("mutate", [
    lambda c: c.__setattr__("id_number", "340524198001010013"),  # bad check digit
    lambda c: c.__setattr__("birth_date", dt.date(1990, 1, 2)),  # differs from number
])
def test_invalid_content_is_malformed(mutate):
    c = sample_card()
    mutate(c)
    with pytest.raises(MalformedText):
        parse_text_block(encode_text_block(c), today=TODAY)


def test_bad_nation_and_length():
    with pytest.raises(MalformedText):
        parse_text_block(encode_text_block(sample_card(), nation_code="77"), today=TODAY)
    with pytest.raises(MalformedText):
        parse_text_block(b"\x00" * 255)


def test_expired_card_refused_with_citizen_message():
    card = sample_card(valid_to=dt.date(2025, 1, 1))
    assert card.is_expired(TODAY) and not card.is_expired(dt.date(2025, 1, 1))
    with pytest.raises(CardRefused) as ei:
        check_card_usable(card, TODAY)
    assert ei.value.code == "card_expired" and "有效期" in ei.value.message
    check_card_usable(sample_card(), TODAY)


def test_masking_repr_and_wipe():
    card = sample_card()
    m = card.masked()
    assert card.name not in str(m) and card.id_number not in str(m) and card.address not in str(m)
    assert card.name not in repr(card) and card.id_number not in repr(card)
    assert card.unmasked()["id_number"] == card.id_number
    card.wipe()
    assert card.name == "" and card.id_number == "" and card.photo_wlt == b"" and card.address == ""


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=256, max_size=256))
def test_random_blocks_never_crash_and_never_yield_an_invalid_card(block):
    try:
        card = parse_text_block(block, today=TODAY)
    except (MalformedText, UnsupportedCard):
        return
    from kiosk.domain.identity import is_valid_id_number
    assert card.card_type == "foreigner" or is_valid_id_number(card.id_number)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 255), st.integers(1, 255))
def test_mutated_blocks_are_parsed_or_refused(pos, flip):
    block = bytearray(encode_text_block(sample_card()))
    block[pos] ^= flip
    try:
        card = parse_text_block(bytes(block), today=TODAY)
    except (MalformedText, UnsupportedCard):
        return
    from kiosk.domain.identity import is_valid_id_number
    assert is_valid_id_number(card.id_number) or card.card_type == "foreigner"


@pytest.mark.parametrize("digits", ["０１２３４５６７８９", "٠١٢٣٤٥٦٧٨٩"])
def test_a_date_in_non_ascii_digits_is_malformed(digits):
    """A card stores ASCII digits; full-width or Arabic-Indic ones mean a corrupt or forged block."""
    c = sample_card()
    block = encode_text_block(c)
    plain = c.birth_date.strftime("%Y%m%d")
    odd = plain.translate(str.maketrans("0123456789", digits))
    assert plain.encode("utf-16-le") in block
    with pytest.raises(MalformedText):
        parse_text_block(block.replace(plain.encode("utf-16-le"), odd.encode("utf-16-le"), 1), today=TODAY)
