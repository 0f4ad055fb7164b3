"""The drainer against the simulator (in a thread): delivery, materials first, dead letters, backoff, ratings."""
from __future__ import annotations

import os
import random
import time

import pytest
import requests

from kiosk.platform.client import PlatformClient
from kiosk.platform.credentials import configured_credentials
from offline_cache.drainer import Drainer
from standins.platform_sim import start_in_thread
from tests.platform.samples import application_payload


@pytest.fixture
def sim(tmp_path):
    h = start_in_thread(tmp_path / "sim", seed=3)
    yield h
    h.stop()


@pytest.fixture
def drainer(outbox, sim):
    c = configured_credentials()
    client = PlatformClient(sim.url, c.kiosk_id, c.secret, read_timeout=5)
    yield Drainer(outbox, client, base_backoff_s=0.5, max_backoff_s=4)
    client.close()


def sim_stats(sim):
    return requests.get(sim.url + "/__sim/stats", timeout=5).json()


def test_delivers_materials_then_application_and_records_the_platform_number(outbox, drainer, sim):
    data = os.urandom(2000)
    rid = outbox.enqueue("application", application_payload(), attachments=[data])
    rep = drainer.drain_once()
    assert rep.delivered == 1 and rep.remaining == 0
    rec = outbox.get(rid)
    assert rec.state == "done" and rec.platform_ref.startswith("SD")
    assert outbox.receipts.get(rid).tracking_no == rec.platform_ref
    apps = requests.get(sim.url + "/__sim/applications", timeout=5).json()["applications"]
    assert [(a["tracking_no"], a["local_tracking_no"]) for a in apps] == [(rec.platform_ref, rid)]
    assert sim_stats(sim)["materials"] == 1 and drainer.online is True


def test_permanent_refusal_goes_to_the_dead_letter_with_the_platforms_reason(outbox, drainer, sim):
    p = application_payload()
    p["form"]["education"] = "博士后"
    rid = outbox.enqueue("application", p)
    rep = drainer.drain_once()
    assert rep.failed == 1 and rep.remaining == 0
    rec = outbox.get(rid)
    assert rec.state == "failed" and "form.education" in rec.failure_reason and "422" in rec.last_error
    assert sim_stats(sim)["rejected"] == 1


def test_outage_backs_off_honouring_retry_after_then_delivers_once(outbox, drainer, sim):
    ids = [outbox.enqueue("application", application_payload(random.Random(i))) for i in range(5)]
    sim.options.mode = "outage"
    t0 = time.time()
    rep = drainer.drain_once()
    assert rep.delivered == 0 and rep.retried == drainer.max_consecutive_failures and rep.stopped_early
    waiting = [r for r in outbox.list(["pending"]) if r.attempts]
    assert waiting and all(r.next_attempt_at >= t0 + 1.0 for r in waiting)  # Retry-After: 1
    assert all("503" in r.last_error for r in waiting)
    assert outbox.stats()["inflight"] == 0  # released, not stuck
    sim.options.mode = "normal"
    while outbox.stats()["pending"]:
        drainer.drain_once(ignore_backoff=True)
    assert sim_stats(sim)["accepted"] == 5 and all(outbox.get(i).state == "done" for i in ids)


def test_accept_then_drop_is_delivered_exactly_once(outbox, drainer, sim):
    sim.options.mode, sim.options.fail_rate = "accept-then-drop", 0.6
    ids = [outbox.enqueue("application", application_payload(random.Random(100 + i))) for i in range(8)]
    for _ in range(60):
        if drainer.drain_once(ignore_backoff=True).remaining == 0:
            break
    s = sim_stats(sim)
    assert s["accepted"] == 8 and s["duplicates_suppressed"] >= 1
    locals_ = [a["local_tracking_no"] for a in requests.get(sim.url + "/__sim/applications", timeout=5).json()["applications"]]
    assert sorted(locals_) == sorted(ids)


def test_a_rating_of_a_queued_case_waits_for_it_and_uses_the_platform_number(outbox, drainer, sim):
    p = application_payload()
    sim.options.mode = "outage"
    rid = outbox.enqueue("application", p)
    ev = outbox.enqueue("evaluation", {"tracking_no": rid, "level": "不满意", "reason": "排队时间长"})
    rep = drainer.drain_once(ignore_backoff=True)
    assert outbox.get(ev).state == "pending" and rep.delivered == 0
    sim.options.mode = "normal"
    for _ in range(5):
        if drainer.drain_once(ignore_backoff=True).remaining == 0:
            break
    assert outbox.get(ev).state == "done" and outbox.get(ev).result["tracking_no"] == outbox.get(rid).platform_ref
    assert outbox.get(ev).result["follow_up"] is True


def test_help_requests_and_home_visits_are_delivered(outbox, drainer, sim):
    p = application_payload()
    outbox.enqueue("help_request", {"topic": "不会操作", "contact": {"name": "李四", "phone": "13900001111"}})
    outbox.enqueue("home_visit", {"applicant": p["applicant"], "address": "周村区某村3号", "preferred_date": "2026-12-02"})
    assert drainer.drain_once().delivered == 2
    s = sim_stats(sim)
    assert s["help_requests"] == 1 and s["home_visits"] == 1


def test_bad_credential_keeps_records_pending_not_dead(outbox, sim):
    c = configured_credentials()
    client = PlatformClient(sim.url, c.kiosk_id, os.urandom(32))
    rid = outbox.enqueue("application", application_payload())
    rep = Drainer(outbox, client).drain_once()
    assert rep.failed == 0 and outbox.get(rid).state == "pending" and "终端身份校验失败" in outbox.get(rid).last_error


def test_backoff_grows_with_jitter_and_respects_retry_after(outbox, drainer):
    delays = [drainer.backoff_s(n) for n in range(1, 8) for _ in range(20)]
    assert all(0 <= d <= 4 for d in delays) and len(set(delays)) > 10
    assert drainer.backoff_s(1, retry_after=30) == 30


def test_background_thread_drains_after_notify(outbox, drainer, sim):
    drainer.start(poll_s=30)
    try:
        outbox.enqueue("application", application_payload())
        drainer.notify()
        deadline = time.time() + 20
        while outbox.stats()["done"] != 1 and time.time() < deadline:
            time.sleep(0.05)
    finally:
        drainer.stop()
    assert outbox.stats()["done"] == 1
