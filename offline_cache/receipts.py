"""Local receipts: reprint a queued application's receipt, and resolve its local number to the platform's.

A receipt is the outbox record itself (written by ``Outbox.enqueue``, given the
platform's tracking number by ``Outbox.mark_done``); the summary shown for a
reprint is computed from the sealed payload and masked. Receipts live as long
as their record (the retention period after delivery).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from offline_cache.outbox import Outbox


@dataclass(frozen=True)
class Receipt:
    local_no: str
    platform_no: str | None
    kind: str
    created_at: float
    summary: dict          # masked: kind, item_code, name, id_number, phone, materials
    printed_count: int

    @property
    def tracking_no(self) -> str:
        """The number to print: the platform's once known, else the local one."""
        return self.platform_no or self.local_no


class Receipts:
    def __init__(self, outbox: "Outbox"):
        self._ob = outbox

    def get(self, local_or_platform_no: str) -> Receipt | None:
        from offline_cache.outbox import receipt_summary

        ob = self._ob
        with ob._lock:
            row = ob._db.execute("SELECT id FROM records WHERE id=? UNION SELECT id FROM records WHERE platform_ref=?",
                                 (local_or_platform_no,) * 2).fetchone()
        rec = ob.get(row[0]) if row else None
        if rec is None:
            return None
        with ob._lock:
            printed = ob._db.execute("SELECT printed_count FROM records WHERE id=?", (rec.id,)).fetchone()[0]
        return Receipt(rec.id, rec.platform_ref, rec.kind, rec.created_at, receipt_summary(rec.kind, rec.payload),
                       printed)

    def resolve(self, local_no: str) -> str | None:
        r = self.get(local_no)
        return r.platform_no if r else None

    def mark_printed(self, local_no: str) -> None:
        with self._ob._tx() as db:
            db.execute("UPDATE records SET printed_count=printed_count+1, last_printed_at=? WHERE id=?",
                       (time.time(), local_no))

    def recent(self, limit: int = 20) -> list[Receipt]:
        with self._ob._lock:
            nos = [r[0] for r in self._ob._db.execute(
                "SELECT id FROM records ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()]
        return [r for r in (self.get(n) for n in nos) if r]
