import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.domain.identity import (
    InvalidIdNumber,
    check_digit,
    mask_id_number,
    mask_name,
    mask_phone,
    validate_id_number,
)


def make(first17: str) -> str:
    return first17 + check_digit(first17)


@pytest.mark.parametrize("number,sex,birth", [
    ("11010519491231002X", "女", dt.date(1949, 12, 31)),
    ("11010519491231002x", "女", dt.date(1949, 12, 31)),
    ("34052419800101001X", "男", dt.date(1980, 1, 1)),
])
def test_valid_numbers_with_x_check_digit(number, sex, birth):
    info = validate_id_number(number)
    assert info.sex == sex and info.birth_date == birth
    assert info.region_code == number[:6]


def test_zhoucun_number():
    n = make("37030619560312002")
    info = validate_id_number(n)
    assert info.region_code == "370306" and info.sex == "女"


@pytest.mark.parametrize("number,reason", [
    ("3703061956031200", "length"),
    ("3703061956031200211", "length"),
    ("37030619560312A021", "charset"),
    ("X70306195603120021", "charset"),
    (make("00030619560312002"), "region"),
    (make("99030619560312002"), "region"),  # 9 then 90: not a province
    (make("37030619560230002"), "birthdate"),  # 30 Feb
    (make("37030621990101002"), "birthdate"),  # future
    ("340524198001010013", "checksum"),
])
def test_each_class_of_bad_number_has_its_reason(number, reason):
    with pytest.raises(InvalidIdNumber) as e:
        validate_id_number(number, today=dt.date(2026, 11, 27))
    assert e.value.reason == reason
    assert number not in str(e.value)  # exception text never carries the number


def test_2023_foreigner_number_uses_same_checksum():
    n = make("93750019800101123")
    info = validate_id_number(n)
    assert info.foreigner
    bad = n[:-1] + ("0" if n[-1] != "0" else "1")
    with pytest.raises(InvalidIdNumber) as e:
        validate_id_number(bad)
    assert e.value.reason == "checksum"


@given(st.text(max_size=30))
def test_arbitrary_text_is_valid_or_classified(s):
    try:
        validate_id_number(s)
    except InvalidIdNumber as e:
        assert e.reason in {"length", "charset", "region", "birthdate", "checksum"}


@given(st.from_regex(r"\A[0-9]{17}\Z"), st.integers(0, 16), st.integers(1, 9))
def test_single_digit_change_is_caught(first17, pos, delta):
    n = make(first17)
    changed = n[:pos] + str((int(n[pos]) + delta) % 10) + n[pos + 1:]
    with pytest.raises(InvalidIdNumber):
        validate_id_number(changed)


def test_masking_rule():
    assert mask_id_number("11010519491231002X") == "110***********002X"
    assert mask_name("张三丰") == "张**"
    assert mask_name("李四") == "李*"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_id_number("") == "" and mask_name(None) == ""


_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
_ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.mark.parametrize("table", [_FULL_WIDTH, _ARABIC_INDIC], ids=["full-width", "arabic-indic"])
def test_only_ascii_digits_are_accepted(table):
    good = make("37030619900101123")
    validate_id_number(good)  # the ASCII spelling of the same number is valid
    for foreign in (good.translate(table), good[:10] + good[10:].translate(table)):
        with pytest.raises(InvalidIdNumber) as e:
            validate_id_number(foreign)
        assert e.value.reason == "charset"
    # a wrong length spelled in foreign digits is still a charset problem
    for foreign in (good[:17].translate(table), good.translate(table) + "1"):
        with pytest.raises(InvalidIdNumber) as e:
            validate_id_number(foreign)
        assert e.value.reason == "charset"


@pytest.mark.parametrize("text", ["\u200b{}", "{}\u200b", "{}\u00ad", "Ｘ{}"])
def test_invisible_or_non_ascii_characters_are_a_charset_problem(text):
    good = make("37030619900101123")
    with pytest.raises(InvalidIdNumber) as e:
        validate_id_number(text.format(good[:17] if text.startswith("Ｘ") else good))
    assert e.value.reason == "charset"
    assert validate_id_number(f" {good}\n").region_code == "370306"  # surrounding whitespace is fine
