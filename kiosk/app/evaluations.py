"""好差评 at the terminal: the configured indicator set on screen, a rating right after a case, a rating later.

The indicator set is ``[evaluation]`` (kiosk.config.EvaluationSection, GB/T 39734; versioned, pushable by
bundle), read afresh each time the rating screen asks, so a pushed set shows on the next rating. Every
record is built by kiosk.domain.evaluation.build_evaluation (the 办件编号 and the set's version) and goes
through the durable outbox like an application, in the background with the visit token.

One evaluation per case (``already_rated``), known in two ways:
- locally: every case rated at this kiosk is remembered in ``<state_dir>/rated-cases.json`` (tracking
  numbers only, nothing personal; written atomically off the UI thread, the newest RATED_KEEP kept). A
  case known here is not offered 「评价」 again, and a second rating of it is refused before it is queued;
- by the platform: it refuses a second evaluation of a case with 409 ``already_rated`` (also one given at
  another kiosk or channel). A rating given later waits, like a submission, up to ``submit_wait_s`` for
  the drainer to deliver its outbox record: delivered, it thanks the citizen; dead-lettered by the
  platform with ``already_rated`` (the drainer records ``HTTP 409 already_rated`` as the record's error),
  the citizen is told EVALUATION_MESSAGES["already_rated"] at once; not answered in time (offline), it
  stays queued and the citizen is thanked (a later refusal then only reaches the dead letter). The
  platform's case status carries no "rated" flag, so the refusal is learnt when the rating is sent,
  never before the screen opens. A rating right after a submission does not wait: its case is new.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kiosk.app.common import now_iso
from kiosk.app.context import AppContext
from kiosk.app.errors import logged_entry_points
from kiosk.config import EvaluationSection
from kiosk.domain.evaluation import EVALUATION_MESSAGES, InvalidEvaluation, asks_reasons, build_evaluation
from kiosk.domain.session import State
from kiosk.infra.atomic_file import atomic_write_json

__all__ = ["EvaluationService", "RATED_FILE", "RATED_KEEP", "NOT_DELIVERED_MESSAGE"]

log = logging.getLogger(__name__)

RATED_FILE = "rated-cases.json"
RATED_KEEP = 5000  # the newest tracking numbers remembered (a village kiosk rates far fewer in a retention period)
#: a later rating the platform refused for another reason than already_rated
NOT_DELIVERED_MESSAGE = "评价没有送达平台，请点「帮办代办」找工作人员"


@logged_entry_points
class EvaluationService:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._lock = threading.RLock()  # the set and its file: one writer at a time, newest last
        self._rated: dict[str, None] | None = None  # insertion-ordered set, loaded on first use (off the UI thread)
        self._rated_path: Path | None = None

    # ------------------------------------------------------------------ the indicator set, for the screen
    @property
    def indicators(self) -> EvaluationSection:
        return self.ctx.config.evaluation

    def indicator_view(self) -> dict[str, Any]:
        """What the rating screen shows: the five levels, which ask why, the reason choices, the note's length."""
        ind = self.indicators
        return {"version": ind.version, "levels": list(ind.levels), "reasons_for": list(ind.reasons_for),
                "reasons": [{"code": r.code, "text": r.text, "hint": r.hint} for r in ind.reasons],
                "reason_required": ind.reason_required, "note_max_chars": ind.note_max_chars}

    def asks_reasons(self, level: str) -> bool:
        return asks_reasons(self.indicators, level)

    # ------------------------------------------------------------------ right after a case
    def rate_case(self, level: str, reasons: Iterable[str] = (), note: str = "") -> str:
        """Rate the current visit's case (its receipt's number): "" when queued (in the background: its fsynced
        enqueue never on the UI thread), else what the citizen is told (EVALUATION_MESSAGES), nothing queued."""
        ctx = self.ctx
        s = ctx.session
        it = ctx.current_item
        try:
            body = build_evaluation(self.indicators, tracking_no=s.data.tracking_no or "", level=level,
                                    kiosk_id=ctx.config.kiosk.id, created_at=now_iso(), reasons=reasons, note=note,
                                    item_code=it.code if it is not None else None)
        except InvalidEvaluation as e:
            log.info("rating not queued: %s", e.reason)
            return str(e)
        if s.state in (State.DONE, State.QUEUED):
            s.start_rating()
        if s.state is State.RATING:
            s.rate(level)
        ctx.in_background(self._queue_case_rating, body)
        return ""

    def _queue_case_rating(self, _token: int, body: dict[str, Any]) -> None:
        """Worker: the rating belongs to the visit that gave it; it is queued even when that visit has ended."""
        self.ctx.enqueue("evaluation", body, "eval")
        self._remember(body["tracking_no"])

    # ------------------------------------------------------------------ later, by the receipt's QR code
    def rate_later(self, tracking_no: str, level: str, reasons: Iterable[str] = (), note: str = "",
                   item_code: str | None = None, aliases: Iterable[str] = ()) -> str:
        """Rate a finished case found by its receipt: "" when it is on its way, else what the citizen is told
        about the choice. The outcome comes back as ``evaluation_sent`` (queued: bool) or
        ``evaluation_refused`` (reason, message)."""
        ctx = self.ctx
        try:
            body = build_evaluation(self.indicators, tracking_no=tracking_no, level=level,
                                    kiosk_id=ctx.config.kiosk.id, created_at=now_iso(), reasons=reasons, note=note,
                                    item_code=item_code, later=True)
        except InvalidEvaluation as e:
            log.info("later rating not queued: %s", e.reason)
            return str(e)
        ctx.in_background(self._rate_later, body, [tracking_no, *aliases])
        return ""

    def _rate_later(self, token: int, body: dict[str, Any], numbers: list[str]) -> None:
        ctx = self.ctx
        if self.is_rated(*numbers):
            ctx.post_for(token, "evaluation_refused", reason="already_rated",
                         message=EVALUATION_MESSAGES["already_rated"])
            return
        local_no = ctx.enqueue("evaluation", body, "eval")
        self._remember(*numbers)
        outcome = self._wait_answer(local_no)
        if outcome == "already_rated":
            ctx.post_for(token, "evaluation_refused", reason="already_rated",
                         message=EVALUATION_MESSAGES["already_rated"])
        elif outcome == "refused":
            self._forget(*numbers)  # never reached the platform: the citizen may try again with a helper
            ctx.post_for(token, "evaluation_refused", reason="refused", message=NOT_DELIVERED_MESSAGE)
        else:
            ctx.post_for(token, "evaluation_sent", queued=outcome == "queued")

    def _wait_answer(self, local_no: str) -> str:
        """Nudge the drainer and wait a little: delivered, already_rated, refused, or queued (no answer yet)."""
        ctx = self.ctx
        outbox = ctx.require_outbox()
        end = time.monotonic() + ctx.timings.submit_wait_s
        while time.monotonic() < end:
            rec = outbox.get(local_no, decrypt=False)
            if rec is not None and rec.state == "done":
                return "delivered"
            if rec is not None and rec.state == "failed":
                return "already_rated" if "already_rated" in (rec.last_error or "") else "refused"
            if rec is not None and rec.state == "pending" and rec.attempts > 0:
                return "queued"  # tried and the platform is unreachable: it goes out when the line is back
            time.sleep(0.1)
        return "queued"

    # ------------------------------------------------------------------ cases rated here
    def is_rated(self, *numbers: str) -> bool:
        """Whether any of the case's numbers (platform or local) was rated at this kiosk (reads the disk once)."""
        rated = self._load()
        return any(n in rated for n in numbers if n)

    def _path(self) -> Path:
        return Path(self.ctx.state_dir) / RATED_FILE

    def _load(self) -> dict[str, None]:
        path = self._path()
        with self._lock:
            if self._rated is not None and self._rated_path == path:
                return self._rated
            rated: dict[str, None] = {}
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
                rated = dict.fromkeys(str(n) for n in doc.get("cases", []))
            except FileNotFoundError:
                pass
            except (OSError, ValueError, AttributeError, TypeError):
                log.exception("rated cases unreadable; starting from none (the platform still refuses a second)")
            self._rated, self._rated_path = rated, path
            return rated

    def _remember(self, *numbers: str) -> None:
        with self._lock:
            rated = self._load()
            for n in numbers:
                if n:
                    rated.pop(n, None)
                    rated[n] = None
            while len(rated) > RATED_KEEP:
                del rated[next(iter(rated))]
            self._save(list(rated))

    def _forget(self, *numbers: str) -> None:
        with self._lock:
            rated = self._load()
            for n in numbers:
                rated.pop(n, None)
            self._save(list(rated))

    def _save(self, cases: list[str]) -> None:
        """Atomically (kiosk.infra.atomic_file); a failure is logged and the set still works in memory."""
        try:
            atomic_write_json(self._path(), {"cases": cases})
        except OSError:
            log.exception("rated cases could not be saved")
