"""`kiosk queue ...` as a technician runs it: real subprocesses against a real simulator process."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
