"""Small values and rules the application services share: flow tables, the station status, messages.

Nothing here holds state of its own; each function takes what it reads.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from kiosk.domain.identity import mask_id_number, mask_name, mask_phone
from kiosk.domain.session import Session, State
from kiosk.ports.platform import RetryableError

OFFLINE_MESSAGE = "网络中断：申请将在恢复后自动提交"
FLOW_NAMES = {"apply": "申请办理", "query_print": "证明打印", "pay": "缴费", "certify": "资格认证"}
#: items with a screen of their own instead of their flow's (the public real-estate query: no identification)
ITEM_SCREENS = {"QHB-BDC-004": "property"}
#: which devices each flow cannot do without
FLOW_NEEDS = {"apply": ("idcard",), "query_print": ("idcard", "camera"), "pay": ("idcard",),
              "certify": ("idcard", "camera")}
CARD_ID_TYPES = {"resident": "resident_id", "foreigner": "foreign_permanent_resident",
                 "foreigner_2023": "foreign_permanent_resident", "hmt": "hk_macau_tw_permit"}
#: platform certificate kinds for query_print items, by a phrase of the item's name; other items ask by code
CERTIFICATE_KINDS = {"参保缴费": "social_insurance_record", "医疗保险参保": "medical_insurance_record",
                     "公积金": "provident_fund_record", "户籍": "household_register"}
VISIT_TIMES = {"明天上午": 1, "明天下午": 1, "后天上午": 2, "后天下午": 2}
DOWN_STATES = ("offline", "error", "missing")
PAPER_OUT_CODES = ("paper_out", "paper-out", "paper_end")


@dataclass
class StationStatus:
    """What the home screen's indicator and the technician screen show."""

    online: bool = True
    queued: int = 0
    failed: int = 0
    devices: dict[str, str] = field(default_factory=dict)  # kind -> ready/busy/offline/error/missing

    @property
    def message(self) -> str:
        if not self.online:
            return OFFLINE_MESSAGE
        if self.queued:
            return f"网络正常 · 待提交 {self.queued} 件"
        return "网络正常"


class EIdentity:
    """An identity verified from the electronic ID QR (no card data)."""

    def __init__(self, name: str, id_number: str, id_type: str) -> None:
        self.name, self.id_number, self.id_type = name, id_number, id_type
        self.address = ""

    def wipe(self) -> None:
        self.name = self.id_number = ""


class CaptureProblem(Exception):
    """A capture the citizen must retake; `message` says how."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def limit_text(v: int | str | None) -> str:
    """A time limit as the citizen reads it: 当场办结, N个工作日, or the source text."""
    if isinstance(v, int):
        return "当场办结" if v == 0 else f"{v}个工作日"
    return str(v or "")


def id_type(ident: Any) -> str:
    """The platform's id_type for an identity (a read card or an electronic ID)."""
    if ident is None:
        return "resident_id"
    if getattr(ident, "id_type", None):
        return str(ident.id_type)
    return CARD_ID_TYPES.get(getattr(ident, "card_type", "resident"), "resident_id")


def mask_value(ftype: str, name: str, v: str) -> str:
    """A form value as the review screen shows it: personal data masked."""
    if ftype == "phone":
        return mask_phone(v)
    if ftype in ("id_number", "bank_account"):
        return mask_id_number(v)
    if name in ("name", "applicant_name"):
        return mask_name(v)
    if name == "address":
        return v[:6] + "*" * max(0, len(v) - 6)
    return v


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).astimezone().isoformat(timespec="seconds")


def platform_message(e: Exception) -> str:
    """What the citizen reads when a platform call failed: its own detail, else a plain sentence."""
    detail = getattr(e, "detail", "")
    if detail:
        return str(detail)
    if isinstance(e, RetryableError):
        return "网络中断，暂时查不到。请稍后再试，或点「帮办代办」"
    return "暂时无法办理，请点「帮办代办」找工作人员"


def walk_to_submitting(session: Session) -> None:
    """query_print and pay complete without a review screen: walk the session to SUBMITTING."""
    if session.state is State.FORM:
        session.to_review()
    if session.state in (State.ITEM_CHOSEN, State.REVIEW):
        session.begin_submit()


def person_view(session: Session) -> dict[str, str]:
    """The identified person, masked, for the screens."""
    ident = session.data.identity
    if ident is None:
        return {}
    if hasattr(ident, "masked"):  # a read card masks itself (its validity is on it)
        m = ident.masked()
        return {"name": m["name"], "id_number": m["id_number"], "valid_to": m["valid_to"]}
    return {"name": mask_name(ident.name), "id_number": mask_id_number(ident.id_number), "valid_to": "电子证照"}


def is_paper_out(e: BaseException) -> bool:
    """A printing failure the citizen can be told is paper (the printer's code, or its own words say 纸)."""
    return "纸" in (getattr(e, "message", None) or "") or getattr(e, "code", "") in PAPER_OUT_CODES
