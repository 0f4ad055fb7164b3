"""Identity rules: the resident ID number (GB 11643-1999) and the one masking rule.

Every screen, receipt, log line and technician tool masks through this module so
that a change of policy is one edit.
"""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass

__all__ = [
    "IdNumberInfo",
    "InvalidIdNumber",
    "PROVINCE_CODES",
    "check_digit",
    "validate_id_number",
    "is_valid_id_number",
    "mask_id_number",
    "mask_name",
    "mask_phone",
]

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_ID_SHAPE = re.compile(r"[0-9]{17}[0-9Xx]", re.ASCII)

#: Province-level codes of GB/T 2260, plus 9x used by the 2023 foreigner
#: permanent residence number (whose next two digits are the province code).
PROVINCE_CODES: dict[str, str] = {
    "11": "北京", "12": "天津", "13": "河北", "14": "山西", "15": "内蒙古",
    "21": "辽宁", "22": "吉林", "23": "黑龙江",
    "31": "上海", "32": "江苏", "33": "浙江", "34": "安徽", "35": "福建", "36": "江西", "37": "山东",
    "41": "河南", "42": "湖北", "43": "湖南", "44": "广东", "45": "广西", "46": "海南",
    "50": "重庆", "51": "四川", "52": "贵州", "53": "云南", "54": "西藏",
    "61": "陕西", "62": "甘肃", "63": "青海", "64": "宁夏", "65": "新疆",
    "71": "台湾", "81": "香港", "82": "澳门", "83": "台湾",  # 83: HK/Macau/Taiwan residence permits
}

REASONS = ("length", "charset", "region", "birthdate", "checksum")


class InvalidIdNumber(ValueError):
    """Raised with a machine-readable `reason` (one of REASONS) and a citizen-facing message."""

    MESSAGES = {
        "length": "身份证号码应为18位",
        "charset": "身份证号码只能包含数字，最后一位可以是X",
        "region": "身份证号码的地区代码不正确",
        "birthdate": "身份证号码中的出生日期不正确",
        "checksum": "身份证号码校验位不正确，请核对",
    }

    def __init__(self, reason: str):
        assert reason in REASONS
        self.reason = reason
        # The number itself never goes into the message: exceptions get logged.
        super().__init__(self.MESSAGES[reason])


@dataclass(frozen=True)
class IdNumberInfo:
    region_code: str
    birth_date: _dt.date
    sex: str  # "男" or "女"
    foreigner: bool = False


def check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character for 17 digits."""
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS))
    return _CHECK_CHARS[total % 11]


def validate_id_number(s: str, today: _dt.date | None = None) -> IdNumberInfo:
    """Validate an 18-character resident (or 2023 foreigner permanent residence) number."""
    if not isinstance(s, str):
        raise InvalidIdNumber("charset")
    s = s.strip()
    # A non-ASCII character (full-width or Arabic-Indic digits, a zero-width space) is a charset
    # problem whatever the length: "length" would send the citizen counting digits.
    if not s.isascii():
        raise InvalidIdNumber("charset")
    if len(s) != 18:
        raise InvalidIdNumber("length")
    # ASCII only: `\d` would also accept full-width (１２３) and Arabic-Indic (١٢٣) digits,
    # which int() happily converts, so such a number would validate and then never match the platform's.
    if not _ID_SHAPE.fullmatch(s):
        raise InvalidIdNumber("charset")
    s = s.upper()
    foreigner = s[0] == "9"
    province = s[1:3] if foreigner else s[0:2]
    if province not in PROVINCE_CODES:
        raise InvalidIdNumber("region")
    try:
        birth = _dt.date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise InvalidIdNumber("birthdate") from None
    today = today or _dt.date.today()
    if birth > today or birth.year < 1880:
        raise InvalidIdNumber("birthdate")
    if check_digit(s[:17]) != s[17]:
        raise InvalidIdNumber("checksum")
    sex = "男" if int(s[16]) % 2 == 1 else "女"
    return IdNumberInfo(region_code=s[:6], birth_date=birth, sex=sex, foreigner=foreigner)


def is_valid_id_number(s: str) -> bool:
    try:
        validate_id_number(s)
    except InvalidIdNumber:
        return False
    return True


def mask_id_number(s: str | None) -> str:
    """Keep the first 3 and last 4 characters: enough for a citizen to recognise their own."""
    if not s:
        return ""
    s = str(s).strip()
    if len(s) <= 7:
        return "*" * len(s)
    return s[:3] + "*" * (len(s) - 7) + s[-4:]


def mask_name(s: str | None) -> str:
    """Keep the family name (first character) only: 张三丰 -> 张**; Latin names keep the first letter."""
    if not s:
        return ""
    s = str(s).strip()
    if len(s) == 1:
        return s
    return s[0] + "*" * (len(s) - 1)


def mask_phone(s: str | None) -> str:
    """138****5678."""
    if not s:
        return ""
    s = str(s).strip()
    if len(s) < 7:
        return "*" * len(s)
    return s[:3] + "*" * (len(s) - 7) + s[-4:]
