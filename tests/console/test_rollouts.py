"""Staged rollouts against real Mosquitto with kiosks running the real agent: one completes, one halts."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fleet.helpers import wait_for

from kiosk.console.db import ConsoleDB, acks, database_url, rollout_members
from kiosk.console.ingest import Ingest
from kiosk.console.rollouts import COMPLETED, HALTED, RolloutError, RolloutPlan, Rollouts, console_policy
from kiosk.fleet.agent import KioskAgent
from kiosk.fleet.apply import HealthResult
from kiosk.fleet.bundle import build_signed, public_key_string, sign
from kiosk.fleet.health import HealthProviders

from .conftest import write_site


def bundle(keys, version, targets=("group:zhoucun",)) -> bytes:
    return sign(build_signed({"announcements": [{"text": f"第{version}版"}]}, version, list(targets),
                             expires=datetime.now(UTC) + timedelta(days=1)), keys).to_bytes()


def start_agents(tmp_path, broker, keys, names, failing=()):
    agents = {}
    for n in names:
        site = write_site(tmp_path / n, kiosk_id=n, group="zhoucun",
                          pubs=[public_key_string(k.public_key()) for k in keys], broker_url=broker.url,
                          health_interval_s=0.3)
        check = (lambda before, after: HealthResult(False, ["simulated: the new configuration breaks the printer"])
                 ) if n in failing else (lambda before, after: HealthResult(True))
        agents[n] = KioskAgent(str(site), env={}, health_check=check, providers=HealthProviders(
            devices=lambda: {"printer": {"state": "ready", "code": "ok"}},
            queue=lambda: {"available": True, "depth": 0, "oldest_age_s": None}))
        agents[n].start()
    return agents


@pytest.fixture
def console(tmp_path, broker, admin_keys):
    db = ConsoleDB(database_url(tmp_path / "console"))
    ingest = Ingest(db, broker.url).start()
    assert ingest.connected.wait(10)
    policy = console_policy([public_key_string(k.public_key()) for k in admin_keys[:2]], 1)
    made = []

    def rollouts() -> Rollouts:
        r = Rollouts(db, ingest.publish, policy).start(interval_s=0.2)
        made.append(r)
        return r

    yield db, ingest, rollouts
    for r in made:
        r.stop()
    ingest.stop()
    db.close()


def test_rollout_completes_stage_by_stage_and_survives_a_console_restart(tmp_path, broker, admin_keys, console):
    db, ingest, make_rollouts = console
    names = [f"qhb-r{i}" for i in range(6)]
    agents = start_agents(tmp_path, broker, admin_keys[:1], names)
    try:
        wait_for(lambda: len(db.list_kiosks(group="zhoucun")) == 6 and all(k["online"] for k in db.list_kiosks()),
                 what="six kiosks known to the console")
        ro = make_rollouts()
        # the console checks an upload as a kiosk would: an unpinned key is refused
        with pytest.raises(RolloutError) as e:
            ro.create(bundle(admin_keys[2:3], 1), RolloutPlan())
        assert e.value.reason == "unknown_key"
        rid = ro.create(bundle(admin_keys[:1], 1), RolloutPlan(canaries=["qhb-r3"], percentages=[50, 100], soak_s=0.5))
        wait_for(lambda: (ro.status(rid) or {}).get("stage", 0) >= 1, what="past the canary stage")
        ro.stop()  # the console goes away mid-rollout; a new one carries on from the database
        ro2 = make_rollouts()
        wait_for(lambda: ro2.status(rid)["state"] == COMPLETED, timeout=90, what="rollout completed")
        st = ro2.status(rid)
        assert st["per_stage"] == {"0": {"kiosks": 1, "applied": 1, "bad": 0, "waiting": 0},
                                   "1": {"kiosks": 2, "applied": 2, "bad": 0, "waiting": 0},
                                   "2": {"kiosks": 3, "applied": 3, "bad": 0, "waiting": 0}}
        # the canary went first, and no stage was released before the previous stage's acks had arrived
        with db.engine.connect() as conn:
            sent = {r.kiosk_id: (r.stage, r.sent) for r in conn.execute(rollout_members.select())}
            received = {r.kiosk_id: r.received for r in conn.execute(acks.select().where(acks.c.version == 1))}
        assert sent["qhb-r3"][0] == 0
        for stage in (1, 2):
            earlier_acks = max(received[k] for k, (s, _) in sent.items() if s == stage - 1)
            assert all(t >= earlier_acks for k, (s, t) in sent.items() if s == stage)
        assert all(a.applier.trust.current_version() == 1 for a in agents.values())
    finally:
        for a in agents.values():
            a.stop()


def test_rollout_halts_on_rolled_back_kiosks_and_the_rest_never_get_it(tmp_path, broker, admin_keys, console):
    db, ingest, make_rollouts = console
    names = [f"qhb-h{i}" for i in range(5)]
    agents = start_agents(tmp_path, broker, admin_keys[:1], names, failing=set(names[1:]))
    try:
        wait_for(lambda: len(db.list_kiosks(group="zhoucun")) == 5, what="five kiosks known to the console")
        ro = make_rollouts()
        rid = ro.create(bundle(admin_keys[:1], 1),
                        RolloutPlan(canaries=["qhb-h0"], percentages=[50, 100], soak_s=0.3, max_failure_share=0.25))
        wait_for(lambda: ro.status(rid)["state"] == HALTED, timeout=90, what="rollout halted")
        st = ro.status(rid)
        assert st["stage"] == 1 and "rolled back" in st["reason"]
        assert st["per_stage"]["0"] == {"kiosks": 1, "applied": 1, "bad": 0, "waiting": 0}
        assert st["per_stage"]["1"]["bad"] >= 1 and "2" not in st["per_stage"]
        released = set(db.members(rid))
        held_back = set(names) - released
        assert len(held_back) == 2  # the last stage never went out
        assert all(agents[k].applier.trust.current_version() == 0 for k in held_back)
        assert {a["kiosk_id"] for a in db.acks_for(version=1)} <= released
        ro.abort(rid)
        assert ro.status(rid)["state"] == "aborted"
        with pytest.raises(RolloutError):
            ro.resume(rid)
    finally:
        for a in agents.values():
            a.stop()
