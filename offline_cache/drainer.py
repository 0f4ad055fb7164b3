"""The drainer: delivers outbox records to the platform, at least once, with exactly-once effect.

Every record carries the idempotency key it got at enqueue time and is turned
into the same request bytes on every attempt, so redelivery after a crash, a
timeout or a dropped answer returns the platform's stored first answer instead
of creating a second case. Order: oldest first, one applicant's records in
order (``Outbox.claim_next``); an application's materials go up before it.

Failures: retryable ones (network, 5xx, 429, garbage, and 401 which means the
kiosk's clock or credential needs a technician, not that the record is bad) go
back to pending with exponential backoff with full jitter (kiosk.infra.backoff,
tenacity's ``wait_random_exponential``) or the platform's ``Retry-After`` when
longer; permanent ones (other 4xx) go to the dead letter with the platform's reason.

The drainer talks to the platform through kiosk.ports.platform.PlatformPort; the
composition root hands it the concrete client.
"""
from __future__ import annotations

import datetime as _dt
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from kiosk.config import KioskConfig, load_config
from kiosk.domain.tracking import is_tracking_no
from kiosk.infra.backoff import Backoff
from kiosk.ports.outbox import DrainReport
from kiosk.ports.platform import PermanentError, PlatformPort, RetryableError
from offline_cache.crypto import DecryptError
from offline_cache.outbox import Outbox, Record, open_outbox_at

__all__ = ["DEFER_S", "DrainReport", "Drainer", "open_outbox"]

log = logging.getLogger(__name__)

DEFER_S = 5.0  # an evaluation waits this long for its application to be delivered


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Defer(Exception):
    pass


class Drainer:
    """Moves records from an Outbox to the platform (implements kiosk.ports.outbox.DrainerPort)."""

    def __init__(self, outbox: Outbox, client: PlatformPort, *, retention_s: float = 30 * 86400,
                 lease_s: float = 120.0, batch: int = 16, base_backoff_s: float = 1.0, max_backoff_s: float = 300.0,
                 max_consecutive_failures: int = 3, clock: Callable[[], float] = time.time):
        self.outbox = outbox
        self.client = client
        self.retention_s = retention_s
        self.lease_s = lease_s
        self.batch = batch
        self.max_consecutive_failures = max_consecutive_failures
        self.clock = clock
        self._backoff = Backoff(base_backoff_s, max_backoff_s, jitter=True)
        self._uploaded: set[str] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_purge = 0.0
        self.online: bool | None = None   # last contact with the platform worked (None: not tried yet)
        self.last_error: str | None = None

    # ------------------------------------------------------------- scheduling
    def backoff_s(self, attempts: int, retry_after: float | None = None) -> float:
        """Full-jitter exponential backoff for the n-th failed attempt, never shorter than Retry-After."""
        return max(self._backoff.delay(attempts), retry_after or 0.0)

    def notify(self) -> None:
        """Something was enqueued: try now instead of at the next poll."""
        self._wake.set()

    def start(self, poll_s: float = 5.0) -> threading.Thread:
        """Drain in a background thread until ``stop()``."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, kwargs={"poll_s": poll_s}, name="outbox-drainer", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    def run(self, poll_s: float = 5.0, stop: threading.Event | None = None) -> None:
        stop = stop or self._stop
        while not stop.is_set():
            try:
                self.drain_once()
                if self.clock() - self._last_purge > 3600:
                    self.outbox.purge(self.retention_s)
                    self._last_purge = self.clock()
            except Exception:  # noqa: BLE001 - logged; a full disk or locked database must not kill the loop
                log.exception("outbox drain pass failed")
            due = self.outbox.next_due()
            wait = poll_s if due is None else min(poll_s, max(0.05, due - self.clock()))
            self._wake.wait(wait)
            self._wake.clear()

    # ------------------------------------------------------------------ passes
    def drain_once(self, ignore_backoff: bool = False) -> DrainReport:
        """Deliver what is deliverable now. ``ignore_backoff``: a technician's "try everything now"."""
        rep = DrainReport()
        attempted: set[str] = set()
        consecutive = 0
        while not self._stop.is_set():
            records = self.outbox.claim_next(self.batch, now=self.clock(), ignore_backoff=ignore_backoff,
                                             exclude=attempted, lease_s=self.lease_s)
            if not records:
                break
            for i, rec in enumerate(records):
                attempted.add(rec.id)
                outcome = self._deliver(rec, rep)
                consecutive = consecutive + 1 if outcome == "retry" else 0
                if consecutive >= self.max_consecutive_failures or self._stop.is_set():
                    for rest in records[i + 1:]:
                        self.outbox.release(rest.id)
                    rep.stopped_early = True
                    break
            if rep.stopped_early:
                break
        st = self.outbox.stats()
        rep.remaining = st["pending"] + st["inflight"]
        return rep

    def _deliver(self, rec: Record, rep: DrainReport) -> str:
        now = self.clock()
        if rec.unreadable is not None:  # cannot be sent as it is; the rest keep flowing
            self.outbox.mark_failed(rec.id, "本机保存的申请数据已损坏，无法提交，请联系工作人员", rec.unreadable)
            rep.failed += 1
            log.error("outbox %s (%s): dead letter: %s", rec.id, rec.kind, rec.unreadable)
            return "failed"
        try:
            ref, result = self._send(rec)
        except _Defer as d:
            self.outbox.mark_retry(rec.id, str(d), now + DEFER_S)
            rep.deferred += 1
            return "deferred"
        except RetryableError as e:
            delay = self.backoff_s(rec.attempts, e.retry_after)
            self.outbox.mark_retry(rec.id, str(e), now + delay)
            self._note(False, str(e), rep)
            rep.retried += 1
            log.info("outbox %s (%s): retry in %.1fs: %s", rec.id, rec.kind, delay, e)
            return "retry"
        except PermanentError as e:
            if e.status == 401:  # the kiosk's clock or credential, not this record: keep it
                delay = self.backoff_s(rec.attempts, 60.0)
                self.outbox.mark_retry(rec.id, f"{e} — 终端身份校验失败，请技术人员检查时间和密钥", now + delay)
                self._note(False, str(e), rep)
                rep.retried += 1
                return "retry"
            self.outbox.mark_failed(rec.id, e.reason(), f"HTTP {e.status} {e.code}")
            self._note(True, None, rep)
            rep.failed += 1
            log.warning("outbox %s (%s): dead letter: HTTP %s %s", rec.id, rec.kind, e.status, e.code)
            return "failed"
        except (FileNotFoundError, DecryptError) as e:
            self.outbox.mark_failed(rec.id, "本地材料文件缺失或已损坏，请联系工作人员重新提交",
                                    f"attachment_unreadable: {type(e).__name__}")
            rep.failed += 1
            log.error("outbox %s (%s): dead letter: attachment unreadable (%s)", rec.id, rec.kind, type(e).__name__)
            return "failed"
        except Exception as e:  # noqa: BLE001 - logged; a bug must not lose the record: it stays pending
            log.exception("outbox %s: unexpected failure", rec.id)
            self.outbox.mark_retry(rec.id, f"internal error {type(e).__name__}", now + self.backoff_s(rec.attempts))
            rep.retried += 1
            rep.errors.append(type(e).__name__)
            return "retry"
        self.outbox.mark_done(rec.id, ref, result)
        self._note(True, None, rep)
        rep.delivered += 1
        return "done"

    def _note(self, ok: bool, err: str | None, rep: DrainReport) -> None:
        self.online = ok
        self.last_error = err
        if err:
            rep.errors.append(err)

    # ---------------------------------------------------------------- requests
    def request_for(self, rec: Record) -> tuple[str, dict[str, Any]]:
        """(endpoint name, JSON body): the same record always gives the same body."""
        p = rec.payload
        common = {"kiosk_id": self.client.kiosk_id, "created_at": _iso(rec.created_at)}
        if rec.kind == "application":
            body = {"item_code": p.get("item_code"), "applicant": p.get("applicant"), "form": p.get("form") or {},
                    "materials": p.get("materials") or [], "local_tracking_no": rec.id, **common}
            if p.get("impl_code"):
                body["impl_code"] = p["impl_code"]
            if p.get("licences"):  # e-licences fetched instead of photos: references only
                body["licences"] = p["licences"]
            return "application", body
        if rec.kind == "evaluation":
            body = {k: p[k] for k in ("tracking_no", "level", "reason", "item_code", "impl_code", "reasons", "note",
                                      "indicator_set_version", "channel", "later")
                    if p.get(k) is not None}
            return "evaluation", {**body, **common}
        if rec.kind in ("help_request", "home_visit"):
            return rec.kind, {**{k: v for k, v in p.items() if v is not None}, **common}
        raise ValueError(f"unknown record kind {rec.kind!r}")

    def _send(self, rec: Record) -> tuple[str | None, dict[str, Any]]:
        kind, body = self.request_for(rec)
        key = rec.idempotency_key
        if kind == "application":
            for sha in rec.attachments:
                if sha not in self._uploaded:
                    self.client.put_material(sha, self.outbox.read_attachment(sha))
                    self._uploaded.add(sha)
            r = self.client.submit_application(body, key)
            return r["tracking_no"], r
        if kind == "evaluation":
            tn = body.get("tracking_no")
            if isinstance(tn, str) and is_tracking_no(tn) and tn.upper().startswith("LQ"):
                target = self.outbox.get(tn, decrypt=False)
                if target is not None:
                    if target.state == "failed":
                        raise PermanentError("rated case was never accepted", status=404, code="case_not_submitted",
                                             detail="所评价的办件未能提交成功，评价无法送达")
                    if target.state != "done" or not target.platform_ref:
                        raise _Defer("等待所评价的办件提交完成")
                    body["tracking_no"] = target.platform_ref
            r = self.client.submit_evaluation(body, key)
            return r.get("evaluation_id"), r
        if kind == "help_request":
            r = self.client.submit_help_request(body, key)
            return r.get("request_id"), r
        r = self.client.book_home_visit(body, key)
        return r.get("request_id"), r


def open_outbox(cfg: KioskConfig | None = None, *, db: str | os.PathLike[str] | None = None,
                key_file: str | os.PathLike[str] | None = None, create_key: bool = False) -> Outbox:
    """The configured outbox: ``<storage.data_dir>/outbox.db`` with the key of ``[storage] key_file``.

    ``create_key``: on a kiosk's first start, create the 0600 key file when there is none
    (never over an existing database: see ``open_outbox_at``). A corrupt database is
    refused here (OutboxCorruptError); only the kiosk app's start moves one aside.
    """
    cfg = cfg or load_config()
    path = key_file or cfg.resolve_path(cfg.storage.key_file)
    return open_outbox_at(db or cfg.data_dir / "outbox.db", path, create_key=create_key)
