"""Every call has an overall deadline (a dripping server is cut off); money amounts are bounded integers."""
from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from kiosk.domain.money import MAX_AMOUNT_CENTS, InvalidAmount, check_amount_cents
from kiosk.platform.client import PlatformClient
from kiosk.ports.platform import RetryableError

SECRET = bytes(32)



def _note_hang_up(conn: socket.socket, wait_s: float, cut: threading.Event) -> None:
    """After the drip: the client hanging up (EOF or a reset) within `wait_s` counts as cut off."""
    conn.settimeout(wait_s)
    try:
        if conn.recv(1) == b"":
            cut.set()
    except OSError:
        cut.set()

class DripServer:
    """Accepts connections, reads the request, then sends its answer one byte at a time, `max_bytes` at most.

    `phase` "headers" drips the status line itself; "body" sends complete headers and drips the body.
    It records whether the client cut the connection (a send failed or the peer closed).
    """

    def __init__(self, phase: str, interval_s: float = 0.2, max_bytes: int = 100):
        self.phase, self.interval_s, self.max_bytes = phase, interval_s, max_bytes
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.cut = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.5)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            body = b'{"tracking_no": "' + b"A" * 2000 + b'"}'
            if self.phase == "body":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(body))
                answer = body
            else:
                answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"X-Pad: " + b"p" * 5000
            for i in range(min(self.max_bytes, len(answer))):
                if self.stop.wait(self.interval_s):
                    return
                try:
                    conn.sendall(answer[i:i + 1])
                except OSError:
                    self.cut.set()
                    return
            _note_hang_up(conn, self.interval_s * 20, self.cut)  # the drip ran out: did the client hang up?

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.mark.parametrize("phase", ["headers", "body"])
def test_a_dripping_server_is_cut_off_at_the_deadline(phase):
    server = DripServer(phase)
    # Each byte comes well inside the read timeout, so only the overall deadline can end the call;
    # the drip would last 100 x 0.2 s.
    client = PlatformClient(server.url, "k1", SECRET, read_timeout=5, deadline_s=1.5)
    try:
        with pytest.raises(RetryableError) as e:
            client.get_application("SD261127AAAAAAAA0")
        assert e.value.code == "timeout" and "overall deadline" in str(e.value)
        assert client.reachable is False
        assert server.cut.wait(10)  # the connection was really closed, not left dripping
        # the client is still usable for the next call (a fresh connection, its own deadline)
        with pytest.raises(RetryableError) as e2:
            client.get_application("SD261127AAAAAAAA0")
        assert "overall deadline" in str(e2.value)
    finally:
        client.close()
        server.close()


def _self_signed(tmp_path):
    """A certificate for 127.0.0.1 (its own CA): the PEM path, and a server context using it."""
    import datetime as dt
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_pem = tmp_path / "cert.pem"
    key_pem = tmp_path / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_pem, key_pem)
    return str(cert_pem), ctx


class TlsDripServer(DripServer):
    """Over TLS. `phase` "handshake" answers the ClientHello with a record header and then one byte at a time
    (the handshake itself drips); "headers" completes the handshake and drips the status line."""

    def __init__(self, phase: str, server_ctx, interval_s: float = 0.2, max_bytes: int = 100):
        self.server_ctx = server_ctx
        super().__init__(phase, interval_s, max_bytes)
        self.url = self.url.replace("http://", "https://")

    def _drip(self, conn: socket.socket) -> None:
        if self.phase == "headers":
            try:
                conn.settimeout(5)
                conn = self.server_ctx.wrap_socket(conn, server_side=True)
            except OSError:
                return
            super()._drip(conn)
            return
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)  # the ClientHello
                conn.sendall(b"\x16\x03\x03\x40\x00\x02")  # a handshake record of 16 KiB is coming...
                for _ in range(self.max_bytes):  # ...one byte at a time
                    if self.stop.wait(self.interval_s):
                        return
                    conn.sendall(b"\x00")
            except OSError:
                self.cut.set()
                return
            _note_hang_up(conn, self.interval_s * 20, self.cut)


@pytest.mark.parametrize("phase", ["handshake", "headers"])
def test_a_dripping_tls_server_is_cut_off_at_the_deadline(tmp_path, phase):
    """The handshake too: shutting the socket down cannot end it, so a new connection's timeout is clamped."""
    ca, server_ctx = _self_signed(tmp_path)
    server = TlsDripServer(phase, server_ctx)
    # The deadline is shorter than the connect timeout, which used to bound the handshake on its own.
    client = PlatformClient(server.url, "k1", SECRET, connect_timeout=8, read_timeout=8, deadline_s=1.5,
                            ca_bundle=ca)
    try:
        started = time.monotonic()
        with pytest.raises(RetryableError) as e:
            client.get_application("SD261127AAAAAAAA0")
        took = time.monotonic() - started
        assert e.value.code == "timeout" and "overall deadline" in str(e.value)
        assert took < 3.0, took  # 1.5 s and a little, not the 8 s connect or read timeout
        assert server.cut.wait(10)
    finally:
        client.close()
        server.close()


def test_a_connection_is_not_opened_once_the_deadline_has_passed():
    from kiosk.platform.deadline import Deadline

    server = DripServer("headers")
    client = PlatformClient(server.url, "k1", SECRET, read_timeout=5, deadline_s=0.2)
    try:
        with Deadline(0.05) as d:
            time.sleep(0.1)
            with pytest.raises(RetryableError) as e:
                client._send("GET", "/v1/health", None, {})
        assert d.expired and e.value.code == "timeout"
    finally:
        client.close()
        server.close()


def test_default_deadline_is_at_least_a_minute_and_bounded_by_reads():
    c = PlatformClient("http://127.0.0.1:9", "k1", SECRET, connect_timeout=3, read_timeout=15)
    assert c.deadline_s == 60
    c2 = PlatformClient("http://127.0.0.1:9", "k1", SECRET, connect_timeout=5, read_timeout=30)
    assert c2.deadline_s == 95
    c.close()
    c2.close()


# ------------------------------------------------------------------ money

class _PaymentHandler(http.server.BaseHTTPRequestHandler):
    amount: object = 1200
    requests_seen = 0

    def _answer(self) -> None:
        type(self).requests_seen += 1
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        doc = {"payment_id": "PY1", "item_code": "QHB-RS-001", "currency": "CNY", "status": "unpaid",
               "qr_payload": "https://pay.qhb.example/p/PY1"}
        raw = json.dumps(doc)[:-1] + ', "amount_cents": ' + json.dumps(type(self).amount) + "}"
        body = raw.encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET = _answer

    def log_message(self, *a) -> None:
        pass


@pytest.fixture
def pay_server():
    _PaymentHandler.requests_seen = 0
    _PaymentHandler.amount = 1200
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PaymentHandler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("amount,reason", [
    (10**400, "too_large"), (MAX_AMOUNT_CENTS + 1, "too_large"), (0, "not_positive"), (-100, "not_positive"),
    (True, "type"), (12.5, "type"), ("1200", "type"),
])
def test_a_platform_amount_out_of_bounds_is_a_classified_error_in_a_pool_thread(pay_server, amount, reason):
    _PaymentHandler.amount = amount
    client = PlatformClient(pay_server, "k1", SECRET, read_timeout=5)
    try:
        with ThreadPoolExecutor(1) as pool:
            for call in (lambda: client.create_payment({"item_code": "QHB-RS-001"}, "pay-1"),
                         lambda: client.get_payment("PY1")):
                err = pool.submit(call).exception(timeout=30)
                assert isinstance(err, RetryableError), repr(err)
                assert err.code == "malformed_response"
                if not isinstance(amount, (bool, float, str)):
                    assert reason in str(err) and "amount_cents" in str(err)
            # the pool thread survived and still serves the next call
            _PaymentHandler.amount = 1200
            assert pool.submit(client.get_payment, "PY1").result(timeout=30)["amount_cents"] == 1200
    finally:
        client.close()


@pytest.mark.parametrize("amount,reason", [
    (10**400, "too_large"), (0, "not_positive"), (True, "type"), (9.99, "type"), (None, "type"),
])
def test_an_order_amount_out_of_bounds_is_refused_before_any_request(pay_server, amount, reason):
    client = PlatformClient(pay_server, "k1", SECRET, read_timeout=5)
    try:
        with pytest.raises(InvalidAmount) as e:
            client.create_payment({"item_code": "QHB-RS-001", "amount_cents": amount}, "pay-2")
        assert e.value.reason == reason and reason in str(e.value)
        assert _PaymentHandler.requests_seen == 0
        _PaymentHandler.amount = 1200
        assert client.create_payment({"item_code": "QHB-RS-001", "amount_cents": 1200}, "pay-3")["amount_cents"] == 1200
        assert _PaymentHandler.requests_seen == 1
    finally:
        client.close()


def test_amount_rule():
    assert check_amount_cents(1) == 1 and check_amount_cents(MAX_AMOUNT_CENTS) == MAX_AMOUNT_CENTS
    with pytest.raises(InvalidAmount) as e:
        check_amount_cents(10**400)
    assert len(str(e.value)) < 100  # the 401-digit value is not in the message


# ------------------------------------------------------------------ the payment screen's service

class _StubContext:
    """Just what PaymentService._create_payment reads: one visit, always current; the posted UI events."""

    def __init__(self, platform) -> None:
        from types import SimpleNamespace

        from kiosk.domain.session import State

        self.platform = platform
        self.scratch: dict = {}
        self.posted: list[tuple[str, dict]] = []
        self.session = SimpleNamespace(state=State.ITEM_CHOSEN, run_if_current=lambda token, fn: fn() or True)
        self.timings = SimpleNamespace(payment_timeout_s=0.0, payment_poll_s=0.01)
        self.stopping = threading.Event()
        self.config = SimpleNamespace(kiosk=SimpleNamespace(id="k1"))
        self.item = SimpleNamespace(code="QHB-RS-001", title="社保缴费")

    def for_visit(self, token, fn):
        return fn()

    def require_item(self):
        return self.item

    def require_platform(self):
        return self.platform

    def post_for(self, token, kind, **data) -> bool:
        self.posted.append((kind, data))
        return True

    def keep_for(self, token, key, value) -> None:
        self.scratch[key] = value


class _UncheckedPort:
    """A platform port that does not check amounts itself (the service must not rely on the client's check)."""

    def __init__(self, amount) -> None:
        self.amount = amount

    def create_payment(self, body, idempotency_key):
        return {"payment_id": "PY1", "amount_cents": self.amount, "status": "unpaid", "qr_payload": "https://p/PY1"}


@pytest.mark.parametrize("amount", [10**400, -1, 0, 12.5, True, "1200"])
def test_the_payment_service_refuses_a_bad_amount_from_any_port_and_tells_the_citizen(amount):
    from kiosk.app.payments import PaymentService

    ctx = _StubContext(_UncheckedPort(amount))
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(PaymentService(ctx)._create_payment, 1).exception(timeout=30) is None
    assert [k for k, _ in ctx.posted] == ["payment_error"] and "payment_id" not in ctx.scratch


def test_the_payment_service_shows_the_amount_in_yuan_through_a_real_client(pay_server):
    from kiosk.app.payments import PaymentService

    for cents, shown in ((1200, "12.00"), (1, "0.01"), (MAX_AMOUNT_CENTS, "10000000.00"), (123457, "1234.57")):
        _PaymentHandler.amount = cents
        client = PlatformClient(pay_server, "k1", SECRET, read_timeout=5)
        try:
            ctx = _StubContext(client)
            PaymentService(ctx)._create_payment(1)
        finally:
            client.close()
        kind, data = ctx.posted[0]
        assert kind == "payment" and f"应缴金额：{shown} 元" in data["lines"], ctx.posted
    _PaymentHandler.amount = 10**400  # and through the client, the amount never reaches the service
    client = PlatformClient(pay_server, "k1", SECRET, read_timeout=5)
    try:
        ctx = _StubContext(client)
        PaymentService(ctx)._create_payment(1)
    finally:
        client.close()
    assert [k for k, _ in ctx.posted] == ["payment_error"]
