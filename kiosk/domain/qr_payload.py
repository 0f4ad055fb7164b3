"""What a scanned QR code is, decided in the core before anything acts on it.

Kinds: our receipt tracking codes (``QHB1:`` + tracking number with its check
character), e-licence codes (``EL1:``, kiosk.domain.elicence: recognised by their
prefix, refused when malformed or past their few minutes of validity), the 爱山东
electronic ID / 居民码 token (opaque: only its length and charset are checked here,
the platform verifies it), URLs (refused unless their host is on the configured
allow-list), and everything else "unrecognised".
Oversized payloads and control or formatting characters are refused outright:
a scanner is an input device anyone can walk up to.
"""
from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kiosk.domain.elicence import ELICENCE_QR_PREFIX, LICENCE_REASONS, InvalidElicenceQr, parse_elicence_qr
from kiosk.domain.tracking import QR_PREFIX, parse_qr_payload

__all__ = ["PayloadKind", "QrPayload", "PayloadRefused", "QrClassifier", "classify", "MAX_PAYLOAD_CHARS",
           "check_identification"]

MAX_PAYLOAD_CHARS = 2048
TOKEN_MIN, TOKEN_MAX = 32, 1024
_TOKEN = re.compile(r"^[A-Za-z0-9+/=_\-.:*]+$")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]{1,15}:(//)?\S")
_WWW = re.compile(r"^www\.", re.I)


class PayloadKind(str, enum.Enum):
    TRACKING = "tracking"
    CITIZEN_CODE = "citizen_code"  # 爱山东 electronic ID / 居民码
    ELICENCE = "elicence"  # an e-licence shown by the 爱山东 app (value: the whole EL1: text)
    URL = "url"
    UNRECOGNISED = "unrecognised"


@dataclass(frozen=True)
class QrPayload:
    kind: PayloadKind
    value: str  # tracking number, token, URL, or the text itself

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind.value, "value": self.value}


class PayloadRefused(ValueError):
    """A payload the kiosk will not act on; ``reason`` is stable, ``message`` is for the citizen."""

    MESSAGES = {
        "empty": "没有读到二维码内容，请重新扫码",
        "too_long": "二维码内容过长，无法识别",
        "control_chars": "二维码内容含有无效字符，无法识别",
        "url_not_allowed": "此二维码是网址，本机不打开外部网址，请使用手机访问",
        "bad_tracking": "回执二维码校验失败，请检查回执是否完整清晰，或输入办件编号",
        "not_text": "二维码内容不是文字，无法识别",
        "bad_elicence": LICENCE_REASONS["bad_elicence"],
        "elicence_expired": LICENCE_REASONS["elicence_expired"],
        "citizen_code_not_allowed": "这件事需要刷身份证办理，请把身份证放到读卡区",
        "not_identification": "这个二维码不能用来确认身份，请出示爱山东居民码或刷身份证",
    }

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(self.MESSAGES[reason])

    @property
    def message(self) -> str:
        return self.MESSAGES[self.reason]


def _has_control(s: str) -> bool:
    # Cc: C0/C1 controls and DEL; Cf: zero-width and bidi overrides; Cs/Co/Cn: not real text
    return any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in s)


class QrClassifier:
    """Classifies payloads under one configuration (URL allow-list, token bounds)."""

    def __init__(self, url_allow_list: Iterable[str] = (), *, max_chars: int = MAX_PAYLOAD_CHARS,
                 token_min: int = TOKEN_MIN, token_max: int = TOKEN_MAX):
        self.url_hosts = tuple(h.strip().lower().rstrip(".") for h in url_allow_list if h and h.strip())
        self.max_chars, self.token_min, self.token_max = max_chars, token_min, token_max

    @classmethod
    def from_settings(cls, settings: Any) -> QrClassifier:
        """From ``[devices.qr]`` (DeviceSettings extras or a dict): url_allow_list, max_payload_chars."""
        if settings is None:
            return cls()
        d = dict(settings) if isinstance(settings, dict) else {
            **settings.model_dump(), **(getattr(settings, "model_extra", None) or {})}
        return cls(d.get("url_allow_list") or (), max_chars=int(d.get("max_payload_chars", MAX_PAYLOAD_CHARS)))

    def classify(self, text: str | bytes, now: float | None = None) -> QrPayload:
        """What ``text`` is; ``now`` (unix seconds, default the clock) judges an e-licence code's expiry."""
        if isinstance(text, (bytes, bytearray)):
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError:
                raise PayloadRefused("not_text") from None
        if not isinstance(text, str):
            raise PayloadRefused("not_text")
        if len(text) > self.max_chars:
            raise PayloadRefused("too_long")
        # scanners end lines with CR/LF; anything else that is not text is refused
        text = text.rstrip("\r\n")
        if not text.strip():
            raise PayloadRefused("empty")
        if _has_control(text):
            raise PayloadRefused("control_chars")
        if text.startswith(QR_PREFIX):
            tn = parse_qr_payload(text)
            if tn is None:
                raise PayloadRefused("bad_tracking")
            return QrPayload(PayloadKind.TRACKING, tn)
        if text.startswith(ELICENCE_QR_PREFIX):
            try:
                code = parse_elicence_qr(text, now=now)
            except InvalidElicenceQr as e:
                raise PayloadRefused(e.reason) from None
            return QrPayload(PayloadKind.ELICENCE, code.payload)
        if _URL.match(text) or _WWW.match(text):
            if self._url_allowed(text):
                return QrPayload(PayloadKind.URL, text)
            raise PayloadRefused("url_not_allowed")
        if self.token_min <= len(text) <= self.token_max and _TOKEN.match(text):
            return QrPayload(PayloadKind.CITIZEN_CODE, text)
        return QrPayload(PayloadKind.UNRECOGNISED, text)

    def _url_allowed(self, text: str) -> bool:
        if not self.url_hosts:
            return False
        try:
            parts = urlsplit(text)
            host = (parts.hostname or "").lower().rstrip(".")
            port_ok = parts.port in (None, 443)
        except ValueError:
            return False
        if parts.scheme.lower() != "https" or not host or not port_ok or parts.username or parts.password:
            return False
        return any(host == h or host.endswith("." + h) for h in self.url_hosts)


_default = QrClassifier()


def classify(text: str | bytes, url_allow_list: Iterable[str] | None = None) -> QrPayload:
    """Classify with the default bounds; PayloadRefused when the kiosk must not act on it."""
    c = _default if url_allow_list is None else QrClassifier(url_allow_list)
    return c.classify(text)


def check_identification(payload: QrPayload, item: Any) -> QrPayload:
    """The scanned code as an identity for ``item``, or PayloadRefused.

    Only a 居民码 / 网证 token (CITIZEN_CODE) identifies, and only for an item whose catalog entry
    allows it (``citizen_code_allowed``; no item chosen yet: allowed, the item is checked when chosen).
    """
    if payload.kind is not PayloadKind.CITIZEN_CODE:
        raise PayloadRefused("not_identification")
    if item is not None and not getattr(item, "citizen_code_allowed", False):
        raise PayloadRefused("citizen_code_not_allowed")
    return payload
