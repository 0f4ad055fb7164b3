"""The one rule for telephone numbers: a mainland mobile, or a landline with its area code.

Every place that takes a phone (form fields, the applicant's mobile, help requests,
home-visit bookings) asks here, so "+86 138 0013 8000" means the same everywhere:
normalised to 13800138000 and accepted.
"""
from __future__ import annotations

import re
import unicodedata

__all__ = ["normalise_phone", "normalise_mobile", "is_mobile", "is_landline"]

_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_LANDLINE = re.compile(r"0[0-9]{2,3}-?[0-9]{7,8}(-[0-9]{1,6})?")


def normalise_phone(text: str | None) -> str:
    """Full-width digits folded, spaces dropped, a +86/86 country prefix removed; dashes kept for landlines."""
    s = unicodedata.normalize("NFKC", text or "").strip()
    s = re.sub(r"\s", "", s)
    s = re.sub(r"^\+?86-?(?=1)", "", s)
    if _MOBILE.fullmatch(s.replace("-", "")):
        return s.replace("-", "")
    return s


def normalise_mobile(text: str | None) -> str | None:
    """The 11-digit mobile number, or None when `text` is not one."""
    s = normalise_phone(text)
    return s if is_mobile(s) else None


def is_mobile(s: str) -> bool:
    return s.isascii() and _MOBILE.fullmatch(s) is not None


def is_landline(s: str) -> bool:
    return s.isascii() and _LANDLINE.fullmatch(s) is not None
