"""Faults that never stop delivery: a damaged record or attachment, another key, a missing key, a full disk,
a corrupt database, a transaction left by an exception. Real files, real SQLite, the real simulator."""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import sqlite3
import stat
import subprocess
import threading
import time

import pytest
import requests

from kiosk.fleet.health import queue_figures
from kiosk.platform.client import PlatformClient
from kiosk.platform.credentials import configured_credentials
from kiosk.ports.outbox import OutboxCorruptError, OutboxFullError, OutboxKeyError
from offline_cache.crypto import DecryptError
from offline_cache.drainer import Drainer
from offline_cache.outbox import Outbox, moved_aside, open_outbox_at
from standins.platform_sim import start_in_thread
from tests.platform.samples import application_payload


@pytest.fixture
def sim(tmp_path):
    h = start_in_thread(tmp_path / "sim", seed=5)
    yield h
    h.stop()


@pytest.fixture
def client(sim):
    c = configured_credentials()
    cl = PlatformClient(sim.url, c.kiosk_id, c.secret, read_timeout=5)
    yield cl
    cl.close()


def sim_applications(sim) -> list[dict]:
    return requests.get(sim.url + "/__sim/applications", timeout=5).json()["applications"]


def flip_payload_bit(db, rid: str) -> None:
    """What a bad sector does: one bit of one record's ciphertext, changed by another connection."""
    con = sqlite3.connect(db)
    (blob,) = con.execute("SELECT payload FROM records WHERE id=?", (rid,)).fetchone()
    b = bytearray(blob)
    b[len(b) // 2] ^= 0x10
    con.execute("UPDATE records SET payload=? WHERE id=?", (bytes(b), rid))
    con.commit()
    con.close()


def flip_file_bit(path) -> None:
    b = bytearray(path.read_bytes())
    b[len(b) // 2] ^= 0x01
    path.write_bytes(bytes(b))


# ---------------------------------------------------------------- one bad record stays one bad record
def test_a_flipped_bit_in_one_record_and_one_attachment_dead_letters_only_those(tmp_path, key, sim, client):
    db = tmp_path / "outbox.db"
    ob = Outbox(db, key)
    bad_payload = ob.enqueue("application", application_payload())
    photo = os.urandom(3000)
    bad_attachment = ob.enqueue("application", application_payload(), attachments=[photo])
    good = [ob.enqueue("application", application_payload()),
            ob.enqueue("application", application_payload(), attachments=[os.urandom(2000)]),
            ob.enqueue("help_request", {"topic": "社保", "contact": {"name": "张三", "phone": "13800138000"}})]
    flip_payload_bit(db, bad_payload)
    flip_file_bit(ob.blob_path(hashlib.sha256(photo).hexdigest()))

    # the technician's views skip or mark it instead of failing
    listed = {r.id: r for r in ob.list()}
    assert listed[bad_payload].unreadable and listed[bad_payload].payload == {}
    assert all(listed[r].unreadable is None for r in [bad_attachment, *good])
    assert ob.get(bad_payload).unreadable.startswith("payload_unreadable")
    assert ob.receipts.get(bad_payload) is None
    assert bad_payload not in {r.local_no for r in ob.receipts.recent(50)}
    assert {r.local_no for r in ob.receipts.recent(50)} == {bad_attachment, *good}

    rep = Drainer(ob, client, base_backoff_s=0.5, max_backoff_s=4).drain_once()
    assert (rep.delivered, rep.failed, rep.retried, rep.remaining) == (3, 2, 0, 0)
    a, b = ob.get(bad_payload), ob.get(bad_attachment)
    assert a.state == b.state == "failed"
    assert a.last_error.startswith("payload_unreadable") and "无法提交" in a.failure_reason
    assert b.last_error == "attachment_unreadable: DecryptError" and "材料" in b.failure_reason
    assert all(ob.get(r).state == "done" and ob.get(r).platform_ref for r in good)
    assert {x["local_tracking_no"] for x in sim_applications(sim)} == set(good[:2])
    ob.close()


def test_an_unreadable_record_is_marked_not_raised_and_the_next_one_of_its_applicant_flows(outbox, sim, client):
    p = application_payload()
    first = outbox.enqueue("application", p)
    second = outbox.enqueue("application", {**p, "form": {**p["form"], "address": "第二份"}})
    flip_payload_bit(outbox.path, first)
    [rec] = outbox.claim_next(5)  # the claim itself never decrypts, so it cannot fail on the bad one
    assert rec.id == first and rec.unreadable and outbox.stats()["inflight"] == 1
    outbox.release(first)
    rep = Drainer(outbox, client).drain_once()
    assert rep.failed == 1 and rep.delivered == 1 and outbox.get(second).state == "done"


def test_an_attachment_that_fails_its_hash_is_refused_on_read(outbox):
    data = b"material " * 50
    sha = hashlib.sha256(data).hexdigest()
    outbox._store_attachment(data)
    other = b"another material"
    # a validly sealed file named after the wrong content (a swapped file) fails its hash
    outbox.blob_path(sha).write_bytes(outbox.sealer.seal(other, sha.encode()))
    with pytest.raises(DecryptError, match="hash"):
        outbox.read_attachment(sha)
    flip_file_bit(outbox.blob_path(sha))
    with pytest.raises(DecryptError):
        outbox.read_attachment(sha)


# ---------------------------------------------------------------- the key check value
def test_another_key_is_refused_and_the_database_is_left_alone(tmp_path, key):
    db = tmp_path / "outbox.db"
    ob = Outbox(db, key)
    rid = ob.enqueue("application", application_payload())
    ob.close()
    with pytest.raises(OutboxKeyError, match="does not open"):
        Outbox(db, os.urandom(16))
    with pytest.raises(OutboxKeyError):
        Outbox(db, os.urandom(32))  # another cipher too
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM records").fetchone()[0] == 1
    assert len(con.execute("SELECT v FROM meta WHERE k='key_check'").fetchone()[0]) == 32
    con.close()
    with Outbox(db, key) as again:
        assert again.get(rid).payload["item_code"]


def test_an_older_database_without_a_check_value_is_judged_by_its_records(tmp_path, key):
    db = tmp_path / "outbox.db"
    ob = Outbox(db, key)
    ob.enqueue("application", application_payload())
    ob.close()
    con = sqlite3.connect(db)
    con.execute("DELETE FROM meta")
    con.commit()
    con.close()
    with pytest.raises(OutboxKeyError):
        Outbox(db, os.urandom(16))
    with Outbox(db, key):
        pass
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM meta WHERE k='key_check'").fetchone()[0] == 1
    con.close()
    with pytest.raises(OutboxKeyError):  # now the check value itself refuses it
        Outbox(db, os.urandom(16))


def test_an_empty_database_takes_the_first_key_it_is_opened_with(tmp_path, key):
    db = tmp_path / "outbox.db"
    Outbox(db, key).close()
    with Outbox(db, key) as ob:
        assert ob.stats()["pending"] == 0
    with pytest.raises(OutboxKeyError):
        Outbox(db, os.urandom(16))


def test_a_missing_key_file_is_never_replaced_over_an_existing_database(tmp_path, key, key_file, monkeypatch):
    monkeypatch.delenv("KIOSK_STORAGE_KEY", raising=False)
    db = tmp_path / "outbox.db"
    with open_outbox_at(db, key_file) as ob:
        ob.enqueue("application", application_payload())
    key_file.unlink()
    for create in (False, True):
        with pytest.raises(OutboxKeyError, match="missing"):
            open_outbox_at(db, key_file, create_key=create, recover=True)
        assert not key_file.exists()
    # no database yet: the first start creates a private key, a tool never does
    fresh_db, fresh_key = tmp_path / "new" / "outbox.db", tmp_path / "new" / "kiosk.key"
    with pytest.raises(OutboxKeyError, match="init-key"):
        open_outbox_at(fresh_db, fresh_key)
    assert not fresh_key.exists() and not fresh_db.exists()
    with open_outbox_at(fresh_db, fresh_key, create_key=True) as ob:
        ob.enqueue("application", application_payload())
    assert stat.S_IMODE(fresh_key.stat().st_mode) == 0o600
    with open_outbox_at(fresh_db, fresh_key) as ob:  # and it is the key the database was made with
        assert ob.stats()["pending"] == 1
    fresh_key.chmod(0o644)
    with pytest.raises(OutboxKeyError, match="chmod 600"):
        open_outbox_at(fresh_db, fresh_key, create_key=True)


# ---------------------------------------------------------------- attachments: complete, verified, private
def test_short_writes_are_continued_until_the_attachment_is_complete(outbox, monkeypatch):
    real_write = os.write
    calls = []

    def short_write(fd, data):
        calls.append(len(data))
        return real_write(fd, bytes(data[:97]))  # what a nearly full disk or a signal does

    data = os.urandom(5000)
    monkeypatch.setattr(os, "write", short_write)
    rid = outbox.enqueue("application", application_payload(), attachments=[data])
    monkeypatch.undo()
    assert len(calls) > 50
    [sha] = outbox.get(rid).attachments
    assert outbox.read_attachment(sha) == data
    assert stat.S_IMODE(outbox.blob_path(sha).stat().st_mode) == 0o600


def test_a_write_that_stops_or_fails_for_space_refuses_the_enqueue_and_leaves_nothing(outbox, monkeypatch):
    real_write = os.write
    for behaviour in ("zero", "enospc", "efbig"):
        def write(fd, data, behaviour=behaviour):
            if behaviour == "zero":
                return 0
            if behaviour == "enospc":
                real_write(fd, bytes(data[:10]))
                raise OSError(errno.ENOSPC, "No space left on device")
            raise OSError(errno.EFBIG, "File too large")

        monkeypatch.setattr(os, "write", write)
        with pytest.raises(OutboxFullError) as e:
            outbox.enqueue("application", application_payload(), attachments=[os.urandom(800)])
        monkeypatch.undo()
        assert isinstance(e.value.__cause__, OSError) and e.value.citizen_message
        assert outbox.stats()["pending"] == 0
        assert [f for f in outbox.blob_dir.rglob("*") if f.is_file()] == []


def test_other_write_errors_are_not_called_a_full_disk(outbox, monkeypatch):
    def write(fd, data):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "write", write)
    with pytest.raises(OSError) as e:
        outbox.enqueue("application", application_payload(), attachments=[b"x" * 100])
    assert not isinstance(e.value, OutboxFullError) and e.value.errno == errno.EIO


def test_an_attachment_that_does_not_read_back_is_never_published(outbox, monkeypatch):
    real_write = os.write

    def lossy_write(fd, data):  # the device says it wrote everything; what lands is short
        real_write(fd, bytes(data[: len(data) // 2]))
        return len(data)

    data = os.urandom(1500)
    monkeypatch.setattr(os, "write", lossy_write)
    with pytest.raises(OSError, match="did not read back"):
        outbox.enqueue("application", application_payload(), attachments=[data])
    monkeypatch.undo()
    assert outbox.stats()["pending"] == 0
    assert [f for f in outbox.blob_dir.rglob("*") if f.is_file()] == []


def test_an_existing_damaged_blob_is_rewritten_before_it_is_reused(outbox):
    data = os.urandom(4000)
    sha = outbox._store_attachment(data)
    path = outbox.blob_path(sha)
    path.write_bytes(path.read_bytes()[:100])  # truncated by an earlier full disk
    rid = outbox.enqueue("application", application_payload(), attachments=[data])
    assert outbox.read_attachment(sha) == data and outbox.get(rid).attachments == [sha]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # naming a damaged stored material without giving it is refused
    flip_file_bit(path)
    with pytest.raises(ValueError, match="material"):
        outbox.enqueue("application", {**application_payload(), "materials": [sha]})
    assert outbox.stats()["pending"] == 1


def test_a_good_existing_blob_is_reused_untouched_and_touched(outbox):
    data = os.urandom(600)
    sha = outbox._store_attachment(data)
    path = outbox.blob_path(sha)
    os.utime(path, (time.time() - 5000, time.time() - 5000))
    before = path.read_bytes()
    outbox.enqueue("application", application_payload(), attachments=[data])
    assert path.read_bytes() == before and time.time() - path.stat().st_mtime < 600


def _mount_tmpfs(where, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
                       capture_output=True)
    return r.returncode == 0


def test_a_real_full_disk_refuses_the_enqueue_and_after_space_returns_all_is_whole(tmp_path, key, sim, client):
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _mount_tmpfs(disk, "3m"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        ob = Outbox(disk / "outbox.db", key)
        before = ob.enqueue("application", application_payload(), attachments=[os.urandom(20_000)])
        filler = disk / "filler"
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError as e:
                assert e.errno == errno.ENOSPC
        photo = os.urandom(200_000)
        with pytest.raises(OutboxFullError):
            ob.enqueue("application", application_payload(), attachments=[photo])
        assert ob.stats()["pending"] == 1  # nothing of it was committed
        assert not [f for f in ob.blob_dir.rglob("*.tmp")]
        filler.unlink()  # space returns
        after = ob.enqueue("application", application_payload(), attachments=[photo])
        assert ob.read_attachment(hashlib.sha256(photo).hexdigest()) == photo
        rep = Drainer(ob, client).drain_once()
        assert rep.delivered == 2 and rep.failed == 0
        assert {x["local_tracking_no"] for x in sim_applications(sim)} == {before, after}
        assert ob.integrity_check() == "ok"
        ob.close()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


# ---------------------------------------------------------------- a corrupt database at start
def test_a_corrupt_database_is_refused_by_tools_and_moved_aside_at_start(tmp_path, key, caplog):
    db = tmp_path / "outbox.db"
    garbage = b"this was an outbox before the power cut " * 200
    db.write_bytes(garbage)
    (tmp_path / "outbox.db-wal").write_bytes(b"wal" * 100)
    (tmp_path / "outbox.db.blobs").mkdir()
    (tmp_path / "outbox.db.blobs" / "kept").write_bytes(b"x")
    with pytest.raises(OutboxCorruptError, match="corrupt"):
        Outbox(db, key)
    assert db.read_bytes() == garbage  # a tool never moves it
    with caplog.at_level(logging.ERROR, logger="offline_cache.outbox"):
        ob = Outbox(db, key, recover=True)
    assert re.fullmatch(r"outbox\.db\.corrupt-\d{8}T\d{6}", ob.recovered)
    aside = tmp_path / ob.recovered
    assert aside.read_bytes() == garbage
    assert (tmp_path / (ob.recovered + "-wal")).read_bytes() == b"wal" * 100
    assert (tmp_path / (ob.recovered + ".blobs") / "kept").exists()
    assert not (tmp_path / "outbox.db-wal").exists() or (tmp_path / "outbox.db-wal").read_bytes() != b"wal" * 100
    assert any("moved aside" in r.getMessage() and ob.recovered in r.getMessage() for r in caplog.records)
    rid = ob.enqueue("application", application_payload())
    st = ob.stats()
    assert st["pending"] == 1 and st["moved_aside"] == [ob.recovered] and ob.get(rid) is not None
    assert queue_figures(st)["moved_aside"] == [ob.recovered]  # the next health message carries it
    ob.close()
    assert moved_aside(db) == [aside.name]
    with Outbox(db, key) as again:  # the next start opens the fresh one and still reports the old
        assert again.recovered is None and again.stats()["moved_aside"] == [aside.name]


def test_a_damaged_page_behind_a_good_header_is_found_at_open(tmp_path, key):
    db = tmp_path / "outbox.db"
    ob = Outbox(db, key)
    for _ in range(60):
        ob.enqueue("application", application_payload())
    ob.close()
    raw = bytearray(db.read_bytes())
    assert len(raw) > 8192
    raw[4096:] = os.urandom(len(raw) - 4096)  # every page but the first (the header and schema survive)
    db.write_bytes(bytes(raw))
    with pytest.raises(OutboxCorruptError):
        Outbox(db, key)
    with Outbox(db, key, recover=True) as ob:
        assert ob.recovered and ob.stats()["pending"] == 0


def test_a_healthy_database_has_nothing_moved_aside(outbox):
    assert outbox.recovered is None and "moved_aside" not in outbox.stats()
    assert queue_figures(outbox.stats()).get("moved_aside") is None


# ---------------------------------------------------------------- transactions
def test_an_exception_leaving_a_transaction_rolls_it_back(outbox):
    rid = outbox.enqueue("application", application_payload())
    with pytest.raises(RuntimeError):
        with outbox._tx() as db:
            db.execute("UPDATE records SET state='done' WHERE id=?", (rid,))
            raise RuntimeError("a bug in the middle of a claim")
    assert outbox.get(rid).state == "pending"
    # the lock was released: another thread can take the next transaction
    done = threading.Event()

    def other():
        with outbox._tx() as db:
            db.execute("UPDATE records SET attempts=7 WHERE id=?", (rid,))
        done.set()

    t = threading.Thread(target=other)
    t.start()
    t.join(30)
    assert done.is_set() and outbox.get(rid).attempts == 7
    assert not outbox._db.in_transaction


def test_a_transaction_that_cannot_begin_releases_the_lock(tmp_path, key):
    db = tmp_path / "outbox.db"
    a = Outbox(db, key, busy_timeout_ms=50)
    b = sqlite3.connect(db, isolation_level=None)
    b.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    with pytest.raises(sqlite3.OperationalError):
        with a._tx():
            pass
    b.execute("ROLLBACK")
    b.close()
    got = []
    t = threading.Thread(target=lambda: got.append(a.retry("LQ000000000000000")))
    t.start()
    t.join(30)
    assert got == [False]
    a.close()


# ---------------------------------------------------------------- what the technician and the fleet see
def test_the_app_start_moves_a_corrupt_queue_aside_and_the_technician_report_shows_it(tmp_path, monkeypatch):
    from kiosk.app.diagnostics import WARN, check_queue
    from kiosk.bootstrap.app import BootWiring
    from kiosk.config import load_config
    from offline_cache.drainer import open_outbox

    monkeypatch.delenv("KIOSK_STORAGE_KEY", raising=False)
    cfg = load_config(cli={"storage": {"data_dir": str(tmp_path), "key_file": str(tmp_path / "kiosk.key")}})
    wiring = BootWiring(cfg, state_dir=tmp_path)
    ob = wiring.open_outbox()  # first start: creates the key and the queue
    ob.enqueue("application", application_payload())
    ob.close()
    (tmp_path / "outbox.db").write_bytes(b"\xde\xad" * 5000)  # the power cut
    ob = wiring.open_outbox()  # the next start: moved aside, a fresh queue, never a dead start-up
    assert ob.recovered and ob.stats()["moved_aside"] == [ob.recovered] and ob.stats()["pending"] == 0
    ob.close()
    c = check_queue(cfg, open_outbox)
    assert c.status == WARN and ob.recovered in c.summary and c.details["moved_aside"] == [ob.recovered]
    # a missing key with the queue still there stops the start with a named error, never a fresh key
    (tmp_path / "kiosk.key").unlink()
    with pytest.raises(OutboxKeyError):
        wiring.open_outbox()
    assert not (tmp_path / "kiosk.key").exists()
