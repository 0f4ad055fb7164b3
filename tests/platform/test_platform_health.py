"""GET /v1/health, the simulator's traffic counters and the client's last contact: against the simulator
in its own process (what the kiosk talks to over the network)."""
from __future__ import annotations

import datetime as _dt
import json
import socket
from urllib.parse import urlsplit

import pytest
import requests

from kiosk.platform import signing
from kiosk.platform.client import PermanentError, PlatformClient, RetryableError


class StepClock:
    """A clock the test moves by hand: contact times are exact values, not measurements."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _signed_get(url: str, creds, path: str) -> requests.Response:
    hdr = signing.sign_headers(creds.kiosk_id, creds.secret, "GET", path, b"")
    return requests.get(url + path, headers=hdr, timeout=10)


def test_health_signed_answers_status_and_server_time_only(sim_proc, creds):
    r = _signed_get(sim_proc.url, creds, "/v1/health")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"status", "server_time"} and body["status"] == "ok"
    server = _dt.datetime.fromisoformat(body["server_time"].replace("Z", "+00:00"))
    assert server.tzinfo is not None and abs((server - _dt.datetime.now(_dt.UTC)).total_seconds()) < 300
    assert r.headers.get("Cache-Control") == "no-store"
    assert len(r.content) < 100  # tiny: the probe exists so the catalog (150 KB) is not fetched to ask "up?"


def test_health_unsigned_or_badly_signed_is_401(sim_proc, creds):
    bad_before = sim_proc.stats()["bad_signatures"]
    r = requests.get(sim_proc.url + "/v1/health", timeout=10)
    assert r.status_code == 401 and r.json()["code"] == "missing_signature"
    hdr = signing.sign_headers(creds.kiosk_id, b"not the kiosk's secret" * 2, "GET", "/v1/health", b"")
    r = requests.get(sim_proc.url + "/v1/health", headers=hdr, timeout=10)
    assert r.status_code == 401 and r.json()["code"] == "bad_signature"
    # a replayed nonce is refused like on every other call
    hdr = signing.sign_headers(creds.kiosk_id, creds.secret, "GET", "/v1/health", b"")
    assert requests.get(sim_proc.url + "/v1/health", headers=hdr, timeout=10).status_code == 200
    r = requests.get(sim_proc.url + "/v1/health", headers=hdr, timeout=10)
    assert r.status_code == 401 and r.json()["code"] == "nonce_replayed"
    assert sim_proc.stats()["bad_signatures"] - bad_before == 3


def test_stats_count_v1_requests_and_the_exact_bytes_sent(sim_proc, creds):
    before = sim_proc.stats()
    assert {"requests", "bytes_in", "bytes_out", "connections"} <= set(before)
    # one signed request over a raw socket: everything the server writes back is what bytes_out must count
    host, port = urlsplit(sim_proc.url).hostname, urlsplit(sim_proc.url).port
    hdr = signing.sign_headers(creds.kiosk_id, creds.secret, "GET", "/v1/health", b"")
    req = ("GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
           + "".join(f"{k}: {v}\r\n" for k, v in hdr.items()) + "\r\n").encode()
    received = b""
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(req)
        while chunk := s.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 200")
    after = sim_proc.stats()  # /__sim calls are the harness's, not the kiosk's: not counted
    assert after["requests"] - before["requests"] == 1
    assert after["bytes_out"] - before["bytes_out"] == len(received)
    assert after["bytes_in"] - before["bytes_in"] == len(req)
    assert after["connections"] - before["connections"] == 1
    # a 401 answer is traffic too; two requests on one kept-alive connection are one connection
    with requests.Session() as s:
        s.get(sim_proc.url + "/v1/health", timeout=10)
        s.get(sim_proc.url + "/v1/health", timeout=10)
    last = sim_proc.stats()
    assert last["requests"] - after["requests"] == 2 and last["connections"] - after["connections"] == 1


def test_catalog_costs_far_more_than_health(sim_proc, creds):
    s0 = sim_proc.stats()
    _signed_get(sim_proc.url, creds, "/v1/catalog")
    s1 = sim_proc.stats()
    _signed_get(sim_proc.url, creds, "/v1/health")
    s2 = sim_proc.stats()
    catalog, health = s1["bytes_out"] - s0["bytes_out"], s2["bytes_out"] - s1["bytes_out"]
    assert health < 500 and catalog > 100 * health


def test_client_records_last_contact_and_last_failure(sim_proc, creds):
    clock = StepClock()
    c = PlatformClient(sim_proc.url, creds.kiosk_id, creds.secret, read_timeout=10, clock=clock)
    try:
        assert c.last_contact is None and c.last_failure is None and c.reachable is None
        assert c.health()["status"] == "ok"
        assert c.last_contact == 100.0 and c.last_failure is None and c.reachable is True
        clock.t = 110.0
        c.get_catalog()  # any call the platform answers is contact, not only the probe
        assert c.last_contact == 110.0
        clock.t = 120.0
        with pytest.raises(PermanentError):  # a refusal is an answer: the platform is there
            c.get_application("SD-NO-SUCH-CASE")
        assert c.last_contact == 120.0 and c.last_failure is None
        sim_proc.set_mode("outage")
        clock.t = 130.0
        with pytest.raises(RetryableError):
            c.health()
        assert c.last_failure == 130.0 and c.last_contact == 120.0 and c.reachable is False
        sim_proc.set_mode("normal")
        clock.t = 140.0
        c.health()
        assert c.last_contact == 140.0 and c.last_failure == 130.0 and c.reachable is True
    finally:
        c.close()


def test_client_notes_an_unreachable_platform_as_a_failure(creds):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clock = StepClock()
    c = PlatformClient(f"http://127.0.0.1:{port}", creds.kiosk_id, creds.secret, connect_timeout=2, clock=clock)
    try:
        with pytest.raises(RetryableError):
            c.health()
        assert c.last_failure == 100.0 and c.last_contact is None
    finally:
        c.close()


def test_health_of_a_garbage_answer_is_a_failure(sim_proc, creds):
    sim_proc.set_mode("garbage", fail_rate=1.0)
    c = PlatformClient(sim_proc.url, creds.kiosk_id, creds.secret, read_timeout=10, clock=StepClock())
    try:
        for _ in range(4):
            try:
                body = c.health()
            except RetryableError:
                assert c.last_failure == 100.0 and c.reachable is False
            else:  # a mistyped body that still has both fields as strings cannot happen: the garbage has neither
                pytest.fail(f"garbage accepted as health: {json.dumps(body)[:80]}")
    finally:
        c.close()
