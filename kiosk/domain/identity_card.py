"""What the kiosk knows about a citizen's identity document once a reader has read it.

Core data model (no device code): the ID-card reader, the social security card
reader and the visit state machine all hand this around. Its ``repr`` is masked
so that a stray log line never carries a name or number; ``wipe()`` drops the
contents when the visit ends.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field, fields
from typing import Any

from kiosk.domain.identity import mask_id_number, mask_name

__all__ = ["NATIONS", "SEX_CODES", "CARD_TYPES", "IdentityCard", "nation_name", "sex_name"]

#: GB 3304 nation codes as printed on the card (01-56, 97, 98).
NATIONS: dict[str, str] = {
    "01": "汉", "02": "蒙古", "03": "回", "04": "藏", "05": "维吾尔", "06": "苗", "07": "彝", "08": "壮",
    "09": "布依", "10": "朝鲜", "11": "满", "12": "侗", "13": "瑶", "14": "白", "15": "土家", "16": "哈尼",
    "17": "哈萨克", "18": "傣", "19": "黎", "20": "傈僳", "21": "佤", "22": "畲", "23": "高山", "24": "拉祜",
    "25": "水", "26": "东乡", "27": "纳西", "28": "景颇", "29": "柯尔克孜", "30": "土", "31": "达斡尔",
    "32": "仫佬", "33": "羌", "34": "布朗", "35": "撒拉", "36": "毛南", "37": "仡佬", "38": "锡伯",
    "39": "阿昌", "40": "普米", "41": "塔吉克", "42": "怒", "43": "乌孜别克", "44": "俄罗斯", "45": "鄂温克",
    "46": "德昂", "47": "保安", "48": "裕固", "49": "京", "50": "塔塔尔", "51": "独龙", "52": "鄂伦春",
    "53": "赫哲", "54": "门巴", "55": "珞巴", "56": "基诺", "97": "其他", "98": "外国血统中国籍人士",
}

#: GB/T 2261.1 sex codes.
SEX_CODES: dict[str, str] = {"0": "未知", "1": "男", "2": "女", "9": "未说明"}

#: card_type -> Chinese name of the document.
CARD_TYPES: dict[str, str] = {
    "resident": "居民身份证",
    "hmt_permit": "港澳台居民居住证",
    "foreigner": "外国人永久居留身份证",
}


def nation_name(code: str) -> str:
    """Name for a 1-2 digit nation code; KeyError for codes outside GB 3304."""
    return NATIONS[code.strip().zfill(2)]


def sex_name(code: str) -> str:
    return SEX_CODES[code.strip()]


@dataclass(repr=False, eq=True)
class IdentityCard:
    name: str
    sex: str  # 男 / 女 / 未知 / 未说明
    nation: str  # name, e.g. 汉; "" on documents without one
    birth_date: _dt.date
    address: str
    id_number: str
    authority: str
    valid_from: _dt.date
    valid_to: _dt.date | None  # None: 长期 (no expiry)
    card_type: str = "resident"
    photo_wlt: bytes = b""  # vendor WLT, kept as is (decoding needs the vendor library)
    fingerprint: bytes = b""
    # Extra fields of the non-resident layouts
    english_name: str = ""
    nationality: str = ""  # GB/T 2659 alpha-3, foreigner card
    pass_number: str = ""  # HMT permit: 通行证号码
    issue_count: str = ""  # HMT permit: 签发次数
    card_version: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.card_type not in CARD_TYPES:
            raise ValueError(f"unknown card_type {self.card_type!r}")

    @property
    def card_type_name(self) -> str:
        return CARD_TYPES[self.card_type]

    def is_expired(self, today: _dt.date | None = None) -> bool:
        """A card is valid through the last day printed on it; 长期 never expires."""
        today = today or _dt.date.today()
        return self.valid_to is not None and today > self.valid_to

    def valid_to_text(self) -> str:
        return "长期" if self.valid_to is None else self.valid_to.isoformat()

    def masked(self) -> dict[str, Any]:
        """The view for screens, receipts and technician tools: nothing that identifies on its own."""
        return {
            "card_type": self.card_type,
            "card_type_name": self.card_type_name,
            "name": mask_name(self.name),
            "english_name": mask_name(self.english_name) if self.english_name else "",
            "sex": self.sex,
            "nation": self.nation,
            "nationality": self.nationality,
            "birth_year": self.birth_date.year,
            "address": (self.address[:6] + "*" * max(0, len(self.address) - 6)) if self.address else "",
            "id_number": mask_id_number(self.id_number),
            "authority": self.authority,
            "valid_from": self.valid_from.isoformat(),
            "valid_to": self.valid_to_text(),
            "photo_bytes": len(self.photo_wlt),
            "fingerprint_bytes": len(self.fingerprint),
        }

    def unmasked(self) -> dict[str, Any]:
        """Full contents, for a technician who explicitly asks (never logged)."""
        d = self.masked()
        d.update(name=self.name, english_name=self.english_name, address=self.address,
                 id_number=self.id_number, birth_date=self.birth_date.isoformat(),
                 pass_number=self.pass_number, issue_count=self.issue_count, card_version=self.card_version)
        d.pop("birth_year", None)
        return d

    def wipe(self) -> None:
        """Drop personal data at the end of a visit (best effort: Python strings are immutable)."""
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bytearray):
                v[:] = b"\x00" * len(v)
            if isinstance(v, (str, bytes, bytearray)):
                setattr(self, f.name, type(v)())
            elif isinstance(v, dict):
                v.clear()
        self.birth_date = self.valid_from = _dt.date.min
        self.valid_to = None

    def __repr__(self) -> str:
        m = self.masked()
        return f"IdentityCard({m['card_type']}, {m['name']}, {m['id_number']})"

    __str__ = __repr__
