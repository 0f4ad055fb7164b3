"""The technician PIN as a salted, memory-hard hash (scrypt through `cryptography`).

The site file holds only ``[ui] technician_pin_hash``, written by ``kiosk-admin
pin-hash``. The encoded form describes itself, so the parameters can be raised
later without breaking kiosks that still hold an older hash::

    scrypt$n=32768,r=8,p=1$<salt, base64>$<hash, base64>

A 6-digit PIN has only a million values, so the hash cannot make guessing
impossible, only slow and expensive; the lockout counter does the rest.
"""
from __future__ import annotations

import base64
import hmac
import os
import re

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

__all__ = ["MIN_PIN_DIGITS", "hash_pin", "hash_strength_problem", "pin_problem", "verify_pin"]

#: Parameters `hash_pin` uses (32 MiB of memory per guess).
N, R, P = 2**15, 8, 1
#: The floor below which the production check refuses a hash.
MIN_N, MIN_R, MIN_P = 2**15, 8, 1
MIN_SALT_BYTES, MIN_HASH_BYTES = 16, 32
#: Hashes asking for more than this are not verified (a crafted file must not exhaust memory).
MAX_MEMORY_BYTES = 512 * 1024 * 1024
MIN_PIN_DIGITS, MAX_PIN_DIGITS = 6, 12

_ENCODED = re.compile(r"^scrypt\$n=(\d{1,10}),r=(\d{1,4}),p=(\d{1,4})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$")


def pin_problem(pin: str) -> str | None:
    """Why `pin` is not acceptable as a technician PIN, or None (ASCII digits, 6 to 12 of them)."""
    if not pin.isascii() or not pin.isdigit():
        return "the PIN must be ASCII digits only"
    if len(pin) < MIN_PIN_DIGITS:
        return f"the PIN must have at least {MIN_PIN_DIGITS} digits"
    if len(pin) > MAX_PIN_DIGITS:
        return f"the PIN must have at most {MAX_PIN_DIGITS} digits"
    return None


def _kdf(salt: bytes, length: int, n: int, r: int, p: int) -> Scrypt:
    return Scrypt(salt=salt, length=length, n=n, r=r, p=p)


def hash_pin(pin: str) -> str:
    """A fresh salted scrypt hash of `pin` in the self-describing encoded form."""
    problem = pin_problem(pin)
    if problem:
        raise ValueError(problem)
    salt = os.urandom(MIN_SALT_BYTES)
    digest = _kdf(salt, MIN_HASH_BYTES, N, R, P).derive(pin.encode("ascii"))
    return f"scrypt$n={N},r={R},p={P}${_b64(salt)}${_b64(digest)}"


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _parse(encoded: str) -> tuple[int, int, int, bytes, bytes] | None:
    m = _ENCODED.match(encoded.strip())
    if not m:
        return None
    n, r, p = (int(m.group(i)) for i in (1, 2, 3))
    try:
        salt = base64.b64decode(m.group(4), validate=True)
        digest = base64.b64decode(m.group(5), validate=True)
    except ValueError:
        return None
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or not salt or not digest:
        return None
    return n, r, p, salt, digest


def verify_pin(pin: str, encoded: str) -> bool:
    """True when `pin` matches `encoded`; False for a wrong PIN or a malformed/oversized hash."""
    parsed = _parse(encoded)
    if parsed is None or not pin.isascii():
        return False
    n, r, p, salt, digest = parsed
    if 128 * n * r * p > MAX_MEMORY_BYTES:
        return False
    try:
        got = _kdf(salt, len(digest), n, r, p).derive(pin.encode("ascii"))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(got, digest)


def hash_strength_problem(encoded: str) -> str | None:
    """Why `encoded` is not an acceptable PIN hash (malformed, or below the scrypt floor), or None."""
    parsed = _parse(encoded)
    if parsed is None:
        return "not a PIN hash (expected scrypt$n=..,r=..,p=..$salt$hash from `kiosk-admin pin-hash`)"
    n, r, p, salt, digest = parsed
    weak = []
    if n < MIN_N:
        weak.append(f"n={n} < {MIN_N}")
    if r < MIN_R:
        weak.append(f"r={r} < {MIN_R}")
    if p < MIN_P:
        weak.append(f"p={p} < {MIN_P}")
    if len(salt) < MIN_SALT_BYTES:
        weak.append(f"salt of {len(salt)} bytes < {MIN_SALT_BYTES}")
    if len(digest) < MIN_HASH_BYTES:
        weak.append(f"hash of {len(digest)} bytes < {MIN_HASH_BYTES}")
    if 128 * n * r * p > MAX_MEMORY_BYTES:
        weak.append(f"needs more than {MAX_MEMORY_BYTES // 2**20} MiB to verify")
    if weak:
        return "PIN hash below the scrypt floor: " + ", ".join(weak) + "; make a new one with `kiosk-admin pin-hash`"
    return None
