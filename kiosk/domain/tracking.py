"""Tracking numbers (办件编号) printed on receipts and scanned back from their QR.

Format: two-letter origin + 6-digit date (YYMMDD) + 8 characters + one check
character (ISO 7064 MOD 37-36 over the 16 characters before it), e.g.
``LQ261127K7Q2M9XA5``.
Origins: ``LQ`` local (assigned by the kiosk while offline), ``SD`` the platform.
The receipt QR carries ``QHB1:`` + the tracking number, so a scanner can tell our
codes from anything else.
"""
from __future__ import annotations

import datetime as _dt
import os
import re

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
QR_PREFIX = "QHB1:"
ORIGINS = {"LQ": "local", "SD": "platform"}
_BODY = re.compile(r"^(LQ|SD)(\d{6})([0-9A-Z]{8})([0-9A-Z])$")
# Random part avoids look-alikes so a citizen can read it over the phone.
_RANDOM_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def check_char(s: str) -> str:
    """ISO 7064 MOD 37-36 (hybrid) check character over [0-9A-Z]."""
    m = 36
    p = m
    for ch in s:
        p = (p + _VALUE[ch]) % m or m
        p = (p * 2) % (m + 1)
    return ALPHABET[(m + 1 - p) % m]


def new_tracking_no(origin: str = "LQ", today: _dt.date | None = None) -> str:
    if origin not in ORIGINS:
        raise ValueError(f"unknown origin {origin!r}")
    today = today or _dt.date.today()
    # One urandom call: the outbox calls this on every enqueue. 32 symbols divide
    # 256, so `byte & 31` is unbiased.
    body = origin + today.strftime("%y%m%d") + "".join([_RANDOM_ALPHABET[b & 31] for b in os.urandom(8)])
    return body + check_char(body)


def is_tracking_no(s: str) -> bool:
    if not isinstance(s, str):
        return False
    m = _BODY.match(s.strip().upper())
    return bool(m) and check_char(s.strip().upper()[:-1]) == s.strip().upper()[-1]


def tracking_origin(s: str) -> str:
    """'local' or 'platform'; ValueError when not a valid tracking number."""
    if not is_tracking_no(s):
        raise ValueError("not a valid tracking number")
    return ORIGINS[s.strip().upper()[:2]]


def qr_payload(tracking_no: str) -> str:
    return QR_PREFIX + tracking_no


def parse_qr_payload(text: str) -> str | None:
    """The tracking number inside a receipt QR, or None when it is not ours or fails its check."""
    if not isinstance(text, str) or not text.startswith(QR_PREFIX):
        return None
    tn = text[len(QR_PREFIX):]
    return tn if is_tracking_no(tn) else None
