"""The simulator speaks the contract: idempotency, validation, signatures, progress, flows, fault modes."""
from __future__ import annotations

import hashlib
import json
import random
import time

import pytest
import requests

from kiosk.domain.tracking import is_tracking_no
from kiosk.platform import signing
from kiosk.platform.client import PermanentError, PlatformClient, RetryableError
from standins.platform_sim import make_ctid_token, start_in_thread
from tests.platform.samples import application_body


def stats(sim) -> dict:
    return requests.get(sim.url + "/__sim/stats", timeout=5).json()


def test_same_key_returns_the_first_answer_and_counts_a_suppressed_duplicate(sim, client, creds):
    body = application_body(creds.kiosk_id, rng=random.Random(1))
    first = client.submit_application(body, "key-same-0001")
    again = client.submit_application(body, "key-same-0001")
    assert is_tracking_no(first["tracking_no"]) and first["tracking_no"].startswith("SD")
    assert again["tracking_no"] == first["tracking_no"] and again["replayed"] and not first["replayed"]
    s = stats(sim)
    assert s["accepted"] == 1 and s["duplicates_suppressed"] == 1


def test_same_key_different_body_is_409_with_its_own_code(sim, client, creds):
    body = application_body(creds.kiosk_id, rng=random.Random(2))
    client.submit_application(body, "key-conflict-01")
    with pytest.raises(PermanentError) as e:
        client.submit_application({**body, "form": {**body["form"], "address": "别处"}}, "key-conflict-01")
    assert e.value.status == 409 and e.value.code == "idempotency_key_reused"
    assert stats(sim)["accepted"] == 1


def test_validation_is_422_problem_json_with_per_field_messages(sim, client, creds):
    body = application_body(creds.kiosk_id, rng=random.Random(3))
    body["applicant"]["id_number"] = body["applicant"]["id_number"][:-1] + ("0" if body["applicant"]["id_number"][-1] != "0" else "1")
    body["applicant"]["phone"] = "12345"
    body["form"]["education"] = "博士后"
    with pytest.raises(PermanentError) as e:
        client.submit_application(body, "key-invalid-01")
    err = e.value
    assert err.status == 422 and err.code == "validation_failed"
    assert set(err.errors) >= {"applicant.id_number", "applicant.phone", "form.education"}
    assert "校验位" in err.errors["applicant.id_number"]
    # the platform's messages never echo the values back
    assert body["applicant"]["id_number"] not in err.reason()
    assert stats(sim)["rejected"] == 1 and stats(sim)["accepted"] == 0


def test_unknown_item_and_missing_material_are_refused(client, creds):
    body = application_body(creds.kiosk_id, rng=random.Random(4))
    with pytest.raises(PermanentError) as e:
        client.submit_application({**body, "item_code": "QHB-XX-999"}, "key-unknown-01")
    assert "item_code" in e.value.errors
    with pytest.raises(PermanentError) as e:
        client.submit_application({**body, "materials": ["a" * 64]}, "key-missing-01")
    assert "materials" in e.value.errors
    with pytest.raises(PermanentError) as e:
        client.submit_application({**body, "impl_code": "3703000000000-X"}, "key-impl-0001")
    assert "impl_code" in e.value.errors
    from kiosk.domain.catalog import load_catalog
    impl = load_catalog().get(body["item_code"]).implementation_code
    assert client.submit_application({**body, "impl_code": impl}, "key-impl-0002")["tracking_no"]


def test_material_upload_is_content_addressed_and_checked(client, sim):
    data = b"\x89PNG fake scan" * 50
    sha = hashlib.sha256(data).hexdigest()
    assert client.put_material(sha, data)["size"] == len(data)
    assert client.put_material(sha, data)["sha256"] == sha  # retry is harmless
    with pytest.raises(PermanentError) as e:
        client.put_material("0" * 64, data)
    assert e.value.code == "hash_mismatch"


def _raw(sim, creds, method, path, body=b"", **sign_kw):
    hdr = signing.sign_headers(creds.kiosk_id, creds.secret, method, path, body, **sign_kw)
    return hdr, requests.request(method, sim.url + path, data=body, headers=hdr, timeout=5)


def test_bad_signature_replayed_nonce_and_skew_are_401_and_counted(sim, creds):
    hdr, r = _raw(sim, creds, "GET", "/v1/catalog")
    assert r.status_code == 200
    r2 = requests.get(sim.url + "/v1/catalog", headers=hdr, timeout=5)  # same nonce again
    assert r2.status_code == 401 and r2.json()["code"] == "nonce_replayed"
    assert r2.headers["Content-Type"].startswith("application/problem+json")
    bad = {**signing.sign_headers(creds.kiosk_id, creds.secret, "GET", "/v1/catalog", b""), signing.H_SIGNATURE: "00" * 32}
    assert requests.get(sim.url + "/v1/catalog", headers=bad, timeout=5).json()["code"] == "bad_signature"
    _, r3 = _raw(sim, creds, "GET", "/v1/catalog", timestamp=int(time.time()) - 600)
    assert r3.status_code == 401 and r3.json()["code"] == "clock_skew"
    assert stats(sim)["bad_signatures"] == 3


def test_sha256_signatures_are_accepted_too(sim, creds):
    c = PlatformClient(sim.url, creds.kiosk_id, creds.secret, alg="hmac-sha256")
    etag, cat = c.get_catalog()
    assert cat["items"] and etag


def test_catalog_etag(client):
    etag, cat = client.get_catalog()
    assert any(i["code"] == "QHB-RS-001" for i in cat["items"])
    assert client.get_catalog(etag) == (etag, None)


def test_progress_moves_with_time_and_is_found_by_applicant(sim, client, creds):
    body = application_body(creds.kiosk_id, rng=random.Random(5))
    tn = client.submit_application(body, "key-progress-1")["tracking_no"]
    assert client.get_application(tn)["status"] == "received"
    requests.post(sim.url + "/__sim/advance", json={"seconds": 31}, timeout=5)
    assert client.get_application(tn)["status"] == "accepted"
    requests.post(sim.url + "/__sim/advance", json={"seconds": 60}, timeout=5)
    final = client.get_application(tn)
    assert final["status"] in ("done", "returned") and [h["status"] for h in final["history"]][:3] == [
        "received", "accepted", "in_review"]
    if final["status"] == "returned":
        assert final["reason"]
    found = client.search_applications("resident_id", body["applicant"]["id_number"])
    assert [a["tracking_no"] for a in found] == [tn]
    assert client.get_application(body["local_tracking_no"])["tracking_no"] == tn
    with pytest.raises(PermanentError) as e:
        client.get_application("SD000000000000000")
    assert e.value.status == 404


def test_evaluation_levels_and_reason_rule(client, creds):
    body = application_body(creds.kiosk_id, rng=random.Random(6))
    tn = client.submit_application(body, "key-eval-0001")["tracking_no"]
    base = {"tracking_no": tn, "kiosk_id": creds.kiosk_id, "created_at": "2026-11-27T10:00:00+08:00"}
    with pytest.raises(PermanentError) as e:
        client.submit_evaluation({**base, "level": "非常不满意"}, "ev-key-0001")
    assert "reason" in e.value.errors
    r = client.submit_evaluation({**base, "level": "不满意", "reason": "等待时间长"}, "ev-key-0002")
    assert r["follow_up"] is True
    other = client.submit_application(application_body(creds.kiosk_id, rng=random.Random(66)), "key-eval-0002")
    assert client.submit_evaluation({**base, "tracking_no": other["tracking_no"], "level": "非常满意"},
                                    "ev-key-0003")["follow_up"] is False  # one evaluation per case
    with pytest.raises(PermanentError) as e:
        client.submit_evaluation({**base, "level": "还行"}, "ev-key-0004")
    assert "level" in e.value.errors
    with pytest.raises(PermanentError) as e:
        client.submit_evaluation({**base, "tracking_no": "SD261127AAAAAAAA0", "level": "满意"}, "ev-key-0005")
    assert e.value.status == 404


def test_identity_certificate_and_payment_flows(sim, client, creds):
    token = make_ctid_token("resident_id", "11010519491231002X", "张三丰")
    v = client.verify_identity({"method": "ctid_qr", "token": token})
    assert v["verified"] and v["identity"]["name"] == "张三丰"
    stale = make_ctid_token("resident_id", "11010519491231002X", "张三丰", ts=time.time() - 600)
    r = client.verify_identity({"method": "ctid_qr", "token": stale})
    assert r["verified"] is False and "过期" in r["reason"]
    import base64
    face = client.verify_identity({"method": "card_face", "id_type": "resident_id", "id_number": "11010519491231002X",
                                   "name": "张三丰", "face_photo": base64.b64encode(b"\xff\xd8 jpeg" * 10).decode()})
    assert face["verified"]
    cert = client.get_certificate("social_insurance_record", v["identity_token"])
    assert cert["lines"] and "11010519491231002X" not in json.dumps(cert, ensure_ascii=False)
    with pytest.raises(PermanentError) as e:
        client.get_certificate("social_insurance_record", "ITnotatoken")
    assert e.value.status == 403
    p = client.create_payment({"item_code": "QHB-RS-001", "kiosk_id": creds.kiosk_id}, "pay-key-0001")
    assert p["status"] == "unpaid" and p["amount_cents"] > 0 and p["qr_payload"]
    assert client.create_payment({"item_code": "QHB-RS-001", "kiosk_id": creds.kiosk_id}, "pay-key-0001")["payment_id"] == p["payment_id"]
    requests.post(f"{sim.url}/__sim/payments/{p['payment_id']}/pay", timeout=5)
    assert client.get_payment(p["payment_id"])["status"] == "paid"


def test_help_request_and_home_visit(client, creds):
    now = "2026-11-27T10:00:00+08:00"
    r = client.submit_help_request({"topic": "养老保险", "contact": {"name": "李四", "phone": "13912345678"},
                                    "kiosk_id": creds.kiosk_id, "created_at": now}, "help-key-0001")
    assert r["status"] == "received"
    body = application_body(creds.kiosk_id, rng=random.Random(7))
    r = client.book_home_visit({"applicant": body["applicant"], "address": "周村区某村", "preferred_date": "2026-12-01",
                                "kiosk_id": creds.kiosk_id, "created_at": now}, "visit-key-001")
    assert r["status"] == "scheduled"
    with pytest.raises(PermanentError) as e:
        client.submit_help_request({"topic": "x", "contact": {"name": "李四", "phone": "1"}, "kiosk_id": creds.kiosk_id,
                                    "created_at": now}, "help-key-0002")
    assert "contact.phone" in e.value.errors


@pytest.mark.parametrize("mode", ["outage", "flaky", "garbage", "accept-then-drop"])
def test_fault_modes_end_in_retryable_errors_and_never_double_accept(tmp_path, creds, mode):
    h = start_in_thread(tmp_path / mode, mode=mode, fail_rate=1.0, seed=7)
    try:
        c = PlatformClient(h.url, creds.kiosk_id, creds.secret, read_timeout=5)
        body = application_body(creds.kiosk_id, rng=random.Random(8))
        for _ in range(4):
            with pytest.raises(RetryableError) as e:
                c.submit_application(body, "key-fault-0001")
            if mode == "outage":
                assert e.value.status == 503 and e.value.retry_after == 1.0
        assert stats(h)["accepted"] == (0 if mode in ("outage", "flaky") else 1)
        h.options.mode = "normal"
        tn = c.submit_application(body, "key-fault-0001")["tracking_no"]
        assert c.get_application(tn)["tracking_no"] == tn
        assert stats(h)["accepted"] == 1
    finally:
        h.stop()


def test_slow_mode_times_out_after_committing(tmp_path, creds):
    h = start_in_thread(tmp_path / "slow", mode="slow", latency_ms=1500)
    try:
        c = PlatformClient(h.url, creds.kiosk_id, creds.secret, read_timeout=0.3)
        body = application_body(creds.kiosk_id, rng=random.Random(9))
        with pytest.raises(RetryableError) as e:
            c.submit_application(body, "key-slow-00001")
        assert e.value.code == "timeout"
        h.options.mode, h.options.latency_ms = "normal", 0
        assert c.submit_application(body, "key-slow-00001")["replayed"] is True
        assert stats(h)["accepted"] == 1
    finally:
        h.stop()


def test_state_survives_a_restart(tmp_path, creds):
    h = start_in_thread(tmp_path / "s")
    body = application_body(creds.kiosk_id, rng=random.Random(10))
    c = PlatformClient(h.url, creds.kiosk_id, creds.secret)
    tn = c.submit_application(body, "key-restart-01")["tracking_no"]
    h.stop()
    h = start_in_thread(tmp_path / "s")
    try:
        c = PlatformClient(h.url, creds.kiosk_id, creds.secret)
        again = c.submit_application(body, "key-restart-01")
        assert again["tracking_no"] == tn and again["replayed"]
    finally:
        h.stop()


def test_every_query_print_item_prints_and_every_kind_of_case_can_be_rated(client, creds):
    """Certificates are asked for by item code; 好差评 accepts certificate serials and payment ids as cases."""
    from kiosk.domain.catalog import load_catalog

    v = client.verify_identity({"method": "ctid_qr", "token": make_ctid_token("resident_id", "11010519491231002X", "张三丰")})
    serials = []
    for item in (i for i in load_catalog().items if i.flow == "query_print"):
        doc = client.get_certificate(item.code, v["identity_token"])
        assert doc["title"] and doc["serial"].startswith("ZM")
        serials.append(doc["serial"])
    pay = client.create_payment({"item_code": "QHB-RS-001", "kiosk_id": creds.kiosk_id}, "pay-key-rate")
    base = {"level": "满意", "kiosk_id": creds.kiosk_id, "created_at": "2026-11-27T10:00:00+08:00"}
    for i, case in enumerate([serials[0], pay["payment_id"]]):
        assert client.submit_evaluation({**base, "tracking_no": case}, f"ev-case-{i:04d}")["tracking_no"] == case
    with pytest.raises(PermanentError) as e:
        client.submit_evaluation({**base, "tracking_no": "ZM000000000000"}, "ev-case-unknown")
    assert e.value.status == 404
