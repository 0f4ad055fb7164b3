"""Payload classification in the core: kinds, refusals, and hypothesis robustness."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.config import DeviceSettings
from kiosk.domain.qr_payload import MAX_PAYLOAD_CHARS, PayloadKind, PayloadRefused, QrClassifier, classify
from kiosk.domain.tracking import is_tracking_no, new_tracking_no, qr_payload

TOKEN = "eyJhbGciOiJTTTIiLCJ0eXAiOiJKV1QifQ.eyJjdGlkIjoiMTIzNDU2Nzg5MCJ9.c2lnbmF0dXJl"


def test_tracking_code():
    tn = new_tracking_no("LQ", dt.date(2026, 11, 27))
    p = classify(qr_payload(tn))
    assert p.kind == PayloadKind.TRACKING and p.value == tn
    assert classify(qr_payload(tn) + "\r\n").value == tn  # scanner line ending


def test_tracking_prefix_with_bad_check_refused():
    tn = new_tracking_no("SD", dt.date(2026, 11, 27))
    broken = tn[:-1] + ("0" if tn[-1] != "0" else "1")
    with pytest.raises(PayloadRefused) as ei:
        classify(qr_payload(broken))
    assert ei.value.reason == "bad_tracking" and "办件编号" in ei.value.message


def test_citizen_code_token_is_opaque():
    p = classify(TOKEN)
    assert p.kind == PayloadKind.CITIZEN_CODE and p.value == TOKEN
    assert classify("short-token").kind == PayloadKind.UNRECOGNISED
    assert classify("A" * 2000).kind == PayloadKind.UNRECOGNISED  # too long for a token, not too long overall


@pytest.mark.parametrize("url", ["https://evil.example.com/pay", "http://zwfw.sd.gov.cn/x", "www.example.com",
                                 "javascript:alert(1)", "https://zwfw.sd.gov.cn@evil.com/",
                                 "https://zwfw.sd.gov.cn:8443/"])
def test_urls_refused_unless_allowed(url):
    c = QrClassifier(["zwfw.sd.gov.cn"])
    with pytest.raises(PayloadRefused) as ei:
        c.classify(url)
    assert ei.value.reason == "url_not_allowed" and "网址" in ei.value.message


def test_allowed_url_and_config_from_settings():
    s = DeviceSettings(driver="camera", url_allow_list=["zwfw.sd.gov.cn"])
    c = QrClassifier.from_settings(s)
    assert c.classify("https://zwfw.sd.gov.cn/item/1").kind == PayloadKind.URL
    assert c.classify("https://m.zwfw.sd.gov.cn/item/1").kind == PayloadKind.URL
    with pytest.raises(PayloadRefused):
        c.classify("https://notzwfw.sd.gov.cn.evil.com/")
    with pytest.raises(PayloadRefused):
        classify("https://zwfw.sd.gov.cn/item/1")  # no allow-list: every URL refused


@pytest.mark.parametrize("text,reason", [
    ("", "empty"), ("\r\n", "empty"), ("abc\x00def", "control_chars"), ("abc\x1b[2J", "control_chars"),
    ("abc\u202edef", "control_chars"), ("a\u200bb", "control_chars"), ("x" * (MAX_PAYLOAD_CHARS + 1), "too_long"),
    (b"\xff\xfe", "not_text"),
])
def test_refusals(text, reason):
    with pytest.raises(PayloadRefused) as ei:
        classify(text)
    assert ei.value.reason == reason and ei.value.message


def test_chinese_text_is_unrecognised_not_refused():
    assert classify("淄博市周村区便民服务中心").kind == PayloadKind.UNRECOGNISED


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=3000), st.binary(max_size=300)))
def test_random_input_never_crashes_nor_yields_what_it_should_not(text):
    try:
        p = classify(text)
    except PayloadRefused as e:
        assert e.reason in PayloadRefused.MESSAGES
        return
    assert p.kind != PayloadKind.URL  # no allow-list: never a URL
    assert len(p.value) <= MAX_PAYLOAD_CHARS
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in p.value)
    if p.kind == PayloadKind.TRACKING:
        assert is_tracking_no(p.value)


@settings(max_examples=300, deadline=None)
@given(st.integers(5, 21), st.characters(codec="ascii"))
def test_mutated_tracking_codes_never_classified_as_another_valid_code(pos, ch):
    tn = new_tracking_no("LQ", dt.date(2026, 11, 27))
    text = qr_payload(tn)
    mutated = text[:pos] + ch + text[pos + 1:]
    try:
        p = classify(mutated)
    except PayloadRefused:
        return
    if p.kind == PayloadKind.TRACKING:
        assert p.value == tn or p.value.upper() == tn  # a single change is caught by the check character
