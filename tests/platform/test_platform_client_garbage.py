"""Hypothesis: whatever a broken platform or proxy answers, the client raises a classified error
(or returns a contract-shaped result), and the outbox never loses the record."""
from __future__ import annotations

import json
import os
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.platform.client import PermanentError, PlatformClient, RetryableError
from offline_cache.drainer import Drainer
from offline_cache.outbox import Outbox
from tests.platform.http_stub import QuietHandler, serving
from tests.platform.samples import application_payload


class Canned:
    status = 200
    headers: dict = {}
    body = b""
    lie_length = False


class _Stub(QuietHandler):
    def _answer(self):
        self.drain_body()
        c = Canned
        self.send_response(c.status)
        for k, v in c.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(c.body) + (500 if c.lie_length else 0)))
        self.end_headers()
        self.wfile.write(c.body)
        if c.lie_length:
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    do_GET = do_POST = do_PUT = _answer


@pytest.fixture(scope="module")
def stub():
    with serving(_Stub) as url:
        yield url


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=4),
    max_leaves=12)
contract_keys = st.sampled_from(["tracking_no", "status", "promised_date", "sha256", "verified", "identity_token",
                                 "evaluation_id", "items", "applications", "payment_id", "amount_cents", "qr_payload",
                                 "title", "lines", "code", "detail", "errors"])
wrong_types = st.dictionaries(contract_keys, json_values, max_size=8)
bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda t: f"<!DOCTYPE html><html><body><h1>{t}</h1></body></html>".encode()),
    wrong_types.map(lambda d: json.dumps(d).encode()),
    wrong_types.map(lambda d: json.dumps(d).encode()).flatmap(
        lambda b: st.integers(0, max(0, len(b) - 1)).map(lambda i: b[:i])),  # truncated JSON
    json_values.map(lambda v: json.dumps(v).encode()),
    st.just(b'{"pad":"' + b"x" * 1_200_000 + b'"}'),  # bigger than the client accepts
)
statuses = st.sampled_from([200, 201, 202, 204, 301, 302, 304, 400, 401, 403, 404, 408, 409, 413, 422, 429,
                            451, 500, 502, 503, 504, 599])
ctypes = st.sampled_from(["application/json", "application/problem+json", "text/html; charset=gbk", "text/plain", ""])
retry_after = st.one_of(st.none(), st.text(max_size=30), st.integers(-5, 10**9).map(str),
                        st.just("Wed, 21 Oct 2015 07:28:00 GMT"))

CALLS = {
    "application": lambda c: c.submit_application({"item_code": "X"}, "key-garbage-01"),
    "material": lambda c: c.put_material("a" * 64, b"x"),
    "progress": lambda c: c.get_application("SD261127AAAAAAAA0"),
    "search": lambda c: c.search_applications("resident_id", "x"),
    "catalog": lambda c: c.get_catalog("\"e\""),
    "evaluation": lambda c: c.submit_evaluation({"level": "满意"}, "key-garbage-02"),
    "identity": lambda c: c.verify_identity({"method": "ctid_qr", "token": "t"}),
    "certificate": lambda c: c.get_certificate("household_register", "tok"),
    "payment": lambda c: c.create_payment({"item_code": "X"}, "key-garbage-03"),
    "payment_status": lambda c: c.get_payment("PY1"),
    "help": lambda c: c.submit_help_request({}, "key-garbage-04"),
}


def _set(status, ctype, body, ra, lie):
    Canned.status, Canned.body, Canned.lie_length = status, body, lie
    Canned.headers = {k: v for k, v in (("Content-Type", ctype), ("Retry-After", ra)) if v}


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(status=statuses, ctype=ctypes, body=bodies, ra=retry_after, lie=st.booleans(), call=st.sampled_from(sorted(CALLS)))
def test_every_answer_is_a_result_or_a_classified_error(stub, status, ctype, body, ra, lie, call):
    _set(status, ctype, body, ra, lie)
    c = PlatformClient(stub, "qhb-dev-0001", b"s" * 32, read_timeout=5)
    try:
        result = CALLS[call](c)
    except RetryableError as e:
        assert e.retry_after is None or 0 <= e.retry_after <= 3600
        if e.status is not None and 400 <= e.status < 500:
            assert e.status in (408, 429)
    except PermanentError as e:
        assert 400 <= e.status < 500 and e.status not in (408, 429)
        assert isinstance(e.reason(), str) and isinstance(e.errors, dict)
    else:
        assert 200 <= status < 300 or status == 304
        assert isinstance(result, (dict, list, tuple))
    finally:
        c.close()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(status=statuses, ctype=ctypes, body=bodies, ra=retry_after, lie=st.booleans())
def test_the_drainer_never_loses_a_record_to_garbage(stub, tmp_path_factory, status, ctype, body, ra, lie):
    _set(status, ctype, body, ra, lie)
    ob = Outbox(tmp_path_factory.mktemp("garbage") / "outbox.db", os.urandom(16))
    rid = ob.enqueue("application", application_payload(), attachments=[os.urandom(32)])
    c = PlatformClient(stub, "qhb-dev-0001", b"s" * 32, read_timeout=5)
    Drainer(ob, c).drain_once(ignore_backoff=True)
    c.close()
    rec = ob.get(rid)
    assert rec is not None and rec.payload["applicant"]["name"] == "张三丰"
    if rec.state == "done":  # only a contract-shaped 2xx counts as delivered
        assert 200 <= status < 300 and isinstance(rec.platform_ref, str) and rec.platform_ref
    elif rec.state == "failed":
        assert 400 <= status < 500 and status not in (401, 408, 429) and rec.failure_reason
    else:
        assert rec.state == "pending" and rec.last_error
    ob.close()
