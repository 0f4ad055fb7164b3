"""Electronic licences (电子证照) as materials: the licence types, the e-licence QR code, the refusals.

The district promised (seed, 第12项 政务服务) that a citizen "扫描证件二维码或录入代码信息，即可通过
全省电子证照库调取相关信息……取代纸质证明材料". This module is the rule side of that promise:

- ``LICENCE_TYPES``: the licence types a catalog material may name (``Material.licence_type``),
  with the name shown to the citizen;
- ``parse_elicence_qr``: the e-licence QR code shown by the 爱山东 app (``EL1:`` payloads), checked
  for shape and for its own short validity before anything is sent to the platform (the platform
  checks its signature);
- ``LICENCE_REASONS``: the plain reason codes of a refused fetch (platform codes and QR refusals),
  each with the sentence the materials screen shows before it offers the camera instead.

Nothing here keeps a licence: a fetched licence lives in the visit only.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

from kiosk.domain.identity import mask_id_number, mask_name

__all__ = [
    "LICENCE_TYPES", "LICENCE_REASONS", "ELICENCE_QR_PREFIX", "ElicenceQr", "InvalidElicenceQr",
    "parse_elicence_qr", "licence_name", "reason_message", "masked_holder",
]

#: licence type code -> the name a citizen knows it by. Codes are contracts (catalog data, platform API).
LICENCE_TYPES: dict[str, str] = {
    "resident_id_card": "居民身份证",
    "household_register": "居民户口簿",
    "business_licence": "营业执照",
    "real_estate_certificate": "不动产权证书",
    "marriage_certificate": "结婚证",
    "disability_certificate": "残疾人证",
    "driving_licence": "机动车驾驶证",
    "vehicle_licence": "机动车行驶证",
    "land_contract_certificate": "农村土地承包经营权证",
}

#: reason code -> what the citizen is told (then the camera path is offered). The first six come
#: from the platform (problem ``code``); ``bad_elicence`` / ``elicence_expired`` are refused at the kiosk.
LICENCE_REASONS: dict[str, str] = {
    "unknown_licence": "没有查到这个电子证照，请拍照上传纸质证件",
    "expired": "这个证照已过有效期，请拍照上传有效的证件",
    "revoked": "这个证照已被注销或吊销，不能使用，请咨询工作人员",
    "not_holder": "这个证照不是本人的，请出示本人的证照，或拍照上传",
    "qr_expired": "电子证照二维码已过期，请在爱山东APP上刷新后重新出示",
    "consent_required": "需要您同意调取电子证照，才能继续",
    "bad_elicence": "电子证照二维码无法识别，请在爱山东APP上刷新后重新出示，或拍照上传",
    "elicence_expired": "电子证照二维码已过期，请在爱山东APP上刷新后重新出示",
}

ELICENCE_QR_PREFIX = "EL1:"
#: EL1:<licence reference>:<expiry, unix seconds>:<platform's check code>
_QR = re.compile(r"^EL1:([A-Z0-9][A-Z0-9-]{5,39}):([0-9]{10}):([A-Za-z0-9_-]{16,64})$")


class InvalidElicenceQr(ValueError):
    """An ``EL1:`` code the kiosk will not send on; ``reason`` is ``bad_elicence`` or ``elicence_expired``."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(LICENCE_REASONS[reason])


@dataclass(frozen=True)
class ElicenceQr:
    licence_ref: str
    expires_at: int  # unix seconds: the app's code is short-lived (a screenshot is not a licence)
    payload: str  # the whole text, sent to the platform as it is


def parse_elicence_qr(text: str, now: float | None = None) -> ElicenceQr:
    """The e-licence code in ``text``; InvalidElicenceQr when malformed or past its expiry."""
    m = _QR.match(text.strip())
    if not m:
        raise InvalidElicenceQr("bad_elicence")
    expires = int(m.group(2))
    if expires < (time.time() if now is None else now):
        raise InvalidElicenceQr("elicence_expired")
    return ElicenceQr(m.group(1), expires, text.strip())


def licence_name(licence_type: str) -> str:
    """The citizen's name for a licence type (the code itself for an unknown one)."""
    return LICENCE_TYPES.get(licence_type, licence_type)


def reason_message(reason: str) -> str:
    """The sentence for a refusal code; a generic one for a code this kiosk does not know yet."""
    return LICENCE_REASONS.get(reason, "暂时无法调取电子证照，请拍照上传纸质证件")


def masked_holder(name: str | None, id_number: str | None) -> str:
    """The licence holder as a screen may show it (the one masking rule of kiosk.domain.identity)."""
    return f"{mask_name(name)} {mask_id_number(id_number)}".strip()
