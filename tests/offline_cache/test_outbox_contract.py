"""The outbox's and the drainer's smaller promises, pinned one by one (written to kill the mutants
`make mutate` found): the on-disk layout, truncation of stored errors, what a full database or a
one-byte write does, how a corrupt file is named when moved aside, and the drainer's pass logic
against a scripted platform."""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import sqlite3
import time

import pytest

from kiosk.ports.outbox import OutboxCorruptError, OutboxFullError, OutboxKeyError
from kiosk.ports.platform import PermanentError, RetryableError
from offline_cache import outbox as outbox_mod
from offline_cache.drainer import DEFER_S, Drainer
from offline_cache.outbox import Outbox
from tests.platform.samples import application_payload


@pytest.fixture
def shanghai_time(monkeypatch):
    """Local time 8 hours off UTC, so a local/UTC mix-up shows."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# ---------------------------------------------------------------- layout and stored text
def test_attachments_live_under_the_first_two_hex_digits_of_their_hash(outbox):
    sha = outbox._store_attachment(b"page")
    assert outbox.blob_path(sha) == outbox.path.parent / "outbox.db.blobs" / sha[:2] / sha
    assert outbox.blob_path(sha).is_file()


def test_new_attachment_directories_are_fsynced_with_their_parent(outbox, monkeypatch):
    synced = []
    real = outbox_mod._fsync_dir
    monkeypatch.setattr(outbox_mod, "_fsync_dir", lambda p: synced.append(p) or real(p))
    sha = outbox._store_attachment(b"first in its directory")
    assert synced == [outbox.blob_path(sha).parent, outbox.blob_dir]
    synced.clear()
    outbox.blob_path(sha).unlink()
    outbox._store_attachment(b"first in its directory")  # the directory exists now: only it is synced
    assert synced == [outbox.blob_path(sha).parent]


def test_stored_errors_are_cut_at_500_characters_and_a_bare_dead_letter_says_permanent(outbox):
    a = outbox.enqueue("application", application_payload())
    b = outbox.enqueue("application", application_payload())
    outbox.claim_next(5)
    outbox.mark_retry(a, "e" * 700, time.time() + 60)
    outbox.mark_failed(b, "退回")
    assert outbox.get(a).last_error == "e" * 500
    assert outbox.get(b).last_error == "permanent"
    outbox.retry(b)
    outbox.claim_next(5, ignore_backoff=True)
    outbox.mark_failed(b, "退回", "f" * 900)
    assert outbox.get(b).last_error == "f" * 500


def test_reading_without_decrypting_leaves_the_payload_sealed(outbox):
    rid = outbox.enqueue("application", application_payload())
    assert outbox.get(rid, decrypt=False).payload == {} and outbox.get(rid).payload
    assert [r.payload for r in outbox.list(decrypt=False)] == [{}]


def test_a_list_is_the_first_100_records_unless_asked(outbox):
    ids = [outbox.enqueue("help_request", {"topic": str(i)}) for i in range(101)]
    assert [r.id for r in outbox.list()] == ids[:100]
    assert len(outbox.list(limit=101)) == 101


def test_a_delivered_result_with_chinese_text_reads_back(outbox):
    rid = outbox.enqueue("application", application_payload())
    outbox.claim_next(1)
    outbox.mark_done(rid, "SD261127ABCDEFGH0", {"note": "已受理"})
    assert outbox.get(rid).result == {"note": "已受理"}
    r2 = outbox.enqueue("application", application_payload())
    outbox.claim_next(1)
    outbox.mark_done(r2, "SD261127ABCDEFGH2")
    assert outbox.get(r2).result is None and outbox.get(r2).platform_ref == "SD261127ABCDEFGH2"


# ---------------------------------------------------------------- full: real SQLite, real short writes
def test_a_database_that_cannot_grow_refuses_the_enqueue_as_full(outbox):
    outbox.enqueue("help_request", {"topic": "先存一条"})
    pages = outbox._db.execute("PRAGMA page_count").fetchone()[0]
    outbox._db.execute(f"PRAGMA max_page_count={pages}")
    with pytest.raises(OutboxFullError) as e:
        for i in range(200):  # fills the last free page, then SQLite says SQLITE_FULL
            outbox.enqueue("help_request", {"topic": "x" * 2000, "n": i})
    assert isinstance(e.value.__cause__, sqlite3.OperationalError)
    assert outbox_mod._is_full(e.value.__cause__)


def test_only_no_room_counts_as_full():
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE t(x UNIQUE)")
    con.execute("INSERT INTO t VALUES(1)")
    with pytest.raises(sqlite3.IntegrityError) as dup:
        con.execute("INSERT INTO t VALUES(1)")
    assert not outbox_mod._is_full(dup.value)
    assert not outbox_mod._is_full(sqlite3.OperationalError("made up, no code"))
    assert not outbox_mod._is_full(ValueError("not an I/O error"))
    assert outbox_mod._is_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not outbox_mod._is_full(OSError(errno.EACCES, "Permission denied"))


def test_one_byte_writes_still_complete_the_attachment(outbox, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:1])))
    sha = outbox._store_attachment(b"abc" * 40)
    monkeypatch.undo()
    assert outbox.read_attachment(sha) == b"abc" * 40


def test_a_write_of_nothing_is_reported_as_no_room(outbox, monkeypatch):
    monkeypatch.setattr(os, "write", lambda fd, data: 0)
    with pytest.raises(OutboxFullError) as e:
        outbox.enqueue("application", application_payload(), attachments=[b"photo"])
    assert e.value.__cause__.errno == errno.ENOSPC and e.value.__cause__.strerror == "no byte written"


def test_no_room_for_the_temporary_file_itself_is_full_too(outbox, monkeypatch):
    real_open = os.open

    def no_room(path, flags, mode=0o777, **kw):
        if str(path).endswith(".tmp"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(os, "open", no_room)
    with pytest.raises(OutboxFullError):
        outbox.enqueue("application", application_payload(), attachments=[b"photo"])


def test_an_attachment_that_does_not_read_back_names_itself(outbox, monkeypatch):
    real_write = os.write
    data = os.urandom(900)
    sha = hashlib.sha256(data).hexdigest()

    def lossy(fd, buf):
        real_write(fd, bytes(buf[:10]))
        return len(buf)

    monkeypatch.setattr(os, "write", lossy)
    with pytest.raises(OSError) as e:
        outbox._store_attachment(data)
    monkeypatch.undo()
    assert e.value.errno == errno.EIO and e.value.strerror == f"attachment {sha[:12]} did not read back as written"
    outbox._store_attachment(data)
    outbox.blob_path(sha).write_bytes(outbox.sealer.seal(b"other", sha.encode()))
    with pytest.raises(outbox_mod.DecryptError, match=f"^attachment {sha[:12]} does not match its hash$"):
        outbox.read_attachment(sha)


# ---------------------------------------------------------------- corrupt files and keys: names and messages
def test_a_bad_header_is_named_and_a_wrong_key_says_what_to_do(tmp_path, key):
    db = tmp_path / "outbox.db"
    db.write_bytes(b"PK\x03\x04 a zip file, not a queue" * 40)
    with pytest.raises(OutboxCorruptError, match=r"bad header"):
        Outbox(db, key)
    db.unlink()
    Outbox(db, key).close()
    with pytest.raises(OutboxKeyError) as e:
        Outbox(db, os.urandom(16))
    assert "restore this kiosk's original key file; a new key cannot read the queue" in str(e.value)


def test_moved_aside_files_are_stamped_in_utc_and_never_overwrite_each_other(tmp_path, key, shanghai_time, caplog):
    db = tmp_path / "outbox.db"
    names = []
    for _ in range(3):
        before = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        db.write_bytes(b"garbage" * 500)
        for side in ("-wal", "-shm", "-journal"):
            (tmp_path / ("outbox.db" + side)).write_bytes(side.encode() * 10)
        with caplog.at_level(logging.ERROR, logger="offline_cache.outbox"):
            ob = Outbox(db, key, recover=True)
        after = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        ob.close()
        m = re.fullmatch(r"outbox\.db\.corrupt-(\d{8}T\d{6})(-\d+)?", ob.recovered)
        assert m and m.group(1) in (before, after)
        for side in ("-wal", "-shm", "-journal"):
            assert (tmp_path / (ob.recovered + side)).read_bytes() == side.encode() * 10
        names.append(ob.recovered)
        assert (f"outbox database outbox.db was unreadable (file is not a database (bad header)): moved aside "
                f"to {ob.recovered}, a fresh queue was started") in [r.getMessage() for r in caplog.records]
    assert len(set(names)) == 3 and sorted(outbox_mod.moved_aside(db)) == sorted(names)


def test_a_second_corruption_in_the_same_second_gets_the_next_number(tmp_path, key, monkeypatch):
    db = tmp_path / "outbox.db"
    monkeypatch.setattr(outbox_mod.time, "strftime", lambda fmt, t=None: "20261130T120000")
    (tmp_path / "outbox.db.corrupt-20261130T120000").write_bytes(b"an earlier one")
    (tmp_path / "outbox.db.corrupt-20261130T120000-2").write_bytes(b"and another")
    db.write_bytes(b"garbage" * 500)
    ob = Outbox(db, key, recover=True)
    ob.close()
    assert ob.recovered == "outbox.db.corrupt-20261130T120000-3"
    assert outbox_mod.moved_aside(db) == ["outbox.db.corrupt-20261130T120000", "outbox.db.corrupt-20261130T120000-2",
                                          "outbox.db.corrupt-20261130T120000-3"]
    assert outbox_mod.moved_aside(tmp_path / "nowhere" / "outbox.db") == []


# ---------------------------------------------------------------- the drainer's pass, against a scripted platform
class ScriptedPlatform:
    """Answers each application with the next scripted outcome: "ok", "retry" or "refuse"."""

    kiosk_id = "qhb-test"

    def __init__(self, script):
        self.script = list(script)
        self.sent = []

    def put_material(self, sha, data):
        pass

    def submit_application(self, body, key):
        self.sent.append(body["local_tracking_no"])
        what = self.script.pop(0) if self.script else "ok"
        if what == "retry":
            raise RetryableError("HTTP 503", retry_after=None)
        if what == "refuse":
            raise PermanentError("bad form", status=422, code="invalid_form", detail="表单有误")
        return {"tracking_no": "SD261127ABCDEFG" + str(len(self.sent)).rjust(2, "0")}


class FixedClock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def test_a_success_between_failures_resets_the_count_of_failures_in_a_row(outbox):
    ids = [outbox.enqueue("application", application_payload()) for _ in range(4)]
    d = Drainer(outbox, ScriptedPlatform(["retry", "ok", "retry", "ok"]), max_consecutive_failures=2)
    rep = d.drain_once()
    assert not rep.stopped_early and (rep.delivered, rep.retried) == (2, 2)
    assert d.client.sent == ids


def test_after_too_many_failures_the_rest_of_the_batch_is_given_back(outbox):
    for _ in range(4):
        outbox.enqueue("application", application_payload())
    d = Drainer(outbox, ScriptedPlatform(["retry"] * 4), max_consecutive_failures=1)
    rep = d.drain_once()
    assert rep.stopped_early and rep.retried == 1 and len(d.client.sent) == 1
    st = outbox.stats()
    assert st["inflight"] == 0 and st["pending"] == 4
    assert sorted(r.attempts for r in outbox.list()) == [0, 0, 0, 1]


def test_a_pass_claims_by_the_drainers_own_clock_batch_and_lease(outbox, monkeypatch):
    rid = outbox.enqueue("application", application_payload())
    outbox.claim_next(1)
    outbox.mark_retry(rid, "HTTP 503", time.time() + 3600)  # in backoff for an hour by the wall clock
    calls = []
    real = outbox.claim_next

    def spy(limit=16, now=None, ignore_backoff=False, exclude=(), lease_s=120.0):
        calls.append((limit, now, ignore_backoff, lease_s))
        return real(limit, now=now, ignore_backoff=ignore_backoff, exclude=exclude, lease_s=lease_s)

    monkeypatch.setattr(outbox, "claim_next", spy)
    d = Drainer(outbox, ScriptedPlatform([]), batch=3, lease_s=77.0, clock=FixedClock(time.time() + 7200))
    assert d.drain_once().delivered == 1  # by the drainer's clock the hour is over
    assert calls[0] == (3, d.clock.t, False, 77.0)


def test_a_plain_pass_respects_backoff_and_the_technicians_pass_does_not(outbox):
    rid = outbox.enqueue("application", application_payload())
    outbox.claim_next(1)
    outbox.mark_retry(rid, "HTTP 503", time.time() + 3600)
    d = Drainer(outbox, ScriptedPlatform([]))
    assert d.drain_once().delivered == 0 and outbox.get(rid).state == "pending"
    assert d.drain_once(ignore_backoff=True).delivered == 1


def test_backoff_is_not_stretched_to_a_second_when_the_platform_gives_no_retry_after(outbox):
    d = Drainer(outbox, ScriptedPlatform([]), base_backoff_s=0.001, max_backoff_s=0.002)
    assert all(d.backoff_s(n) <= 0.002 for n in range(1, 6))


def test_created_at_is_sent_in_utc_with_milliseconds(outbox, shanghai_time):
    rid = outbox.enqueue("application", application_payload())
    rec = outbox.get(rid)
    rec.created_at = 1764205323.456  # 2025-11-27T01:02:03.456Z
    _, body = Drainer(outbox, ScriptedPlatform([])).request_for(rec)
    assert body["created_at"] == "2025-11-27T01:02:03.456Z"


# ---------------------------------------------------------------- resolve and purge, at their edges
def test_resolve_gives_a_platform_number_only_for_a_delivered_record_that_has_one(outbox):
    a = outbox.enqueue("application", application_payload())
    b = outbox.enqueue("help_request", {"topic": "x"})
    assert outbox.resolve(a) is None and outbox.resolve("LQ000000000000000") is None
    outbox.claim_next(5)
    outbox.mark_done(a, "SD261127ABCDEFGH0")
    outbox.mark_done(b, None)  # delivered, the platform gave no number
    assert outbox.resolve(a) == "SD261127ABCDEFGH0" and outbox.resolve(b) is None


def test_purge_thresholds_an_hour_for_strays_a_minute_for_purged_attachments(outbox):
    now = 1_800_000_000.0
    live = os.urandom(300)
    rid = outbox.enqueue("application", application_payload(), attachments=[live])
    live_sha = hashlib.sha256(live).hexdigest()
    sub = outbox.blob_path(live_sha).parent

    def stray(name, age):
        p = sub / name
        p.write_bytes(b"stray")
        os.utime(p, (now - age, now - age))
        return p

    exactly_an_hour = stray("e" * 64, 3600)
    just_over = stray("f" * 64, 3600.5)
    two_minutes = stray("a" * 64, 120)
    many_old = [stray(f"{i:064x}", 7200) for i in range(12)]  # whatever order the directory lists them in
    os.utime(outbox.blob_path(live_sha), (now - 9999, now - 9999))
    (outbox.blob_dir / "not-a-directory").write_bytes(b"x")
    outbox.purge(3600, now=now)
    assert exactly_an_hour.exists() and not just_over.exists() and two_minutes.exists()
    assert not any(p.exists() for p in many_old)
    assert outbox.blob_path(live_sha).exists() and outbox.get(rid) is not None


def test_a_purged_records_attachment_goes_after_a_minute_not_before(outbox):
    data_a, data_b = os.urandom(100), os.urandom(120)
    a = outbox.enqueue("application", application_payload(), attachments=[data_a])
    b = outbox.enqueue("application", application_payload(), attachments=[data_b])
    outbox.claim_next(5)
    outbox.mark_done(a, "SD261127ABCDEFGH0")
    outbox.mark_done(b, "SD261127ABCDEFGH2")
    t = float(int(time.time()) + 1)  # whole seconds: file times hold them exactly
    pa, pb = (outbox.blob_path(hashlib.sha256(d).hexdigest()) for d in (data_a, data_b))
    os.utime(pa, (t - 60, t - 60))
    os.utime(pb, (t - 61, t - 61))
    assert outbox.purge(0, now=t) == 2
    assert pa.exists() and not pb.exists()


# ---------------------------------------------------------------- every outcome of one delivery, exactly
class OutcomePlatform(ScriptedPlatform):
    """Also: "401" (the kiosk's credential), "boom" (a bug in the client), ratings and help requests."""

    def submit_application(self, body, key):
        what = self.script[0] if self.script else "ok"
        if what == "401":
            self.script.pop(0)
            self.sent.append(body["local_tracking_no"])
            raise PermanentError("HTTP 401 bad_signature", status=401, code="bad_signature")
        if what == "boom":
            self.script.pop(0)
            self.sent.append(body["local_tracking_no"])
            raise KeyError("tracking_no")
        return super().submit_application(body, key)

    def submit_evaluation(self, body, key):
        self.sent.append(("evaluation", body["tracking_no"]))
        return {"evaluation_id": "EV1", "tracking_no": body["tracking_no"]}


def messages(caplog):
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "offline_cache.drainer"]


def test_each_outcome_is_counted_recorded_and_logged_exactly(outbox, caplog):
    clock = FixedClock(1_800_000_000.0)
    ids = [outbox.enqueue("application", application_payload()) for _ in range(5)]
    platform = OutcomePlatform(["retry", "refuse", "401", "boom", "ok"])
    d = Drainer(outbox, platform, clock=clock, base_backoff_s=0.001, max_backoff_s=0.002,
                max_consecutive_failures=10)
    with caplog.at_level(logging.INFO, logger="offline_cache.drainer"):
        rep = d.drain_once()
    assert (rep.delivered, rep.failed, rep.retried, rep.deferred, rep.remaining) == (1, 1, 3, 0, 3)
    assert rep.errors == ["HTTP 503", "HTTP 401 bad_signature", "KeyError"]
    retry, refused, cred, bug, ok = (outbox.get(i) for i in ids)
    assert retry.state == "pending" and retry.last_error == "HTTP 503"
    assert clock.t < retry.next_attempt_at <= clock.t + 0.002
    assert refused.state == "failed" and refused.last_error == "HTTP 422 invalid_form"
    assert cred.state == "pending" and cred.next_attempt_at == clock.t + 60.0
    assert cred.last_error == "HTTP 401 bad_signature — 终端身份校验失败，请技术人员检查时间和密钥"
    assert bug.state == "pending" and bug.last_error == "internal error KeyError"
    assert clock.t < bug.next_attempt_at <= clock.t + 0.002
    assert ok.state == "done" and ok.platform_ref and ok.result["tracking_no"] == ok.platform_ref
    assert d.online is True and d.last_error is None  # the last contact worked
    got = messages(caplog)
    retry_line = [m for m in got if m[1].startswith(f"outbox {ids[0]} (application): retry in ")]
    assert len(retry_line) == 1 and re.fullmatch(r"outbox \S+ \(application\): retry in 0\.0s: HTTP 503",
                                                 retry_line[0][1]) and retry_line[0][0] == "INFO"
    assert ("WARNING", f"outbox {ids[1]} (application): dead letter: HTTP 422 invalid_form") in got
    assert ("ERROR", f"outbox {ids[3]}: unexpected failure") in got
    assert [r for r in caplog.records if r.getMessage().endswith("unexpected failure")][0].exc_info


def test_a_failure_is_remembered_as_offline_until_the_next_success(outbox):
    rid = outbox.enqueue("application", application_payload())
    d = Drainer(outbox, OutcomePlatform(["retry"]), max_consecutive_failures=5)
    assert d.online is None
    d.drain_once()
    assert d.online is False and d.last_error == "HTTP 503"
    d.drain_once(ignore_backoff=True)
    assert d.online is True and d.last_error is None and outbox.get(rid).state == "done"


def test_an_unreadable_record_and_a_missing_attachment_are_logged_as_dead_letters(outbox, caplog):
    bad = outbox.enqueue("application", application_payload())
    data = os.urandom(100)
    gone = outbox.enqueue("application", application_payload(), attachments=[data])
    con = sqlite3.connect(outbox.path)
    blob = bytearray(con.execute("SELECT payload FROM records WHERE id=?", (bad,)).fetchone()[0])
    blob[20] ^= 1
    con.execute("UPDATE records SET payload=? WHERE id=?", (bytes(blob), bad))
    con.commit()
    con.close()
    outbox.blob_path(hashlib.sha256(data).hexdigest()).unlink()
    d = Drainer(outbox, OutcomePlatform([]))
    with caplog.at_level(logging.INFO, logger="offline_cache.drainer"):
        rep = d.drain_once()
    assert (rep.failed, rep.delivered, rep.retried) == (2, 0, 0) and d.client.sent == []
    assert outbox.get(bad).failure_reason == "本机保存的申请数据已损坏，无法提交，请联系工作人员"
    assert outbox.get(gone).failure_reason == "本地材料文件缺失或已损坏，请联系工作人员重新提交"
    assert outbox.get(gone).last_error == "attachment_unreadable: FileNotFoundError"
    got = messages(caplog)
    assert ("ERROR", f"outbox {bad} (application): dead letter: payload_unreadable: DecryptError") in got
    assert ("ERROR", f"outbox {gone} (application): dead letter: attachment unreadable (FileNotFoundError)") in got


def test_a_rating_waits_exactly_the_deferral_for_its_case(outbox):
    clock = FixedClock(time.time())  # the case's lease (2 minutes of real time) still holds
    app = outbox.enqueue("application", application_payload())
    ev = outbox.enqueue("evaluation", {"tracking_no": app, "level": "满意"})
    outbox.claim_next(1)  # the case is still being delivered elsewhere
    d = Drainer(outbox, OutcomePlatform([]), clock=clock)
    rep = d.drain_once()
    assert (rep.deferred, rep.delivered, rep.retried) == (1, 0, 0)
    rec = outbox.get(ev)
    assert rec.state == "pending" and rec.next_attempt_at == clock.t + DEFER_S
    assert rec.last_error == "等待所评价的办件提交完成"
    outbox.mark_done(app, "SD261127ABCDEFGH0")
    assert d.drain_once(ignore_backoff=True).delivered == 1
    assert d.client.sent == [("evaluation", "SD261127ABCDEFGH0")]


def test_remaining_counts_pending_and_inflight(outbox):
    a = outbox.enqueue("application", application_payload())
    outbox.enqueue("application", application_payload())
    outbox.claim_next(1)  # a is inflight under a live lease of this process
    assert outbox.get(a).state == "inflight"
    rep = Drainer(outbox, OutcomePlatform(["retry"])).drain_once()
    assert rep.remaining == 2


# ---------------------------------------------------------------- leases
def test_a_lease_is_void_when_its_time_is_up_or_its_owner_here_is_gone():
    now = 1_800_000_000.0
    me = f"{outbox_mod._HOST}:{os.getpid()}:abcd1234"
    assert outbox_mod.lease_expired(me, None, now) and outbox_mod.lease_expired(None, None, now)
    assert outbox_mod.lease_expired(me, now, now)  # up at exactly its time
    assert not outbox_mod.lease_expired(me, now + 1, now)
    dead = subprocessless_dead_pid()
    assert outbox_mod.lease_expired(f"{outbox_mod._HOST}:{dead}:x", now + 100, now)
    # another machine's claim is judged by its time only: its pid means nothing here
    assert not outbox_mod.lease_expired(f"other-host:{dead}:x", now + 100, now)
    assert not outbox_mod.lease_expired(f"{outbox_mod._HOST}:not-a-pid:x", now + 100, now)
    assert outbox_mod._pid_alive(os.getpid()) and not outbox_mod._pid_alive(dead)


def subprocessless_dead_pid() -> int:
    """A pid that was used and is gone now (a child that has been reaped)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid
