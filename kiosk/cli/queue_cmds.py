"""`kiosk queue status|list|drain|retry|purge|init-key`: the technician's view of the offline outbox.

Every command takes ``--db``, ``--key-file`` and ``--platform`` besides the
configuration file, so it can be pointed at any queue and platform. Output is
masked: no ID number, name or phone is ever printed in full.
Exit codes: 0 ok; 1 not found; 2 configuration/key problem (a missing key, a key
that does not open this queue); 3 ``drain --once`` left records pending; 4 the
queue database is corrupt or unreadable. Problems are reported in one plain line,
never a traceback. A record that cannot be decrypted is listed with a mark.
"""
from __future__ import annotations

import datetime as _dt
import functools
import logging
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from kiosk.cli._groups import config_option, echo_json, fail, group
from kiosk.config import ConfigError, KioskConfig, load_config
from kiosk.domain.identity import mask_id_number, mask_name, mask_phone
from kiosk.platform.client import PlatformClient
from kiosk.platform.credentials import CredentialsError, configured_credentials
from kiosk.ports.outbox import OutboxCorruptError, OutboxKeyError, Record
from offline_cache.crypto import StorageKeyError, create_key_file
from offline_cache.drainer import Drainer
from offline_cache.outbox import Outbox, open_outbox_at

EXIT_REMAINING = 3
EXIT_CORRUPT = 4
UNREADABLE_MARK = "[无法解密 unreadable]"

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def _queue_options(fn: F) -> F:
    """--config, --db, --key-file and --platform: every queue command can be pointed at any queue."""
    @config_option
    @click.option("--db", "db", type=click.Path(dir_okay=False), default=None,
                  help="Outbox database (default: <storage.data_dir>/outbox.db).")
    @click.option("--key-file", "key_file", type=click.Path(dir_okay=False), default=None,
                  help="Storage key file, mode 0600 (default: [storage] key_file; $KIOSK_STORAGE_KEY wins).")
    @click.option("--platform", "platform_url", default=None, help="Platform base URL (default: [platform] base_url).")
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OutboxKeyError as e:
            fail(str(e), 2)
        except OutboxCorruptError as e:
            fail(str(e), EXIT_CORRUPT)
        except sqlite3.DatabaseError as e:  # damage found past the open: still one line, no traceback
            log.debug("queue database error", exc_info=True)
            fail(f"离线队列数据库不可读 (outbox database unreadable): {e}", EXIT_CORRUPT)
    return wrapper  # type: ignore[return-value]


def _ctx(config_file: str | None, db: str | None, key_file: str | None) -> tuple[KioskConfig, Outbox]:
    """The configuration and the opened outbox, or exit 2 naming the configuration or key problem."""
    try:
        cfg = load_config(config_file)
    except ConfigError as e:
        fail(str(e), 2)
    db_path = db or cfg.data_dir / "outbox.db"
    try:
        return cfg, open_outbox_at(db_path, key_file or cfg.resolve_path(cfg.storage.key_file))
    except (StorageKeyError, OutboxKeyError, ValueError) as e:
        fail(f"存储密钥不可用: {e}", 2)


def _when(ts: float | None) -> str:
    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _masked(rec: Record) -> dict[str, Any]:
    """One record for the technician: personal data masked, never printed in full."""
    p = rec.payload or {}
    person = p.get("applicant") or p.get("contact") or {}
    if not isinstance(person, dict):
        person = {}

    def m(fn: Callable[[str], str], v: object) -> str:
        try:
            return fn(v) if isinstance(v, str) and v else ""
        except Exception:  # noqa: BLE001 - logged (without the value); a field that cannot be masked is hidden
            log.exception("cannot mask a %s field", fn.__name__)
            return "***"

    return {
        "id": rec.id, "kind": rec.kind, "state": rec.state, "attempts": rec.attempts,
        "created_at": _when(rec.created_at), "item_code": p.get("item_code") or "",
        "tracking_no": p.get("tracking_no") or "",
        "name": m(mask_name, person.get("name")), "id_number": m(mask_id_number, person.get("id_number")),
        "phone": m(mask_phone, person.get("phone")), "materials": len(rec.attachments),
        "platform_ref": rec.platform_ref or "",
        "next_attempt_at": _when(rec.next_attempt_at) if rec.state == "pending" else "",
        "last_error": rec.last_error or "", "failure_reason": rec.failure_reason or "",
        "unreadable": rec.unreadable or "",
    }


def register(cli: click.Group) -> None:
    """Add `queue status|list|drain|retry|purge|init-key` to the root group (called by kiosk.cli.main)."""
    q = group(cli, "queue", help="The offline outbox (离线待发送队列).")

    @q.command("status")
    @_queue_options
    @click.option("--json", "as_json", is_flag=True, help="Print stats() as JSON.")
    def status(config_file: str | None, db: str | None, key_file: str | None, platform_url: str | None,
               as_json: bool) -> None:
        """Counts per state and the age of the oldest waiting record."""
        _, ob = _ctx(config_file, db, key_file)
        st = ob.stats()
        if as_json:
            echo_json(st)
            return
        age = st["oldest_pending_age_s"]
        click.echo(f"pending {st['pending']}  inflight {st['inflight']}  failed {st['failed']}  done {st['done']}")
        click.echo(f"oldest waiting: {'-' if age is None else f'{age:.0f} s'}")

    @q.command("list")
    @_queue_options
    @click.option("--state", "states", multiple=True, type=click.Choice(["pending", "inflight", "failed", "done"]),
                  help="Only these states (repeatable).")
    @click.option("--limit", type=int, default=50, show_default=True)
    @click.option("--json", "as_json", is_flag=True)
    def list_(config_file: str | None, db: str | None, key_file: str | None, platform_url: str | None,
              states: tuple[str, ...], limit: int, as_json: bool) -> None:
        """Records oldest first, personal data masked."""
        _, ob = _ctx(config_file, db, key_file)
        rows = [_masked(r) for r in ob.list(states or None, limit=limit)]
        if as_json:
            echo_json(rows)
            return
        if not rows:
            click.echo("(队列为空)")
        for r in rows:
            if r["unreadable"]:
                click.echo(f"{r['id']}  {r['kind']:<12} {r['state']:<8} x{r['attempts']}  {r['created_at']}  "
                           f"{UNREADABLE_MARK} {r['unreadable']}")
                continue
            click.echo(f"{r['id']}  {r['kind']:<12} {r['state']:<8} x{r['attempts']}  {r['created_at']}  "
                       f"{r['item_code'] or r['tracking_no']}  {r['name']} {r['id_number']} {r['phone']}"
                       f"{'  -> ' + r['platform_ref'] if r['platform_ref'] else ''}")
            if r["failure_reason"]:
                click.echo(f"    退回原因: {r['failure_reason']}")
            elif r["last_error"] and r["state"] != "done":
                click.echo(f"    last error: {r['last_error']}  next try: {r['next_attempt_at']}")

    @q.command("drain")
    @_queue_options
    @click.option("--once", is_flag=True, help="One pass over everything pending now (ignoring backoff), then exit.")
    @click.option("--poll-s", type=float, default=5.0, show_default=True, help="Idle poll interval without --once.")
    def drain(config_file: str | None, db: str | None, key_file: str | None, platform_url: str | None, once: bool,
              poll_s: float) -> None:
        """Deliver queued records. With --once: exit 0 when nothing is left pending, 3 when records remain."""
        cfg, ob = _ctx(config_file, db, key_file)
        try:
            client = PlatformClient.from_config(cfg, base_url=platform_url, credentials=configured_credentials(cfg))
        except CredentialsError as e:
            fail(str(e), 2)
        dr = Drainer(ob, client, retention_s=cfg.storage.retention_days * 86400)
        if once:
            rep = dr.drain_once(ignore_backoff=True)
            st = ob.stats()
            click.echo(f"delivered {rep.delivered}, dead-lettered {rep.failed}, "
                       f"retry later {rep.retried + rep.deferred}; "
                       f"pending {st['pending']}, inflight {st['inflight']}, failed {st['failed']}")
            if rep.errors:
                click.echo(f"last error: {rep.errors[-1]}", err=True)
            raise SystemExit(EXIT_REMAINING if st["pending"] + st["inflight"] else 0)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        click.echo(f"draining {ob.path} to {client.base_url} (Ctrl-C to stop)")
        try:
            dr.run(poll_s=poll_s, stop=stop)
        except KeyboardInterrupt:
            pass

    @q.command("retry")
    @_queue_options
    @click.argument("record_id")
    def retry(config_file: str | None, db: str | None, key_file: str | None, platform_url: str | None,
              record_id: str) -> None:
        """Make a dead-lettered (or backing-off) record due again."""
        _, ob = _ctx(config_file, db, key_file)
        if not ob.retry(record_id.strip().upper()):
            fail(f"no failed or pending record {record_id}", 1)
        click.echo(f"{record_id}: will be sent on the next drain")

    @q.command("purge")
    @_queue_options
    @click.option("--older-than-days", type=float, default=None, help="Default: [storage] retention_days.")
    def purge(config_file: str | None, db: str | None, key_file: str | None, platform_url: str | None,
              older_than_days: float | None) -> None:
        """Delete delivered records (and unused attachments) past the retention period."""
        cfg, ob = _ctx(config_file, db, key_file)
        days = cfg.storage.retention_days if older_than_days is None else older_than_days
        n = ob.purge(days * 86400, now=time.time())
        click.echo(f"purged {n} delivered record(s) older than {days:g} day(s)")

    @q.command("init-key")
    @config_option
    @click.option("--key-file", "key_file", type=click.Path(dir_okay=False), default=None)
    @click.option("--aes", is_flag=True, help="A 32-byte AES-256 key instead of a 16-byte SM4 key.")
    def init_key(config_file: str | None, key_file: str | None, aes: bool) -> None:
        """Create the per-kiosk storage key (mode 0600); refuses to overwrite, or to start a key over a queue."""
        cfg = load_config(config_file)
        path = key_file or cfg.resolve_path(cfg.storage.key_file)
        db_path = cfg.data_dir / "outbox.db"
        if db_path.exists():
            fail(f"{db_path} exists: a new key cannot read it; restore the original key file "
                 "(or move the queue aside first)", 1)
        try:
            create_key_file(path, 32 if aes else 16)
        except FileExistsError:
            fail(f"{path} already exists; a new key would make the queue unreadable", 1)
        click.echo(f"created {path}")
