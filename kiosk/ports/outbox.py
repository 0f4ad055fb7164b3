"""The durable outbox and its drainer as the application sees them, with the values they hand back.

The application enqueues what the citizen submitted, waits a little for the
platform's number, reprints receipts and asks for queue counts; it never needs
to know the outbox is SQLite (offline_cache.outbox.Outbox implements
`OutboxPort`, offline_cache.drainer.Drainer implements `DrainerPort`). The value
types live here so the application can name them without importing an adapter.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Attachment", "Record", "StoredReceipt", "DrainReport", "ReceiptsPort", "OutboxPort", "DrainerPort",
           "OutboxError", "OutboxFullError", "OutboxKeyError", "OutboxCorruptError", "FULL_DISK_MESSAGE"]

#: What the citizen is told when the outbox refuses an enqueue because the disk is full.
FULL_DISK_MESSAGE = "本机存储空间已满，暂时不能受理申请，请到窗口办理或联系工作人员"


class OutboxError(Exception):
    """The outbox cannot do what was asked; the message is one plain line for the technician."""


class OutboxFullError(OutboxError):
    """The disk is full: the enqueue was refused and nothing of it was committed (tell the citizen plainly)."""

    citizen_message = FULL_DISK_MESSAGE


class OutboxKeyError(OutboxError):
    """The storage key does not open this outbox (another key), or it is missing while the database exists."""


class OutboxCorruptError(OutboxError):
    """The outbox database is corrupt or not an outbox database at all."""

#: An attachment given to ``enqueue``: the bytes themselves or a path to read them from.
Attachment = bytes | bytearray | memoryview | os.PathLike[str] | str


@dataclass
class Record:
    """One outbox record; ``payload`` is decrypted on load (empty when read with ``decrypt=False``)."""

    id: str
    seq: int
    kind: str
    idempotency_key: str
    state: str
    attempts: int
    created_at: float
    next_attempt_at: float
    attachments: list[str]
    payload: dict[str, Any] = field(repr=False, default_factory=dict)
    group_key: str | None = None
    platform_ref: str | None = None
    delivered_at: float | None = None
    last_error: str | None = None
    failure_reason: str | None = field(default=None, repr=False)
    result: dict[str, Any] | None = field(default=None, repr=False)
    lease_owner: str | None = None
    lease_until: float | None = None
    unreadable: str | None = None    # why the sealed payload could not be opened (the record is shown with a mark)


@dataclass(frozen=True)
class StoredReceipt:
    """A queued record as a receipt to reprint: its numbers and a masked summary, never raw personal data."""

    local_no: str
    platform_no: str | None
    kind: str
    created_at: float
    summary: dict[str, Any]          # masked: kind, item_code, name, id_number, phone, materials
    printed_count: int

    @property
    def tracking_no(self) -> str:
        """The number to print: the platform's once known, else the local one."""
        return self.platform_no or self.local_no


@dataclass
class DrainReport:
    """What one drain pass did (the technician's "submit now" shows it)."""

    delivered: int = 0
    failed: int = 0          # moved to the dead letter this pass
    retried: int = 0         # retryable failure, back to pending with backoff
    deferred: int = 0        # waiting for another record (evaluation of an undelivered case)
    remaining: int = 0       # pending + inflight after the pass
    stopped_early: bool = False
    errors: list[str] = field(default_factory=list)


class ReceiptsPort(Protocol):
    """Reprint data and local -> platform number resolution for the outbox's records."""

    def get(self, local_or_platform_no: str) -> StoredReceipt | None: ...

    def resolve(self, local_no: str) -> str | None: ...

    def mark_printed(self, local_no: str) -> None: ...

    def recent(self, limit: int = 20) -> list[StoredReceipt]: ...


class OutboxPort(Protocol):
    """What the application asks of the durable outbox."""

    def enqueue(self, kind: str, payload: dict[str, Any], attachments: Iterable[Attachment] = (),
                idempotency_key: str | None = None) -> str:
        """Store one record durably (on disk when this returns); its local number (``LQ...``)."""
        ...

    def get(self, record_id: str, decrypt: bool = True) -> Record | None: ...

    def stats(self, now: float | None = None) -> dict[str, Any]:
        """Counts per state (pending, inflight, failed, done) and ``oldest_pending_age_s``."""
        ...

    def resolve(self, local_no: str) -> str | None:
        """The platform's tracking number for a local one, once delivered."""
        ...

    @property
    def receipts(self) -> ReceiptsPort: ...

    def close(self) -> None: ...


class DrainerPort(Protocol):
    """The background delivery of outbox records to the platform."""

    def notify(self) -> None:
        """Something was enqueued: try now instead of at the next poll."""
        ...

    def drain_once(self, ignore_backoff: bool = False) -> DrainReport: ...

    def start(self, poll_s: float = 5.0) -> threading.Thread: ...

    def stop(self, timeout: float = 10.0) -> None: ...
