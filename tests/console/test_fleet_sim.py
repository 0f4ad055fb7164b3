"""`kiosk-admin fleet simulate`: simulated kiosks on the real agent code, seen by the console through real Mosquitto."""
from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from fleet.helpers import PROJECT_ROOT, clean_env, wait_for

from kiosk.console.db import ConsoleDB, database_url
from kiosk.console.ingest import Ingest
from kiosk.fleet.bundle import build_signed, public_key_string, sign
from kiosk.fleet.commands import build_command, push_command, sign_command
from kiosk.fleet.fleetview import push
from standins.fleet_sim import Faults, SimulatedFleet


def test_simulated_fleet_reports_seeded_faults_applies_bundles_answers_commands(tmp_path, broker, admin_keys,
                                                                               full_counts):
    n = 300 if full_counts else 30
    db = ConsoleDB(database_url(tmp_path / "console"))
    ingest = Ingest(db, broker.url).start()
    pubs = [public_key_string(k.public_key()) for k in admin_keys[:1]]
    fleet = SimulatedFleet(n, broker.url, seed=7, state_dir=tmp_path / "sim", admin_keys=pubs,
                           groups=["zhoucun", "boshan"], health_interval_s=1.0, offline_periods=False)
    again = SimulatedFleet(n, broker.url, seed=7, state_dir=tmp_path / "sim2", admin_keys=pubs,
                           groups=["zhoucun", "boshan"])
    assert [k.faults.paper for k in again.kiosks] == [k.faults.paper for k in fleet.kiosks]  # the seed decides
    draws = [Faults.draw(random.Random(i)) for i in range(1000)]  # every kind of fault occurs
    assert all(any(pred(f) for f in draws) for pred in (
        lambda f: f.paper == "out", lambda f: f.paper == "low", lambda f: f.reader_unplugged,
        lambda f: f.backlog > 0, lambda f: f.offline_chance > 0))
    again.stop()
    fleet.start()
    try:
        assert fleet.wait_connected(timeout=60)
        wait_for(lambda: len([k for k in db.list_kiosks() if k["devices"]]) == n, what="every kiosk's health")
        paper_out = sorted(k.kiosk_id for k in fleet.kiosks if k.faults.paper == "out")
        unplugged = {k.kiosk_id for k in fleet.kiosks if k.faults.reader_unplugged}
        assert sorted(k["id"] for k in db.list_kiosks(problem="paper_out")) == paper_out
        rows = {k["id"]: k for k in db.list_kiosks()}
        assert {k for k, r in rows.items() if r["devices"]["idcard"] == "error"} == unplugged
        assert all(r["station_name"].endswith("便民服务站") for r in rows.values())

        push(broker.url, sign(build_signed({"announcements": [{"text": "模拟"}]}, 1, ["all"],
                                           expires=datetime.now(UTC) + timedelta(days=1)), admin_keys[:1]).to_bytes())
        wait_for(lambda: len(db.acks_for(version=1)) == n, timeout=120, what="every simulated kiosk's ack")
        assert {a["result"] for a in db.acks_for(version=1)} == {"applied"}

        cmd = sign_command(build_command("test-page", "group:boshan", datetime.now(UTC) + timedelta(minutes=5)),
                           admin_keys[:1])
        db.add_command(cmd.id, cmd.action, cmd.target, cmd.signed["expires"], cmd.signed["issued_at"], cmd.to_bytes())
        push_command(broker.url, cmd.to_bytes())
        wait_for(lambda: all(r["status"] != "pending" for r in db.command(cmd.id)["results"]), timeout=60,
                 what="every boshan kiosk's test-page result")
        results = {r["kiosk_id"]: r for r in db.command(cmd.id)["results"]}
        assert len(results) == n // 2
        for kid, r in results.items():  # a kiosk without paper fails the test page, with the reason
            if kid in paper_out:  # (unless a citizen happened to be at it)
                assert (r["status"], r["error"]) == ("failed", "printer: paper_out") or (
                    r["status"], r["reason"]) == ("refused", "visit_in_progress")
            else:
                assert r["status"] in ("done", "refused")

        # an offline period: the line is cut, the will marks the kiosk offline, and it comes back
        k = fleet.kiosks[0]
        k.offline_until = time.monotonic() + 2.0
        fleet._submit(k, "offline", None)
        wait_for(lambda: db.kiosk(k.kiosk_id)["online"] is False, what="the cut kiosk offline")
        wait_for(lambda: db.kiosk(k.kiosk_id)["online"] is True, what="the cut kiosk back")
    finally:
        fleet.stop()
        ingest.stop()
        db.close()


def test_simulate_command_line(tmp_path, broker, admin_keys):
    r = subprocess.run([sys.executable, "-m", "kiosk.cli.admin", "fleet", "simulate", "--count", "5", "--broker",
                        broker.url, "--seed", "3", "--admin-key", public_key_string(admin_keys[0].public_key()),
                        "--duration", "1", "--state", str(tmp_path / "sim")],
                       cwd=PROJECT_ROOT, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "5 connected" in r.stdout and "faults:" in r.stdout
    status = json.loads(subprocess.run(
        [sys.executable, "-m", "kiosk.cli.admin", "fleet", "status", "--broker", broker.url, "--json"],
        cwd=PROJECT_ROOT, env=clean_env(), capture_output=True, text=True, timeout=60).stdout)
    assert len(status) == 5 and all(row["online"] is False for row in status)  # each said goodbye
