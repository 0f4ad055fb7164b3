"""The outbox's remaining small promises, each pinned by a fast in-process test (written against the mutants
`make mutate` left alive; docs/benchmarks.md, "Mutation testing"): what enqueue refuses and with which words,
attachments given as files or named by hash, tracking-number collisions and the idempotency race, per-applicant
grouping, every field a read gives back, marks for what cannot be opened, and the queue's age figure."""
from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from kiosk.ports.outbox import OutboxCorruptError, OutboxFullError, OutboxKeyError
from offline_cache import outbox as outbox_mod
from offline_cache.crypto import Sealer
from offline_cache.outbox import Outbox
from tests.platform.samples import application_payload


def _raw(outbox: Outbox) -> sqlite3.Connection:
    return sqlite3.connect(outbox.path, isolation_level=None)


def test_an_empty_database_file_opens_as_a_fresh_queue(tmp_path, key):
    db = tmp_path / "outbox.db"
    db.write_bytes(b"")  # created, never written (a crash right after the create)
    with Outbox(db, key) as ob:
        assert ob.recovered is None and ob.stats()["pending"] == 0
        ob.enqueue("help_request", {"topic": "x"})
        assert ob.stats()["pending"] == 1


@pytest.mark.parametrize(("kind", "payload", "exc", "words"), [
    ("letter", {}, ValueError, r"^kind must be one of \('application', "),
    ("help_request", ["not", "a", "dict"], TypeError, r"^payload must be a dict$"),
    ("application", {"materials": "abc"}, ValueError, r"^payload materials must be a list of sha256 hashes$"),
    ("application", {"materials": ["0" * 64]}, ValueError,
     r"^payload names a material that was not given as an attachment$"),
])
def test_enqueue_refuses_a_bad_call_in_plain_words(outbox, kind, payload, exc, words):
    with pytest.raises(exc, match=words):
        outbox.enqueue(kind, payload)
    assert outbox.stats()["pending"] == 0


def test_an_attachment_can_be_given_as_a_file(outbox, tmp_path):
    scan = tmp_path / "scan.jpg"
    scan.write_bytes(b"\xff\xd8 a scanned page")
    rid = outbox.enqueue("application", application_payload(), attachments=[scan, str(scan)])
    sha = hashlib.sha256(b"\xff\xd8 a scanned page").hexdigest()
    assert outbox.get(rid).attachments == [sha] and outbox.read_attachment(sha) == b"\xff\xd8 a scanned page"


def test_a_material_already_stored_can_be_named_by_its_hash_alone(outbox):
    first = outbox.enqueue("application", application_payload(), attachments=[b"household register"])
    sha = outbox.get(first).attachments[0]
    again = outbox.enqueue("application", {**application_payload(), "materials": [sha]})
    assert outbox.get(again).attachments == [sha] and outbox.get(again).payload["materials"] == [sha]
    with pytest.raises(ValueError, match="not given as an attachment"):
        outbox.enqueue("application", {**application_payload(), "materials": [sha[:63]]})


def test_a_tracking_number_collision_draws_another(outbox, monkeypatch):
    taken = outbox.enqueue("help_request", {"topic": "first"})
    fresh = outbox_mod.new_local_no()
    numbers = iter([taken, fresh])
    monkeypatch.setattr(outbox_mod, "new_local_no", lambda: next(numbers))
    assert outbox.enqueue("help_request", {"topic": "second"}) == fresh


def test_five_collisions_in_a_row_give_up_with_a_named_error(outbox, monkeypatch):
    taken = outbox.enqueue("help_request", {"topic": "first"})
    draws = []
    monkeypatch.setattr(outbox_mod, "new_local_no", lambda: draws.append(1) or taken)
    with pytest.raises(RuntimeError, match=r"^could not allocate a local tracking number$"):
        outbox.enqueue("help_request", {"topic": "second"})
    assert len(draws) == 5 and outbox.stats()["pending"] == 1


def test_a_key_committed_by_another_process_meanwhile_returns_that_record(outbox, monkeypatch):
    first = outbox.enqueue("help_request", {"topic": "tap"}, idempotency_key="visit-7-submit")
    real = outbox._id_for_key
    asked = []

    def not_yet_then_real(key):  # the other process commits between our check and our insert
        asked.append(key)
        return None if len(asked) == 1 else real(key)

    monkeypatch.setattr(outbox, "_id_for_key", not_yet_then_real)
    assert outbox.enqueue("help_request", {"topic": "tap"}, idempotency_key="visit-7-submit") == first
    assert asked == ["visit-7-submit", "visit-7-submit"] and outbox.stats()["pending"] == 1


def test_one_applicant_is_the_id_type_and_number_together_or_the_phone(outbox):
    p = application_payload()
    a = outbox.enqueue("application", p)
    same = outbox.enqueue("application", {**p, "form": {}})
    passport = outbox.enqueue("application", {**p, "applicant": {**p["applicant"], "id_type": "passport"}})
    h1 = outbox.enqueue("help_request", {"topic": "a", "contact": {"phone": "13900001111"}})
    h2 = outbox.enqueue("help_request", {"topic": "b", "contact": {"phone": "13900001111"}})
    h3 = outbox.enqueue("help_request", {"topic": "c", "contact": {"phone": "13900002222"}})
    none = outbox.enqueue("help_request", {"topic": "d"})
    g = {r: outbox.get(r).group_key for r in (a, same, passport, h1, h2, h3, none)}
    assert g[a] is not None and g[a] == g[same] and g[passport] not in (None, g[a])
    assert g[h1] is not None and g[h1] == g[h2] and g[h3] not in (None, g[h1]) and g[none] is None
    # the second help request of the same phone waits for the first
    assert [r.id for r in outbox.claim_next(10)] == [a, passport, h1, h3, none]


def test_a_read_gives_back_every_field_of_the_record(outbox):
    a = outbox.enqueue("application", application_payload())
    b = outbox.enqueue("help_request", {"topic": "x", "contact": {"phone": "13900001111"}})
    before = time.time()
    claimed = {r.id: r for r in outbox.claim_next(5, now=before, lease_s=90.0)}
    assert claimed[b].seq == claimed[a].seq + 1
    for rid in (a, b):
        for rec in (claimed[rid], outbox.get(rid), outbox.list(["inflight"])[[a, b].index(rid)]):
            assert rec.lease_owner == outbox.owner and rec.lease_until == before + 90.0
            assert rec.group_key is not None and rec.group_key == outbox.get(rid, decrypt=False).group_key
    outbox.mark_done(a, "SD261127ABCDEFGH0")
    done = outbox.get(a)
    assert done.delivered_at is not None and before <= done.delivered_at <= time.time()
    assert done.lease_owner is None and done.lease_until is None and done.seq == claimed[a].seq


def test_sealed_fields_that_cannot_be_opened_are_marked(outbox):
    a = outbox.enqueue("help_request", {"topic": "a"})
    b = outbox.enqueue("help_request", {"topic": "b"})
    outbox.claim_next(5)
    outbox.mark_failed(a, "平台退回")
    outbox.mark_done(b, "SD261127ABCDEFGH0", {"note": "已受理"})
    con = _raw(outbox)
    con.execute("UPDATE records SET payload=?, failure=? WHERE id=?", (b"\x01" * 40, b"\x02" * 40, a))
    con.execute("UPDATE records SET result=? WHERE id=?", (b"\x03" * 40, b))
    con.close()
    ra, rb = outbox.get(a), outbox.get(b)
    assert ra.unreadable == "payload_unreadable: DecryptError" and ra.payload == {}
    assert ra.failure_reason == "(退回原因无法解密)"
    assert rb.result is None and rb.unreadable is None and rb.payload == {"topic": "b"}


def test_the_age_of_the_oldest_waiting_record_is_by_the_given_time(outbox):
    rid = outbox.enqueue("help_request", {"topic": "x"})
    created = outbox.get(rid).created_at
    assert outbox.stats(now=created + 1.23456)["oldest_pending_age_s"] == 1.235
    assert outbox.stats(now=created - 5)["oldest_pending_age_s"] == 0.0  # a clock set back never shows a negative age


def test_a_record_due_exactly_now_is_claimed(outbox):
    rid = outbox.enqueue("help_request", {"topic": "x"})
    outbox.claim_next(1)
    outbox.mark_retry(rid, "503", 5000.0)
    assert outbox.claim_next(1, now=4999.999) == []
    assert [r.id for r in outbox.claim_next(1, now=5000.0)] == [rid]


def test_a_full_disk_is_named_for_the_technician(outbox):
    outbox.enqueue("help_request", {"topic": "先存一条"})
    pages = outbox._db.execute("PRAGMA page_count").fetchone()[0]
    outbox._db.execute(f"PRAGMA max_page_count={pages}")
    with pytest.raises(OutboxFullError, match=r"^磁盘已满，无法保存 \(disk full\): "):
        for i in range(200):
            outbox.enqueue("help_request", {"topic": "x" * 2000, "n": i})


def test_a_missing_key_file_beside_a_queue_tells_the_technician_what_to_do(tmp_path, key_file, monkeypatch):
    monkeypatch.delenv("KIOSK_STORAGE_KEY", raising=False)
    db = tmp_path / "outbox.db"
    with outbox_mod.open_outbox_at(db, key_file) as ob:
        ob.enqueue("help_request", {"topic": "x"})
    key_file.unlink()
    with pytest.raises(OutboxKeyError) as e:
        outbox_mod.open_outbox_at(db, key_file, create_key=True)
    assert str(e.value) == (f"存储密钥文件缺失 (storage key file {key_file} is missing) but {db} exists: "
                            "restore this kiosk's key file; a new key cannot read the queue")


def test_an_outbox_can_live_in_a_folder_that_does_not_exist_yet(tmp_path, key):
    with Outbox(tmp_path / "var" / "lib" / "qhb" / "outbox.db", key) as ob:
        ob.enqueue("help_request", {"topic": "x"})
        assert ob.stats()["pending"] == 1


def test_the_chosen_cipher_seals_the_records(tmp_path, key):
    with Outbox(tmp_path / "outbox.db", key, alg="aes-gcm") as ob:
        assert ob.sealer.alg == "aes-gcm"
        rid = ob.enqueue("help_request", {"topic": "x"})
        payload = ob._db.execute("SELECT payload FROM records WHERE id=?", (rid,)).fetchone()[0]
    assert Sealer(key, "aes-gcm").open(payload, rid.encode()) == b'{"topic": "x"}'


class _ReportsDamage(sqlite3.Connection):
    """A connection whose quick_check finds damage that SQLite itself did not raise on (a bad page deep inside)."""

    report = "*** in database main ***\nPage 7: btreeInitPage() returns error code 11 " + "x" * 300

    def execute(self, sql, *args):
        if sql == "PRAGMA quick_check":
            return super().execute("SELECT ?", (self.report,))
        return super().execute(sql, *args)


def test_damage_only_quick_check_finds_is_refused_and_moved_aside_at_start(tmp_path, key, monkeypatch):
    db = tmp_path / "outbox.db"
    Outbox(db, key).close()
    real = sqlite3.connect
    calls = []

    def damaged_first(*a, **kw):
        calls.append(1)
        return real(*a, **kw, factory=_ReportsDamage) if len(calls) == 1 else real(*a, **kw)

    monkeypatch.setattr(sqlite3, "connect", damaged_first)
    with pytest.raises(OutboxCorruptError) as e:
        Outbox(db, key)
    assert str(e.value).endswith(f"outbox.db: quick_check: {_ReportsDamage.report[:200]}")
    calls.clear()
    with Outbox(db, key, recover=True) as ob:
        assert ob.recovered is not None and ob.recovered.startswith("outbox.db.corrupt-")
        assert ob.stats()["pending"] == 0


def test_asking_whether_an_owner_lives_never_signals_it(monkeypatch):
    got = []
    previous = signal.signal(signal.SIGHUP, lambda signum, frame: got.append(signum))
    try:
        assert outbox_mod._pid_alive(os.getpid())  # asked with signal 0: nothing is delivered
        time.sleep(0)  # a Python-level handler runs at the next bytecode boundary
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert got == []


def test_a_corruption_in_a_second_already_used_once_gets_number_two(tmp_path, key, monkeypatch):
    db = tmp_path / "outbox.db"
    monkeypatch.setattr(outbox_mod.time, "strftime", lambda fmt, t=None: "20261130T120000")
    (tmp_path / "outbox.db.corrupt-20261130T120000").write_bytes(b"an earlier one")
    db.write_bytes(b"garbage" * 500)
    with Outbox(db, key, recover=True) as ob:
        assert ob.recovered == "outbox.db.corrupt-20261130T120000-2"


def test_an_older_queue_opened_with_another_key_says_exactly_what_to_do(tmp_path, key):
    db = tmp_path / "outbox.db"
    with Outbox(db, key) as ob:
        ob.enqueue("help_request", {"topic": "x"})
    con = sqlite3.connect(db)
    con.execute("DELETE FROM meta")  # written before the key check value existed
    con.commit()
    con.close()
    expected = (f"存储密钥与离线队列不匹配 (the storage key does not open {db}): "
                "restore this kiosk's original key file; a new key cannot read the queue")
    with pytest.raises(OutboxKeyError) as old:
        Outbox(db, os.urandom(16))
    assert str(old.value) == expected
    with Outbox(db, key):
        pass  # now it has a check value
    with pytest.raises(OutboxKeyError) as checked:
        Outbox(db, os.urandom(16))
    assert str(checked.value) == expected


def test_a_live_attachment_does_not_stop_the_sweep_of_its_folder(outbox, monkeypatch):
    outbox.enqueue("application", application_payload(), attachments=[b"still queued"])
    live = outbox.get(outbox.list()[0].id).attachments[0]
    stray = outbox.blob_path(live).parent / ("f" * 64)  # an enqueue killed before its commit, long ago
    stray.write_bytes(b"stray")
    os.utime(stray, (time.time() - 7200, time.time() - 7200))
    real = Path.iterdir
    monkeypatch.setattr(Path, "iterdir", lambda self: iter(sorted(real(self), key=lambda p: p.name != live)))
    outbox.purge(retention_s=86400)
    assert not stray.exists() and outbox.blob_path(live).exists()
