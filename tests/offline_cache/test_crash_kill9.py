"""Crash proof: kill -9 enqueuing and draining processes at random moments, in every fault mode.

Every application whose enqueue() returned must reach the simulator exactly once
(no loss, no duplicate), the database must pass PRAGMA integrity_check, and the
queue must drain to empty once the simulator is healthy. The default run does a
short version (24 kills); `make test-full` (full_counts) does 300.
"""
from __future__ import annotations

import collections
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kiosk.domain.tracking import is_tracking_no
from offline_cache.outbox import Outbox

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("crash_child.py")
MODES = [("normal", {}), ("outage", {}), ("flaky", {"fail_rate": 0.5}), ("slow", {"latency_ms": 700}),
         ("garbage", {"fail_rate": 0.5}), ("accept-then-drop", {"fail_rate": 0.6})]


class Reader(threading.Thread):
    """Collects "OK <id>" lines of a child; a line cut by the kill is ignored."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream, self.ids = stream, []
        self.ready = threading.Event()

    def run(self):
        for line in self.stream:
            if line == "READY\n":
                self.ready.set()
            if line.endswith("\n") and line.startswith("OK "):
                rid = line[3:].strip()
                if is_tracking_no(rid):
                    self.ids.append(rid)


def kill9(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def drain_cmd(db, key_file, url, once=False):
    return [sys.executable, "-m", "kiosk.cli.main", "queue", "drain", "--db", str(db), "--key-file", str(key_file),
            "--platform", url, *(["--once"] if once else ["--poll-s", "0.1"])]


def drain_env():
    # short read timeout so `slow` mode makes the drainer time out after the platform committed
    return {**os.environ, "KIOSK__PLATFORM__READ_TIMEOUT_S": "0.4", "KIOSK__PLATFORM__CONNECT_TIMEOUT_S": "1"}


@pytest.mark.timeout(2400)  # the full-count run: ~300 kills and a few thousand records
def test_kill9_during_enqueue_and_drain_in_every_fault_mode(tmp_path, key, key_file, sim_proc, full_counts):
    seed = int(os.environ.get("CRASH_SEED", random.randrange(10**6)))
    rng = random.Random(seed)
    cycles = 25 if full_counts else 2
    db = tmp_path / "outbox.db"
    Outbox(db, key).close()
    returned: list[str] = []
    kills = 0
    for mode, opts in MODES:
        sim_proc.set_mode(mode, latency_ms=opts.get("latency_ms", 0), fail_rate=opts.get("fail_rate"))
        for _ in range(cycles):
            enq = subprocess.Popen([sys.executable, str(CHILD), str(db), key.hex(), str(rng.randrange(10**9))],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=PROJECT_ROOT)
            reader = Reader(enq.stdout)
            reader.start()
            drn = subprocess.Popen(drain_cmd(db, key_file, sim_proc.url), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, cwd=PROJECT_ROOT, env=drain_env())
            reader.ready.wait(60)  # the child's imports take seconds on a loaded machine; time the kill from here
            # kill the two at independent random moments
            t_enq, t_drn = rng.uniform(0.3, 1.2), rng.uniform(0.3, 1.6)
            start = time.monotonic()
            for t, p in sorted([(t_enq, enq), (t_drn, drn)], key=lambda x: x[0]):
                time.sleep(max(0.0, t - (time.monotonic() - start)))
                kill9(p)
                kills += 1
            reader.join(5)
            returned.extend(reader.ids)

    # healthy again: drain to empty with the technician's command
    sim_proc.set_mode("normal", latency_ms=0, fail_rate=None)
    t_final = time.monotonic()
    for _ in range(30):
        r = subprocess.run(drain_cmd(db, key_file, sim_proc.url, once=True), capture_output=True, text=True,
                           cwd=PROJECT_ROOT, timeout=300)
        if r.returncode == 0:
            break
        assert r.returncode == 3, r.stderr
    assert r.returncode == 0, f"queue did not drain (seed {seed}): {r.stdout} {r.stderr}"

    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    ob = Outbox(db, key)
    st = ob.stats()
    records = ob.list(limit=10**6)
    ob.close()
    assert st["pending"] == st["inflight"] == st["failed"] == 0 and st["done"] == len(records)

    apps = sim_proc.applications()
    per_local = collections.Counter(a["local_tracking_no"] for a in apps)
    dups = {k: n for k, n in per_local.items() if n > 1}
    assert not dups, f"duplicated at the platform (seed {seed}): {dups}"
    missing = set(returned) - set(per_local)
    assert not missing, f"submitted but lost (seed {seed}): {sorted(missing)[:5]}"
    # records committed by an enqueue killed before it returned are delivered too, exactly once
    assert set(per_local) == {r.id for r in records}
    assert {r.id: r.platform_ref for r in records} == {a["local_tracking_no"]: a["tracking_no"] for a in apps}
    stats = sim_proc.stats()
    assert stats["accepted"] == len(apps) == len(records)
    assert kills >= 2 * cycles * len(MODES) and len(returned) > 0
    print(f"final drain {time.monotonic() - t_final:.1f}s; crash test seed {seed}: {kills} kills, {len(returned)} returned enqueues, {len(records)} records, "
          f"{stats['duplicates_suppressed']} duplicates suppressed")
