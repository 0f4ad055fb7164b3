"""Request signatures: HMAC (SM3 by default, SHA-256 selectable) with a per-kiosk secret.

The signed string is five lines: METHOD, path (with query), unix timestamp,
nonce, and the hex SHA-256 of the exact body bytes. The platform rejects a bad
signature, a nonce it has seen before, and a timestamp more than five minutes
off its own clock. The body hash is always SHA-256 so it can be computed without
knowing the algorithm; the HMAC carries the algorithm choice.
"""
from __future__ import annotations

import hashlib
import hmac as _stdhmac
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _chmac

ALGORITHMS = ("hmac-sm3", "hmac-sha256")
MAX_SKEW_S = 300

H_KIOSK = "X-Kiosk-Id"
H_TIMESTAMP = "X-Kiosk-Timestamp"
H_NONCE = "X-Kiosk-Nonce"
H_ALG = "X-Kiosk-Signature-Alg"
H_SIGNATURE = "X-Kiosk-Signature"
SIGNATURE_HEADERS = (H_KIOSK, H_TIMESTAMP, H_NONCE, H_ALG, H_SIGNATURE)


def body_hash(body: bytes | None) -> str:
    return hashlib.sha256(body or b"").hexdigest()


def canonical_string(method: str, path: str, timestamp: str, nonce: str, body: bytes | None) -> bytes:
    return "\n".join([method.upper(), path, timestamp, nonce, body_hash(body)]).encode("utf-8")


def compute(secret: bytes, alg: str, message: bytes) -> str:
    """Hex HMAC of message under secret with the named algorithm."""
    if alg == "hmac-sm3":
        h = _chmac.HMAC(secret, hashes.SM3())
        h.update(message)
        return h.finalize().hex()
    if alg == "hmac-sha256":
        return _stdhmac.new(secret, message, hashlib.sha256).hexdigest()
    raise ValueError(f"unknown signature algorithm {alg!r}")


def sign_headers(kiosk_id: str, secret: bytes, method: str, path: str, body: bytes | None,
                 alg: str = "hmac-sm3", timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
    """The five headers that authenticate one request."""
    ts = str(int(time.time()) if timestamp is None else int(timestamp))
    nonce = nonce or secrets.token_hex(16)
    sig = compute(secret, alg, canonical_string(method, path, ts, nonce, body))
    return {H_KIOSK: kiosk_id, H_TIMESTAMP: ts, H_NONCE: nonce, H_ALG: alg, H_SIGNATURE: sig}


@dataclass(frozen=True)
class Verdict:
    ok: bool
    code: str = ""          # bad_signature | clock_skew | nonce_replayed | unknown_kiosk | missing_signature
    kiosk_id: str = ""
    nonce: str = ""
    timestamp: int = 0


def verify(headers: Mapping[str, str], method: str, path: str, body: bytes | None,
           secrets_by_kiosk: Mapping[str, bytes], now: float | None = None,
           max_skew_s: int = MAX_SKEW_S) -> Verdict:
    """Check signature and clock skew. Nonce replay is the caller's (stateful) check."""
    get = {k.lower(): v for k, v in headers.items()}.get
    kiosk_id, ts, nonce, alg, sig = (get(h.lower()) for h in SIGNATURE_HEADERS)
    if not (kiosk_id and ts and nonce and alg and sig):
        return Verdict(False, "missing_signature")
    secret = secrets_by_kiosk.get(kiosk_id)
    if secret is None:
        return Verdict(False, "unknown_kiosk")
    if alg not in ALGORITHMS or len(nonce) > 128:
        return Verdict(False, "bad_signature")
    try:
        ts_i = int(ts)
    except ValueError:
        return Verdict(False, "bad_signature")
    expected = compute(secret, alg, canonical_string(method, path, ts, nonce, body))
    if not _stdhmac.compare_digest(expected, sig.strip().lower()):
        return Verdict(False, "bad_signature")
    now = time.time() if now is None else now
    if abs(now - ts_i) > max_skew_s:
        return Verdict(False, "clock_skew", kiosk_id, nonce, ts_i)
    return Verdict(True, "", kiosk_id, nonce, ts_i)
