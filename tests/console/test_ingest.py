"""The console's ingest and storage: real kiosk agents -> real Mosquitto -> SQLite and a real PostgreSQL."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fleet.helpers import wait_for

from kiosk.console.db import ConsoleDB, database_url
from kiosk.console.ingest import Ingest
from kiosk.fleet.agent import KioskAgent
from kiosk.fleet.bundle import build_signed, public_key_string, sign
from kiosk.fleet.commands import build_command, push_command, sign_command
from kiosk.fleet.fleetview import push
from kiosk.fleet.health import HealthProviders
from kiosk.fleet.transport import publish_retained

from .conftest import write_site


def make_agent(tmp_path, name, group, broker, keys, devices, queue):
    site = write_site(tmp_path / name, kiosk_id=f"qhb-{name}", group=group,
                      pubs=[public_key_string(k.public_key()) for k in keys], broker_url=broker.url,
                      health_interval_s=0.5)
    providers = HealthProviders(devices=lambda: devices, queue=lambda: queue)
    return KioskAgent(str(site), env={}, providers=providers)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    if request.param == "sqlite":
        d = ConsoleDB(database_url(tmp_path / "state"))
    else:
        pg = request.getfixturevalue("postgres")
        d = ConsoleDB(database_url(tmp_path, pg.url))
        with d.engine.begin() as conn:  # the session-wide cluster: a clean schema per test
            from kiosk.console.db import metadata
            metadata.drop_all(conn)
            metadata.create_all(conn)
    yield d
    d.close()


def test_ingest_health_acks_results_and_filters(tmp_path, broker, admin_keys, db):
    (tmp_path / "state").mkdir(exist_ok=True)
    ok_printer = {"printer": {"state": "ready", "code": "ok"}, "idcard": {"state": "ready", "code": "ok"}}
    no_paper = {"printer": {"state": "error", "code": "paper_out"}, "idcard": {"state": "offline", "code": "unplugged"}}
    agents = [
        make_agent(tmp_path, "a1", "zhoucun", broker, admin_keys[:1], ok_printer,
                   {"available": True, "depth": 0, "oldest_age_s": None}),
        make_agent(tmp_path, "a2", "zhoucun", broker, admin_keys[:1], no_paper,
                   {"available": True, "depth": 7, "oldest_age_s": 5400.0}),
        make_agent(tmp_path, "b1", "boshan", broker, admin_keys[:1], ok_printer,
                   {"available": True, "depth": 1, "oldest_age_s": 30.0}),
    ]
    ingest = Ingest(db, broker.url).start()
    try:
        for a in agents:
            a.start()
        wait_for(lambda: len(db.list_kiosks()) == 3 and all(k["devices"] for k in db.list_kiosks()),
                 what="three kiosks with health in the database")
        rows = {k["id"]: k for k in db.list_kiosks()}
        a2 = rows["qhb-a2"]
        assert (a2["group"], a2["online"], a2["paper"], a2["devices"]) == (
            "zhoucun", True, "out", {"printer": "error", "idcard": "error"})
        assert a2["queue"] == {"pending": 7, "oldest_pending_age_s": 5400.0}
        assert rows["qhb-a1"]["devices"] == {"printer": "ok", "idcard": "ok"}
        assert rows["qhb-a1"]["station_name"] and rows["qhb-a1"]["last_seen"].endswith("Z")
        assert [k["id"] for k in db.list_kiosks(problem="paper_out")] == ["qhb-a2"]
        assert [k["id"] for k in db.list_kiosks(problem="queue_old")] == ["qhb-a2"]
        assert [k["id"] for k in db.list_kiosks(group="boshan")] == ["qhb-b1"]
        assert db.counts() == {"total": 3, "online": 3, "offline": 0, "paper_out": 1, "queue_old": 1}
        assert db.health_history("qhb-a2")[0]["paper"] == "out"

        # a bundle for one group: acks land per kiosk and version
        push(broker.url, sign(build_signed({"announcements": [{"text": "今晚升级"}]}, 1, ["group:zhoucun"],
                                           expires=datetime.now(UTC) + timedelta(days=1)),
                              admin_keys[:1]).to_bytes())
        wait_for(lambda: len(db.acks_for(version=1)) == 2, what="two acks for version 1")
        assert {(a["kiosk_id"], a["result"]) for a in db.acks_for(version=1)} == {
            ("qhb-a1", "applied"), ("qhb-a2", "applied")}
        wait_for(lambda: db.kiosk("qhb-a1")["config_version"] == 1, what="config version 1 on a1")

        # a command: each targeted kiosk's result (the standalone agent refuses: no app attached)
        cmd = sign_command(build_command("screenshot", "group:boshan", datetime.now(UTC) + timedelta(minutes=5)),
                           admin_keys[:1])
        db.add_command(cmd.id, cmd.action, cmd.target, cmd.signed["expires"], cmd.signed["issued_at"], cmd.to_bytes())
        push_command(broker.url, cmd.to_bytes())
        wait_for(lambda: db.command(cmd.id)["results"][0]["status"] != "pending", what="the command's result")
        out = db.command(cmd.id)
        assert [(r["kiosk_id"], r["status"], r["reason"]) for r in out["results"]] == [
            ("qhb-b1", "refused", "not_supported")]
        # a replay's refusal does not overwrite the first result
        seen_results = ingest.by_kind.get("result", 0)
        publish_retained(broker.url, ["qhb/command/kiosk/qhb-b1"], cmd.to_bytes())
        wait_for(lambda: any(r["reason"] == "rollback" for r in
                             agents[2].commands.recent), what="the replay refused")
        wait_for(lambda: ingest.by_kind.get("result", 0) > seen_results, what="the refusal reached the console")
        assert ingest.wait_drained()
        assert db.command(cmd.id)["results"][0]["reason"] == "not_supported"

        # a kiosk that goes away: its will marks it offline
        agents[0].stop()
        wait_for(lambda: db.kiosk("qhb-a1")["online"] is False, what="a1 offline")
        assert [k["id"] for k in db.list_kiosks(problem="offline")] == ["qhb-a1"]
    finally:
        for a in agents[1:]:
            a.stop()
        ingest.stop()
