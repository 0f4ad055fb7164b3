"""Known-answer values for the GA 467 reader's protocol self-test (and the stand-ins that reuse them).

A fictitious, checksum-valid resident card and the SAM's success frame for it: the
reader encodes, decodes and compares them without touching the module.
"""
from __future__ import annotations

import datetime as _dt
from typing import Any

from devices.idcard.ga467 import GA467Frame
from kiosk.domain.identity import check_digit
from kiosk.domain.identity_card import IdentityCard

__all__ = ["sample_card", "sample_id_number", "read_response_frame"]


def sample_id_number(region: str = "370306", birth: str = "19900101", seq: str = "123") -> str:
    """A checksum-valid fictitious number (370306 is 周村区, Zibo)."""
    first17 = region + birth + seq
    return first17 + check_digit(first17)


def sample_card(**over: object) -> IdentityCard:
    """A fictitious resident card for simulators and tests."""
    kw: dict[str, Any] = dict(
        name="张小明", sex="男", nation="汉", birth_date=_dt.date(1990, 1, 1),
        address="山东省淄博市周村区丝绸路1号", id_number=sample_id_number(),
        authority="淄博市公安局周村分局", valid_from=_dt.date(2020, 1, 1), valid_to=_dt.date(2040, 1, 1),
        photo_wlt=bytes(range(256)) * 4)
    kw.update(over)
    return IdentityCard(**kw)


def read_response_frame(text: bytes, photo: bytes, fingerprint: bytes | None = None) -> GA467Frame:
    """The success answer to read-base (fingerprint None) or read-with-fingerprint."""
    if fingerprint is None:
        data = len(text).to_bytes(2, "big") + len(photo).to_bytes(2, "big") + text + photo
    else:
        data = (len(text).to_bytes(2, "big") + len(photo).to_bytes(2, "big")
                + len(fingerprint).to_bytes(2, "big") + text + photo + fingerprint)
    return GA467Frame.response(0x90, data)
