"""Signing: known SM3 vector, round trip, and each way a signature must fail."""
from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives import hashes

from kiosk.platform import signing

SECRET = bytes(range(32))
SECRETS = {"k1": SECRET}


def test_sm3_is_the_national_hash():
    h = hashes.Hash(hashes.SM3())
    h.update(b"abc")
    d = h.finalize().hex()
    assert d.startswith("66c7f0f4") and d.endswith("8f4ba8e0")


@pytest.mark.parametrize("alg", signing.ALGORITHMS)
def test_round_trip(alg):
    hdr = signing.sign_headers("k1", SECRET, "POST", "/v1/applications", b'{"a":1}', alg)
    v = signing.verify(hdr, "POST", "/v1/applications", b'{"a":1}', SECRETS)
    assert v.ok and v.kiosk_id == "k1" and v.nonce == hdr[signing.H_NONCE]


def test_algorithms_give_different_signatures():
    a = signing.sign_headers("k1", SECRET, "GET", "/v1/catalog", b"", "hmac-sm3", timestamp=1, nonce="n")
    b = signing.sign_headers("k1", SECRET, "GET", "/v1/catalog", b"", "hmac-sha256", timestamp=1, nonce="n")
    assert a[signing.H_SIGNATURE] != b[signing.H_SIGNATURE]


@pytest.mark.parametrize("tamper", ["body", "path", "method", "secret", "alg", "nonce"])
def test_any_change_breaks_the_signature(tamper):
    hdr = signing.sign_headers("k1", SECRET, "POST", "/v1/evaluations", '{"level":"满意"}'.encode())
    method, path, body, secrets_ = "POST", "/v1/evaluations", '{"level":"满意"}'.encode(), SECRETS
    if tamper == "body":
        body = '{"level":"不满意"}'.encode()
    elif tamper == "path":
        path = "/v1/evaluations?x=1"
    elif tamper == "method":
        method = "PUT"
    elif tamper == "secret":
        secrets_ = {"k1": b"\x00" * 32}
    elif tamper == "alg":
        hdr[signing.H_ALG] = "hmac-sha256"
    elif tamper == "nonce":
        hdr[signing.H_NONCE] = "other"
    v = signing.verify(hdr, method, path, body, secrets_)
    assert not v.ok and v.code == "bad_signature"


def test_clock_skew_over_five_minutes_is_refused():
    now = time.time()
    old = signing.sign_headers("k1", SECRET, "GET", "/v1/catalog", b"", timestamp=int(now) - 301)
    assert signing.verify(old, "GET", "/v1/catalog", b"", SECRETS, now=now).code == "clock_skew"
    ok = signing.sign_headers("k1", SECRET, "GET", "/v1/catalog", b"", timestamp=int(now) - 290)
    assert signing.verify(ok, "GET", "/v1/catalog", b"", SECRETS, now=now).ok


def test_unknown_kiosk_and_missing_headers():
    hdr = signing.sign_headers("k2", SECRET, "GET", "/v1/catalog", b"")
    assert signing.verify(hdr, "GET", "/v1/catalog", b"", SECRETS).code == "unknown_kiosk"
    del hdr[signing.H_SIGNATURE]
    assert signing.verify(hdr, "GET", "/v1/catalog", b"", SECRETS).code == "missing_signature"
