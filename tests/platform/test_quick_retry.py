"""A call a citizen stands waiting for is tried once more after a fast failure, against a real HTTP server
that answers from a script: a dropped connection or a 5xx is retried with a fresh signature, while a
timeout, a long Retry-After, a refusal and a request that creates something are not."""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from kiosk.platform import signing
from kiosk.platform.client import PermanentError, PlatformClient, RetryableError
from tests.platform.http_stub import QuietHandler, serving

GOOD = {"tracking_no": "T1", "status": "accepted"}


class Script:
    """What the server does with each request, in order; ("ok", body) when the script has run out."""

    steps: list[tuple[str, object]] = []
    seen: list[dict] = []
    lock = threading.Lock()


class _Scripted(QuietHandler):
    def _answer(self):
        self.drain_body()
        with Script.lock:
            Script.seen.append({"path": self.path, "nonce": self.headers.get(signing.H_NONCE)})
            what, arg = Script.steps.pop(0) if Script.steps else ("ok", GOOD)
        if what == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if what == "sleep":
            time.sleep(float(arg))  # type: ignore[arg-type]
            what, arg = "ok", GOOD
        status, headers, body = {
            "ok": (200, {"Content-Type": "application/json"}, json.dumps(arg).encode()),
            "502": (502, {"Content-Type": "text/html"}, b"<html><body>Bad Gateway</body></html>"),
            "429": (429, {"Content-Type": "application/problem+json", "Retry-After": str(arg)},
                    b'{"code":"rate_limited","detail":"x"}'),
            "404": (404, {"Content-Type": "application/problem+json"}, b'{"code":"not_found","detail":"x"}'),
        }[what]
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer


@pytest.fixture(scope="module")
def server():
    with serving(_Scripted) as url:
        yield url


@pytest.fixture
def client(server):
    Script.steps, Script.seen = [], []
    c = PlatformClient(server, "KIOSK-T", b"k" * 32, read_timeout=1.0, deadline_s=5, quick_retry_pause_s=0.05)
    yield c
    c.close()


@pytest.mark.parametrize("failure", [("502", None), ("drop", None), ("429", 1)])
def test_a_fast_failure_of_a_look_up_is_tried_once_more_with_a_fresh_signature(client, failure):
    Script.steps = [failure]
    assert client.get_application("T1")["tracking_no"] == "T1"
    assert len(Script.seen) == 2
    assert Script.seen[0]["nonce"] != Script.seen[1]["nonce"]  # the platform refuses a replayed nonce
    assert client.reachable is True


def test_a_short_retry_after_is_waited_out(client):
    Script.steps = [("429", 1)]
    t0 = time.monotonic()
    client.get_application("T1")
    assert time.monotonic() - t0 >= 1.0


def test_two_fast_failures_reach_the_citizen(client):
    Script.steps = [("502", None), ("drop", None), ("ok", GOOD)]
    with pytest.raises(RetryableError):
        client.get_application("T1")
    assert len(Script.seen) == 2
    assert client.reachable is False


@pytest.mark.parametrize("failure", [("429", 30), ("sleep", 2.0)], ids=["long-retry-after", "timeout"])
def test_a_timeout_or_a_long_retry_after_is_not_tried_again(client, failure):
    Script.steps = [failure]
    with pytest.raises(RetryableError):
        client.get_application("T1")
    assert len(Script.seen) == 1


def test_a_refusal_is_not_tried_again(client):
    Script.steps = [("404", None)]
    with pytest.raises(PermanentError):
        client.get_application("T1")
    assert len(Script.seen) == 1


def test_a_request_that_creates_something_is_left_to_the_outbox(client):
    Script.steps = [("502", None)]
    with pytest.raises(RetryableError):
        client.submit_application({"item_code": "X"}, idempotency_key="k-1")
    assert len(Script.seen) == 1


@pytest.mark.parametrize("call", [
    lambda c: c.search_applications("id_card", "110101199003078515"),
    lambda c: c.verify_identity({"method": "ctid_qr", "token": "t"}),
    lambda c: c.get_certificate("pension", "tok"),
])
def test_every_call_a_citizen_waits_for_is_tried_again(client, call):
    Script.steps = [("502", None)]
    with pytest.raises(RetryableError, match="malformed"):  # the good answer is a progress body
        call(client)
    assert len(Script.seen) == 2


def test_no_quick_retries_when_turned_off(server):
    Script.steps, Script.seen = [("502", None)], []
    with PlatformClient(server, "KIOSK-T", b"k" * 32, read_timeout=1.0, quick_retries=0) as c:
        with pytest.raises(RetryableError):
            c.get_application("T1")
    assert len(Script.seen) == 1
