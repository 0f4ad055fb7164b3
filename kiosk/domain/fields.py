"""Validation of the typed form fields, shared by the terminal UI and the platform simulator.

One function per field type, so the kiosk refuses exactly what the platform would
refuse.  Messages are plain Chinese that say what to do next; they never echo the
value (it may be an ID or bank card number and messages get logged).

Choices documented here:
- phone: a mainland mobile number (1[3-9] + 9 digits, "+86"/"86" prefix and spaces or
  dashes tolerated) or a landline with area code (0 + 2-3 digits, then 7-8 digits,
  optional "-" and extension).
- bank_account: 12-19 digits after removing spaces.  16-19 digit numbers are card
  numbers and must pass the Luhn check (UnionPay cards, 62..., do); 12-15 digit numbers
  are passbook / account numbers, which many Chinese banks issue without a Luhn digit,
  so only their length and digits are checked.
- date: ISO 8601 calendar date YYYY-MM-DD, a real date between 1900 and 2100.
- number: a non-negative decimal (every number the catalog asks for is a count, an
  amount, an area or a year), at most 2 decimals, below 10^9.
- choice: exactly one of the field's choices.
- text: at most 200 characters, no control characters.
"""
from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from kiosk.domain.contact import is_landline, is_mobile, normalise_phone
from kiosk.domain.identity import InvalidIdNumber, validate_id_number

__all__ = ["validate_field", "validate_form", "normalise_value", "luhn_ok", "TEXT_MAX",
           "VALIDATORS"]

TEXT_MAX = 200
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)  # ASCII digits only, as the platform reads them
_NUMBER = re.compile(r"^\d{1,9}(\.\d{1,2})?$", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _get(field: Any, key: str, default: Any = None) -> Any:
    """Fields come as catalog FormField objects or as plain dicts (the simulator's JSON)."""
    if isinstance(field, Mapping):
        return field.get(key, default)
    return getattr(field, key, default)


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check used by bank card numbers."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def normalise_value(field: Any, value: Any) -> Any:
    """The canonical form of a valid value (digits only for phones and bank accounts)."""
    kind = _get(field, "type")
    if value is None:
        return None
    s = str(value).strip()
    if kind == "phone":
        return normalise_phone(s)
    if kind == "bank_account":
        return re.sub(r"\s", "", s)
    if kind == "id_number":
        return s.upper()
    return s


def _phone(field: Any, s: str) -> str | None:
    v = normalise_phone(s)
    if is_mobile(v) or is_landline(v):
        return None
    return "请填写11位手机号码，或带区号的固定电话（例如 0533-6412345）"


def _id_number(field: Any, s: str) -> str | None:
    try:
        validate_id_number(s.strip())
    except InvalidIdNumber as e:
        return f"{e}，请核对后重新填写"
    return None


def _bank_account(field: Any, s: str) -> str | None:
    v = normalise_value(field, s)
    if not v.isdigit() or not v.isascii():
        return "银行卡号只能是数字，请照着卡上的号码填写"
    if not 12 <= len(v) <= 19:
        return "银行卡号应为12到19位数字，请照着卡上的号码填写"
    if len(v) >= 16 and not luhn_ok(v):
        return "银行卡号好像有一位填错了，请照着卡上的号码再核对一遍"
    return None


def _date(field: Any, s: str) -> str | None:
    v = s.strip()
    if _DATE.match(v):
        try:
            d = _dt.date.fromisoformat(v)
        except ValueError:
            d = None
        if d is not None and 1900 <= d.year <= 2100:
            return None
    return "请选择正确的日期（年-月-日，例如 2024-03-01）"


def _number(field: Any, s: str) -> str | None:
    v = s.strip()
    if _NUMBER.match(v):
        try:
            Decimal(v)
            return None
        except InvalidOperation:  # pragma: no cover - the pattern already ensures a decimal
            pass
    return "请填写数字（不能是负数，最多两位小数）"


def _choice(field: Any, s: str) -> str | None:
    choices = list(_get(field, "choices", ()) or ())
    if s in choices:
        return None
    return "请从下面的选项里选一个：" + "、".join(choices)


def _text(field: Any, s: str) -> str | None:
    if _CONTROL.search(s):
        return "填写的内容里有不能识别的字符，请重新填写"
    if len(s.strip()) > TEXT_MAX:
        return f"填写的内容太长了，请不要超过{TEXT_MAX}个字"
    return None


VALIDATORS: dict[str, Callable[[Any, str], str | None]] = {
    "text": _text,
    "phone": _phone,
    "date": _date,
    "choice": _choice,
    "id_number": _id_number,
    "bank_account": _bank_account,
    "number": _number,
}


def validate_field(field: Any, value: Any) -> str | None:
    """None when `value` is acceptable for `field`, else a message in Chinese for the citizen."""
    label = _get(field, "label") or _get(field, "name") or "这一项"
    kind = _get(field, "type")
    validator = VALIDATORS.get(kind)
    if validator is None:
        raise ValueError(f"unknown field type {kind!r} for field {_get(field, 'name')!r}")
    if isinstance(value, bool) or (value is not None and not isinstance(value, (str, int, float, Decimal))):
        return f"“{label}”填写的内容不对，请重新填写"
    s = "" if value is None else str(value)
    if not s.strip():
        return f"请填写“{label}”" if _get(field, "required", True) else None
    return validator(field, s)


def validate_form(item: Any, values: Mapping[str, Any]) -> dict[str, str]:
    """Field name -> message for every problem; {} when the form can be submitted.

    Unknown field names are refused (the simulator must not accept what the UI would
    not send); missing required fields get "请填写…".
    """
    fields = list(_get(item, "fields", ()) or ())
    known = {_get(f, "name"): f for f in fields}
    errors: dict[str, str] = {}
    for name in values:
        if name not in known:
            errors[str(name)] = "这个事项不需要填写这一项"
    for name, f in known.items():
        msg = validate_field(f, values.get(name))
        if msg:
            errors[name] = msg
    return errors
