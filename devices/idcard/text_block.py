"""The 256-byte UCS-2LE text block of the ID card, to and from :class:`IdentityCard`.

Three layouts, told apart by the type field at byte 248: blank for the resident
card, ``J`` for the Hong Kong/Macau/Taiwan residence permit (resident layout plus
pass number and issue count), ``I`` for the foreigner permanent residence card.
Anything else is refused with a message the citizen understands.
"""
from __future__ import annotations

import datetime as _dt
import re

from devices.base import DeviceError
from devices.idcard.ga467 import MalformedText
from kiosk.domain.identity import InvalidIdNumber, validate_id_number
from kiosk.domain.identity_card import NATIONS, SEX_CODES, IdentityCard

__all__ = ["TEXT_LEN", "parse_text_block", "encode_text_block", "UnsupportedCard", "CardRefused",
           "check_card_usable", "MalformedText"]

TEXT_LEN = 256

# (field, offset, bytes)
RESIDENT_LAYOUT = [
    ("name", 0, 30), ("sex", 30, 2), ("nation", 32, 4), ("birth", 36, 16), ("address", 52, 70),
    ("id_number", 122, 36), ("authority", 158, 30), ("valid_from", 188, 16), ("valid_to", 204, 16),
    ("pass_number", 220, 18), ("issue_count", 238, 4), ("reserved", 242, 6), ("type", 248, 2),
    ("reserved2", 250, 6),
]
FOREIGNER_LAYOUT = [
    ("english_name", 0, 120), ("sex", 120, 2), ("card_number", 122, 30), ("nationality", 152, 6),
    ("name", 158, 30), ("valid_from", 188, 16), ("valid_to", 204, 16), ("birth", 220, 16),
    ("card_version", 236, 4), ("authority", 240, 8), ("type", 248, 2), ("reserved", 250, 6),
]

_DATE = re.compile(r"^\d{8}$", re.ASCII)  # a card holds ASCII digits; anything else is corruption
_FOREIGN_OLD = re.compile(r"^[A-Z]{3}\d{12}$", re.ASCII)


class UnsupportedCard(DeviceError):
    code = "unsupported_card"
    message = "暂不支持此类证件，请到人工窗口办理"


class CardRefused(DeviceError):
    """A readable card the kiosk must not accept (expired, invalid number)."""

    code = "card_refused"
    message = "此证件无法使用，请到人工窗口办理"


def _fields(block: bytes, layout: list[tuple[str, int, int]]) -> dict[str, str]:
    out = {}
    for name, off, n in layout:
        raw = block[off:off + n]
        try:
            s = raw.decode("utf-16-le")
        except UnicodeDecodeError:
            raise MalformedText(detail=f"field {name} is not UCS-2") from None
        s = s.replace("\x00", " ").strip()
        if any(ord(c) < 0x20 or 0xD800 <= ord(c) <= 0xDFFF for c in s):
            raise MalformedText(detail=f"field {name} has control characters")
        out[name] = s
    return out


def _date(s: str, what: str) -> _dt.date:
    if not _DATE.match(s):
        raise MalformedText(detail=f"{what} is not YYYYMMDD")
    try:
        return _dt.date(int(s[:4]), int(s[4:6]), int(s[6:]))
    except ValueError:
        raise MalformedText(detail=f"{what} is not a date") from None


def _valid_to(s: str) -> _dt.date | None:
    return None if s == "长期" else _date(s, "valid_to")


def _sex(code: str) -> str:
    if code not in SEX_CODES:
        raise MalformedText(detail="unknown sex code")
    return SEX_CODES[code]


def _require(f: dict[str, str], *names: str) -> None:
    for n in names:
        if not f[n]:
            raise MalformedText(detail=f"field {n} empty")


def parse_text_block(block: bytes, photo: bytes = b"", fingerprint: bytes = b"",
                     today: _dt.date | None = None) -> IdentityCard:
    """Parse and validate; MalformedText / UnsupportedCard on anything a real card would not hold."""
    if len(block) != TEXT_LEN:
        raise MalformedText(detail=f"text block is {len(block)} bytes, expected {TEXT_LEN}")
    type_field = _fields(block, [("type", 248, 2)])["type"]
    if type_field == "I":
        return _parse_foreigner(block, photo, fingerprint, today)
    if type_field not in ("", "J"):
        raise UnsupportedCard(detail="unknown card type byte")
    f = _fields(block, RESIDENT_LAYOUT)
    _require(f, "name", "sex", "birth", "id_number", "valid_from", "valid_to")
    try:
        info = validate_id_number(f["id_number"], today=today)
    except InvalidIdNumber as e:
        raise MalformedText(detail=f"id number: {e.reason}") from None
    birth = _date(f["birth"], "birth")
    if birth != info.birth_date:
        raise MalformedText(detail="birth date differs from the id number")
    valid_from, valid_to = _date(f["valid_from"], "valid_from"), _valid_to(f["valid_to"])
    if valid_to is not None and valid_to < valid_from:
        raise MalformedText(detail="valid_to before valid_from")
    if type_field == "J":
        if f["id_number"][:2] not in ("81", "82", "83"):
            raise MalformedText(detail="residence permit number must start 81/82/83")
        return IdentityCard(
            name=f["name"], sex=_sex(f["sex"]), nation="", birth_date=birth, address=f["address"],
            id_number=f["id_number"].upper(), authority=f["authority"], valid_from=valid_from,
            valid_to=valid_to, card_type="hmt_permit", photo_wlt=bytes(photo), fingerprint=bytes(fingerprint),
            pass_number=f["pass_number"], issue_count=f["issue_count"])
    nation_code = f["nation"].zfill(2)
    if nation_code not in NATIONS:
        raise MalformedText(detail="unknown nation code")
    _require(f, "address", "authority")
    return IdentityCard(
        name=f["name"], sex=_sex(f["sex"]), nation=NATIONS[nation_code], birth_date=birth,
        address=f["address"], id_number=f["id_number"].upper(), authority=f["authority"],
        valid_from=valid_from, valid_to=valid_to, card_type="resident", photo_wlt=bytes(photo),
        fingerprint=bytes(fingerprint))


def _parse_foreigner(block: bytes, photo: bytes, fingerprint: bytes, today: _dt.date | None) -> IdentityCard:
    f = _fields(block, FOREIGNER_LAYOUT)
    _require(f, "english_name", "sex", "card_number", "nationality", "birth", "valid_from", "valid_to")
    number = f["card_number"].upper()
    if len(number) == 18:  # 2023 layout number: same check digit as the resident number
        try:
            info = validate_id_number(number, today=today)
        except InvalidIdNumber as e:
            raise MalformedText(detail=f"foreigner number: {e.reason}") from None
        if not info.foreigner:
            raise MalformedText(detail="18-digit foreigner number must start with 9")
    elif not _FOREIGN_OLD.match(number):
        raise MalformedText(detail="foreigner card number format")
    if not re.fullmatch(r"[A-Z]{3}", f["nationality"]):
        raise MalformedText(detail="nationality code")
    birth = _date(f["birth"], "birth")
    valid_from, valid_to = _date(f["valid_from"], "valid_from"), _valid_to(f["valid_to"])
    return IdentityCard(
        name=f["name"], sex=_sex(f["sex"]), nation="", birth_date=birth, address="", id_number=number,
        authority=f["authority"], valid_from=valid_from, valid_to=valid_to, card_type="foreigner",
        photo_wlt=bytes(photo), fingerprint=bytes(fingerprint), english_name=f["english_name"],
        nationality=f["nationality"], card_version=f["card_version"])


def check_card_usable(card: IdentityCard, today: _dt.date | None = None) -> None:
    """Refuse expired cards with a message the citizen understands."""
    if card.is_expired(today):
        raise CardRefused("card_expired", f"您的{card.card_type_name}已过有效期，请使用有效证件或到人工窗口办理")


# -- encoding (the emulator, simulators and tests build real blocks with it) ------------------------

def _put(buf: bytearray, off: int, n: int, s: str) -> None:
    raw = s.encode("utf-16-le")
    if len(raw) > n:
        raise ValueError(f"field too long for {n} bytes")
    buf[off:off + n] = raw + " ".encode("utf-16-le") * ((n - len(raw)) // 2)


def _d(d: _dt.date) -> str:
    return d.strftime("%Y%m%d")


def encode_text_block(card: IdentityCard, nation_code: str | None = None, sex_code: str | None = None) -> bytes:
    """The 256-byte block a card with these contents would hold."""
    buf = bytearray(" ".encode("utf-16-le") * (TEXT_LEN // 2))
    sex = sex_code or {v: k for k, v in SEX_CODES.items()}[card.sex]
    valid_to = "长期" if card.valid_to is None else _d(card.valid_to)
    if card.card_type == "foreigner":
        vals = {"english_name": card.english_name, "sex": sex, "card_number": card.id_number,
                "nationality": card.nationality, "name": card.name, "valid_from": _d(card.valid_from),
                "valid_to": valid_to, "birth": _d(card.birth_date), "card_version": card.card_version,
                "authority": card.authority, "type": "I"}
        layout = FOREIGNER_LAYOUT
    else:
        if nation_code is None:
            nation_code = {v: k for k, v in NATIONS.items()}.get(card.nation, "")
        vals = {"name": card.name, "sex": sex, "nation": nation_code, "birth": _d(card.birth_date),
                "address": card.address, "id_number": card.id_number, "authority": card.authority,
                "valid_from": _d(card.valid_from), "valid_to": valid_to}
        if card.card_type == "hmt_permit":
            vals.update(pass_number=card.pass_number, issue_count=card.issue_count, type="J")
        layout = RESIDENT_LAYOUT
    for name, off, n in layout:
        if name in vals:
            _put(buf, off, n, vals[name])
    return bytes(buf)
