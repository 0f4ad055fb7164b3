"""Local receipts: reprint a queued application's receipt, and resolve its local number to the platform's.

Rows are written by ``Outbox.enqueue`` in the same transaction as the record and
updated by ``Outbox.mark_done`` with the platform's tracking number. The
summary is masked and still sealed at rest.
"""
from __future__ import annotations

import json
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
        ob = self._ob
        with ob._lock:
            row = ob._db.execute("SELECT local_no, platform_no, kind, data, created_at, printed_count FROM receipts "
                                 "WHERE local_no=? OR platform_no=?", (local_or_platform_no,) * 2).fetchone()
        if not row:
            return None
        local_no, platform_no, kind, data, created, printed = row
        summary = json.loads(ob.sealer.open(data, local_no.encode()))
        return Receipt(local_no, platform_no, kind, created, summary, printed)

    def resolve(self, local_no: str) -> str | None:
        r = self.get(local_no)
        return r.platform_no if r else None

    def mark_printed(self, local_no: str) -> None:
        with self._ob._tx() as db:
            db.execute("UPDATE receipts SET printed_count=printed_count+1, last_printed_at=? WHERE local_no=?",
                       (time.time(), local_no))

    def recent(self, limit: int = 20) -> list[Receipt]:
        with self._ob._lock:
            nos = [r[0] for r in self._ob._db.execute(
                "SELECT local_no FROM receipts ORDER BY created_at DESC LIMIT ?", (limit,)).fetchall()]
        return [r for r in (self.get(n) for n in nos) if r]
