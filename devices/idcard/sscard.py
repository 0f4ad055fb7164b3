"""The social security card (社会保障卡) over PC/SC: ATR, application select, EF05/EF06 records.

Public sources describe the layout only in part (no official specification was
found): the application "sx1.sh.社会保障", EF05 with the card's own data, EF06
with the holder's, records read by tag as TLV. Many cards guard EF06 with a PSAM
(a security module in the terminal) or a PIN: a terminal without one reads the
card data, says clearly that the holder data needs a PSAM, and never guesses.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from devices.base import DeviceError
from devices.idcard.pcsc import ApduError, PcscCardReader, Transmit, transmit_checked
from kiosk.domain.identity import InvalidIdNumber, mask_id_number, mask_name, validate_id_number
from kiosk.domain.identity_card import NATIONS, SEX_CODES

SSC_AID = bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF")  # "sx1.sh." + GBK 社会保障

__all__ = ["SocialSecurityCard", "read_sscard", "SocialSecurityCardReader", "PSAM_MESSAGE", "NotSocialSecurityCard"]

PSAM_MESSAGE = "此社会保障卡的个人信息需要安全模块(PSAM)认证，本机未配置，请使用身份证或到人工窗口办理"


class NotSocialSecurityCard(DeviceError):
    code = "not_sscard"
    message = "这不是社会保障卡，请插入社会保障卡"


@dataclass(repr=False)
class SocialSecurityCard:
    card_id: str  # 卡识别码 (hex)
    spec_version: str
    issue_date: _dt.date | None
    expiry_date: _dt.date | None
    card_number: str
    # holder data: None when the card needs a PSAM the terminal lacks
    id_number: str | None = None
    name: str | None = None
    sex: str | None = None
    nation: str | None = None
    birth_date: _dt.date | None = None
    holder_protected: bool = False
    notes: list[str] = field(default_factory=list)

    def is_expired(self, today: _dt.date | None = None) -> bool:
        return self.expiry_date is not None and (today or _dt.date.today()) > self.expiry_date

    def masked(self) -> dict[str, Any]:
        return {
            "card_id": self.card_id[:6] + "*" * max(0, len(self.card_id) - 6),
            "spec_version": self.spec_version,
            "issue_date": self.issue_date.isoformat() if self.issue_date else None,
            "expiry_date": self.expiry_date.isoformat() if self.expiry_date else None,
            "card_number": mask_id_number(self.card_number),
            "id_number": mask_id_number(self.id_number) if self.id_number else None,
            "name": mask_name(self.name) if self.name else None,
            "sex": self.sex, "nation": self.nation,
            "birth_year": self.birth_date.year if self.birth_date else None,
            "holder_protected": self.holder_protected,
            "message": PSAM_MESSAGE if self.holder_protected else None,
        }

    def __repr__(self) -> str:
        return f"SocialSecurityCard({self.spec_version}, {mask_id_number(self.card_number)})"


def _bcd_date(v: bytes) -> _dt.date | None:
    s = v.hex()
    try:
        return _dt.date(int(s[:4]), int(s[4:6]), int(s[6:8])) if len(s) >= 8 else None
    except ValueError:
        return None


def _read_record(transmit: Transmit, tag: int) -> bytes:
    rec = transmit_checked(transmit, bytes([0x00, 0xB2, tag, 0x04, 0x00]), f"record {tag:02X}")
    if len(rec) < 2 or rec[0] != tag or rec[1] != len(rec) - 2:
        raise DeviceError("bad_record", "卡片数据格式不正确，请重新插卡", detail=f"record {tag:02X}")
    return rec[2:]


def _text(v: bytes) -> str:
    try:
        return v.decode("gbk").strip().strip("\x00")
    except UnicodeDecodeError:
        raise DeviceError("bad_record", "卡片数据格式不正确，请重新插卡") from None


def read_sscard(transmit: Transmit) -> SocialSecurityCard:
    """Select the application and read EF05 (and EF06 unless a PSAM is required)."""
    select = bytes([0x00, 0xA4, 0x04, 0x00, len(SSC_AID)]) + SSC_AID
    try:
        transmit_checked(transmit, select, "select application")
    except ApduError as e:
        if e.code in ("not_found", "function_not_supported", "ins_not_supported", "cla_not_supported"):
            raise NotSocialSecurityCard(detail=e.detail) from None
        raise
    transmit_checked(transmit, bytes.fromhex("00A4020002EF05"), "select EF05")
    card = SocialSecurityCard(
        card_id=_read_record(transmit, 0x01).hex().upper(),
        spec_version=_text(_read_record(transmit, 0x03)),
        issue_date=_bcd_date(_read_record(transmit, 0x05)),
        expiry_date=_bcd_date(_read_record(transmit, 0x06)),
        card_number=_text(_read_record(transmit, 0x07)),
    )
    transmit_checked(transmit, bytes.fromhex("00A4020002EF06"), "select EF06")
    try:
        id_number = _text(_read_record(transmit, 0x08))
    except ApduError as e:
        if e.sw in (0x6982, 0x6985):
            card.holder_protected = True
            card.notes.append(PSAM_MESSAGE)
            return card
        raise
    try:
        validate_id_number(id_number)
    except InvalidIdNumber as e:
        raise DeviceError("bad_record", "卡片上的身份证号码不正确，请到人工窗口办理", detail=e.reason) from None
    card.id_number = id_number
    card.name = _text(_read_record(transmit, 0x09))
    card.sex = SEX_CODES.get(_text(_read_record(transmit, 0x0A)), "未知")
    card.nation = NATIONS.get(_text(_read_record(transmit, 0x0B)).zfill(2), "")
    card.birth_date = _bcd_date(_read_record(transmit, 0x0D))
    return card


class SocialSecurityCardReader(PcscCardReader):
    """PC/SC reader that reads social security cards; card_inserted carries ``card`` (or ``error``)."""

    kind = "sscard"
    driver = "pcsc"

    def _on_card(self, transmit: Transmit, atr: bytes) -> dict[str, Any]:
        return {"card": read_sscard(transmit)}
