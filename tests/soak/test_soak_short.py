"""A short soak in the default test run: complete visits through the real UI with faults, then the books.

Runs `python -m bench.soak` in a process of its own (its own Kivy window, its own platform simulator
process) and holds the counts: nothing lost, nothing duplicated, nothing of one citizen left for the
next, every visit completed, file descriptors and threads back to their values after the warm-up.
No timing is asserted (the frame gaps and the memory are reported in docs/benchmarks.md).
KIOSK_SOAK_VISITS sets the count (default 200, as the issue asks of the default run; `make soak` runs 10,000).
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from bench.soak import Soak, make_citizen

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "soak"


@pytest.mark.timeout(3600)  # a whole visit per few seconds on an idle machine, many more under load
def test_short_soak_loses_nothing_and_leaks_nothing():
    visits = int(os.environ.get("KIOSK_SOAK_VISITS") or 200)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out = ARTIFACTS / "soak-short.json"
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    proc = subprocess.run([sys.executable, "-m", "bench.soak", "--visits", str(visits), "--json", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["visits"] == visits
    assert r["failed_visits"] == 0, r["failure_examples"]
    assert r["cross_visit_leaks"] == 0, r["leak_examples"]
    assert r["submitted"] > 0 and r["accepted_by_platform"] == r["submitted"]
    assert r["lost"] == 0 and r["duplicated"] == 0
    assert r["outbox_left"] == 0 and r["outbox_failed"] == 0
    assert r["fds_end"] <= r["fds_start"], (r["fds_start"], r["fds_end"])
    assert r["threads_end"] <= r["threads_start"], (r["threads_start"], r["threads_end"])
    assert set(r["kinds"]) >= {"apply", "apply_materials", "pay", "certificate", "certify", "progress", "help",
                               "walk_away", "abandon"}
    assert set(r["faults"]) >= {"outage", "flaky", "paper_out", "cover_open", "reader_unplug", "camera_dark",
                                "camera_unplug"}
    assert r["frames"] > 0  # the frame-gap probe ran (its figures are reported, not asserted)
    longest = r["frame_gaps_longest"]  # each of the longest gaps says which visit and screen it fell in
    assert longest and all(g["during"].startswith("visit ") and " on " in g["during"] for g in longest)
    assert longest[0]["ms"] == r["frame_gap_ms_max"]


def test_reconciliation_counts_lost_and_duplicated():
    """The books are not blind: a number the platform never saw is lost, one it holds twice is duplicated."""

    class FakeSim:
        def applications(self):
            return [{"tracking_no": "SD1", "local_tracking_no": "LQ1"},
                    {"tracking_no": "SD2", "local_tracking_no": "LQ2"},
                    {"tracking_no": "SD3", "local_tracking_no": "LQ2"}]

    soak = Soak.__new__(Soak)
    soak.sim = FakeSim()
    soak.numbers = [("SD1", "LQ1"), ("LQ9", "LQ9"), ("SD2", "LQ2")]
    assert soak.reconcile() == {"submitted": 3, "accepted_by_platform": 2, "lost": 1, "duplicated": 1,
                                "platform_applications": 3}


def test_consecutive_citizens_share_nothing_the_leak_check_looks_for():
    """Otherwise a leak of the previous citizen could not be told from the current one's own data."""
    rng = random.Random(0)
    people = [make_citizen(n, rng) for n in range(300)]
    for a, b in zip(people, people[1:]):
        assert not set(a.needles) & set(b.needles)
        assert a.card.name in a.needles and a.phone in a.needles
