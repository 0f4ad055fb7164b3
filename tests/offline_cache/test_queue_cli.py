"""`kiosk queue ...` as a technician runs it: real subprocesses against a real simulator process."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from kiosk.cli import queue_cmds
from offline_cache.outbox import Outbox
from tests.platform.samples import application_payload

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def kiosk(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kiosk.cli.main", *args], capture_output=True, text=True,
                          cwd=PROJECT_ROOT, timeout=120)


def test_status_list_drain_retry_purge(tmp_path, key, key_file, sim_proc):
    db = tmp_path / "q.db"
    ob = Outbox(db, key)
    good = application_payload(name="欧阳娜娜")
    bad = application_payload()
    bad["form"]["education"] = "博士后"
    g = ob.enqueue("application", good)
    b = ob.enqueue("application", bad)
    ob.close()
    common = ["--db", str(db), "--key-file", str(key_file)]

    st = kiosk("queue", "status", "--json", *common)
    assert st.returncode == 0, st.stderr
    assert json.loads(st.stdout)["pending"] == 2

    ls = kiosk("queue", "list", *common)
    assert g in ls.stdout and "欧***" in ls.stdout
    for secret in (good["applicant"]["id_number"], good["applicant"]["phone"], "欧阳娜娜"):
        assert secret not in ls.stdout + ls.stderr

    down = kiosk("queue", "drain", "--once", *common, "--platform", "http://127.0.0.1:9")
    assert down.returncode == 3, down.stderr

    d = kiosk("queue", "drain", "--once", *common, "--platform", sim_proc.url)
    assert d.returncode == 0, d.stdout + d.stderr
    s = json.loads(kiosk("queue", "status", "--json", *common).stdout)
    assert s["done"] == 1 and s["failed"] == 1 and s["pending"] == 0
    assert sim_proc.stats()["accepted"] == 1

    failed = json.loads(kiosk("queue", "list", "--state", "failed", "--json", *common).stdout)
    assert [r["id"] for r in failed] == [b] and "form.education" in failed[0]["failure_reason"]

    assert kiosk("queue", "retry", b, *common).returncode == 0
    assert json.loads(kiosk("queue", "status", "--json", *common).stdout)["pending"] == 1
    assert kiosk("queue", "retry", "LQ000000000000000", *common).returncode == 1

    p = kiosk("queue", "purge", "--older-than-days", "0", *common)
    assert p.returncode == 0 and "purged 1" in p.stdout


def test_missing_or_exposed_key_is_a_clear_exit_2(tmp_path, key_file):
    r = kiosk("queue", "status", "--db", str(tmp_path / "q.db"), "--key-file", str(tmp_path / "nokey"))
    assert r.returncode == 2 and "kiosk queue init-key" in r.stderr
    key_file.chmod(0o644)
    r = kiosk("queue", "status", "--db", str(tmp_path / "q.db"), "--key-file", str(key_file))
    assert r.returncode == 2 and "chmod 600" in r.stderr


# ---------------------------------------------------------------- faults, each in one plain line

def queue_cli():
    root = click.Group("kiosk")
    queue_cmds.register(root)
    return root


def run_queue(*args: str, env: dict | None = None):
    return CliRunner().invoke(queue_cli(), ["queue", *args], env={"KIOSK_STORAGE_KEY": "", **(env or {})})


def one_plain_line(r) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.output + r.stderr, r.stderr
    return lines[0]


def test_corrupt_wrong_key_and_missing_key_are_one_plain_line_and_non_zero(tmp_path, key, key_file):
    db = tmp_path / "q.db"
    ob = Outbox(db, key)
    ob.enqueue("application", application_payload())
    ob.close()
    other = tmp_path / "other.key"
    other.write_text(os.urandom(16).hex())
    other.chmod(0o600)
    for cmd in (["status"], ["list"], ["retry", "LQ000000000000000"], ["purge"], ["drain", "--once"]):
        r = run_queue(*cmd, "--db", str(db), "--key-file", str(other))
        assert r.exit_code == 2 and "does not open" in one_plain_line(r)
    missing = tmp_path / "gone.key"
    r = run_queue("status", "--db", str(db), "--key-file", str(missing))
    assert r.exit_code == 2 and "missing" in one_plain_line(r) and not missing.exists()
    # init-key never starts a key over an existing queue
    r = run_queue("init-key", "--key-file", str(missing), env={"KIOSK__STORAGE__DATA_DIR": str(tmp_path / "d")})
    assert r.exit_code == 0 and missing.exists()
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "outbox.db").write_bytes(b"")
    r = run_queue("init-key", "--key-file", str(tmp_path / "k2"), env={"KIOSK__STORAGE__DATA_DIR": str(tmp_path / "d")})
    assert r.exit_code == 1 and "exists" in one_plain_line(r) and not (tmp_path / "k2").exists()

    garbage = b"\x00garbage after a power cut" * 300
    db.write_bytes(garbage)
    for cmd in (["status"], ["list"], ["purge"]):
        r = run_queue(*cmd, "--db", str(db), "--key-file", str(key_file))
        assert r.exit_code == queue_cmds.EXIT_CORRUPT and "corrupt" in one_plain_line(r)
    assert db.read_bytes() == garbage  # a tool never moves or repairs it


def test_list_marks_a_record_it_cannot_decrypt_and_shows_the_rest(tmp_path, key, key_file):
    db = tmp_path / "q.db"
    ob = Outbox(db, key)
    bad = ob.enqueue("application", application_payload())
    good = ob.enqueue("application", application_payload(name="欧阳娜娜"))
    ob.close()
    con = sqlite3.connect(db)
    blob = bytearray(con.execute("SELECT payload FROM records WHERE id=?", (bad,)).fetchone()[0])
    blob[-3] ^= 0x40
    con.execute("UPDATE records SET payload=? WHERE id=?", (bytes(blob), bad))
    con.commit()
    con.close()
    r = run_queue("list", "--db", str(db), "--key-file", str(key_file))
    assert r.exit_code == 0, r.output
    [bad_line] = [ln for ln in r.stdout.splitlines() if bad in ln]
    assert queue_cmds.UNREADABLE_MARK in bad_line
    assert any(good in ln and "欧***" in ln for ln in r.stdout.splitlines())
    rows = json.loads(run_queue("list", "--json", "--db", str(db), "--key-file", str(key_file)).stdout)
    assert [bool(x["unreadable"]) for x in rows] == [True, False]
    st = run_queue("status", "--json", "--db", str(db), "--key-file", str(key_file))
    assert st.exit_code == 0 and json.loads(st.stdout)["pending"] == 2


def test_a_corrupt_queue_in_a_real_process_is_one_line_without_traceback(tmp_path, key_file):
    db = tmp_path / "q.db"
    db.write_bytes(b"not sqlite at all " * 100)
    r = kiosk("queue", "status", "--db", str(db), "--key-file", str(key_file))
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 4 and len(lines) == 1 and "corrupt" in lines[0] and "Traceback" not in r.stderr
