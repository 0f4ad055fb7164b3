"""Any malformed signature header is a 401 from the simulator in its own process, never a 500."""
from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from kiosk.platform import signing

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sim_url(tmp_path_factory):
    state = tmp_path_factory.mktemp("sim-proc")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk.cli.main", "platform-sim", "--port", "0", "--state", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=PROJECT_ROOT)
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        pytest.fail(f"platform-sim did not start: {line!r}")
    yield line.split("listening on ", 1)[1].split()[0]
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def raw_get(url: str, headers: list[tuple[str, bytes]], path: str = "/v1/catalog") -> tuple[int, dict]:
    """GET with header values sent byte for byte (http.client, no requests normalisation)."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        try:
            doc = json.loads(body) if body else {}
        except ValueError:
            doc = {"raw": body[:200]}
        return resp.status, doc
    finally:
        conn.close()


def good_headers(creds, path: str = "/v1/catalog") -> dict[str, bytes]:
    h = signing.sign_headers(creds.kiosk_id, creds.secret, "GET", path, b"", timestamp=int(time.time()))
    return {k: v.encode("ascii") for k, v in h.items()}


CASES: dict[str, tuple[str, bytes | None]] = {
    "signature non-ASCII (UTF-8)": (signing.H_SIGNATURE, "é".encode() * 32),
    "signature non-ASCII (latin-1)": (signing.H_SIGNATURE, b"\xe9" * 64),
    "signature full-width hex": (signing.H_SIGNATURE, ("ａ" * 64).encode()),
    "signature base64": (signing.H_SIGNATURE, b"q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80="),
    "signature bad hex": (signing.H_SIGNATURE, b"zz" * 32),
    "signature too short": (signing.H_SIGNATURE, b"ab"),
    "signature empty": (signing.H_SIGNATURE, b""),
    "signature missing": (signing.H_SIGNATURE, None),
    "kiosk id non-ASCII": (signing.H_KIOSK, "终端一".encode()),
    "kiosk id with control char": (signing.H_KIOSK, b"qhb\x01dev"),
    "kiosk id missing": (signing.H_KIOSK, None),
    "timestamp full-width digits": (signing.H_TIMESTAMP, "１７００００００００".encode()),
    "timestamp 5000 digits": (signing.H_TIMESTAMP, b"9" * 5000),
    "timestamp negative": (signing.H_TIMESTAMP, b"-5"),
    "timestamp float": (signing.H_TIMESTAMP, b"1.5e9"),
    "timestamp missing": (signing.H_TIMESTAMP, None),
    "nonce non-ASCII": (signing.H_NONCE, "随机数".encode()),
    "nonce too long": (signing.H_NONCE, b"n" * 4096),
    "nonce missing": (signing.H_NONCE, None),
    "algorithm non-ASCII": (signing.H_ALG, "hmac-sm３".encode()),
    "algorithm unknown": (signing.H_ALG, b"hmac-md5"),
    "algorithm missing": (signing.H_ALG, None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_header_is_401(sim_url, creds, case):
    name, value = CASES[case]
    headers = good_headers(creds)
    if value is None:
        del headers[name]
    else:
        headers[name] = value
    status, doc = raw_get(sim_url, list(headers.items()))
    assert status == 401, (case, doc)
    assert doc.get("code") in {"bad_signature", "missing_signature", "unknown_kiosk"}, doc


def test_simulator_still_answers_signed_requests_after_the_garbage(sim_url, creds):
    for value in (b"\xff\xfe" * 40, "签名".encode() * 20):
        headers = good_headers(creds)
        headers[signing.H_SIGNATURE] = value
        assert raw_get(sim_url, list(headers.items()))[0] == 401
    status, doc = raw_get(sim_url, list(good_headers(creds).items()))
    assert status == 200, doc


def test_verifier_is_total_over_odd_values():
    """Direct calls: whatever a caller's header mapping holds, a refused Verdict comes back."""
    secrets = {"k1": bytes(32)}
    good = signing.sign_headers("k1", bytes(32), "GET", "/v1/catalog", b"")
    assert signing.verify(good, "GET", "/v1/catalog", b"", secrets).ok
    for name in signing.SIGNATURE_HEADERS:
        for value in ("\ud800", "é" * 64, "x\x00y", 5, None, b"abc"):
            bad = dict(good)
            bad[name] = value  # type: ignore[assignment]
            v = signing.verify(bad, "GET", "/v1/catalog", b"", secrets)
            assert not v.ok and v.code in {"bad_signature", "missing_signature", "unknown_kiosk"}
    assert not signing.verify(good, "GET", "/v1/catalog\udcff", b"", secrets).ok


@pytest.mark.parametrize("name", signing.SIGNATURE_HEADERS)
@pytest.mark.parametrize("order", ["bogus first", "bogus last", "same twice"])
def test_a_signature_header_sent_twice_is_401(sim_url, creds, name, order):
    """Neither copy counts: a proxy in front may read the first while a mapping keeps the last."""
    headers = list(good_headers(creds).items())
    good_value = dict(headers)[name]
    bogus = {signing.H_SIGNATURE: b"0" * 64, signing.H_KIOSK: b"someone-else", signing.H_TIMESTAMP: b"1",
             signing.H_NONCE: b"other-nonce", signing.H_ALG: b"hmac-sha256"}[name]
    extra = (name.lower(), good_value if order == "same twice" else bogus)
    headers = [extra, *headers] if order == "bogus first" else [*headers, extra]
    status, doc = raw_get(sim_url, headers)
    assert status == 401, (name, order, doc)
    assert doc.get("code") == "bad_signature", doc
