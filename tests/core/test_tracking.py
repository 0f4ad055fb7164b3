import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from kiosk.domain.tracking import (
    ALPHABET,
    is_tracking_no,
    new_tracking_no,
    parse_qr_payload,
    qr_payload,
    tracking_origin,
)


def test_new_numbers_validate_and_carry_origin():
    t = new_tracking_no("LQ", today=dt.date(2026, 11, 27))
    assert t.startswith("LQ261127") and len(t) == 17
    assert is_tracking_no(t) and tracking_origin(t) == "local"
    assert tracking_origin(new_tracking_no("SD")) == "platform"


@given(st.integers(0, 15), st.sampled_from(list(ALPHABET)))
def test_any_single_substitution_is_detected(pos, ch):
    t = new_tracking_no("LQ")
    if t[pos] == ch:
        return
    assert not is_tracking_no(t[:pos] + ch + t[pos + 1:])


def test_adjacent_transpositions_are_detected():
    t = new_tracking_no("SD")
    for i in range(8, 15):
        if t[i] != t[i + 1]:
            assert not is_tracking_no(t[:i] + t[i + 1] + t[i] + t[i + 2:])


def test_qr_round_trip_and_foreign_payloads():
    t = new_tracking_no()
    assert parse_qr_payload(qr_payload(t)) == t
    assert parse_qr_payload(t) is None
    assert parse_qr_payload("QHB1:" + t[:-1] + "0" if t[-1] != "0" else "QHB1:" + t[:-1] + "1") is None
    assert parse_qr_payload("https://example.com") is None
