"""好差评 by the standard: an evaluation record built against the configured indicator set.

The indicator set (levels, the levels that ask why, the reason choices, the note's length) comes
from ``[evaluation]`` (kiosk.config.EvaluationSection, which cites GB/T 39734-2020), is versioned and
is pushed by bundle. Every record names the case (``tracking_no``: the 办件编号 on the receipt, a
certificate's serial or a payment id) and the ``indicator_set_version`` it was given under, so the
platform can read an old rating by the set it was given with. One evaluation per case: the platform
refuses a second one with ``already_rated`` (the kiosk shows EVALUATION_MESSAGES["already_rated"]).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from kiosk.config import EvaluationSection

__all__ = ["InvalidEvaluation", "EVALUATION_MESSAGES", "RATEABLE_STATUSES", "build_evaluation",
           "asks_reasons", "can_rate_later"]

#: reason code -> what the citizen is told; ``already_rated`` comes from the platform (409)
EVALUATION_MESSAGES: dict[str, str] = {
    "level": "请选择满意程度",
    "reasons_missing": "请选一个不满意的原因",
    "reasons_not_allowed": "满意的评价不用选原因",
    "unknown_reason": "这个原因不在评价选项里，请重新选择",
    "note_too_long": "补充说明太长了，请少写几个字",
    "tracking_no": "办件编号不正确，请扫回执上的二维码",
    "already_rated": "这件事已经评价过了，每件事只能评价一次，谢谢您",
}
#: case statuses (GET /v1/applications/{no}) after which a case may be rated later
RATEABLE_STATUSES = ("done", "returned")
_CASE_NO = re.compile(r"^[A-Za-z0-9-]{1,32}$")


class InvalidEvaluation(ValueError):
    """An evaluation the kiosk will not queue; ``reason`` is a key of EVALUATION_MESSAGES."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(EVALUATION_MESSAGES[reason])


def asks_reasons(indicators: EvaluationSection, level: str) -> bool:
    """Whether the screen shows the reason choices (and the note) for this level."""
    return level in indicators.reasons_for


def can_rate_later(status: str, already_rated: bool = False) -> bool:
    """A receipt scanned later opens the evaluation when its case is finished and not yet rated."""
    return status in RATEABLE_STATUSES and not already_rated


def build_evaluation(indicators: EvaluationSection, *, tracking_no: str, level: str, kiosk_id: str,
                     created_at: str, reasons: Iterable[str] = (), note: str = "",
                     item_code: str | None = None, later: bool = False) -> dict[str, Any]:
    """The POST /v1/evaluations body (also the outbox payload), or InvalidEvaluation.

    ``reasons`` are reason codes of the set; the body carries them, their texts joined as the older
    ``reason`` field (platforms before the indicator set read only that), and the set's version.
    """
    if not isinstance(tracking_no, str) or not _CASE_NO.match(tracking_no):
        raise InvalidEvaluation("tracking_no")
    if level not in indicators.levels:
        raise InvalidEvaluation("level")
    chosen = list(dict.fromkeys(reasons))
    by_code = {r.code: r for r in indicators.reasons}
    if any(c not in by_code for c in chosen):
        raise InvalidEvaluation("unknown_reason")
    note = (note or "").strip()
    if asks_reasons(indicators, level):
        if indicators.reason_required and not chosen:
            raise InvalidEvaluation("reasons_missing")
    elif chosen or note:
        raise InvalidEvaluation("reasons_not_allowed")
    if len(note) > indicators.note_max_chars:
        raise InvalidEvaluation("note_too_long")
    body: dict[str, Any] = {"tracking_no": tracking_no, "level": level, "kiosk_id": kiosk_id,
                            "created_at": created_at, "indicator_set_version": indicators.version,
                            "channel": indicators.channel}
    if chosen:
        body["reasons"] = chosen
        body["reason"] = "、".join(by_code[c].text for c in chosen) + (f"：{note}" if note else "")
    if note:
        body["note"] = note
    if item_code:
        body["item_code"] = item_code
    if later:
        body["later"] = True
    return body
