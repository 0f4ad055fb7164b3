"""The public real-estate query (不动产登记信息查询): what a citizen may search by, checked before sending.

The seed promises that "社会公众通过不动产坐落位置、权属证书号、不动产单元号任一检索方式，自主查询不动产
自然状况和限制信息". This module decides which of the three a typed or scanned text is and refuses a
wrong one with a reason per part, so a screen can say *which* part is wrong.

不动产单元号 (real property unit number), 28 characters, GB/T 37346-2019《不动产单元设定与代码编制
规则》 clause 8 (code structure and coding method). What this rule relies on:
- the standard's structure, as the issue states it and as secondary summaries repeat it: 6-digit
  county-level administrative division (GB/T 2260) + 3-digit 地籍区 + 3-digit 地籍子区 + 2-letter
  宗地特征码 + 5-digit 宗地顺序号 (00001-99999) + 1-letter 定着物特征码 + 8-digit 定着物单元编号;
- the 宗地特征码 letters, from "关于不动产单元号编码" (360docs.net/doc/657554573.html), which follows the
  standard's code table: first letter G (国家土地所有权), J (集体土地所有权), Z (所有权未确定或有争议);
  second letter A (集体土地所有权宗地, only with J), B/S/X (建设用地使用权 地表/地上/地下), C (宅基地使用权,
  only with J), D/E/F (土地承包经营权 耕地/林地/草地), H (海域使用权宗海), G (无居民海岛使用权),
  W (使用权未确定或有争议), Y (其他使用权);
- 定着物特征码 F (房屋等建筑物、构筑物), L (森林、林木), Q (其他定着物), W (无定着物), and a parcel
  without fixtures coded W00000000;
- the standard's Annex A examples (e.g. "340123 002004 GB00011": division, zone+subzone, parcel),
  seen in an excerpt of the standard's text: printed numbers may carry spaces between the parts.
The kiosk checks structure and character classes only; whether the unit exists is the platform's.

不动产权证书号: 省简称 + (年份) + 市县名 + 不动产权第 + 7-digit serial + 号, e.g.
鲁(2021)淄博市周村区不动产权第0001234号; full-width brackets are accepted and normalised to half-width.
"""
from __future__ import annotations

import datetime as _dt
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from kiosk.domain.identity import PROVINCE_CODES

__all__ = [
    "UNIT_NUMBER_LENGTH", "UNIT_PARTS", "UNIT_REASONS", "CERT_REASONS", "ADDRESS_REASONS", "RESTRICTION_KINDS",
    "InvalidPropertyQuery", "PropertyQuery", "validate_unit_number", "format_unit_number",
    "validate_certificate_number", "validate_address", "parse_property_query",
]

UNIT_NUMBER_LENGTH = 28
#: (reason code, first index, end index) of each part of a unit number
UNIT_PARTS: tuple[tuple[str, int, int], ...] = (
    ("division", 0, 6), ("cadastral_zone", 6, 12), ("parcel_type", 12, 14), ("parcel_number", 14, 19),
    ("fixture_type", 19, 20), ("fixture_unit", 20, 28),
)
#: reason -> what the screen says (never echoing the number)
UNIT_REASONS: dict[str, str] = {
    "length": "不动产单元号应为28位，请对照证书核对",
    "charset": "不动产单元号只含数字和大写字母，请对照证书核对",
    "division": "不动产单元号前6位（行政区划代码）不正确",
    "cadastral_zone": "不动产单元号第7到12位（地籍区、地籍子区）应为6位数字",
    "parcel_type": "不动产单元号第13、14位（宗地特征码）不正确，应为两个字母，如GB、JC",
    "parcel_number": "不动产单元号第15到19位（宗地顺序号）应为5位数字，且不全为0",
    "fixture_type": "不动产单元号第20位（定着物特征码）应为F、L、Q或W",
    "fixture_unit": "不动产单元号最后8位（定着物单元编号）不正确",
}
CERT_REASONS: dict[str, str] = {
    "cert_shape": "不动产权证书号格式不对，应像 鲁(2021)淄博市周村区不动产权第0001234号",
    "cert_province": "不动产权证书号开头应是省份简称，如“鲁”",
    "cert_year": "不动产权证书号括号里的年份不正确",
    "cert_place": "不动产权证书号里的市县名称不正确",
    "cert_serial": "不动产权证书号“第”和“号”之间应为7位数字",
}
ADDRESS_REASONS: dict[str, str] = {
    "address_short": "坐落地址太短，请至少写到路名和门牌号，如 丝绸路168号",
    "address_long": "坐落地址太长，请只写路名、门牌号和楼号",
    "address_chars": "坐落地址含有无法识别的字符",
}
RESTRICTION_KINDS: tuple[str, ...] = ("查封", "抵押", "异议", "预告登记")

_OWNERS = frozenset("GJZ")
_USES = frozenset("ABSXCDEFHGWY")
_COLLECTIVE_ONLY = frozenset("AC")  # 集体土地所有权宗地, 宅基地使用权: only on collective land
_FIXTURES = frozenset("FLQW")
#: 省级行政区简称 (the first character of a certificate number)
PROVINCE_ABBREVIATIONS = frozenset("京津冀晋蒙辽吉黑沪苏浙皖闽赣鲁豫鄂湘粤桂琼渝川贵黔云滇藏陕秦甘陇青宁新")
_CERT = re.compile(r"^(.)\((\d{4})\)(.+?)不动产权第(\d+)号$")
_PLACE = re.compile(r"^[\u4e00-\u9fff]{2,20}$")


class InvalidPropertyQuery(ValueError):
    """A query the kiosk will not send; ``reason`` names the wrong part (UNIT_/CERT_/ADDRESS_REASONS)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(_MESSAGES[reason])

    @property
    def message(self) -> str:
        return _MESSAGES[self.reason]


_MESSAGES = {**UNIT_REASONS, **CERT_REASONS, **ADDRESS_REASONS}


def _compact(text: str) -> str:
    """NFKC (full-width letters and digits to ASCII), spaces and hyphens removed, upper case."""
    return re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", text)).upper()


def validate_unit_number(text: str) -> str:
    """The 28-character unit number (spaces dropped, upper case) or InvalidPropertyQuery naming the part."""
    s = _compact(text)
    if len(s) != UNIT_NUMBER_LENGTH:
        raise InvalidPropertyQuery("length")
    if not re.fullmatch(r"[0-9A-Z]+", s, re.ASCII):
        raise InvalidPropertyQuery("charset")
    division, zone, ptype, pnum, ftype, funit = (s[a:b] for _, a, b in UNIT_PARTS)
    if not division.isdigit() or division[:2] not in PROVINCE_CODES or division[2:] == "0000":
        raise InvalidPropertyQuery("division")
    if not zone.isdigit():
        raise InvalidPropertyQuery("cadastral_zone")
    if (ptype[0] not in _OWNERS or ptype[1] not in _USES
            or (ptype[1] in _COLLECTIVE_ONLY and ptype[0] != "J")):
        raise InvalidPropertyQuery("parcel_type")
    if not pnum.isdigit() or pnum == "00000":
        raise InvalidPropertyQuery("parcel_number")
    if ftype not in _FIXTURES:
        raise InvalidPropertyQuery("fixture_type")
    if not funit.isdigit() or (ftype == "W") != (funit == "00000000"):
        raise InvalidPropertyQuery("fixture_unit")
    return s


def format_unit_number(unit: str) -> str:
    """The printed form, parts separated by spaces: 370306 004002 GB00123 F00010502."""
    return f"{unit[:6]} {unit[6:12]} {unit[12:19]} {unit[19:]}"


def validate_certificate_number(text: str, today: _dt.date | None = None) -> str:
    """鲁(2021)淄博市周村区不动产权第0001234号 (half-width brackets) or InvalidPropertyQuery."""
    s = re.sub(r"\s+", "", text).replace("（", "(").replace("）", ")")
    m = _CERT.match(s)
    if not m:
        raise InvalidPropertyQuery("cert_shape")
    province, year, place, serial = m.groups()
    if province not in PROVINCE_ABBREVIATIONS:
        raise InvalidPropertyQuery("cert_province")
    # 不动产统一登记 began in 2015 (暂行条例); a certificate cannot be from the future
    if not 2015 <= int(year) <= (today or _dt.date.today()).year:
        raise InvalidPropertyQuery("cert_year")
    if not _PLACE.match(place):
        raise InvalidPropertyQuery("cert_place")
    if len(serial) != 7:
        raise InvalidPropertyQuery("cert_serial")
    return s


def validate_address(text: str) -> str:
    """坐落 text as searched: spaces dropped; at least a road and a number, at most 60 characters."""
    s = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))
    if len(s) < 4:
        raise InvalidPropertyQuery("address_short")
    if len(s) > 60:
        raise InvalidPropertyQuery("address_long")
    if not re.fullmatch(r"[\u4e00-\u9fff0-9A-Za-z()（）#号楼单元室层栋幢之\-－、,，.·]+", s):
        raise InvalidPropertyQuery("address_chars")
    if not re.search(r"[\u4e00-\u9fff]", s):
        raise InvalidPropertyQuery("address_short")
    return s


Kind = Literal["unit_number", "certificate_number", "address"]


@dataclass(frozen=True)
class PropertyQuery:
    by: Kind
    value: str

    def as_body(self) -> dict[str, str]:
        """The platform request body (POST /v1/real-estate/search)."""
        return {"by": self.by, "value": self.value}


def parse_property_query(text: str, by: Kind | None = None, today: _dt.date | None = None) -> PropertyQuery:
    """Which search ``text`` is (or check it as ``by``), normalised; InvalidPropertyQuery with the reason.

    Without ``by``: a text of only letters, digits and spaces is a unit number; one with 不动产权 is a
    certificate number; anything else an address.
    """
    if by is None:
        compact = _compact(text)
        if "不动产权" in text:
            by = "certificate_number"
        elif compact and re.fullmatch(r"[0-9A-Z]+", compact, re.ASCII) and len(compact) >= 12:
            by = "unit_number"
        else:
            by = "address"
    if by == "unit_number":
        return PropertyQuery(by, validate_unit_number(text))
    if by == "certificate_number":
        return PropertyQuery(by, validate_certificate_number(text, today))
    return PropertyQuery("address", validate_address(text))
