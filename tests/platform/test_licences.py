"""E-licences (issue 14 item 1): the client against `kiosk platform-sim` in its own process.

Each refusal comes back as LicenceRefused with its plain reason code; a fetched licence has what
the materials screen needs (reference, type, holder, number, validity).
"""
from __future__ import annotations

import time

import pytest

from kiosk.domain.elicence import LICENCE_REASONS, parse_elicence_qr
from kiosk.platform.client import PlatformClient
from kiosk.ports.platform import LICENCE_REFUSALS, LicenceRefused, PermanentError
from standins.licence_registry import PEOPLE, make_licence_qr


@pytest.fixture
def pc(sim_proc, creds):
    c = PlatformClient(sim_proc.url, creds.kiosk_id, creds.secret, read_timeout=10)
    yield c
    c.close()


def _holder(who: str) -> dict:
    return {"id_type": "resident_id", "id_number": PEOPLE[who]["id_number"]}


def _by_type(who: str, licence_type: str, **kw) -> dict:
    return {"method": "holder", "licence_type": licence_type, "holder": _holder(who), "consent": True, **kw}


def _by_qr(who: str, payload: str) -> dict:
    return {"method": "qr", "qr_payload": payload, "holder": _holder(who), "consent": True}


def test_fetch_by_type_for_the_identified_citizen(pc):
    lic = pc.fetch_licence(_by_type("zhang", "household_register", item_code="QHB-MZ-001"))
    assert lic["licence_type"] == "household_register" and lic["licence_name"] == "居民户口簿"
    assert lic["licence_ref"].startswith("EL") and lic["number"]
    assert lic["holder"]["id_number"] == PEOPLE["zhang"]["id_number"] and lic["holder"]["name"] == "张桂兰"
    assert lic["valid_from"] == "2016-09-01" and lic["valid_until"] is None and lic["status"] == "valid"


def test_fetch_by_scanned_qr(pc):
    payload = make_licence_qr("ELZB0000000104")
    assert parse_elicence_qr(payload).licence_ref == "ELZB0000000104"  # the kiosk recognises what the app shows
    lic = pc.fetch_licence(_by_qr("zhang", payload))
    assert lic["licence_type"] == "real_estate_certificate"
    assert lic["number"] == "鲁(2021)淄博市周村区不动产权第0001234号"


@pytest.mark.parametrize("make_body,reason,status", [
    (lambda: _by_type("zhang", "business_licence"), "unknown_licence", 404),      # she has none
    (lambda: _by_qr("zhang", "EL1:ELZB0000000999:9999999999:AAAAAAAAAAAAAAAAAAAAAAAA"), "unknown_licence", 404),
    (lambda: _by_type("li", "disability_certificate"), "expired", 422),          # valid until 2025-03-31
    (lambda: _by_type("li", "driving_licence"), "revoked", 422),
    (lambda: _by_qr("li", make_licence_qr("ELZB0000000104")), "not_holder", 403),  # zhang's certificate shown by li
    (lambda: _by_qr("wang", make_licence_qr("ELZB0000000302")), "revoked", 422),
    (lambda: _by_qr("zhang", make_licence_qr("ELZB0000000104", now=time.time() - 3600)), "qr_expired", 422),
    (lambda: _by_type("zhang", "household_register", consent=False), "consent_required", 422),
])
def test_each_refusal_has_its_own_plain_reason(pc, make_body, reason, status):
    # bodies are built when the test runs: a licence QR carries its time and expires a few minutes after
    with pytest.raises(LicenceRefused) as e:
        pc.fetch_licence(make_body())
    assert e.value.code == reason and e.value.status == status
    assert reason in LICENCE_REFUSALS and LICENCE_REASONS[reason]
    # the refusal never carries the citizen's number
    assert PEOPLE["zhang"]["id_number"] not in str(e.value) + e.value.reason()


def test_someone_elses_licence_is_refused_before_its_state_is_told(pc):
    # wang's marriage certificate is revoked; shown by zhang it is "not yours", not "revoked"
    with pytest.raises(LicenceRefused) as e:
        pc.fetch_licence(_by_qr("zhang", make_licence_qr("ELZB0000000302")))
    assert e.value.code == "not_holder"


def test_malformed_requests_are_validation_errors_not_licence_refusals(pc):
    with pytest.raises(PermanentError) as e:
        pc.fetch_licence({"method": "photo", "holder": _holder("zhang"), "consent": True})
    assert not isinstance(e.value, LicenceRefused)
    assert e.value.code == "validation_failed" and "method" in e.value.errors
    with pytest.raises(PermanentError) as e:
        pc.fetch_licence({"method": "holder", "licence_type": "library_card", "holder": _holder("zhang"),
                          "consent": True})
    assert "licence_type" in e.value.errors


def test_an_application_carries_the_licence_reference_instead_of_a_photo(pc, creds):
    import random

    from tests.platform.samples import application_body

    lic = pc.fetch_licence(_by_type("zhang", "household_register"))
    body = application_body(creds.kiosk_id, rng=random.Random(71))
    body["licences"] = [{"licence_ref": lic["licence_ref"], "licence_type": "household_register", "material": "户口簿"}]
    assert pc.submit_application(body, "key-licence-0001")["tracking_no"]
    for bad, field in (([{"licence_ref": "ELZB0000000999"}], "licences.0"),
                       ([{"licence_ref": "ELZB0000000204"}], "licences.0"),  # revoked
                       ([{"licence_ref": lic["licence_ref"], "licence_type": "marriage_certificate"}], "licences.0"),
                       ("ELZB0000000101", "licences")):
        with pytest.raises(PermanentError) as e:
            pc.submit_application({**body, "licences": bad}, f"key-licence-{field}-{len(str(bad)):04d}")
        assert e.value.status == 422 and field in e.value.errors
