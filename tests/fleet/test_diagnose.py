"""`kiosk diagnose`: real HTTP platform with a skewed Date header, real SQLite files, support bundle redaction."""
from __future__ import annotations

import email.utils
import http.server
import json
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time

import pytest

from .conftest import write_site
from .helpers import PROJECT_ROOT, clean_env

ID_NO = "370303199001011237"
PHONE = "13912345678"


@pytest.fixture
def skewed_platform():
    """A platform stand-in whose clock is `skew` seconds behind ours."""
    state = {"skew": 0.0}

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)  # adds Date from date_time_string below
            self.send_header("Content-Length", "0")
            self.end_headers()

        def date_time_string(self, timestamp=None):  # the base class adds its own Date: make it ours
            return email.utils.formatdate(time.time() - state["skew"], usegmt=True)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{srv.server_address[1]}"
    yield state
    srv.shutdown()
    srv.server_close()


def site_for(tmp_path, url):
    devices = "".join(f"[devices.{k}]\ndriver = \"simulated\"\nenabled = false\n" for k in ("camera", "printer", "qr"))
    return write_site(tmp_path / "kiosk", kiosk_id="qhb-diag", group="zhoucun", pubs=[],
                      extra=f'[platform]\nbase_url = "{url}"\n[ui]\ntechnician_pin = "13579"\n' + devices)


def diagnose(site, *args):
    r = subprocess.run([sys.executable, "-m", "kiosk.cli.main", "diagnose", "--config", str(site), *args],
                       cwd=PROJECT_ROOT, env=clean_env(), capture_output=True, text=True, timeout=120)
    return r


def checks(r):
    return {c["name"]: c for c in json.loads(r.stdout)["checks"]}


def test_healthy_kiosk_exits_zero(tmp_path, skewed_platform):
    site = site_for(tmp_path, skewed_platform["url"])
    db = tmp_path / "kiosk" / "var" / "receipts.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (x)")
    r = diagnose(site, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    c = checks(r)
    assert c["platform"]["status"] == "ok" and abs(c["platform"]["details"]["clock_skew_s"]) < 30
    assert c["databases"]["status"] == "ok" and c["databases"]["details"] == {"receipts.db": "ok"}
    assert c["device.idcard"]["status"] == "ok" and c["config"]["status"] == "ok"
    assert c["queue"]["status"] in ("ok", "unavailable") and c["disk"]["status"] in ("ok", "warn")


def test_problems_need_a_technician(tmp_path, skewed_platform):
    skewed_platform["skew"] = 3600.0
    site = site_for(tmp_path, skewed_platform["url"])
    db = tmp_path / "kiosk" / "var" / "sub" / "outbox-copy.sqlite3"
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (x TEXT)")
        con.execute("CREATE INDEX ti ON t (x)")
        con.executemany("INSERT INTO t VALUES (?)", [(f"row{i:05d}" * 20,) for i in range(3000)])
    data = bytearray(db.read_bytes())
    for off in range(4096 * 3, min(len(data), 4096 * 40), 4096):
        data[off + 100: off + 400] = b"\x55" * 300  # scribble over b-tree pages
    db.write_bytes(bytes(data))
    r = diagnose(site, "--json")
    assert r.returncode == 1
    c = checks(r)
    assert c["platform"]["status"] == "fail" and c["platform"]["details"]["clock_skew_s"] > 3000
    assert c["databases"]["status"] == "fail" and "sub/outbox-copy.sqlite3" in c["databases"]["details"]
    # the human view says it plainly
    r = diagnose(site)
    assert r.returncode == 1 and "needs a technician" in r.stdout and "clock skew" in r.stdout


def test_unreachable_platform_and_broken_config(tmp_path):
    from .conftest import free_port
    site = site_for(tmp_path, f"http://127.0.0.1:{free_port()}")
    r = diagnose(site, "--json", "--no-devices")
    assert r.returncode == 1 and checks(r)["platform"]["status"] == "fail"
    site.write_text(site.read_text() + "\n[oops]\nx = 1\n")
    r = diagnose(site, "--json")
    assert r.returncode == 1
    c = checks(r)["config"]
    assert c["status"] == "fail" and c["details"]["problems"][0]["key"] == "oops"


def test_support_bundle_is_redacted(tmp_path, skewed_platform):
    site = site_for(tmp_path, skewed_platform["url"])
    log_dir = tmp_path / "kiosk" / "var" / "log"
    log_dir.mkdir(parents=True)
    (log_dir / "kiosk.jsonl").write_text(
        json.dumps({"msg": f"card read {ID_NO} phone {PHONE}", "level": "INFO"}, ensure_ascii=False) + "\n")
    out = tmp_path / "support.tar.gz"
    r = diagnose(site, "--bundle", str(out), "--json")
    assert out.exists() and json.loads(r.stdout)["bundle"] == str(out)
    with tarfile.open(out) as tar:
        names = tar.getnames()
        files = {n.split("/", 1)[1]: tar.extractfile(n).read().decode() for n in names}
    assert {"diagnose.json", "config.json", "devices.json", "logs/kiosk.jsonl"} <= set(files)
    everything = "".join(files.values())
    assert ID_NO not in everything and PHONE not in everything
    assert "card read" in files["logs/kiosk.jsonl"]
    cfg = json.loads(files["config.json"])
    assert cfg["config"]["ui"]["technician_pin"] == "**REDACTED**" and "13579" not in everything
    assert cfg["config"]["kiosk"]["id"] == "qhb-diag"
    assert "device.idcard" in json.loads(files["devices.json"])
