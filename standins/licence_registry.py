"""The provincial e-licence library (全省电子证照库) as the platform simulator serves it.

A small, realistic data set of synthetic people in 周村区 and their licences: valid ones of every
kind the catalog names, one expired, two revoked. ``fetch`` answers ``POST /v1/licences/fetch``
(docs/platform-api.yaml) and refuses with the contract's codes: ``unknown_licence`` (404),
``not_holder`` (403), ``expired`` / ``revoked`` / ``qr_expired`` (422), ``consent_required`` (422).

The e-licence QR code (``EL1:<ref>:<expiry>:<check>``, kiosk.domain.elicence) is made by
``make_licence_qr`` with the simulator's key, as the 爱山东 app would show it for a few minutes.
This module does not import the simulator (the simulator imports it).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Any

from kiosk.domain.elicence import LICENCE_TYPES
from kiosk.domain.identity import check_digit

__all__ = ["LICENCES", "PEOPLE", "SimRefusal", "fetch", "make_licence_qr", "licence"]

_QR_KEY = b"qhb-platform-sim e-licence qr key"
QR_TTL_S = 300
_QR = re.compile(r"^EL1:([A-Z0-9][A-Z0-9-]{5,39}):([0-9]{10}):([A-Za-z0-9_-]{16,64})$")
ID_TYPES = ("resident_id", "foreign_permanent_resident", "hk_macau_tw_permit", "passport")


def _id(first17: str) -> str:
    return first17 + check_digit(first17)


#: synthetic people (names and numbers are made up; the numbers pass the GB 11643 check)
PEOPLE: dict[str, dict[str, str]] = {
    "zhang": {"name": "张桂兰", "id_number": _id("37030619520315002")},
    "li": {"name": "李建国", "id_number": _id("37030619780906121")},
    "wang": {"name": "王秀英", "id_number": _id("37030619650412304")},
}


@dataclass(frozen=True)
class Licence:
    ref: str
    licence_type: str
    holder: str  # key of PEOPLE
    number: str
    issuer: str
    valid_from: str
    valid_until: str | None  # None: 长期
    status: str = "valid"  # valid | revoked


LICENCES: tuple[Licence, ...] = (
    Licence("ELZB0000000101", "resident_id_card", "zhang", PEOPLE["zhang"]["id_number"],
            "淄博市公安局周村分局", "2012-05-20", None),
    Licence("ELZB0000000102", "household_register", "zhang", "370306012345",
            "淄博市公安局周村分局城北派出所", "2016-09-01", None),
    Licence("ELZB0000000103", "marriage_certificate", "zhang", "J370306-1974-000123",
            "淄博市周村区民政局", "1974-10-02", None),
    Licence("ELZB0000000104", "real_estate_certificate", "zhang", "鲁(2021)淄博市周村区不动产权第0001234号",
            "淄博市自然资源局", "2021-06-18", None),
    Licence("ELZB0000000105", "land_contract_certificate", "zhang", "370306101208010023J",
            "淄博市周村区人民政府", "2018-12-30", "2048-12-31"),
    Licence("ELZB0000000201", "resident_id_card", "li", PEOPLE["li"]["id_number"],
            "淄博市公安局周村分局", "2019-03-11", "2039-03-11"),
    Licence("ELZB0000000202", "business_licence", "li", "92370306MA3TXR8K5L",
            "淄博市周村区行政审批服务局", "2020-07-08", None),
    Licence("ELZB0000000203", "disability_certificate", "li", _id("37030619780906121") + "44",
            "淄博市周村区残疾人联合会", "2015-04-01", "2025-03-31"),  # expired
    Licence("ELZB0000000204", "driving_licence", "li", PEOPLE["li"]["id_number"],
            "山东省淄博市公安局交通警察支队", "2014-08-15", "2030-08-15", status="revoked"),
    Licence("ELZB0000000205", "vehicle_licence", "li", "鲁C·6K3Q1", "山东省淄博市公安局交通警察支队",
            "2020-09-01", None),
    Licence("ELZB0000000301", "resident_id_card", "wang", PEOPLE["wang"]["id_number"],
            "淄博市公安局周村分局", "2010-11-03", None),
    Licence("ELZB0000000302", "marriage_certificate", "wang", "J370306-1988-000871",
            "淄博市周村区民政局", "1988-02-14", None, status="revoked"),  # 离婚后注销
    Licence("ELZB0000000303", "household_register", "wang", "370306054321",
            "淄博市公安局周村分局南郊派出所", "2011-01-20", None),
)
_BY_REF = {lic.ref: lic for lic in LICENCES}


class SimRefusal(Exception):
    """A refusal in the contract's terms; the simulator turns it into problem+json."""

    def __init__(self, status: int, code: str, title: str, detail: str, errors: dict[str, str] | None = None):
        super().__init__(title)
        self.status, self.code, self.title, self.detail, self.errors = status, code, title, detail, errors or {}


def licence(ref: str) -> Licence:
    return _BY_REF[ref]


def _mac(ref: str, expires: int) -> str:
    d = hmac.new(_QR_KEY, f"{ref}:{expires}".encode(), hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(d).decode().rstrip("=")


def make_licence_qr(ref: str, now: float | None = None, ttl_s: int = QR_TTL_S) -> str:
    """The e-licence QR text the citizen's app would show for licence ``ref`` (valid ``ttl_s``)."""
    expires = int((time.time() if now is None else now) + ttl_s)
    return f"EL1:{ref}:{expires:010d}:{_mac(ref, expires)}"


def _holder_of(data: dict[str, Any], errors: dict[str, str]) -> tuple[str, str] | None:
    h = data.get("holder")
    if not isinstance(h, dict):
        errors["holder"] = "请先刷身份证或扫居民码确认身份"
        return None
    id_type, num = h.get("id_type"), h.get("id_number")
    if id_type not in ID_TYPES:
        errors["holder.id_type"] = "证件类型不正确"
    if not isinstance(num, str) or not num.strip() or len(num) > 32:
        errors["holder.id_number"] = "请填写证件号码"
    if errors:
        return None
    return str(id_type), str(num).strip().upper()


def fetch(data: dict[str, Any], today: str, now: float | None = None) -> dict[str, Any]:
    """The licence asked for, or SimRefusal. ``today``: ISO date on the platform's clock."""
    errors: dict[str, str] = {}
    method = data.get("method")
    if method not in ("qr", "holder"):
        errors["method"] = "调取方式不正确"
    holder = _holder_of(data, errors)
    if method == "qr" and (not isinstance(data.get("qr_payload"), str) or not data["qr_payload"]
                           or len(data["qr_payload"]) > 512):
        errors["qr_payload"] = "请出示电子证照二维码"
    if method == "holder" and data.get("licence_type") not in LICENCE_TYPES:
        errors["licence_type"] = "证照类型不正确"
    if errors:
        raise SimRefusal(422, "validation_failed", "licence request is not valid", "调取请求有误", errors)
    if data.get("consent") is not True:
        raise SimRefusal(422, "consent_required", "the citizen's consent is missing",
                         "需要本人同意才能调取电子证照", {"consent": "请确认同意调取"})
    assert holder is not None
    if method == "qr":
        m = _QR.match(data["qr_payload"].strip())
        if not m or not hmac.compare_digest(m.group(3), _mac(m.group(1), int(m.group(2)))):
            raise SimRefusal(404, "unknown_licence", "no such licence", "没有查到这个电子证照")
        if int(m.group(2)) < (time.time() if now is None else now):
            raise SimRefusal(422, "qr_expired", "the licence QR code has expired",
                             "电子证照二维码已过期，请刷新后重新出示")
        lic = _BY_REF.get(m.group(1))
        if lic is None:
            raise SimRefusal(404, "unknown_licence", "no such licence", "没有查到这个电子证照")
        if holder != ("resident_id", PEOPLE[lic.holder]["id_number"]):
            raise SimRefusal(403, "not_holder", "the licence belongs to someone else", "这个证照不是本人的")
    else:
        found = [lic for lic in LICENCES if lic.licence_type == data["licence_type"]
                 and holder == ("resident_id", PEOPLE[lic.holder]["id_number"])]
        if not found:
            raise SimRefusal(404, "unknown_licence", "no such licence", "电子证照库中没有本人的这类证照")
        lic = found[0]
    if lic.status == "revoked":
        raise SimRefusal(422, "revoked", "the licence was revoked", "这个证照已被注销或吊销")
    if lic.valid_until is not None and lic.valid_until < today:
        raise SimRefusal(422, "expired", "the licence has expired", "这个证照已过有效期")
    person = PEOPLE[lic.holder]
    return {"licence_ref": lic.ref, "licence_type": lic.licence_type, "licence_name": LICENCE_TYPES[lic.licence_type],
            "number": lic.number, "holder": {"name": person["name"], "id_type": "resident_id",
                                             "id_number": person["id_number"]},
            "issuer": lic.issuer, "valid_from": lic.valid_from, "valid_until": lic.valid_until, "status": "valid"}


def application_licence_errors(licences: Any) -> dict[str, str]:
    """An application's ``licences`` (e-licences fetched instead of photos): known, valid references only."""
    if licences is None:
        return {}
    if not isinstance(licences, list) or len(licences) > 20:
        return {"licences": "电子证照清单格式不正确"}
    for i, entry in enumerate(licences):
        ref = entry.get("licence_ref") if isinstance(entry, dict) else None
        if not isinstance(ref, str) or ref not in _BY_REF:
            return {f"licences.{i}": "电子证照不存在，请重新调取或拍照上传"}
        if entry.get("licence_type") not in (None, _BY_REF[ref].licence_type):
            return {f"licences.{i}": "电子证照类型与材料不符"}
        if _BY_REF[ref].status != "valid":
            return {f"licences.{i}": "电子证照已注销，请拍照上传纸质证件"}
    return {}
