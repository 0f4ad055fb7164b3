"""E-licence QR codes (EL1:) in the payload classifier: recognised, refused when expired or malformed."""
from __future__ import annotations

import time

import pytest

from kiosk.domain.elicence import LICENCE_REASONS, parse_elicence_qr
from kiosk.domain.qr_payload import PayloadKind, PayloadRefused, QrClassifier, classify
from standins.licence_registry import make_licence_qr


def test_a_fresh_elicence_code_is_its_own_kind():
    text = make_licence_qr("ELZB0000000104")
    p = classify(text + "\r\n")
    assert p.kind == PayloadKind.ELICENCE and p.value == text
    assert parse_elicence_qr(p.value).licence_ref == "ELZB0000000104"


def test_an_expired_elicence_code_is_recognised_and_refused_with_its_reason():
    text = make_licence_qr("ELZB0000000104", now=time.time() - 3600)  # shown an hour ago (a screenshot)
    with pytest.raises(PayloadRefused) as e:
        classify(text)
    assert e.value.reason == "elicence_expired" and e.value.message == LICENCE_REASONS["elicence_expired"]
    # the same code was fine when it was shown
    assert QrClassifier().classify(text, now=time.time() - 3500).kind == PayloadKind.ELICENCE


@pytest.mark.parametrize("text", ["EL1:", "EL1:ELZB0000000104", "EL1:ELZB0000000104:12345:abcdefghijklmnopqr",
                                  "EL1:elzb0000000104:9999999999:abcdefghijklmnopqr",
                                  "EL1:ELZB0000000104:9999999999:short"])
def test_a_malformed_elicence_code_is_refused_not_taken_for_a_citizen_code(text):
    with pytest.raises(PayloadRefused) as e:
        classify(text)
    assert e.value.reason == "bad_elicence" and "电子证照" in e.value.message


def test_the_citizen_code_identifies_only_where_the_catalog_allows_it():
    from kiosk.domain.catalog import load_catalog
    from kiosk.domain.qr_payload import check_identification

    cat = load_catalog()
    by_sub = {it.sub_name: it for it in cat.items}
    code = classify("eyJhbGciOiJTTTIiLCJ0eXAiOiJKV1QifQ.eyJjdGlkIjoiMTIzNDU2Nzg5MCJ9.c2lnbmF0dXJl")
    assert code.kind == PayloadKind.CITIZEN_CODE
    assert check_identification(code, by_sub["无就业经历人员失业登记"]) is code
    assert check_identification(code, None) is code
    with pytest.raises(PayloadRefused) as e:
        check_identification(code, by_sub["社会保障卡密码重置"])  # the card itself must be in the reader
    assert e.value.reason == "citizen_code_not_allowed" and "身份证" in e.value.message
    with pytest.raises(PayloadRefused) as e:
        check_identification(classify(make_licence_qr("ELZB0000000101")), None)  # a licence is not an identity
    assert e.value.reason == "not_identification"
