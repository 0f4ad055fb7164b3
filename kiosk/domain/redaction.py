"""What counts as personal data or a secret, in one place: log lines, technician reports and diagnostics all use it.

Names are not guessable by pattern, so the session registers the names it holds
and unregisters them when it wipes.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

# 18-digit resident/foreigner numbers (with X), the old 15-digit numbers, mainland mobiles.
_ID_RE = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")
_PHONE_RE = re.compile(r"(?<!\d)(1[3-9]\d{9})(?!\d)")
_BANK_RE = re.compile(r"(?<!\d)(\d{16,19})(?!\d)")
REDACTED = "[redacted]"


class Redactor:
    """Replaces personal data in text; thread-safe registry of session-held names."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()

    def add(self, *values: str | None) -> None:
        with self._lock:
            self._secrets.update(v for v in values if v and len(v.strip()) >= 2)

    def discard(self, *values: str | None) -> None:
        with self._lock:
            for v in values:
                if v:
                    self._secrets.discard(v)

    def clear(self) -> None:
        with self._lock:
            self._secrets.clear()

    def redact(self, text: str) -> str:
        text = _ID_RE.sub(REDACTED, text)
        text = _BANK_RE.sub(REDACTED, text)
        text = _PHONE_RE.sub(REDACTED, text)
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for s in secrets:
            text = text.replace(s, REDACTED)
        return text


REDACTOR = Redactor()


#: configuration and device-setting keys whose values never leave the kiosk in a report
SECRET_KEY_RE = re.compile(r"(pin|password|passwd|secret|token|private|credential|api_?key)", re.I)
SECRET_PLACEHOLDER = "**REDACTED**"


def is_secret_key(name: str) -> bool:
    return bool(SECRET_KEY_RE.search(name))


def redact_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A copy with secret-looking keys' values replaced (empty values stay, so a missing PIN is visible)."""
    return {k: (SECRET_PLACEHOLDER if is_secret_key(k) and v not in (None, "", []) else v)
            for k, v in settings.items()}
