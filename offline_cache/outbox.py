"""The durable outbox: what the citizen submitted is on disk before the screen says "submitted".

One SQLite database (WAL, ``synchronous=FULL``, busy timeout) holds records of
kinds ``application``, ``evaluation``, ``help_request`` and ``home_visit``.
``enqueue`` returns only after the commit has been fsynced; attachments are
written content-addressed beside the database (``<db>.blobs/ab/abcdef...``) and
fsynced *before* the record naming them commits, so a crash never leaves a
record pointing at a missing file.

Personal data never reaches the disk in clear: payloads, results, failure
reasons and attachment contents are sealed (SM4-GCM by default); per-applicant
ordering uses a keyed pseudonym of the ID number.

Record states: ``pending`` -> ``inflight`` (claimed by a drainer with a lease)
-> ``done`` (platform reference recorded) or ``failed`` (dead letter, with the
platform's reason), or back to ``pending`` with a backoff time.

Faults never stop delivery: records are claimed without decrypting and each is
opened on its own (one that cannot be is shown with a mark and dead-lettered by
the drainer); the database carries a key check value, so another key is refused
instead of silently reading nothing; an attachment is written completely and read
back against its hash before the rename that publishes it (and before an existing
one is reused); a full disk refuses the enqueue (``OutboxFullError``) with nothing
half-written committed; a corrupt database found at start is moved aside
(``outbox.db.corrupt-<timestamp>`` with its WAL and attachments) when the caller
asks for recovery, else refused (``OutboxCorruptError``).
"""
from __future__ import annotations

import builtins
import errno
import hashlib
import hmac
import json
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from kiosk.domain import tracking
from kiosk.ports.outbox import (
    Attachment,
    OutboxCorruptError,
    OutboxFullError,
    OutboxKeyError,
    Record,
)
from offline_cache.crypto import KEY_ENV, DecryptError, Sealer, StorageKeyError, create_key_file, load_key
from offline_cache.receipts import Receipts, receipt_summary

__all__ = ["KINDS", "STATES", "Outbox", "OutboxCorruptError", "OutboxFullError", "OutboxKeyError", "Record",
           "lease_expired", "new_local_no", "open_outbox_at", "receipt_summary"]

log = logging.getLogger(__name__)

KINDS = ("application", "evaluation", "help_request", "home_visit")
STATES = ("pending", "inflight", "failed", "done")
_HOST = socket.gethostname()

# One row per record, and only the indexes enqueue cannot do without: the commit
# an enqueue waits for should write as few pages as a bare insert. The receipt of
# a record is its own row (printed_count), its summary computed from the payload.
SCHEMA = """
CREATE TABLE IF NOT EXISTS records(
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    idem_key TEXT,
    group_key TEXT,
    payload BLOB NOT NULL,
    attachments TEXT NOT NULL DEFAULT '[]',
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    delivered_at REAL,
    platform_ref TEXT,
    result BLOB,
    last_error TEXT,
    failure BLOB,
    printed_count INTEGER NOT NULL DEFAULT 0,
    last_printed_at REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS records_idem ON records(idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_platform_ref ON records(platform_ref) WHERE platform_ref IS NOT NULL;
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""

#: What the key check value is a keyed hash of (never the key itself: it cannot be reversed).
_KEY_CHECK_LABEL = b"qhb-kiosk outbox key check v1"
#: errno values that mean "no room": ENOSPC, a quota, a file-size limit (RLIMIT_FSIZE).
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: SQLite primary result codes (extended codes keep them in the low byte).
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_NOTADB = 11, 13, 26


_INSERT = ("INSERT INTO records(id, kind, idem_key, group_key, payload, attachments, created_at, updated_at) "
           "VALUES(?,?,?,?,?,?,?,?)")


def new_local_no() -> str:
    """A local tracking number (kiosk.domain.tracking, origin LQ)."""
    return tracking.new_tracking_no("LQ")


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error) under the outbox's thread lock."""

    __slots__ = ("ob",)

    def __init__(self, ob: Outbox):
        self.ob = ob

    def __enter__(self) -> sqlite3.Connection:
        self.ob._lock.acquire()
        try:
            self.ob._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.ob._lock.release()
            raise
        return self.ob._db

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        try:
            self.ob._db.execute("COMMIT" if et is None else "ROLLBACK")
        finally:
            self.ob._lock.release()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lease_expired(owner: str | None, until: float | None, now: float) -> bool:
    """A claim is void once its time is up or its owner process on this host is gone."""
    if until is None or until <= now:
        return True
    if owner:
        host, _, rest = owner.partition(":")
        pid = rest.split(":", 1)[0]
        if host == _HOST and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            return True
    return False


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is down: a write may be short (a nearly full disk, a signal)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:  # cannot happen for a regular file; never loop forever on it
            raise OSError(errno.ENOSPC, "no byte written")
        view = view[n:]


def _sqlite_code(e: sqlite3.Error) -> int:
    return int(getattr(e, "sqlite_errorcode", -1)) & 0xFF


def _is_corrupt(e: sqlite3.Error) -> bool:
    """SQLite says the file is damaged or not a database (never "locked" or "busy")."""
    return _sqlite_code(e) in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


def _is_full(e: BaseException) -> bool:
    if isinstance(e, OSError):
        return e.errno in _FULL_ERRNOS
    return isinstance(e, sqlite3.Error) and _sqlite_code(e) == _SQLITE_FULL


def _damaged(message: str, code: int) -> sqlite3.DatabaseError:
    err = sqlite3.DatabaseError(message)
    err.sqlite_errorcode = code
    return err


def _header_ok(path: Path) -> bool:
    """An empty or absent file, or SQLite's magic string: checked before SQLite opens the file, because
    closing a connection to a file that is not a database deletes the WAL beside it."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        return True
    return head in (b"", b"SQLite format 3\x00")


def moved_aside(db: str | os.PathLike[str]) -> builtins.list[str]:
    """Names of the databases moved aside as corrupt beside ``db`` (``outbox.db.corrupt-<ts>``), oldest first."""
    p = Path(db)
    if not p.parent.is_dir():
        return []
    return sorted(f.name for f in p.parent.glob(p.name + ".corrupt-*")
                  if f.is_file() and not f.name.endswith(("-wal", "-shm", "-journal")))


class Outbox:
    """Durable, encrypted outbox on SQLite. Thread-safe; several processes may share one file."""

    def __init__(self, path: str | os.PathLike[str], key: bytes, *, alg: str | None = None,
                 busy_timeout_ms: int = 10000, recover: bool = False):
        """Open (or create) the outbox at ``path`` with ``key``.

        A database that is corrupt or not a database raises OutboxCorruptError, unless
        ``recover`` (the kiosk app at start): then it is moved aside and a fresh one is
        created (``self.recovered`` names where it went). A key that does not match the
        database's key check value raises OutboxKeyError; the database is left untouched.
        """
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.blob_dir = self.path.with_name(self.path.name + ".blobs")
        self.sealer = Sealer(key, alg)
        self._lock = threading.RLock()
        self._busy_timeout_ms = int(busy_timeout_ms)
        self.recovered: str | None = None  # the moved-aside database's name, when this open recovered
        try:
            if not _header_ok(self.path):
                raise _damaged("file is not a database (bad header)", _SQLITE_NOTADB)
            self._db = self._connect()
        except sqlite3.DatabaseError as e:
            if not _is_corrupt(e):
                raise
            if not recover:
                raise OutboxCorruptError(f"离线队列数据库已损坏 (outbox database corrupt): {self.path}: {e}") from None
            self.recovered = self._move_aside(str(e))
            self._db = self._connect()
        try:
            self.blob_dir.mkdir(exist_ok=True)
            self._check_key()
        except BaseException:
            self._db.close()
            raise
        self.moved_aside = moved_aside(self.path)
        self.owner = f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def _connect(self) -> sqlite3.Connection:
        """Connect, set the pragmas, create the schema and run a quick check (raises on a damaged file)."""
        db = sqlite3.connect(self.path, timeout=self._busy_timeout_ms / 1000, isolation_level=None,
                             check_same_thread=False)
        try:
            db.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA secure_delete=ON")
            db.executescript(SCHEMA)
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise _damaged(f"quick_check: {str(check)[:200]}", _SQLITE_CORRUPT)
        except BaseException:
            db.close()
            raise
        return db

    def _move_aside(self, why: str) -> str:
        """Rename the damaged database (with its -wal/-shm and attachments) to ``<name>.corrupt-<timestamp>``."""
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        os.replace(self.path, target)
        for suffix in ("-wal", "-shm", "-journal"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                os.replace(side, target.with_name(target.name + suffix))
        if self.blob_dir.exists():
            os.replace(self.blob_dir, target.with_name(target.name + ".blobs"))
        _fsync_dir(self.path.parent)
        log.error("outbox database %s was unreadable (%s): moved aside to %s, a fresh queue was started",
                  self.path.name, why[:200], target.name)
        return target.name

    def _check_key(self) -> None:
        """Refuse a key that is not this database's: its key check value, or (older files) a record it opens."""
        kcv = self.sealer.keyed_hash(_KEY_CHECK_LABEL)
        with self._lock:
            row = self._db.execute("SELECT v FROM meta WHERE k='key_check'").fetchone()
            if row is None:
                sample = self._db.execute("SELECT id, payload FROM records ORDER BY seq DESC LIMIT 3").fetchall()
                if sample and not any(self._opens(p, rid.encode()) for rid, p in sample):
                    raise OutboxKeyError(self._wrong_key())
                self._db.execute("INSERT OR IGNORE INTO meta(k, v) VALUES('key_check', ?)", (kcv,))
                row = self._db.execute("SELECT v FROM meta WHERE k='key_check'").fetchone()
        if not hmac.compare_digest(str(row[0]), kcv):
            raise OutboxKeyError(self._wrong_key())

    def _opens(self, blob: bytes, aad: bytes) -> bool:
        try:
            self.sealer.open(blob, aad)
        except DecryptError:
            return False
        return True

    def _wrong_key(self) -> str:
        return (f"存储密钥与离线队列不匹配 (the storage key does not open {self.path}): "
                "restore this kiosk's original key file; a new key cannot read the queue")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------ transactions
    def _tx(self) -> _Tx:
        return _Tx(self)

    # ------------------------------------------------------------- attachments
    def blob_path(self, sha256: str) -> Path:
        return self.blob_dir / sha256[:2] / sha256

    def _blob_ok(self, path: Path, sha: str) -> bool:
        """The file opens with this key and its plaintext has the hash it is named after."""
        try:
            plain = self.sealer.open(path.read_bytes(), sha.encode())
        except (FileNotFoundError, DecryptError):
            return False
        return hashlib.sha256(plain).hexdigest() == sha

    def _store_attachment(self, content: bytes) -> str:
        sha = hashlib.sha256(content).hexdigest()
        dest = self.blob_path(sha)
        if self._blob_ok(dest, sha):
            try:
                os.utime(dest)  # reused: tell a concurrent purge it is wanted again
                return sha
            except FileNotFoundError:
                pass  # purged just now: write it again
        sub = dest.parent
        new_dir = not sub.exists()
        sub.mkdir(exist_ok=True)
        tmp = sub / f".{sha}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                _write_all(fd, self.sealer.seal(content, sha.encode()))
                os.fsync(fd)
            finally:
                os.close(fd)
            if not self._blob_ok(tmp, sha):  # what is on disk is what the record will name, or nothing is
                raise OSError(errno.EIO, f"attachment {sha[:12]} did not read back as written")
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(sub)
        if new_dir:
            _fsync_dir(self.blob_dir)
        return sha

    def read_attachment(self, sha256: str) -> bytes:
        """The plaintext of a stored attachment (FileNotFoundError when gone, DecryptError when damaged)."""
        plain = self.sealer.open(self.blob_path(sha256).read_bytes(), sha256.encode())
        if hashlib.sha256(plain).hexdigest() != sha256:
            raise DecryptError(f"attachment {sha256[:12]} does not match its hash")
        return plain

    # ----------------------------------------------------------------- enqueue
    def _group_key(self, kind: str, payload: dict[str, Any]) -> str | None:
        a = payload.get("applicant")
        if isinstance(a, dict) and a.get("id_number"):
            return self.sealer.keyed_hash(f"{a.get('id_type', '')}|{a['id_number']}".encode())
        c = payload.get("contact")
        if isinstance(c, dict) and c.get("phone"):
            return self.sealer.keyed_hash(f"phone|{c['phone']}".encode())
        return None

    def enqueue(self, kind: str, payload: dict[str, Any], attachments: Iterable[Attachment] = (),
                idempotency_key: str | None = None) -> str:
        """Store one record durably and return its local number (``LQ...``).

        Returns only after the commit is on disk. With an ``idempotency_key``
        already in the outbox it returns the existing record's number instead
        of storing a second one (a double-tapped submit button stays one case).
        A full disk raises OutboxFullError and commits nothing.
        """
        try:
            return self._enqueue(kind, payload, attachments, idempotency_key)
        except (OSError, sqlite3.Error) as e:
            if _is_full(e):
                log.error("outbox enqueue refused: the disk is full (%s)", type(e).__name__)
                raise OutboxFullError(f"磁盘已满，无法保存 (disk full): {self.path.parent}") from e
            raise

    def _enqueue(self, kind: str, payload: dict[str, Any], attachments: Iterable[Attachment],
                 idempotency_key: str | None) -> str:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        if not isinstance(payload, dict):
            raise TypeError("payload must be a dict")
        if idempotency_key is not None:
            existing = self._id_for_key(idempotency_key)
            if existing:
                return existing
        shas: list[str] = []
        for a in attachments:
            content = a if isinstance(a, (bytes, bytearray, memoryview)) else Path(a).read_bytes()
            sha = self._store_attachment(bytes(content))
            if sha not in shas:
                shas.append(sha)
        if kind == "application":
            payload = dict(payload)
            mats = payload.setdefault("materials", list(shas))
            if not isinstance(mats, list):
                raise ValueError("payload materials must be a list of sha256 hashes")
            for m in mats:
                if m not in shas:
                    if not (isinstance(m, str) and len(m) == 64 and self._blob_ok(self.blob_path(m), m)):
                        raise ValueError("payload names a material that was not given as an attachment")
                    shas.append(m)
        plain = json.dumps(payload).encode()  # fails early if not JSON (ASCII escapes: the fastest encoder path)
        group = self._group_key(kind, payload)
        atts = json.dumps(shas) if shas else "[]"
        now = time.time()
        for _ in range(5):
            rid = new_local_no()
            sealed = self.sealer.seal(plain, rid.encode())
            try:
                # one statement in autocommit mode: its own transaction, fsynced before execute() returns
                with self._lock:
                    self._db.execute(_INSERT, (rid, kind, idempotency_key, group, sealed, atts, now, now))
                return rid
            except sqlite3.IntegrityError:
                if idempotency_key is not None:
                    existing = self._id_for_key(idempotency_key)
                    if existing:
                        return existing
                continue  # tracking number collision: draw another
        raise RuntimeError("could not allocate a local tracking number")

    def _id_for_key(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT id FROM records WHERE idem_key=?", (key,)).fetchone()
        return row[0] if row else None

    # ------------------------------------------------------------------ reading
    _COLS = ("id, seq, kind, idem_key, state, attempts, created_at, next_attempt_at, attachments, payload, group_key, "
             "platform_ref, delivered_at, last_error, failure, result, lease_owner, lease_until")

    def _open_json(self, blob: bytes, aad: bytes) -> Any:
        return json.loads(self.sealer.open(blob, aad))

    def _record(self, row: Sequence[Any], decrypt: bool = True) -> Record:
        """One row as a Record; a sealed field that cannot be opened is marked, never raised."""
        (rid, seq, kind, key, state, attempts, created, nxt, atts, payload, group, ref, delivered, err, failure,
         result, owner, until) = row
        aad = rid.encode()
        rec = Record(
            id=rid, seq=seq, kind=kind, idempotency_key=key or rid, state=state, attempts=attempts, created_at=created,
            next_attempt_at=nxt, attachments=json.loads(atts), group_key=group, platform_ref=ref,
            delivered_at=delivered, last_error=err, lease_owner=owner, lease_until=until)
        if not decrypt:
            return rec
        try:
            rec.payload = self._open_json(payload, aad)
        except (DecryptError, ValueError) as e:
            rec.unreadable = f"payload_unreadable: {type(e).__name__}"
            log.warning("outbox %s: payload cannot be opened (%s)", rid, type(e).__name__)
        if failure:
            try:
                rec.failure_reason = self.sealer.open(failure, aad).decode()
            except (DecryptError, ValueError):
                rec.failure_reason = "(退回原因无法解密)"
        if result:
            try:
                rec.result = self._open_json(result, aad)
            except (DecryptError, ValueError):
                rec.result = None
        return rec

    def get(self, record_id: str, decrypt: bool = True) -> Record | None:
        with self._lock:
            row = self._db.execute(f"SELECT {self._COLS} FROM records WHERE id=?", (record_id,)).fetchone()
        return self._record(row, decrypt) if row else None

    def list(self, states: Iterable[str] | None = None, limit: int = 100, decrypt: bool = True) -> list[Record]:
        """Records oldest first, optionally only in the given states."""
        states = tuple(states or STATES)
        q = f"SELECT {self._COLS} FROM records WHERE state IN ({','.join('?' * len(states))}) ORDER BY seq LIMIT ?"
        with self._lock:
            rows = self._db.execute(q, (*states, limit)).fetchall()
        return [self._record(r, decrypt) for r in rows]

    def stats(self, now: float | None = None) -> dict[str, Any]:
        """Counts per state and the age of the oldest undelivered record (pending or inflight)."""
        now = time.time() if now is None else now
        with self._lock:
            counts = dict(self._db.execute("SELECT state, count(*) FROM records GROUP BY state").fetchall())
            oldest = self._db.execute("SELECT min(created_at) FROM records WHERE state IN ('pending','inflight')"
                                      ).fetchone()[0]
        out: dict[str, Any] = {s: int(counts.get(s, 0)) for s in STATES}
        out["oldest_pending_age_s"] = round(max(0.0, now - oldest), 3) if oldest is not None else None
        if self.moved_aside:
            out["moved_aside"] = list(self.moved_aside)
        return out

    def integrity_check(self) -> str:
        with self._lock:
            return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])

    # ----------------------------------------------------------------- draining
    def claim_next(self, limit: int = 16, now: float | None = None, ignore_backoff: bool = False,
                   exclude: Iterable[str] = (), lease_s: float = 120.0) -> builtins.list[Record]:
        """Claim up to ``limit`` deliverable records for this process, oldest first, in order per applicant.

        A record is deliverable when it is pending and due (or ``ignore_backoff``),
        or inflight under a void lease, and no older undelivered record of the
        same applicant is still waiting (dead letters do not block).
        """
        now = time.time() if now is None else now
        exclude = set(exclude)
        with self._tx() as db:  # the claim only: records are opened one by one after it (one bad one stays one)
            rows = db.execute("SELECT id, group_key, state, next_attempt_at, lease_owner, lease_until FROM records "
                              "WHERE state IN ('pending','inflight') ORDER BY seq").fetchall()
            blocked: set[str] = set()
            chosen: list[str] = []
            for rid, group, state, nxt, owner, until in rows:
                if len(chosen) >= limit:
                    break
                ok = rid not in exclude and (
                    (state == "pending" and (ignore_backoff or nxt <= now))
                    or (state == "inflight" and lease_expired(owner, until, now)))
                if group is not None:
                    if group in blocked:
                        continue
                    blocked.add(group)  # later records of this applicant wait for this one
                if ok:
                    chosen.append(rid)
            for rid in chosen:
                db.execute("UPDATE records SET state='inflight', lease_owner=?, lease_until=?, attempts=attempts+1, "
                           "updated_at=? WHERE id=?", (self.owner, now + lease_s, now, rid))
            rows = [db.execute(f"SELECT {self._COLS} FROM records WHERE id=?", (rid,)).fetchone() for rid in chosen]
        return [self._record(r) for r in rows]

    def mark_done(self, record_id: str, platform_ref: str | None, result: dict[str, Any] | None = None) -> None:
        """Delivered: record the platform's reference against the local number (and on its receipt)."""
        now = time.time()
        aad = record_id.encode()
        sealed = self.sealer.seal(json.dumps(result, ensure_ascii=False).encode(), aad) if result is not None else None
        with self._tx() as db:
            db.execute("UPDATE records SET state='done', platform_ref=?, result=?, delivered_at=?, updated_at=?, "
                       "lease_owner=NULL, lease_until=NULL, last_error=NULL WHERE id=?",
                       (platform_ref, sealed, now, now, record_id))

    def mark_retry(self, record_id: str, error: str, next_attempt_at: float) -> None:
        """Not delivered yet: back to pending until ``next_attempt_at`` (error text must hold no personal data)."""
        now = time.time()
        with self._tx() as db:
            db.execute("UPDATE records SET state='pending', next_attempt_at=?, last_error=?, updated_at=?, "
                       "lease_owner=NULL, lease_until=NULL WHERE id=? AND state='inflight'",
                       (next_attempt_at, error[:500], now, record_id))

    def mark_failed(self, record_id: str, reason: str, error: str = "") -> None:
        """Dead letter: the platform refused for good; ``reason`` (sealed) is for the station's helper."""
        now = time.time()
        with self._tx() as db:
            db.execute("UPDATE records SET state='failed', failure=?, last_error=?, updated_at=?, lease_owner=NULL, "
                       "lease_until=NULL WHERE id=?",
                       (self.sealer.seal(reason.encode(), record_id.encode()), error[:500] or "permanent", now,
                        record_id))

    def release(self, record_id: str) -> None:
        """Give a claimed record back untouched (e.g. on shutdown)."""
        with self._tx() as db:
            db.execute("UPDATE records SET state='pending', lease_owner=NULL, lease_until=NULL, "
                       "attempts=max(attempts-1, 0) WHERE id=? AND state='inflight' AND lease_owner=?",
                       (record_id, self.owner))

    def retry(self, record_id: str) -> bool:
        """Technician action: a dead letter (or a record in backoff) becomes due now."""
        with self._tx() as db:
            n = db.execute("UPDATE records SET state='pending', next_attempt_at=0, failure=NULL, updated_at=? "
                           "WHERE id=? AND state IN ('failed','pending')", (time.time(), record_id)).rowcount
        return bool(n)

    def next_due(self) -> float | None:
        """When the earliest pending record becomes due (None when nothing waits)."""
        with self._lock:
            due = self._db.execute("SELECT min(next_attempt_at) FROM records WHERE state='pending'").fetchone()[0]
        return float(due) if due is not None else None

    def resolve(self, local_no: str) -> str | None:
        """The platform's tracking number for a local one, once delivered."""
        with self._lock:
            row = self._db.execute("SELECT platform_ref FROM records WHERE id=? AND state='done'",
                                   (local_no,)).fetchone()
        return str(row[0]) if row and row[0] is not None else None

    def purge(self, retention_s: float, now: float | None = None) -> int:
        """Delete delivered records (and their receipts) older than the retention period; drop unused attachments."""
        now = time.time() if now is None else now
        cutoff = now - retention_s
        with self._tx() as db:
            rows = db.execute("SELECT id, attachments FROM records WHERE state='done' AND delivered_at < ?",
                              (cutoff,)).fetchall()
            gone = [r[0] for r in rows]
            purged_blobs = {a for _, atts in rows for a in json.loads(atts)}
            db.execute("DELETE FROM records WHERE state='done' AND delivered_at < ?", (cutoff,))
            live: set[str] = set()
            for (atts,) in db.execute("SELECT attachments FROM records"):
                live.update(json.loads(atts))
        # Unreferenced attachments: those of purged records once untouched for a minute (an enqueue reusing
        # the same content touches the file first); strays (an enqueue killed between writing its attachment
        # and committing) once they are an hour old.
        for sub in self.blob_dir.iterdir():
            if not sub.is_dir():
                continue
            for f in sub.iterdir():
                if f.name in live:
                    continue
                try:
                    age = now - f.stat().st_mtime
                except FileNotFoundError:
                    continue
                if age > 3600 or (age > 60 and f.name in purged_blobs):
                    f.unlink(missing_ok=True)
        return len(gone)

    # ---------------------------------------------------------------- receipts
    @property
    def receipts(self) -> Receipts:
        """Reprint data and local -> platform number resolution for this outbox's records."""
        return Receipts(self._db, self._lock, self._tx, self.get)


def open_outbox_at(db: str | os.PathLike[str], key_file: str | os.PathLike[str] | None, *,
                   create_key: bool = False, recover: bool = False) -> Outbox:
    """The outbox at ``db`` with the key of ``key_file`` (``$KIOSK_STORAGE_KEY`` wins), or a named error.

    ``create_key`` (the kiosk's first start): create the 0600 key file when there is
    none, but never over an existing database: a missing key with a database is a
    technician's problem (OutboxKeyError), not a fresh start that would leave every
    queued record unreadable. ``recover``: see ``Outbox`` (a corrupt database is moved
    aside). Key problems raise OutboxKeyError with one plain line.
    """
    db_path = Path(db)
    try:
        key = load_key(key_file)
    except StorageKeyError as e:
        missing = key_file is not None and not os.environ.get(KEY_ENV) and not Path(key_file).exists()
        if not missing:
            raise OutboxKeyError(str(e)) from None
        if db_path.exists():
            raise OutboxKeyError(f"存储密钥文件缺失 (storage key file {key_file} is missing) but {db_path} exists: "
                                 "restore this kiosk's key file; a new key cannot read the queue") from None
        if not create_key:
            raise OutboxKeyError(str(e)) from None
        assert key_file is not None  # implied by `missing`
        key = create_key_file(key_file)
        log.warning("created a new storage key file %s for a new outbox", key_file)
    return Outbox(db_path, key, recover=recover)
