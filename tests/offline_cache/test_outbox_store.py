"""The outbox on disk: durable enqueue, encryption at rest, attachments, ordering, leases, purge."""
from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from kiosk.domain.tracking import is_tracking_no
from offline_cache.crypto import DecryptError, Sealer, StorageKeyError, create_key_file, load_key
from offline_cache.outbox import Outbox
from tests.platform.samples import application_payload

SECRET_NAME = "欧阳娜娜"


def test_sm4_gcm_matches_the_standard_block_and_round_trips():
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    k = bytes.fromhex("0123456789abcdeffedcba9876543210")
    enc = Cipher(algorithms.SM4(k), modes.ECB()).encryptor()
    assert (enc.update(k) + enc.finalize()).hex() == "681edf34d206965e86b3e94f536e4246"
    s = Sealer(k)
    assert s.alg == "sm4-gcm"
    blob = s.seal("张三".encode(), b"LQ1")
    assert s.open(blob, b"LQ1") == "张三".encode()
    with pytest.raises(DecryptError):
        s.open(blob, b"LQ2")  # bound to its row
    with pytest.raises(DecryptError):
        Sealer(os.urandom(16)).open(blob, b"LQ1")


def test_aes_gcm_is_selectable():
    k = os.urandom(32)
    s = Sealer(k)
    assert s.alg == "aes-gcm" and s.open(s.seal(b"x"), b"") == b"x"
    assert Sealer(os.urandom(16), "aes-gcm").alg == "aes-gcm"
    with pytest.raises(ValueError):
        Sealer(os.urandom(32), "sm4-gcm")


def test_key_file_must_be_private(tmp_path, monkeypatch):
    monkeypatch.delenv("KIOSK_STORAGE_KEY", raising=False)
    p = tmp_path / "k.key"
    k = create_key_file(p)
    assert oct(p.stat().st_mode & 0o777) == "0o600" and load_key(p) == k
    with pytest.raises(FileExistsError):
        create_key_file(p)
    p.chmod(0o644)
    with pytest.raises(StorageKeyError, match="chmod 600"):
        load_key(p)
    monkeypatch.setenv("KIOSK_STORAGE_KEY", "00" * 16)
    assert load_key(p) == bytes(16)
    with pytest.raises(StorageKeyError):
        load_key(None, env={})


def test_enqueue_returns_a_local_tracking_number_and_is_durable(tmp_path, key):
    ob = Outbox(tmp_path / "o.db", key)
    rid = ob.enqueue("application", application_payload())
    assert is_tracking_no(rid) and rid.startswith("LQ")
    # what is on disk, read by another connection right away, has the record
    assert sqlite3.connect(tmp_path / "o.db").execute("SELECT count(*) FROM records").fetchone()[0] == 1
    pragmas = {p: ob._db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("journal_mode", "synchronous", "busy_timeout")}
    assert pragmas["journal_mode"] == "wal" and pragmas["synchronous"] == 2 and pragmas["busy_timeout"] >= 1000
    st = ob.stats()
    assert st["pending"] == 1 and st["inflight"] == st["failed"] == st["done"] == 0
    assert st["oldest_pending_age_s"] >= 0
    ob.close()


def test_enqueue_with_the_same_key_is_one_record(outbox):
    a = outbox.enqueue("application", application_payload(), idempotency_key="visit-1")
    b = outbox.enqueue("application", application_payload(), idempotency_key="visit-1")
    assert a == b and outbox.stats()["pending"] == 1


def test_nothing_personal_is_on_disk_in_clear(tmp_path, key):
    ob = Outbox(tmp_path / "o.db", key)
    p = application_payload(name=SECRET_NAME)
    photo = b"JPEG" + SECRET_NAME.encode() + p["applicant"]["id_number"].encode()
    rid = ob.enqueue("application", p, attachments=[photo])
    ob.enqueue("help_request", {"topic": "社保", "contact": {"name": SECRET_NAME, "phone": p["applicant"]["phone"]}})
    ob.enqueue("home_visit", {"applicant": p["applicant"], "address": "某村", "preferred_date": "2026-12-01"})
    [rec] = ob.claim_next(1)
    ob.mark_failed(rec.id, f"{SECRET_NAME} 的身份证号码 {p['applicant']['id_number']} 有误")
    ob.retry(rid)
    ob.close()
    needles = [p["applicant"]["id_number"], p["applicant"]["phone"], SECRET_NAME]
    needles = [n.encode("utf-8") for n in needles] + [SECRET_NAME.encode("utf-16-le"), SECRET_NAME.encode("gb18030")]
    files = [f for f in tmp_path.rglob("*") if f.is_file()]
    assert any(f.name.endswith(".db-wal") or f.name.endswith(".db") for f in files)
    assert len([f for f in files if ".blobs" in str(f)]) == 1
    for f in files:
        raw = f.read_bytes()
        for n in needles:
            assert n not in raw, f"plaintext personal data in {f.name}"


def test_attachments_are_content_addressed_encrypted_and_written_before_the_record(outbox):
    data = os.urandom(1000)
    sha = hashlib.sha256(data).hexdigest()
    rid = outbox.enqueue("application", application_payload(), attachments=[data, data])
    rec = outbox.get(rid)
    assert rec.attachments == [sha] and rec.payload["materials"] == [sha]
    path = outbox.blob_path(sha)
    assert path.exists() and data not in path.read_bytes() and outbox.read_attachment(sha) == data
    with pytest.raises(ValueError):
        outbox.enqueue("application", {**application_payload(), "materials": ["f" * 64]})


def test_unknown_kind_and_bad_payload_are_refused(outbox):
    with pytest.raises(ValueError):
        outbox.enqueue("letter", {})
    with pytest.raises(TypeError):
        outbox.enqueue("application", "x")
    assert outbox.stats()["pending"] == 0


def test_claims_are_oldest_first_and_in_order_per_applicant(outbox):
    p1, p2 = application_payload(), application_payload()
    a1 = outbox.enqueue("application", p1)
    b1 = outbox.enqueue("application", p2)
    a2 = outbox.enqueue("application", {**p1, "form": {**p1["form"], "address": "第二份"}})
    ev = outbox.enqueue("evaluation", {"tracking_no": a1, "level": "满意"})
    got = [r.id for r in outbox.claim_next(10)]
    assert got == [a1, b1, ev]  # a2 waits for a1 (same applicant)
    outbox.mark_retry(a1, "HTTP 503", time.time() + 60)
    assert outbox.claim_next(10) == []  # a1 backing off still blocks a2
    assert [r.id for r in outbox.claim_next(10, ignore_backoff=True)] == [a1]
    outbox.mark_failed(a1, "退回")
    assert [r.id for r in outbox.claim_next(10)] == [a2]  # a dead letter does not block


def test_a_dead_drainers_lease_is_reclaimed(tmp_path, key):
    db = tmp_path / "o.db"
    ob = Outbox(db, key)
    rid = ob.enqueue("application", application_payload())
    code = (f"import sys; from offline_cache.outbox import Outbox; ob = Outbox({str(db)!r}, bytes.fromhex({key.hex()!r}));"
            "print(len(ob.claim_next(5, lease_s=3600)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1" and ob.stats()["inflight"] == 1
    [rec] = ob.claim_next(5)  # the claiming process is gone: its lease is void
    assert rec.id == rid and rec.attempts == 2
    ob.close()


def test_a_live_lease_is_respected(tmp_path, key):
    a = Outbox(tmp_path / "o.db", key)
    b = Outbox(tmp_path / "o.db", key)
    a.enqueue("application", application_payload())
    assert len(a.claim_next(5)) == 1
    assert b.claim_next(5) == []


def test_done_failed_retry_resolve_receipts_and_purge(outbox):
    data = os.urandom(64)
    rid = outbox.enqueue("application", application_payload(name=SECRET_NAME), attachments=[data])
    other = outbox.enqueue("application", application_payload())
    r = outbox.receipts.get(rid)
    assert r.tracking_no == rid and r.summary["name"] == "欧***" and r.summary["materials"] == 1
    [a, b] = outbox.claim_next(5)
    outbox.mark_done(a.id, "SD261127ABCDEFGH0", {"tracking_no": "SD261127ABCDEFGH0"})
    outbox.mark_failed(b.id, "材料不齐")
    assert outbox.resolve(rid) == "SD261127ABCDEFGH0"
    assert outbox.receipts.get(rid).tracking_no == "SD261127ABCDEFGH0"
    assert outbox.receipts.get("SD261127ABCDEFGH0").local_no == rid
    outbox.receipts.mark_printed(rid)
    assert outbox.receipts.get(rid).printed_count == 1
    assert outbox.get(other).failure_reason == "材料不齐"
    assert outbox.retry(other) and outbox.get(other).state == "pending"
    assert not outbox.retry("LQ000000000000000")
    assert outbox.purge(3600) == 0  # within retention
    assert outbox.purge(0, now=time.time() + 120) == 1
    assert outbox.get(rid) is None and not outbox.blob_path(hashlib.sha256(data).hexdigest()).exists()
    assert outbox.get(other) is not None and outbox.integrity_check() == "ok"


def test_local_numbers_are_valid_tracking_numbers_of_local_origin():
    from kiosk.domain.tracking import tracking_origin
    from offline_cache.outbox import new_local_no
    nos = [new_local_no() for _ in range(2000)]
    assert len(set(nos)) == len(nos)
    assert all(tracking_origin(n) == "local" for n in nos)
    assert {c for n in nos for c in n[8:16]} <= set("23456789ABCDEFGHJKLMNPQRSTUVWXYZ")


def test_purge_keeps_a_fresh_stray_attachment_and_drops_an_old_one(outbox):
    fresh = outbox._store_attachment(b"written by an enqueue that has not committed yet")
    old = outbox._store_attachment(b"left by an enqueue killed before its commit")
    os.utime(outbox.blob_path(old), (time.time() - 7200, time.time() - 7200))
    outbox.purge(3600)
    assert outbox.blob_path(fresh).exists() and not outbox.blob_path(old).exists()
