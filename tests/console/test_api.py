"""`kiosk-admin console`: the JSON API, its bearer token and 401, commands and a rollout through it, on SQLite and PostgreSQL."""
from __future__ import annotations

import base64
import os
import socket
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import requests
from fleet.helpers import PROJECT_ROOT, clean_env, stop_process, wait_for

from kiosk.fleet.bundle import build_signed, public_key_string, sign
from kiosk.fleet.commands import build_command, sign_command
from standins.fleet_sim import SimulatedFleet

from .conftest import free_port


def start_console(broker, state, pubs, port, db_url=None, log=None):
    args = [sys.executable, "-m", "kiosk.cli.admin", "console", "--broker", broker.url, "--port", str(port),
            "--state", str(state)] + [a for p in pubs for a in ("--admin-key", p)]
    if db_url:
        args += ["--db", db_url]
    proc = subprocess.Popen(args, cwd=PROJECT_ROOT, env=clean_env(), stdout=open(log, "ab"), stderr=subprocess.STDOUT)

    def listening():
        if proc.poll() is not None:
            raise AssertionError(f"console exited: {open(log).read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False
    wait_for(listening, what="the console listening")
    return proc


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_console_api(tmp_path, broker, admin_keys, backend, request):
    db_url = None
    if backend == "postgresql":
        pg = request.getfixturevalue("postgres")
        import sqlalchemy as sa
        eng = sa.create_engine(pg.url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
        with eng.connect() as conn:
            conn.execute(sa.text("DROP DATABASE IF EXISTS console_api"))
            conn.execute(sa.text("CREATE DATABASE console_api"))
        eng.dispose()
        db_url = pg.url.rsplit("/", 1)[0] + "/console_api"
    pubs = [public_key_string(k.public_key()) for k in admin_keys[:2]]
    state, port, log = tmp_path / "console", free_port(), tmp_path / "console.log"
    fleet = SimulatedFleet(6, broker.url, seed=11, state_dir=tmp_path / "sim", admin_keys=pubs[:1],
                           groups=["zhoucun", "boshan"], health_interval_s=0.5, offline_periods=False).start()
    request.addfinalizer(fleet.stop)
    proc = start_console(broker, state, pubs, port, db_url, log)
    base = f"http://127.0.0.1:{port}"
    try:
        token_file = state / "admin-token"
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        token = token_file.read_text().strip()
        auth = {"Authorization": f"Bearer {token}"}
        assert requests.get(f"{base}/api/kiosks", timeout=10).status_code == 401
        assert requests.get(f"{base}/api/kiosks", headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 401
        assert requests.get(f"{base}/api/commands/x", timeout=10).status_code == 401

        assert fleet.wait_connected(timeout=60)
        rows = wait_for(lambda: (lambda r: r if len(r) == 6 and all(k["devices"] for k in r) else None)(
            requests.get(f"{base}/api/kiosks", headers=auth, timeout=10).json()), what="six kiosks in the API")
        for k in rows:
            assert {"id", "group", "online", "last_seen", "config_version", "devices", "queue"} <= set(k)
            assert set(k["queue"]) == {"pending", "oldest_pending_age_s"} and k["online"] is True
            assert set(k["devices"]) == {"printer", "idcard", "qr", "camera"}
        paper_out = sorted(s.kiosk_id for s in fleet.kiosks if s.faults.paper == "out")
        got = requests.get(f"{base}/api/kiosks", params={"problem": "paper_out"}, headers=auth, timeout=10).json()
        assert sorted(k["id"] for k in got) == paper_out
        got = requests.get(f"{base}/api/kiosks", params={"group": "boshan"}, headers=auth, timeout=10).json()
        assert {k["group"] for k in got} == {"boshan"} and len(got) == 3

        # a signed command uploaded: verified as a kiosk would, sent, each targeted kiosk's result
        cmd = sign_command(build_command("drain", "group:zhoucun", datetime.now(UTC) + timedelta(minutes=5)),
                           admin_keys[:1])
        r = requests.post(f"{base}/api/commands", data=cmd.to_bytes(), headers=auth, timeout=10)
        assert r.status_code == 201, r.text
        out = wait_for(lambda: (lambda c: c if c["results"] and all(x["status"] != "pending" for x in c["results"])
                                else None)(requests.get(f"{base}/api/commands/{cmd.id}", headers=auth, timeout=10).json()),
                       what="the drain results")
        assert sorted(x["kiosk_id"] for x in out["results"]) == sorted(
            s.kiosk_id for s in fleet.kiosks if s.group == "zhoucun")
        assert {x["status"] for x in out["results"]} == {"done"}
        stranger = sign_command(build_command("screenshot", "all", datetime.now(UTC) + timedelta(minutes=5)),
                                admin_keys[2:3])
        r = requests.post(f"{base}/api/commands", data=stranger.to_bytes(), headers=auth, timeout=10)
        assert (r.status_code, r.json()["reason"]) == (422, "unknown_key")
        one_key_reboot = sign_command(build_command("reboot", "all", datetime.now(UTC) + timedelta(minutes=5)),
                                      admin_keys[:1])
        r = requests.post(f"{base}/api/commands", data=one_key_reboot.to_bytes(), headers=auth, timeout=10)
        assert (r.status_code, r.json()["reason"]) == (422, "below_threshold")
        assert requests.get(f"{base}/api/commands/{one_key_reboot.id}", headers=auth, timeout=10).status_code == 404

        # a staged rollout through the API
        raw = sign(build_signed({"announcements": [{"text": "分批"}]}, 1, ["all"],
                                expires=datetime.now(UTC) + timedelta(days=1)), admin_keys[:1]).to_bytes()
        r = requests.post(f"{base}/api/rollouts", headers=auth, timeout=10, json={
            "bundle": base64.b64encode(raw).decode(),
            "plan": {"canaries": [rows[0]["id"]], "percentages": [50, 100], "soak_s": 0.3}})
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        wait_for(lambda: requests.get(f"{base}/api/rollouts/{rid}", headers=auth, timeout=10).json()["state"]
                 == "completed", timeout=90, what="the rollout completed")
    finally:
        stop_process(proc)
    if backend != "sqlite":  # the restart is the same on both engines; once is enough
        return
    # a restart keeps the token (no new one) and the rollout's state
    proc = start_console(broker, state, pubs, port, db_url, log)
    try:
        assert token_file.read_text().strip() == token
        assert requests.get(f"{base}/api/rollouts/{rid}", headers=auth, timeout=10).json()["state"] == "completed"
        assert "wrote the admin token" in open(log).read()
        assert open(log).read().count("wrote the admin token") == 1
    finally:
        stop_process(proc)
