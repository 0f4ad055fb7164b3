"""The platform simulator: a real HTTP server implementing docs/platform-api.yaml.

State lives in SQLite under ``state_dir`` so a restart keeps accepted cases,
idempotency keys and uploaded materials. Fault modes reproduce what a village
uplink and a busy provincial platform do to a kiosk:

- ``normal``: answers correctly.
- ``outage``: every /v1 request gets 503 with ``Retry-After``.
- ``flaky``: a ``fail_rate`` share of requests get 500/502 HTML/429/a dropped connection.
- ``slow``: answers after ``latency_ms`` (default 2000 ms), *after* committing.
- ``garbage``: processes the request, then a ``fail_rate`` share of answers are
  garbage (HTML, truncated or mistyped JSON, an oversized body).
- ``accept-then-drop``: commits a creating request, then closes the connection
  without answering (``fail_rate`` share, default 0.5).

``/__sim/*`` endpoints (unsigned, not part of the contract) give tests and the
UI a handle: ``GET /__sim/stats`` (with ``requests``, ``bytes_in``, ``bytes_out`` and
``connections``: the /v1 traffic since this server started, so a kiosk's cost can be counted),
``GET /__sim/applications``,
``POST /__sim/mode``, ``POST /__sim/advance``, ``POST /__sim/payments/{id}/pay``.
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import logging
import os
import random
import re
import secrets
import socket
import sqlite3
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kiosk.domain.catalog import load_catalog
from kiosk.domain.contact import is_mobile
from kiosk.domain.fields import validate_form
from kiosk.domain.identity import InvalidIdNumber, mask_id_number, mask_name, validate_id_number
from kiosk.domain.tracking import new_tracking_no
from kiosk.domain.workdays import parse_promised_limit
from kiosk.platform import signing
from kiosk.platform.credentials import development_credentials
from standins import licence_registry, real_estate_registry

log = logging.getLogger(__name__)

MODES = ("normal", "outage", "flaky", "slow", "garbage", "accept-then-drop")
ID_TYPES = ("resident_id", "foreign_permanent_resident", "hk_macau_tw_permit", "passport")
LEVELS = ("非常满意", "满意", "基本满意", "不满意", "非常不满意")
BAD_LEVELS = ("不满意", "非常不满意")
MAX_BODY = 20 * 1024 * 1024
_SHA = re.compile(r"^[0-9a-f]{64}$")
_IDEM = re.compile(r"^[A-Za-z0-9_.:-]{8,128}$")
_KIND = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # named kinds and catalog item codes
CTID_PREFIX = "CTID1."
CTID_VALID_S = 180
IDENTITY_TOKEN_S = 600

CERTIFICATES = {
    "social_insurance_record": ("社会保险参保缴费证明", ["参保险种：城乡居民基本养老保险", "参保状态：正常参保"]),
    "household_register": ("户籍证明", ["户籍所在地：山东省淄博市周村区", "户别：家庭户"]),
    "medical_insurance_record": ("基本医疗保险参保证明", ["参保险种：城乡居民基本医疗保险", "参保状态：正常参保"]),
    "provident_fund_record": ("住房公积金缴存证明", ["缴存状态：正常缴存"]),
}
RETURN_REASON = "申请材料不齐全，请携带身份证原件到便民服务站补正"
STAGES = ("received", "accepted", "in_review")

_FALLBACK_CATALOG = [
    {"code": "SIM-001", "name": "城乡居民基本养老保险参保登记", "flow": "apply", "fields": []},
    {"code": "SIM-002", "name": "社会保险参保缴费证明打印", "flow": "query_print", "fields": []},
]


def make_ctid_token(id_type: str, id_number: str, name: str, ts: float | None = None) -> str:
    """A simulated electronic-ID QR token (the real one is opaque; ours encodes the identity)."""
    raw = json.dumps({"id_type": id_type, "id_number": id_number, "name": name,
                      "ts": int(time.time() if ts is None else ts)}, ensure_ascii=False).encode()
    return CTID_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _canon(obj: Any) -> str:
    return hashlib.sha256(
        json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    ).hexdigest()


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# ------------------------------------------------------------------- catalog (lazy)
_catalog_lock = threading.Lock()
_catalog_cache: dict[str, Any] = {}


def _catalog():
    """The project catalog, or None when it does not load (validation falls back to structure only)."""
    with _catalog_lock:
        if "cat" not in _catalog_cache:
            try:
                _catalog_cache["cat"] = load_catalog()
            except Exception:  # noqa: BLE001 - logged; a broken catalog: the sim still serves
                log.exception("platform-sim: catalog unavailable; form validation is structural only")
                _catalog_cache["cat"] = None
        return _catalog_cache["cat"]


def _catalog_item(code: str):
    cat = _catalog()
    if cat is None:
        return None, False
    return cat.find(code), True


def _item_json(item: Any) -> dict:
    """The platform's view of one catalog item (the full item plus a display ``name``)."""
    if hasattr(item, "to_dict"):
        out = dict(item.to_dict())
    elif isinstance(item, dict):
        out = dict(item)
    else:
        out = {k: getattr(item, k) for k in ("code", "flow") if hasattr(item, k)}
    out["code"] = str(out.get("code"))
    name = out.get("name") or out.get("sub_name") or out.get("main_name") or out["code"]
    out["name"] = str(name)
    return out


def _catalog_items() -> list[dict]:
    cat = _catalog()
    if cat is None:
        return list(_FALLBACK_CATALOG)
    items = getattr(cat, "items", None)
    if callable(items):
        items = items()
    if isinstance(items, dict):
        items = list(items.values())
    try:
        return [_item_json(i) for i in (items or [])]
    except Exception:  # noqa: BLE001 - logged; an unreadable catalog serves the fallback one
        log.exception("platform-sim: catalog items unreadable")
        return list(_FALLBACK_CATALOG)


def _validate_form(item_code: str, form: Any) -> tuple[dict[str, str], Any]:
    item, have_catalog = _catalog_item(item_code)
    errors: dict[str, str] = {}
    if have_catalog and item is None:
        errors["item_code"] = "该事项不存在或暂停办理，请重新选择事项"
        return errors, None
    if not isinstance(form, dict):
        errors["form"] = "表单内容格式不正确"
        return errors, item
    if item is not None:
        try:
            for k, msg in (validate_form(item, form) or {}).items():
                errors[f"form.{k}"] = str(msg)
        except Exception:  # noqa: BLE001 - logged; an unreadable form is the citizen's 422, not a 500
            log.exception("platform-sim: form validation failed")
            errors["form"] = "表单内容无法识别，请重新填写"
    return errors, item


def _promised_date(item: Any, now: float) -> str:
    days = 5
    limit = getattr(item, "promised_limit", None) if item is not None else None
    try:
        n = parse_promised_limit(limit) if limit is not None else None
        if isinstance(n, int):
            days = n
    except Exception:  # noqa: BLE001 - logged; an unreadable limit means the default five days
        log.exception("platform-sim: promised limit unreadable")
    d = _dt.datetime.fromtimestamp(now).date()
    added = 0
    while added < days:
        d += _dt.timedelta(days=1)
        if d.weekday() < 5:
            added += 1
    return d.isoformat()


def _validate_applicant(a: Any, prefix: str = "applicant") -> dict[str, str]:
    errors: dict[str, str] = {}
    if not isinstance(a, dict):
        return {prefix: "申请人信息缺失"}
    id_type = a.get("id_type")
    if id_type not in ID_TYPES:
        errors[f"{prefix}.id_type"] = "证件类型不正确"
    num = a.get("id_number")
    if not isinstance(num, str) or not num.strip() or len(num) > 32:
        errors[f"{prefix}.id_number"] = "请填写证件号码"
    elif id_type == "resident_id":
        try:
            validate_id_number(num)
        except InvalidIdNumber as e:
            errors[f"{prefix}.id_number"] = str(e)
    name = a.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        errors[f"{prefix}.name"] = "请填写申请人姓名"
    phone = a.get("phone")
    if not isinstance(phone, str) or not is_mobile(phone):
        errors[f"{prefix}.phone"] = "请填写11位手机号码"
    return errors


def _req_str(body: dict, key: str, errors: dict, msg: str, maxlen: int = 64, required: bool = True) -> None:
    v = body.get(key)
    if v is None and not required:
        return
    if not isinstance(v, str) or not v.strip() or len(v) > maxlen:
        errors[key] = msg


def _req_time(body: dict, key: str, errors: dict) -> None:
    v = body.get(key)
    try:
        if not isinstance(v, str):
            raise ValueError
        _dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        errors[key] = "时间格式不正确"


def _evaluation_extras(data: dict) -> dict[str, str]:
    """The indicator-set fields of an evaluation (all optional: older kiosks send none of them)."""
    errors: dict[str, str] = {}
    reasons = data.get("reasons")
    if reasons is not None and (not isinstance(reasons, list) or len(reasons) > 10
                                or not all(isinstance(r, str) and 0 < len(r) <= 64 for r in reasons)):
        errors["reasons"] = "评价原因格式不正确"
    note = data.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 500):
        errors["note"] = "补充说明不超过500字"
    _req_str(data, "indicator_set_version", errors, "评价指标版本不正确", required=False)
    if data.get("channel") not in (None, "self_service_terminal"):
        errors["channel"] = "评价渠道不正确"
    if not isinstance(data.get("later", False), bool):
        errors["later"] = "格式不正确"
    return errors


class Reply(Exception):
    """Raised inside a handler to answer immediately."""

    def __init__(self, status: int, body: Any = None, headers: dict | None = None, ctype: str = "application/json"):
        self.status, self.body, self.headers, self.ctype = status, body, headers or {}, ctype


def problem(status: int, code: str, title: str, detail: str = "", errors: dict | None = None,
            headers: dict | None = None) -> Reply:
    body = {"type": f"https://qhb.example/problems/{code}", "title": title, "status": status, "code": code}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    return Reply(status, body, headers, "application/problem+json")


def _already_rated() -> Reply:
    return problem(409, "already_rated", "this case has been rated", "这件事已经评价过了，每件事只能评价一次")


# ----------------------------------------------------------------------- state
class SimState:
    """SQLite-backed platform state; one connection guarded by a lock (the sim is not a throughput target)."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS applications(
        tracking_no TEXT PRIMARY KEY, local_tracking_no TEXT, idem_key TEXT, kiosk_id TEXT, item_code TEXT,
        id_type TEXT, id_number TEXT, body TEXT, created_at REAL, promised_date TEXT, returned INTEGER);
    CREATE INDEX IF NOT EXISTS app_applicant ON applications(id_type, id_number);
    CREATE TABLE IF NOT EXISTS idem(
        kiosk_id TEXT, key TEXT, endpoint TEXT, body_hash TEXT, status INTEGER, response TEXT,
        PRIMARY KEY(kiosk_id, key));
    CREATE TABLE IF NOT EXISTS nonces(kiosk_id TEXT, nonce TEXT, ts REAL, PRIMARY KEY(kiosk_id, nonce));
    CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS records(id TEXT PRIMARY KEY, kind TEXT, body TEXT, created_at REAL);
    CREATE TABLE IF NOT EXISTS identity_tokens(token TEXT PRIMARY KEY, id_type TEXT, id_number TEXT, name TEXT,
                                               expires REAL);
    CREATE TABLE IF NOT EXISTS payments(payment_id TEXT PRIMARY KEY, item_code TEXT, amount_cents INTEGER,
        created_at REAL, expires REAL, paid_at REAL);
    CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
    CREATE TABLE IF NOT EXISTS certificates(serial TEXT PRIMARY KEY, kind TEXT, issued_at REAL);
    """

    def __init__(self, state_dir: str | os.PathLike[str]):
        self.dir = Path(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "materials").mkdir(exist_ok=True)
        self.db = sqlite3.connect(self.dir / "platform.db", check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(self.SCHEMA)
        self.lock = threading.RLock()
        # /v1 traffic since this process started (in memory: a byte count per request is no SQLite write)
        self.traffic = {"requests": 0, "bytes_in": 0, "bytes_out": 0, "connections": 0}
        self._traffic_lock = threading.Lock()

    def count_traffic(self, requests: int = 0, bytes_in: int = 0, bytes_out: int = 0, connections: int = 0) -> None:
        with self._traffic_lock:
            self.traffic["connections"] += connections
            self.traffic["requests"] += requests
            self.traffic["bytes_in"] += bytes_in
            self.traffic["bytes_out"] += bytes_out

    def close(self) -> None:
        with self.lock:
            self.db.close()

    def bump(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.db.execute("INSERT INTO counters(name, value) VALUES(?, ?) "
                            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", (name, n))

    def counter(self, name: str) -> int:
        row = self.db.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def time_offset(self) -> float:
        row = self.db.execute("SELECT value FROM meta WHERE key='time_offset'").fetchone()
        return float(row[0]) if row else 0.0

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.db.execute("INSERT INTO meta(key, value) VALUES('time_offset', ?) "
                            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS REAL) + excluded.value",
                            (float(seconds),))

    def stats(self) -> dict:
        with self.lock:
            accepted = self.db.execute("SELECT count(*) FROM applications").fetchone()[0]
            return {
                "accepted": accepted,
                "duplicates_suppressed": self.counter("duplicates_suppressed"),
                "rejected": self.counter("rejected"),
                "bad_signatures": self.counter("bad_signatures"),
                "evaluations": self.db.execute("SELECT count(*) FROM records WHERE kind='evaluation'").fetchone()[0],
                "help_requests": self.db.execute(
                    "SELECT count(*) FROM records WHERE kind='help_request'").fetchone()[0],
                "home_visits": self.db.execute("SELECT count(*) FROM records WHERE kind='home_visit'").fetchone()[0],
                "materials": sum(1 for _ in (self.dir / "materials").iterdir()),
                **self.traffic_snapshot(),
            }

    def traffic_snapshot(self) -> dict[str, int]:
        """/v1 requests, request bytes (line, headers, body), response bytes (status line, headers, body) and
        the TCP connections that carried them (a new connection on a real uplink costs a TLS handshake)."""
        with self._traffic_lock:
            return dict(self.traffic)

    def material_path(self, sha: str) -> Path:
        return self.dir / "materials" / sha


@dataclass
class SimOptions:
    mode: str = "normal"
    fail_rate: float | None = None  # None: the mode's default
    latency_ms: int = 0
    progress_step_s: float = 30.0   # received -> accepted -> in_review -> done/returned
    pay_after_s: float = 20.0
    secrets: dict[str, bytes] = field(default_factory=dict)
    max_skew_s: int = signing.MAX_SKEW_S
    seed: int | None = None

    def rate(self) -> float:
        if self.fail_rate is not None:
            return self.fail_rate
        return {"flaky": 0.3, "garbage": 0.5, "accept-then-drop": 0.5}.get(self.mode, 1.0)

    def delay_s(self) -> float:
        if self.latency_ms:
            return self.latency_ms / 1000
        return 2.0 if self.mode == "slow" else 0.0


def default_secrets() -> dict[str, bytes]:
    """The development kiosk credential (config/dev-credentials.toml), trusted when none is given."""
    c = development_credentials()
    return {c.kiosk_id: c.secret}


# ---------------------------------------------------------------------- server
class PlatformSimulator(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], state: SimState, opts: SimOptions,
                 ssl_context: ssl.SSLContext | None = None):
        self.state = state
        self.opts = opts
        self.rng = random.Random(opts.seed)
        super().__init__(addr, _Handler)
        self.tls = ssl_context is not None
        if ssl_context is not None:  # HTTPS; the handshake runs in the request's thread, not the accept loop
            self.socket = ssl_context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    def now(self) -> float:
        return time.time() + self.state.time_offset()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: PlatformSimulator
    server_version = "qhb-platform-sim/1"

    def log_message(self, fmt: str, *args: Any) -> None:  # requests are not logged (bodies carry personal data)
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- plumbing
    def _send(self, status: int, body: Any, ctype: str = "application/json", headers: dict | None = None) -> None:
        if isinstance(body, (bytes, bytearray)):
            raw = bytes(body)
        elif body is None:
            raw = b""
        else:
            raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        if raw or status not in (204, 304):
            self.send_header(
                "Content-Type",
                ctype if "charset" in ctype or not ctype.startswith("text") else ctype + "; charset=utf-8",
            )
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        # head and body in one write: separate small writes meet delayed ACKs and cost 40 ms each
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(raw)
        if getattr(self, "_counted", False):
            self.server.state.count_traffic(bytes_out=sum(len(b) for b in self._headers_buffer))
        self.flush_headers()

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _body(self) -> bytes:
        n = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raise problem(400, "bad_request", "chunked bodies are not accepted", "请求格式不正确")
        try:
            length = int(n) if n else 0
        except ValueError:
            raise problem(400, "bad_request", "bad Content-Length", "请求格式不正确") from None
        if length < 0:
            raise problem(400, "bad_request", "bad Content-Length", "请求格式不正确")
        if length > MAX_BODY:
            self.close_connection = True
            raise problem(413, "too_large", "body too large", "上传内容过大")
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def do_TRACE(self) -> None:
        self._dispatch("TRACE")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def __getattr__(self, name: str):
        # any other method (QUERY, PROPFIND, ...) gets a 405 problem, not the stdlib's 501 HTML page
        if name.startswith("do_") and name[3:].isalpha():
            return lambda: self._dispatch(name[3:])
        raise AttributeError(name)

    def _dispatch(self, method: str) -> None:
        srv = self.server
        self._counted = not self.path.startswith("/__sim/")  # the kiosk's traffic, not the test harness's
        try:
            body = self._body()
        except Reply as reply:
            self._send(reply.status, reply.body, reply.ctype, reply.headers)
            return
        if self._counted:
            head = len(self.raw_requestline) + sum(len(k) + len(v) + 4 for k, v in self.headers.items()) + 2
            first = not getattr(self, "_conn_counted", False)
            self._conn_counted = True
            srv.state.count_traffic(requests=1, bytes_in=head + len(body), connections=int(first))
        parts = urlsplit(self.path)
        path = parts.path
        if path.startswith("/__sim/"):
            try:
                self._sim_endpoint(method, path, body)
            except Reply as reply:
                self._send(reply.status, reply.body, reply.ctype, reply.headers)
            return
        opts = srv.opts
        mode = opts.mode
        rate = opts.rate()
        if mode == "outage":
            r = problem(503, "unavailable", "platform unavailable", "政务服务平台暂时无法访问，请稍后再试",
                        headers={"Retry-After": "1"})
            self._send(r.status, r.body, r.ctype, r.headers)
            return
        if mode == "flaky" and srv.rng.random() < rate:
            choice = srv.rng.choice(("500", "502", "429", "drop"))
            if choice == "drop":
                self._drop()
            elif choice == "429":
                r = problem(
                    429, "rate_limited", "too many requests", "请求过于频繁，请稍后再试", headers={"Retry-After": "1"}
                )
                self._send(r.status, r.body, r.ctype, r.headers)
            elif choice == "502":
                self._send(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
            else:
                r = problem(500, "internal", "internal error", "平台内部错误")
                self._send(r.status, r.body, r.ctype, r.headers)
            return
        try:
            status, payload, ctype, headers = self._v1(method, path, parts.query, body)
        except Reply as reply:
            status, payload, ctype, headers = reply.status, reply.body, reply.ctype, reply.headers
        except Exception:  # a simulator bug must look like a platform 500, not a hang
            log.exception("platform-sim: handler failed")
            r = problem(500, "internal", "internal error", "平台内部错误")
            status, payload, ctype, headers = r.status, r.body, r.ctype, r.headers
        delay = opts.delay_s()
        if delay:
            time.sleep(delay)
        if mode == "accept-then-drop" and method in ("POST", "PUT") and 200 <= status < 300 and srv.rng.random() < rate:
            self._drop()
            return
        if mode == "garbage" and srv.rng.random() < rate:
            self._garbage()
            return
        self._send(status, payload, ctype, headers)

    def _garbage(self) -> None:
        kind = self.server.rng.choice(("html", "truncated", "types", "array", "empty", "huge"))
        if kind == "html":
            self._send(200, "<!DOCTYPE html><html><body>系统维护中</body></html>".encode(), "text/html")
        elif kind == "truncated":
            self._send(200, b'{"tracking_no": "SD2611', "application/json")
        elif kind == "types":
            self._send(201, {"tracking_no": 12345, "status": None, "promised_date": [], "sha256": 1, "verified": "yes"})
        elif kind == "array":
            self._send(200, [1, 2, 3])
        elif kind == "empty":
            self._send(200, b"", "application/json")
        else:
            self._send(200, b'{"pad": "' + b"x" * (3 * 1024 * 1024) + b'"}', "application/json")

    # -- /__sim
    def _sim_endpoint(self, method: str, path: str, body: bytes) -> None:
        srv, st = self.server, self.server.state
        if method == "GET" and path == "/__sim/stats":
            raise Reply(200, st.stats())
        if method == "GET" and path == "/__sim/applications":
            with st.lock:
                rows = st.db.execute("SELECT tracking_no, local_tracking_no, idem_key, item_code FROM applications "
                                     "ORDER BY created_at").fetchall()
            raise Reply(
                200,
                {
                    "applications": [
                        dict(zip(("tracking_no", "local_tracking_no", "idempotency_key", "item_code"), r)) for r in rows
                    ]
                },
            )
        if method == "GET" and path == "/__sim/mode":
            o = srv.opts
            raise Reply(200, {"mode": o.mode, "fail_rate": o.rate(), "latency_ms": o.latency_ms})
        data = self._json(body) if body else {}
        if method == "POST" and path == "/__sim/mode":
            mode = data.get("mode", srv.opts.mode)
            if mode not in MODES:
                raise problem(400, "bad_request", "unknown mode", f"mode must be one of {MODES}")
            srv.opts.mode = mode
            if "fail_rate" in data:
                srv.opts.fail_rate = None if data["fail_rate"] is None else float(data["fail_rate"])
            if "latency_ms" in data:
                srv.opts.latency_ms = int(data["latency_ms"])
            raise Reply(200, {"mode": srv.opts.mode, "fail_rate": srv.opts.rate(), "latency_ms": srv.opts.latency_ms})
        if method == "POST" and path == "/__sim/advance":
            st.advance(float(data.get("seconds", 0)))
            raise Reply(200, {"time_offset": st.time_offset()})
        m = re.fullmatch(r"/__sim/payments/([A-Za-z0-9_-]+)/pay", path)
        if method == "POST" and m:
            with st.lock:
                n = st.db.execute("UPDATE payments SET paid_at=? WHERE payment_id=? AND paid_at IS NULL",
                                  (srv.now(), m.group(1))).rowcount
            raise Reply(200, {"paid": bool(n)})
        raise problem(404, "not_found", "no such simulator endpoint")

    # -- /v1
    @staticmethod
    def _json(body: bytes) -> Any:
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise problem(400, "bad_request", "body is not JSON", "请求格式不正确") from None

    def _json_object(self, body: bytes) -> dict:
        data = self._json(body)
        if not isinstance(data, dict):
            raise problem(400, "bad_request", "body must be a JSON object", "请求格式不正确")
        return data

    def _authenticate(self, method: str, body: bytes) -> str:
        srv, st = self.server, self.server.state
        # A signature header sent twice is malformed: which copy counts would be anyone's guess (a proxy
        # in front may read the first, a mapping keeps the last), so neither does.
        if any(len(self.headers.get_all(h) or ()) > 1 for h in signing.SIGNATURE_HEADERS):
            v = signing.Verdict(False, "bad_signature")
        else:
            v = signing.verify(dict(self.headers.items()), method, self.path, body, srv.opts.secrets,
                               now=time.time(), max_skew_s=srv.opts.max_skew_s)
        if not v.ok:
            st.bump("bad_signatures")
            msgs = {"clock_skew": "终端时间与平台相差过大，请联系技术人员校准时间"}
            raise problem(
                401, v.code, "request not authenticated", msgs.get(v.code, "终端身份校验失败，请联系技术人员")
            )
        with st.lock:
            try:
                st.db.execute(
                    "INSERT INTO nonces(kiosk_id, nonce, ts) VALUES(?,?,?)", (v.kiosk_id, v.nonce, time.time())
                )
            except sqlite3.IntegrityError:
                st.bump("bad_signatures")
                raise problem(401, "nonce_replayed", "nonce already used", "终端身份校验失败，请联系技术人员") from None
            if secrets.randbelow(500) == 0:
                st.db.execute("DELETE FROM nonces WHERE ts < ?", (time.time() - 3 * srv.opts.max_skew_s,))
        return v.kiosk_id

    def _v1(self, method: str, path: str, query: str, body: bytes):
        kiosk_id = self._authenticate(method, body)
        routes: list[tuple[str, str, Callable[..., Any]]] = [
            ("POST", r"/v1/applications", self._post_application),
            ("POST", r"/v1/applications/search", self._search_applications),
            ("GET", r"/v1/applications/([^/]+)", self._get_application),
            ("PUT", r"/v1/materials/([^/]+)", self._put_material),
            ("GET", r"/v1/catalog", self._get_catalog),
            ("GET", r"/v1/health", self._get_health),
            ("POST", r"/v1/evaluations", self._post_evaluation),
            ("POST", r"/v1/help-requests", self._post_help),
            ("POST", r"/v1/home-visits", self._post_home_visit),
            ("POST", r"/v1/identity/verify", self._verify_identity),
            ("GET", r"/v1/certificates/([^/]+)", self._get_certificate),
            ("POST", r"/v1/payments", self._post_payment),
            ("GET", r"/v1/payments/([^/]+)", self._get_payment),
            ("POST", r"/v1/licences/fetch", self._fetch_licence),
            ("POST", r"/v1/real-estate/search", self._search_real_estate),
        ]
        allowed = []
        for m, pattern, fn in routes:
            mm = re.fullmatch(pattern, path)
            if mm:
                allowed.append(m)
                if m == method:
                    return fn(kiosk_id, body, parse_qs(query), *mm.groups())
        if allowed:
            raise problem(405, "method_not_allowed", "method not allowed", headers={"Allow": ", ".join(allowed)})
        raise problem(404, "not_found", "no such endpoint", "请求的服务不存在")

    def _rejected(self, r: Reply) -> Reply:
        self.server.state.bump("rejected")
        return r

    def _replay(self, kiosk_id: str, endpoint: str, data: dict) -> tuple | None:
        """The stored first answer for this Idempotency-Key (409 if the body differs), or None."""
        st = self.server.state
        key = self.headers.get("Idempotency-Key", "")
        if not _IDEM.match(key):
            raise self._rejected(problem(400, "bad_request", "Idempotency-Key header missing or malformed",
                                         "请求缺少幂等键"))
        with st.lock:
            row = st.db.execute("SELECT endpoint, body_hash, status, response FROM idem WHERE kiosk_id=? AND key=?",
                                (kiosk_id, key)).fetchone()
            if not row:
                return None
            if row[0] != endpoint or row[1] != _canon(data):
                raise self._rejected(problem(409, "idempotency_key_reused",
                                             "Idempotency-Key reused with a different request",
                                             "该申请编号已用于另一份申请，请联系技术人员"))
            st.bump("duplicates_suppressed")
            return row[2], json.loads(row[3]), "application/json", {"Idempotent-Replayed": "true"}

    def _idempotent(self, kiosk_id: str, endpoint: str, data: dict, create) -> tuple:
        """Run `create(now, key)` once per Idempotency-Key; replays return the first answer."""
        st = self.server.state
        key = self.headers.get("Idempotency-Key", "")
        h = _canon(data)
        with st.lock:
            again = self._replay(kiosk_id, endpoint, data)
            if again:
                return again
            st.db.execute("BEGIN IMMEDIATE")
            try:
                status, resp = create(self.server.now(), key)
                st.db.execute(
                    "INSERT INTO idem(kiosk_id, key, endpoint, body_hash, status, response) VALUES(?,?,?,?,?,?)",
                    (kiosk_id, key, endpoint, h, status, json.dumps(resp, ensure_ascii=False)),
                )
                st.db.execute("COMMIT")
            except BaseException:
                st.db.execute("ROLLBACK")
                raise
        return status, resp, "application/json", {}

    def _post_application(self, kiosk_id: str, body: bytes, q: dict):
        st = self.server.state
        data = self._json_object(body)
        again = self._replay(kiosk_id, "applications", data)
        if again:
            return again
        errors: dict[str, str] = {}
        _req_str(data, "item_code", errors, "请选择办理事项")
        _req_str(data, "impl_code", errors, "实施编码不正确", required=False)
        _req_str(data, "kiosk_id", errors, "终端编号不正确")
        _req_str(data, "local_tracking_no", errors, "本地受理编号不正确", maxlen=32, required=False)
        _req_time(data, "created_at", errors)
        errors.update(_validate_applicant(data.get("applicant")))
        item = None
        if "item_code" not in errors:
            ferr, item = _validate_form(data["item_code"], data.get("form"))
            errors.update(ferr)
            impl = getattr(item, "implementation_code", None)
            if impl and "impl_code" not in errors and data.get("impl_code") not in (None, impl):
                errors["impl_code"] = "实施编码与所选事项不符"
        mats = data.get("materials")
        if not isinstance(mats, list) or not all(isinstance(s, str) and _SHA.match(s) for s in mats):
            errors["materials"] = "材料清单格式不正确"
        else:
            missing = [s for s in mats if not st.material_path(s).exists()]
            if missing:
                errors["materials"] = f"有{len(missing)}份材料未上传，请重新提交"
        errors.update(licence_registry.application_licence_errors(data.get("licences")))
        if errors:
            raise self._rejected(problem(422, "validation_failed", "application is not valid",
                                         "申请内容有误，请按提示修改", errors))
        applicant = data["applicant"]

        def create(now: float, key: str):
            tn = new_tracking_no("SD")
            promised = _promised_date(item, now)
            returned = int(hashlib.sha256(tn.encode()).digest()[0] < 26)  # about one in ten
            st.db.execute("INSERT INTO applications VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                          (tn, data.get("local_tracking_no"), key, kiosk_id, data["item_code"], applicant["id_type"],
                           applicant["id_number"], json.dumps(data, ensure_ascii=False), now, promised, returned))
            return 201, {"tracking_no": tn, "status": "received", "promised_date": promised}

        return self._idempotent(kiosk_id, "applications", data, create)

    def _status_of(self, row) -> dict:
        tn, local_no, item_code, created, promised, returned = row
        step = self.server.opts.progress_step_s
        elapsed = self.server.now() - created
        history = []
        for i, s in enumerate(STAGES):
            if elapsed >= i * step:
                history.append({"status": s, "at": _iso(created + i * step)})
        status, reason = history[-1]["status"], None
        if elapsed >= 3 * step:
            status = "returned" if returned else "done"
            reason = RETURN_REASON if returned else None
            history.append({"status": status, "at": _iso(created + 3 * step)})
        return {"tracking_no": tn, "local_tracking_no": local_no, "item_code": item_code, "status": status,
                "reason": reason, "promised_date": promised, "history": history}

    _STATUS_COLS = "tracking_no, local_tracking_no, item_code, created_at, promised_date, returned"

    def _get_application(self, kiosk_id: str, body: bytes, q: dict, tn: str):
        st = self.server.state
        with st.lock:
            row = st.db.execute(
                f"SELECT {self._STATUS_COLS} FROM applications WHERE tracking_no=? OR local_tracking_no=?", (tn, tn)
            ).fetchone()
        if not row:
            raise problem(404, "not_found", "no such case", "未查到该办件，请核对办件编号")
        return 200, self._status_of(row), "application/json", {}

    def _search_applications(self, kiosk_id: str, body: bytes, q: dict):
        st = self.server.state
        data = self._json_object(body)
        errors = {k: v for k, v in _validate_applicant({**data, "name": "x", "phone": "13800000000"}, "x").items()}
        errors = {k.split(".", 1)[1]: v for k, v in errors.items() if k.startswith("x.")}
        if errors:
            raise self._rejected(problem(422, "validation_failed", "bad applicant key", "证件信息有误", errors))
        with st.lock:
            rows = st.db.execute(f"SELECT {self._STATUS_COLS} FROM applications WHERE id_type=? AND id_number=? "
                                 "ORDER BY created_at DESC", (data["id_type"], data["id_number"])).fetchall()
        return 200, {"applications": [self._status_of(r) for r in rows]}, "application/json", {}

    def _put_material(self, kiosk_id: str, body: bytes, q: dict, sha: str):
        st = self.server.state
        if not _SHA.match(sha):
            raise self._rejected(problem(400, "bad_request", "not a sha256", "材料编号不正确"))
        if hashlib.sha256(body).hexdigest() != sha:
            raise self._rejected(problem(422, "hash_mismatch", "content does not match its hash",
                                         "材料上传不完整，请重新上传", {"sha256": "内容与编号不符"}))
        p = st.material_path(sha)
        if p.exists():
            return 200, {"sha256": sha, "size": len(body)}, "application/json", {}
        tmp = p.with_name(f".{sha}.{threading.get_ident()}.tmp")
        tmp.write_bytes(body)
        os.replace(tmp, p)
        return 201, {"sha256": sha, "size": len(body)}, "application/json", {}

    def _get_catalog(self, kiosk_id: str, body: bytes, q: dict):
        items = _catalog_items()
        doc = {"version": _canon(items)[:16], "items": items}
        etag = f'"{doc["version"]}"'
        if self.headers.get("If-None-Match") == etag:
            return 304, None, "application/json", {"ETag": etag}
        return 200, doc, "application/json", {"ETag": etag}

    def _get_health(self, kiosk_id: str, body: bytes, q: dict):
        """Signed and tiny: the status and the platform's clock (real time, for a skew check), never cached."""
        doc = {"status": "ok", "server_time": _iso(time.time())}
        return 200, doc, "application/json", {"Cache-Control": "no-store"}

    def _post_evaluation(self, kiosk_id: str, body: bytes, q: dict):
        st = self.server.state
        data = self._json_object(body)
        again = self._replay(kiosk_id, "evaluations", data)
        if again:
            return again
        errors: dict[str, str] = {}
        _req_str(data, "tracking_no", errors, "请填写办件编号", maxlen=32)
        _req_str(data, "kiosk_id", errors, "终端编号不正确")
        _req_time(data, "created_at", errors)
        level = data.get("level")
        if level not in LEVELS:
            errors["level"] = "请选择满意程度"
        reason = data.get("reason")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
            errors["reason"] = "原因不超过500字"
        elif level in BAD_LEVELS and not (isinstance(reason, str) and reason.strip()) and not data.get("reasons"):
            errors["reason"] = "请告诉我们不满意的原因"
        for k in ("item_code", "impl_code"):
            _req_str(data, k, errors, "事项编码不正确", required=False)
        errors.update(_evaluation_extras(data))
        if errors:
            raise self._rejected(
                problem(422, "validation_failed", "evaluation is not valid", "评价内容有误，请按提示修改", errors)
            )
        # A rating belongs to a case the platform knows: an application, a printed certificate or a payment.
        with st.lock:
            tn = data["tracking_no"]
            known = (st.db.execute("SELECT 1 FROM applications WHERE tracking_no=?", (tn,)).fetchone()
                     or st.db.execute("SELECT 1 FROM certificates WHERE serial=?", (tn,)).fetchone()
                     or st.db.execute("SELECT 1 FROM payments WHERE payment_id=?", (tn,)).fetchone())
        if not known:
            raise self._rejected(problem(404, "not_found", "no such case", "未查到该办件，请核对办件编号"))
        if self._rated(tn):  # one evaluation per case (GB/T 39734); a retry with the same key was replayed above
            raise self._rejected(_already_rated())

        def create(now: float, key: str):
            if self._rated(tn):  # a second evaluation raced this one
                raise _already_rated()
            eid = "EV" + secrets.token_hex(8).upper()
            st.db.execute(
                "INSERT INTO records VALUES(?,?,?,?)", (eid, "evaluation", json.dumps(data, ensure_ascii=False), now)
            )
            receipt = {"evaluation_id": eid, "tracking_no": data["tracking_no"], "level": level,
                       "follow_up": level in BAD_LEVELS}
            if "indicator_set_version" in data:
                receipt["indicator_set_version"] = data["indicator_set_version"]
            return 201, receipt

        return self._idempotent(kiosk_id, "evaluations", data, create)

    def _rated(self, tracking_no: str) -> bool:
        with self.server.state.lock:
            return self.server.state.db.execute(
                "SELECT 1 FROM records WHERE kind='evaluation' AND json_extract(body, '$.tracking_no')=?",
                (tracking_no,)).fetchone() is not None

    def _post_simple(self, kiosk_id: str, data: dict, kind: str, errors: dict):
        st = self.server.state
        _req_str(data, "kiosk_id", errors, "终端编号不正确")
        _req_time(data, "created_at", errors)
        for k in ("item_code",):
            _req_str(data, k, errors, "事项编码不正确", required=False)
        if "note" in data and (not isinstance(data["note"], str) or len(data["note"]) > 1000):
            errors["note"] = "备注不超过1000字"
        if errors:
            raise self._rejected(
                problem(422, "validation_failed", f"{kind} is not valid", "填写内容有误，请按提示修改", errors)
            )

        def create(now: float, key: str):
            rid = ("HR" if kind == "help_request" else "HV") + secrets.token_hex(8).upper()
            st.db.execute("INSERT INTO records VALUES(?,?,?,?)", (rid, kind, json.dumps(data, ensure_ascii=False), now))
            return 201, {"request_id": rid, "status": "received" if kind == "help_request" else "scheduled"}

        return self._idempotent(kiosk_id, kind, data, create)

    def _post_help(self, kiosk_id: str, body: bytes, q: dict):
        data = self._json_object(body)
        again = self._replay(kiosk_id, "help_request", data)
        if again:
            return again
        errors: dict[str, str] = {}
        _req_str(data, "topic", errors, "请说明需要帮助的事项", maxlen=200)
        c = data.get("contact")
        if not isinstance(c, dict):
            errors["contact"] = "请留下联系人和电话"
        else:
            if not isinstance(c.get("name"), str) or not c["name"].strip() or len(c["name"]) > 64:
                errors["contact.name"] = "请填写联系人姓名"
            if not isinstance(c.get("phone"), str) or not is_mobile(c["phone"]):
                errors["contact.phone"] = "请填写11位手机号码"
        return self._post_simple(kiosk_id, data, "help_request", errors)

    def _post_home_visit(self, kiosk_id: str, body: bytes, q: dict):
        data = self._json_object(body)
        again = self._replay(kiosk_id, "home_visit", data)
        if again:
            return again
        errors = _validate_applicant(data.get("applicant"))
        _req_str(data, "address", errors, "请填写上门地址", maxlen=300)
        try:
            _dt.date.fromisoformat(data["preferred_date"])
        except (KeyError, TypeError, ValueError):
            errors["preferred_date"] = "请选择上门日期"
        return self._post_simple(kiosk_id, data, "home_visit", errors)

    def _verify_identity(self, kiosk_id: str, body: bytes, q: dict):
        st, srv = self.server.state, self.server
        data = self._json_object(body)
        method = data.get("method")
        if method == "ctid_qr":
            tok = data.get("token")
            if not isinstance(tok, str) or not tok:
                raise self._rejected(
                    problem(
                        422, "validation_failed", "token missing", "请出示网证二维码", {"token": "请出示网证二维码"}
                    )
                )
            try:
                if not tok.startswith(CTID_PREFIX):
                    raise ValueError
                raw = tok[len(CTID_PREFIX):]
                ident = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
                id_type, id_number, name, ts = ident["id_type"], ident["id_number"], ident["name"], float(ident["ts"])
                if id_type not in ID_TYPES or not all(isinstance(x, str) and x for x in (id_number, name)):
                    raise ValueError
            except (ValueError, KeyError, TypeError):  # not base64, not JSON, fields missing or mistyped
                return (
                    200,
                    {"verified": False, "reason": "网证二维码无法识别，请在手机上刷新网证后重新出示"},
                    "application/json",
                    {},
                )
            if abs(time.time() - ts) > CTID_VALID_S:
                return (
                    200,
                    {"verified": False, "reason": "网证二维码已过期，请在手机上刷新后重新出示"},
                    "application/json",
                    {},
                )
        elif method == "card_face":
            errors = _validate_applicant({**data, "phone": "13800000000"}, "x")
            errors = {k.split(".", 1)[1]: v for k, v in errors.items()}
            photo = data.get("face_photo")
            img = b""
            if not isinstance(photo, str) or not photo:
                errors["face_photo"] = "请正对摄像头拍照"
            else:
                try:
                    img = base64.b64decode(photo, validate=True)
                except ValueError:
                    errors["face_photo"] = "照片格式不正确，请重新拍照"
            if errors:
                raise self._rejected(
                    problem(422, "validation_failed", "card data incomplete", "证件或照片信息不完整", errors)
                )
            if len(img) < 16 or img.startswith(b"NOMATCH"):
                return (
                    200,
                    {"verified": False, "reason": "人脸与证件照片不一致，请摘下帽子和口罩，正对摄像头重试"},
                    "application/json",
                    {},
                )
            id_type, id_number, name = data["id_type"], data["id_number"], data["name"]
        else:
            raise self._rejected(
                problem(422, "validation_failed", "unknown method", "核验方式不正确", {"method": "核验方式不正确"})
            )
        token = "IT" + secrets.token_urlsafe(24)
        with st.lock:
            st.db.execute(
                "INSERT INTO identity_tokens VALUES(?,?,?,?,?)",
                (token, id_type, id_number, name, srv.now() + IDENTITY_TOKEN_S),
            )
        return 200, {"verified": True, "identity_token": token,
                     "identity": {"id_type": id_type, "id_number": id_number, "name": name}}, "application/json", {}

    def _get_certificate(self, kiosk_id: str, body: bytes, q: dict, kind: str):
        st, srv = self.server.state, self.server
        token = (q.get("identity_token") or [""])[0]
        titles = dict(CERTIFICATES)
        if kind not in titles:
            item, _ = _catalog_item(kind)
            if item is not None and getattr(item, "flow", None) == "query_print":
                titles[kind] = (str(getattr(item, "main_name", None) or getattr(item, "name", kind)), ["状态：正常"])
        if not _KIND.match(kind) or kind not in titles:
            raise problem(404, "not_found", "no such certificate", "暂不支持打印该证明")
        with st.lock:
            row = st.db.execute("SELECT id_type, id_number, name FROM identity_tokens WHERE token=? AND expires>?",
                                (token, srv.now())).fetchone()
        if not row:
            raise self._rejected(
                problem(403, "identity_required", "identity token missing or expired", "身份核验已过期，请重新核验身份")
            )
        title, lines = titles[kind]
        try:
            holder = f"{mask_name(row[2])} {mask_id_number(row[1])}"
        except (ValueError, TypeError, IndexError):
            holder = "***"
        serial = "ZM" + hashlib.sha256(f"{kind}{token}".encode()).hexdigest()[:12].upper()
        with st.lock:
            st.db.execute("INSERT OR IGNORE INTO certificates VALUES(?,?,?)", (serial, kind, srv.now()))
        return 200, {"kind": kind, "title": title, "serial": serial, "issued_at": _iso(srv.now()), "holder": holder,
                     "lines": list(lines), "verify_url": f"https://verify.qhb.example/{serial}"}, "application/json", {}

    def _payment_json(self, row) -> dict:
        pid, item_code, amount, created, expires, paid_at = row
        now = self.server.now()
        if paid_at is None and now - created >= self.server.opts.pay_after_s:
            paid_at = created + self.server.opts.pay_after_s
        status = "paid" if paid_at is not None and paid_at <= now else ("expired" if now > expires else "unpaid")
        return {"payment_id": pid, "item_code": item_code, "amount_cents": amount, "currency": "CNY", "status": status,
                "qr_payload": f"https://pay.qhb.example/p/{pid}", "expires_at": _iso(expires)}

    def _post_payment(self, kiosk_id: str, body: bytes, q: dict):
        st = self.server.state
        data = self._json_object(body)
        again = self._replay(kiosk_id, "payments", data)
        if again:
            return again
        errors: dict[str, str] = {}
        _req_str(data, "item_code", errors, "请选择缴费事项")
        _req_str(data, "kiosk_id", errors, "终端编号不正确")
        _req_str(data, "bill_ref", errors, "缴费单号不正确", required=False)
        _req_str(data, "identity_token", errors, "身份凭证不正确", maxlen=256, required=False)
        if errors:
            raise self._rejected(problem(422, "validation_failed", "payment is not valid", "缴费信息有误", errors))

        def create(now: float, key: str):
            pid = "PY" + secrets.token_hex(8).upper()
            amount = 1000 + int(hashlib.sha256(data["item_code"].encode()).hexdigest(), 16) % 49000
            st.db.execute(
                "INSERT INTO payments VALUES(?,?,?,?,?,NULL)", (pid, data["item_code"], amount, now, now + 900)
            )
            return 201, self._payment_json((pid, data["item_code"], amount, now, now + 900, None))

        return self._idempotent(kiosk_id, "payments", data, create)

    def _get_payment(self, kiosk_id: str, body: bytes, q: dict, pid: str):
        st = self.server.state
        with st.lock:
            row = st.db.execute(
                "SELECT payment_id, item_code, amount_cents, created_at, expires, paid_at FROM payments "
                "WHERE payment_id=?",
                (pid,),
            ).fetchone()
        if not row:
            raise problem(404, "not_found", "no such payment", "未查到该缴费单")
        return 200, self._payment_json(row), "application/json", {}

    # -- registries with their own modules (standins/licence_registry.py, ...): a refusal becomes problem+json
    def _registry_answer(self, answer: Callable[[], dict]):
        try:
            return 200, answer(), "application/json", {}
        except licence_registry.SimRefusal as e:
            raise self._rejected(problem(e.status, e.code, e.title, e.detail, e.errors)) from None

    def _fetch_licence(self, kiosk_id: str, body: bytes, q: dict):
        data = self._json_object(body)
        today = _dt.datetime.fromtimestamp(self.server.now(), _dt.UTC).date().isoformat()
        return self._registry_answer(lambda: licence_registry.fetch(data, today))

    def _search_real_estate(self, kiosk_id: str, body: bytes, q: dict):
        data = self._json_object(body)
        return self._registry_answer(lambda: real_estate_registry.search(data, _iso(self.server.now())))


# ------------------------------------------------------------------- embedding
@dataclass
class SimHandle:
    """A simulator running in a background thread of this process (for `kiosk run --simulate` and tests)."""

    server: PlatformSimulator
    thread: threading.Thread

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def state(self) -> SimState:
        return self.server.state

    @property
    def options(self) -> SimOptions:
        return self.server.opts

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        self.server.state.close()


def make_server(state_dir: str | os.PathLike[str], port: int = 0, host: str = "127.0.0.1",
                secrets_by_kiosk: dict[str, bytes] | None = None, tls_cert: str | os.PathLike[str] | None = None,
                tls_key: str | os.PathLike[str] | None = None, **opts: Any) -> PlatformSimulator:
    """The simulator, unstarted; trusts exactly `secrets_by_kiosk` (default: the development credential).

    With `tls_cert` (PEM chain) and `tls_key` it serves HTTPS, as a real platform does.
    """
    options = SimOptions(secrets=dict(secrets_by_kiosk) if secrets_by_kiosk else default_secrets(), **opts)
    if options.mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    context = None
    if tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls_cert, tls_key)
    return PlatformSimulator((host, port), SimState(state_dir), options, ssl_context=context)


def start_in_thread(state_dir: str | os.PathLike[str], port: int = 0, **opts: Any) -> SimHandle:
    """Start the simulator on 127.0.0.1 in a daemon thread; ``handle.url`` and ``handle.stop()``.

    Options: host, secrets_by_kiosk, mode, fail_rate, latency_ms, progress_step_s, pay_after_s, seed.
    """
    server = make_server(state_dir, port=port, **opts)
    t = threading.Thread(target=server.serve_forever, name="platform-sim", daemon=True)
    t.start()
    return SimHandle(server, t)
