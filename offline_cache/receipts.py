"""Local receipts: reprint a queued application's receipt, and resolve its local number to the platform's.

A receipt is the outbox record itself (written by ``Outbox.enqueue``, given the
platform's tracking number by ``Outbox.mark_done``); the summary shown for a
reprint is computed from the sealed payload and masked. Receipts live as long
as their record (the retention period after delivery).

This module does not know the ``Outbox`` class: the outbox hands ``Receipts``
its connection, its lock, its transaction factory and its record loader, so the
import runs one way only (outbox -> receipts).
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

from kiosk.domain.identity import mask_id_number, mask_name, mask_phone
from kiosk.ports.outbox import Record, StoredReceipt

__all__ = ["Receipt", "Receipts", "receipt_summary"]

#: The stored receipt (the value type lives in kiosk.ports.outbox); the old name kept.
Receipt = StoredReceipt

log = logging.getLogger(__name__)


def _masked(fn: Callable[[str], str], v: object) -> str | None:
    try:
        return fn(v) if isinstance(v, str) and v else None
    except (ValueError, TypeError, IndexError):  # a malformed value is shown as stars, never in clear
        return "***"


def receipt_summary(kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """What a reprinted receipt shows: masked identity, no raw numbers."""
    person = payload.get("applicant") or payload.get("contact") or {}
    out: dict[str, Any] = {"kind": kind, "item_code": payload.get("item_code")}
    if isinstance(person, dict):
        out["name"] = _masked(mask_name, person.get("name"))
        out["id_number"] = _masked(mask_id_number, person.get("id_number"))
        out["phone"] = _masked(mask_phone, person.get("phone"))
    if kind == "application":
        out["materials"] = len(payload.get("materials") or [])
    return out


class Receipts:
    """The receipts view of one outbox database (implements kiosk.ports.outbox.ReceiptsPort)."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock,
                 tx: Callable[[], AbstractContextManager[sqlite3.Connection]],
                 load: Callable[[str], Record | None]):
        self._db = db
        self._lock = lock
        self._tx = tx
        self._load = load

    def get(self, local_or_platform_no: str) -> StoredReceipt | None:
        """The receipt of a local or platform number; None when unknown or its record cannot be opened."""
        with self._lock:
            row = self._db.execute("SELECT id FROM records WHERE id=? "
                                   "UNION SELECT id FROM records WHERE platform_ref=?",
                                   (local_or_platform_no,) * 2).fetchone()
        rec = self._load(row[0]) if row else None
        if rec is None:
            return None
        if rec.unreadable is not None:  # nothing true could be printed from it: skipped, the list marks it
            log.warning("receipt %s skipped: %s", rec.id, rec.unreadable)
            return None
        with self._lock:
            printed = int(self._db.execute("SELECT printed_count FROM records WHERE id=?", (rec.id,)).fetchone()[0])
        return StoredReceipt(rec.id, rec.platform_ref, rec.kind, rec.created_at,
                             receipt_summary(rec.kind, rec.payload), printed)

    def resolve(self, local_no: str) -> str | None:
        r = self.get(local_no)
        return r.platform_no if r else None

    def mark_printed(self, local_no: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE records SET printed_count=printed_count+1, last_printed_at=? WHERE id=?",
                       (time.time(), local_no))

    def recent(self, limit: int = 20) -> list[StoredReceipt]:
        """The newest receipts; records that cannot be opened are skipped (``kiosk queue list`` marks them)."""
        with self._lock:
            nos = [str(r[0]) for r in self._db.execute(
                "SELECT id FROM records ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()]
        return [r for r in (self.get(n) for n in nos) if r]
