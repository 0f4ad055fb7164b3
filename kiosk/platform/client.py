"""PlatformClient: signed requests to the provincial platform with classified failures.

Every failure ends as one of two exceptions, so callers decide with one ``except``:

- ``RetryableError``: connection errors, timeouts, 5xx, 408/429 (``retry_after``
  from the ``Retry-After`` header), and any 2xx whose body is not what the
  contract promises (HTML, truncated or mistyped JSON, oversized). Safe to retry
  because creating requests carry an idempotency key.
- ``PermanentError``: other 4xx. Carries the platform's problem+json ``code``,
  ``detail`` (plain Chinese for the citizen) and per-field ``errors``.

The client remembers when the platform last answered (``last_contact``) and when a
call last failed to reach it (``last_failure``), on its ``clock``: the station's
network indicator reads these instead of probing while real calls flow.

Every call has an overall deadline (``deadline_s``), not only per-read timeouts: a
server that drips bytes is cut off when it passes (``kiosk.platform.deadline``).
Money amounts are checked at the client (``kiosk.domain.money``), in a payment
order before it is sent and in the platform's answer before anyone formats them.

Calls a citizen stands waiting for (a progress look-up, an identity check, a certificate) try once
more, quietly, when the platform's answer failed fast (a dropped connection, a 5xx, a garbled body,
a short Retry-After): on a village line that fails now and then, the citizen should not be the one to
press 再试. A timeout is not tried again (the citizen has already waited for it), and neither is a
request that creates something: those go through the outbox, whose drainer has its own backoff.

Messages never include request or response bodies: they may hold personal data.
"""
from __future__ import annotations

import datetime as _dt
import email.utils
import functools
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlparse

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from kiosk.config import KioskConfig, load_config
from kiosk.domain.money import MAX_AMOUNT_CENTS, InvalidAmount, check_amount_cents
from kiosk.platform import signing
from kiosk.platform.credentials import Credentials, configured_credentials
from kiosk.platform.deadline import Deadline, watch_adapter
from kiosk.ports.platform import LICENCE_REFUSALS, LicenceRefused, PermanentError, RetryableError

log = logging.getLogger(__name__)

DEFAULT_MAX_RESPONSE = 1_000_000
MAX_RETRY_AFTER_S = 3600.0
#: The overall deadline of one call when none is given: a few read windows, never less than a minute
#: (a material upload over a slow line needs that much).
MIN_DEFAULT_DEADLINE_S = 60.0
_SHA = re.compile(r"^[0-9a-f]{64}$")
#: How a call a citizen waits for is tried again: once, after this pause, and only when the platform asks
#: to wait no longer than QUICK_RETRY_MAX_WAIT_S.
QUICK_RETRY_PAUSE_S = 0.3
QUICK_RETRY_MAX_WAIT_S = 2.0


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: Any = None
    raw: bytes = b""
    replayed: bool = False
    extra: dict = field(default_factory=dict)


def parse_retry_after(value: str | None, now: _dt.datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), capped; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        secs = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.UTC)
        now = now or _dt.datetime.now(_dt.UTC)
        secs = (when - now).total_seconds()
    if secs != secs:  # NaN
        return None
    return max(0.0, min(MAX_RETRY_AFTER_S, secs))


def _problem(body: bytes) -> tuple[str, str, dict[str, str]]:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "", "", {}
    if not isinstance(data, dict):
        return "", "", {}
    code_v, detail_v = data.get("code"), data.get("detail")
    code = code_v if isinstance(code_v, str) else ""
    detail = detail_v if isinstance(detail_v, str) else ""
    errs = data.get("errors")
    errors: dict[str, str] = {}
    if isinstance(errs, dict):
        for k, v in errs.items():
            errors[str(k)[:100]] = (v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))[:300]
    return code[:100], detail[:500], errors


def _need(d: Any, key: str, typ: type | tuple, what: str) -> Any:
    if (not isinstance(d, dict) or key not in d or not isinstance(d[key], typ)
            or isinstance(d[key], bool) and typ is not bool):
        raise RetryableError(f"malformed {what} response from platform (field {key})", code="malformed_response")
    return d[key]


_F = TypeVar("_F", bound=Callable[..., Any])


def _noted(fn: _F) -> _F:
    """A contract call whose answer fails its shape check is a failure to reach the platform, not contact."""
    @functools.wraps(fn)
    def call(self: PlatformClient, *args: Any, **kw: Any) -> Any:
        try:
            return fn(self, *args, **kw)
        except RetryableError:
            self._note(False)
            raise
    return call  # type: ignore[return-value]


def worth_a_quick_retry(e: BaseException) -> bool:
    """A failure that came back fast and may not come back: not a timeout, not "wait a while"."""
    if not isinstance(e, RetryableError) or e.code == "timeout":
        return False
    return e.retry_after is None or e.retry_after <= QUICK_RETRY_MAX_WAIT_S


def _citizen_waits(fn: _F) -> _F:
    """Try a read a citizen is waiting for once more after a fast failure (module docstring)."""
    @functools.wraps(fn)
    def call(self: PlatformClient, *args: Any, **kw: Any) -> Any:
        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            after = getattr(exc, "retry_after", None) or 0.0
            return max(self.quick_retry_pause_s, after)

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.info("platform call %s failed fast (%s); trying once more", fn.__name__, getattr(exc, "code", ""))

        retrying = Retrying(stop=stop_after_attempt(1 + self.quick_retries), wait=wait,
                            retry=retry_if_exception(worth_a_quick_retry), before_sleep=before_sleep,
                            reraise=True)
        return retrying(fn, self, *args, **kw)
    return call  # type: ignore[return-value]


def encode_json(obj: Any) -> bytes:
    """The canonical request body: the same payload always gives the same bytes (and signature input)."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


class PlatformClient:
    """Signed, pooled requests to one platform base URL."""

    def __init__(self, base_url: str, kiosk_id: str, secret: bytes, *, alg: str = "hmac-sm3",
                 connect_timeout: float = 3.05, read_timeout: float = 15.0, verify_tls: bool = True,
                 ca_bundle: str | None = None, pool_size: int = 4, max_response_bytes: int = DEFAULT_MAX_RESPONSE,
                 deadline_s: float | None = None, max_amount_cents: int = MAX_AMOUNT_CENTS,
                 session: requests.Session | None = None, clock: Callable[[], float] = time.monotonic,
                 quick_retries: int = 1, quick_retry_pause_s: float = QUICK_RETRY_PAUSE_S):
        if alg not in signing.ALGORITHMS:
            raise ValueError(f"signature algorithm must be one of {signing.ALGORITHMS}")
        self.base_url = base_url.rstrip("/")
        self.kiosk_id = kiosk_id
        self._secret = secret
        self.alg = alg
        self.timeout = (connect_timeout, read_timeout)
        self.deadline_s = (deadline_s if deadline_s is not None
                           else max(MIN_DEFAULT_DEADLINE_S, connect_timeout + 3 * read_timeout))
        self.max_amount_cents = max_amount_cents
        self.max_response_bytes = max_response_bytes
        self.quick_retries = max(0, quick_retries)
        self.quick_retry_pause_s = quick_retry_pause_s
        self.session = session or requests.Session()
        adapter = watch_adapter(HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.verify = ca_bundle if (verify_tls and ca_bundle) else bool(verify_tls)
        self.session.headers.update({"User-Agent": "qhb-kiosk/1", "Accept": "application/json"})
        self._prefix = urlparse(self.base_url).path.rstrip("/")
        self.clock = clock
        self.last_contact: float | None = None  # the platform answered (2xx/304 or a 4xx refusal)
        self.last_failure: float | None = None  # a call did not get a usable answer (RetryableError)
        self.reachable: bool | None = None  # how the most recent call ended (None: no call yet)
        self._use_lock = threading.Lock()
        self._in_flight = 0
        self._last_used: float | None = None  # when the last call ended with connections possibly kept alive

    @classmethod
    def from_config(cls, cfg: KioskConfig | None = None, base_url: str | None = None,
                    credentials: Credentials | None = None,
                    clock: Callable[[], float] = time.monotonic) -> PlatformClient:
        """Build from ``[platform]`` of the configuration (credentials from its credentials_file)."""
        if cfg is None:
            cfg = load_config()
        if credentials is None:
            credentials = configured_credentials(cfg)
        p = cfg.platform
        return cls(base_url or p.base_url, credentials.kiosk_id, credentials.secret, alg=p.signature_alg,
                   connect_timeout=p.connect_timeout_s, read_timeout=p.read_timeout_s, verify_tls=p.verify_tls,
                   ca_bundle=str(cfg.resolve_path(p.ca_bundle)) if p.ca_bundle else None, clock=clock)

    def close(self) -> None:
        self.session.close()

    def close_idle_connections(self, idle_s: float) -> bool:
        """Close the kept-alive connections when no call used them for `idle_s`; True when it did.

        A village 4G line's NAT forgets an idle TCP connection within minutes, and the next call sent on it
        would wait for its timeout; a fresh connection costs one handshake. It also keeps a quiet kiosk's
        open descriptors at their resting count.
        """
        with self._use_lock:
            if self._in_flight or self._last_used is None or self.clock() - self._last_used < idle_s:
                return False
            self._last_used = None
            for adapter in self.session.adapters.values():
                adapter.close()  # the pools' idle connections; a pool is made again by the next call
        return True

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ core
    def request(self, method: str, path: str, *, json_body: Any = None, data: bytes | None = None,
                params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
                idempotency_key: str | None = None, expect_json: bool = True) -> Reply:
        """One signed request; returns a Reply for 2xx/304, raises RetryableError/PermanentError otherwise.

        Every outcome is noted: an answer (a Reply or a 4xx refusal) is contact, a
        RetryableError is a failure to reach the platform.
        """
        with self._use_lock:
            self._in_flight += 1
        try:
            reply = self._request(method, path, json_body=json_body, data=data, params=params, headers=headers,
                                  idempotency_key=idempotency_key, expect_json=expect_json)
        except RetryableError:
            self._note(False)
            raise
        except PermanentError:
            self._note(True)
            raise
        finally:
            with self._use_lock:
                self._in_flight -= 1
                self._last_used = self.clock()
        self._note(True)
        return reply

    def _note(self, answered: bool) -> None:
        now = self.clock()
        if answered:
            self.last_contact = now
        else:
            self.last_failure = now
        self.reachable = answered

    def _request(self, method: str, path: str, *, json_body: Any = None, data: bytes | None = None,
                 params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
                 idempotency_key: str | None = None, expect_json: bool = True) -> Reply:
        if params:
            path = f"{path}?{urlencode(params)}"
        body: bytes | None
        hdrs: dict[str, str] = dict(headers or {})
        if json_body is not None:
            body = encode_json(json_body)
            hdrs["Content-Type"] = "application/json"
        else:
            body = data
            if data is not None:
                hdrs.setdefault("Content-Type", "application/octet-stream")
        if idempotency_key:
            hdrs["Idempotency-Key"] = idempotency_key
        hdrs.update(signing.sign_headers(self.kiosk_id, self._secret, method, self._prefix + path, body, self.alg))
        deadline = Deadline(self.deadline_s)
        try:
            with deadline:
                raw, resp = self._send(method, path, body, hdrs)
        except RetryableError as e:
            if deadline.expired or (e.code == "timeout" and deadline.reached()):
                raise self._past_deadline() from None
            raise
        if deadline.expired:  # a cut connection may look like a short, complete body
            raise self._past_deadline()
        return self._classify(resp, raw, expect_json)

    def _past_deadline(self) -> RetryableError:
        return RetryableError(f"platform call exceeded its overall deadline of {self.deadline_s:g} s", code="timeout")

    def _send(self, method: str, path: str, body: bytes | None,
              hdrs: dict[str, str]) -> tuple[bytes, requests.Response]:
        try:
            # verify per request: a session-level CA bundle loses to $REQUESTS_CA_BUNDLE / $CURL_CA_BUNDLE
            resp = self.session.request(method, self.base_url + path, data=body, headers=hdrs,
                                        verify=self.session.verify, timeout=self.timeout, stream=True,
                                        allow_redirects=False)
        except requests.Timeout as e:
            raise RetryableError(f"platform timed out ({type(e).__name__})", code="timeout") from None
        except requests.exceptions.SSLError:
            raise RetryableError("TLS verification of the platform failed", code="tls") from None
        except requests.RequestException as e:
            raise RetryableError(f"platform unreachable ({type(e).__name__})", code="connection") from None
        try:
            raw = self._read_capped(resp)
        finally:
            resp.close()
        return raw, resp

    def _read_capped(self, resp: requests.Response) -> bytes:
        chunks, total = [], 0
        try:
            for chunk in resp.iter_content(65536):
                total += len(chunk)
                if total > self.max_response_bytes:
                    if 200 <= resp.status_code < 300:
                        raise RetryableError("platform response too large", status=resp.status_code, code="too_large")
                    break  # an error page: its start is enough
                chunks.append(chunk)
        except requests.Timeout:
            raise RetryableError("platform timed out while answering", code="timeout") from None
        except requests.RequestException as e:
            raise RetryableError(f"platform answer broken off ({type(e).__name__})", code="connection") from None
        except (OSError, ValueError) as e:  # socket errors, zlib errors from a bad Content-Encoding
            raise RetryableError(f"platform answer unreadable ({type(e).__name__})", code="connection") from None
        return b"".join(chunks)

    def _classify(self, resp: requests.Response, raw: bytes, expect_json: bool) -> Reply:
        st = resp.status_code
        headers = resp.headers
        if st == 304:
            return Reply(st, headers, None, raw)
        if 200 <= st < 300:
            body = None
            if expect_json:
                try:
                    body = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, ValueError, RecursionError):
                    raise RetryableError("platform answered with a body that is not JSON", status=st,
                                         code="malformed_response") from None
                if not isinstance(body, dict):
                    raise RetryableError("platform answered with JSON that is not an object", status=st,
                                         code="malformed_response")
            return Reply(st, headers, body, raw, replayed=headers.get("Idempotent-Replayed") == "true")
        if st in (408, 425, 429) or st >= 500:
            code, detail, _ = _problem(raw)
            raise RetryableError(f"platform busy or failing (HTTP {st}{' ' + code if code else ''})", status=st,
                                 code=code or f"http_{st}", retry_after=parse_retry_after(headers.get("Retry-After")))
        if 400 <= st < 500:
            code, detail, errors = _problem(raw)
            raise PermanentError(f"platform refused the request (HTTP {st}{' ' + code if code else ''})", status=st,
                                 code=code or f"http_{st}", detail=detail, errors=errors)
        raise RetryableError(f"unexpected HTTP status {st}", status=st, code=f"http_{st}")

    # --------------------------------------------------------------- contract
    @_noted
    def submit_application(self, body: Mapping[str, Any], idempotency_key: str) -> dict:
        """POST /v1/applications -> {tracking_no, status, promised_date}."""
        r = self.request("POST", "/v1/applications", json_body=body, idempotency_key=idempotency_key)
        for k in ("tracking_no", "status", "promised_date"):
            v = _need(r.body, k, str, "application")
            if not v or len(v) > 64:
                raise RetryableError(f"malformed application response from platform (field {k})",
                                     code="malformed_response")
        return {"tracking_no": r.body["tracking_no"], "status": r.body["status"],
                "promised_date": r.body["promised_date"], "replayed": r.replayed}

    @_noted
    def put_material(self, sha256: str, content: bytes) -> dict:
        """PUT /v1/materials/{sha256}: idempotent upload of one material."""
        if not _SHA.match(sha256):
            raise ValueError("sha256 must be 64 lowercase hex characters")
        r = self.request("PUT", f"/v1/materials/{sha256}", data=content)
        if _need(r.body, "sha256", str, "material") != sha256:
            raise RetryableError("platform acknowledged a different material", code="malformed_response")
        return r.body

    @_citizen_waits
    @_noted
    def get_application(self, tracking_no: str) -> dict:
        r = self.request("GET", f"/v1/applications/{quote(tracking_no, safe='')}")
        _need(r.body, "tracking_no", str, "progress")
        _need(r.body, "status", str, "progress")
        return r.body

    @_citizen_waits
    @_noted
    def search_applications(self, id_type: str, id_number: str) -> list[dict]:
        """The applicant's cases (ID number in the body, never in the URL)."""
        r = self.request("POST", "/v1/applications/search", json_body={"id_type": id_type, "id_number": id_number})
        apps = _need(r.body, "applications", list, "search")
        if not all(isinstance(a, dict) and isinstance(a.get("tracking_no"), str) for a in apps):
            raise RetryableError("malformed search response from platform", code="malformed_response")
        return apps

    @_noted
    def get_catalog(self, etag: str | None = None) -> tuple[str | None, dict | None]:
        """(etag, catalog) or (etag, None) when unchanged since ``etag``."""
        r = self.request("GET", "/v1/catalog", headers={"If-None-Match": etag} if etag else None)
        if r.status == 304:
            return etag, None
        _need(r.body, "items", list, "catalog")
        return r.headers.get("ETag"), r.body

    @_noted
    def health(self) -> dict:
        """GET /v1/health -> {status, server_time}: the cheap probe (a few hundred bytes each way)."""
        r = self.request("GET", "/v1/health")
        _need(r.body, "status", str, "health")
        _need(r.body, "server_time", str, "health")
        return r.body

    @_noted
    def submit_evaluation(self, body: Mapping[str, Any], idempotency_key: str) -> dict:
        r = self.request("POST", "/v1/evaluations", json_body=body, idempotency_key=idempotency_key)
        _need(r.body, "evaluation_id", str, "evaluation")
        return r.body

    @_noted
    def submit_help_request(self, body: Mapping[str, Any], idempotency_key: str) -> dict:
        r = self.request("POST", "/v1/help-requests", json_body=body, idempotency_key=idempotency_key)
        _need(r.body, "request_id", str, "help request")
        return r.body

    @_noted
    def book_home_visit(self, body: Mapping[str, Any], idempotency_key: str) -> dict:
        r = self.request("POST", "/v1/home-visits", json_body=body, idempotency_key=idempotency_key)
        _need(r.body, "request_id", str, "home visit")
        return r.body

    @_citizen_waits
    @_noted
    def verify_identity(self, body: Mapping[str, Any]) -> dict:
        """{verified: bool, identity_token?, identity?, reason?}."""
        r = self.request("POST", "/v1/identity/verify", json_body=body)
        if _need(r.body, "verified", bool, "identity"):
            _need(r.body, "identity_token", str, "identity")
        return r.body

    @_citizen_waits
    @_noted
    def get_certificate(self, kind: str, identity_token: str) -> dict:
        r = self.request("GET", f"/v1/certificates/{quote(kind, safe='')}", params={"identity_token": identity_token})
        _need(r.body, "title", str, "certificate")
        lines = _need(r.body, "lines", list, "certificate")
        if not all(isinstance(x, str) for x in lines):
            raise RetryableError("malformed certificate response from platform", code="malformed_response")
        return r.body

    @_noted
    def create_payment(self, body: Mapping[str, Any], idempotency_key: str) -> dict:
        if "amount_cents" in body:  # refused before any request, with the reason
            check_amount_cents(body["amount_cents"], self.max_amount_cents)
        r = self.request("POST", "/v1/payments", json_body=body, idempotency_key=idempotency_key)
        return self._payment(r.body)

    @_noted
    def get_payment(self, payment_id: str) -> dict:
        r = self.request("GET", f"/v1/payments/{quote(payment_id, safe='')}")
        return self._payment(r.body)

    def _payment(self, body: Any) -> dict:
        _need(body, "payment_id", str, "payment")
        try:
            check_amount_cents(_need(body, "amount_cents", int, "payment"), self.max_amount_cents)
        except InvalidAmount as e:
            raise RetryableError(f"malformed payment response from platform (field {e})",
                                 code="malformed_response") from None
        _need(body, "status", str, "payment")
        _need(body, "qr_payload", str, "payment")
        return body

    @_citizen_waits
    @_noted
    def fetch_licence(self, body: Mapping[str, Any]) -> dict:
        """POST /v1/licences/fetch; the library's refusals become LicenceRefused with a plain reason code."""
        try:
            r = self.request("POST", "/v1/licences/fetch", json_body=body)
        except PermanentError as e:
            if e.code in LICENCE_REFUSALS:
                raise LicenceRefused(e.code, status=e.status, detail=e.detail) from None
            raise
        for k in ("licence_ref", "licence_type", "number", "valid_from"):
            if not _need(r.body, k, str, "licence"):
                raise RetryableError(f"malformed licence response from platform (field {k})",
                                     code="malformed_response")
        holder = _need(r.body, "holder", dict, "licence")
        _need(holder, "id_number", str, "licence holder")
        _need(holder, "name", str, "licence holder")
        if r.body.get("valid_until") is not None and not isinstance(r.body["valid_until"], str):
            raise RetryableError("malformed licence response from platform (field valid_until)",
                                 code="malformed_response")
        return r.body

    @_citizen_waits
    @_noted
    def search_real_estate(self, body: Mapping[str, Any]) -> dict:
        """POST /v1/real-estate/search -> {by, value, as_of, results}; units carry public fields only."""
        r = self.request("POST", "/v1/real-estate/search", json_body=body)
        results = _need(r.body, "results", list, "real-estate search")
        for unit in results:
            _need(unit, "unit_number", str, "real-estate unit")
            _need(unit, "address", str, "real-estate unit")
            restrictions = _need(unit, "restrictions", list, "real-estate unit")
            if not all(isinstance(x, dict) and isinstance(x.get("kind"), str) for x in restrictions):
                raise RetryableError("malformed real-estate response from platform", code="malformed_response")
            unit.pop("owner", None)  # never shown, even if a platform sent it
        return r.body
