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
import re
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


# The shape of each header. Anything else (non-ASCII, control characters, wrong length, bad hex)
# is answered like a wrong signature, never with an exception: the verifier faces the open network.
_KIOSK_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}", re.ASCII)
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}", re.ASCII)
_NONCE_RE = re.compile(r"[!-~]{1,128}", re.ASCII)  # printable ASCII, no space
_SIGNATURE_RE = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)  # SM3 and SHA-256 are both 32 bytes


def verify(headers: Mapping[str, str], method: str, path: str, body: bytes | None,
           secrets_by_kiosk: Mapping[str, bytes], now: float | None = None,
           max_skew_s: int = MAX_SKEW_S) -> Verdict:
    """Check signature and clock skew. Nonce replay is the caller's (stateful) check.

    Total over its input: a malformed header of any kind is a refused Verdict, never an exception.
    """
    try:
        return _verify(headers, method, path, body, secrets_by_kiosk, now, max_skew_s)
    except (ValueError, TypeError, UnicodeError, AttributeError):
        return Verdict(False, "bad_signature")


def _verify(headers: Mapping[str, str], method: str, path: str, body: bytes | None,
            secrets_by_kiosk: Mapping[str, bytes], now: float | None, max_skew_s: int) -> Verdict:
    get = {str(k).lower(): v for k, v in headers.items()}.get
    values = [get(h.lower()) for h in SIGNATURE_HEADERS]
    if not all(isinstance(v, str) and v.strip() for v in values):
        return Verdict(False, "missing_signature")
    kiosk_id, ts, nonce, alg, sig = (str(v).strip() for v in values)
    if not (_KIOSK_ID_RE.fullmatch(kiosk_id) and _TIMESTAMP_RE.fullmatch(ts) and _NONCE_RE.fullmatch(nonce)
            and _SIGNATURE_RE.fullmatch(sig) and alg in ALGORITHMS):
        return Verdict(False, "bad_signature")
    secret = secrets_by_kiosk.get(kiosk_id)
    if secret is None:
        return Verdict(False, "unknown_kiosk")
    ts_i = int(ts)
    expected = compute(secret, alg, canonical_string(method, path, ts, nonce, body))
    if not _stdhmac.compare_digest(expected, sig.lower()):
        return Verdict(False, "bad_signature")
    now = time.time() if now is None else now
    if abs(now - ts_i) > max_skew_s:
        return Verdict(False, "clock_skew", kiosk_id, nonce, ts_i)
    return Verdict(True, "", kiosk_id, nonce, ts_i)
