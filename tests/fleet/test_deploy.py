"""Deployment files: unit settings, udev rule syntax, and the agent's sd_notify over a real datagram socket."""
from __future__ import annotations

import configparser
import re
import signal
import socket
import subprocess
import sys

from .conftest import free_port, write_site
from .helpers import PROJECT_ROOT, clean_env

DEPLOY = PROJECT_ROOT / "deploy"


def unit(name: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read(DEPLOY / name)
    return cp


def test_units_are_notify_with_watchdog_and_restart():
    for name in ("qhb-kiosk.service", "qhb-kiosk-fleet.service"):
        svc = unit(name)["Service"]
        assert svc["Type"] == "notify" and int(svc["WatchdogSec"]) > 0 and svc["Restart"] == "always"
        assert svc["ExecStart"].startswith("/opt/qhb-kiosk/.venv/bin/kiosk ")
        # systemd gives up after StartLimitBurst restarts unless the interval is 0: an unattended kiosk never may
        assert unit(name)["Unit"].get("StartLimitIntervalSec", "10s") == "0"
    assert "fleet agent" in unit("qhb-kiosk-fleet.service")["Service"]["ExecStart"]


RULE_TOKEN = re.compile(r'^\s*(?P<key>[A-Z_]+(\{[A-Za-z0-9_]+\})?)\s*(?P<op>==|!=|\+=|-=|:=|=)\s*"(?P<val>[^"]*)"\s*$')
MATCH_KEYS = {"SUBSYSTEM", "KERNEL", "ATTR", "ATTRS", "ENV", "DRIVERS", "ACTION"}
ASSIGN_KEYS = {"GROUP", "MODE", "SYMLINK", "OWNER", "TAG", "ENV", "RUN"}


def test_udev_rules_parse():
    lines = [ln for ln in (DEPLOY / "99-qhb-kiosk.rules").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(lines) >= 10
    for ln in lines:
        has_match = has_assign = False
        for tok in ln.split(", "):
            m = RULE_TOKEN.match(tok)
            assert m, f"bad token {tok!r} in {ln!r}"
            base = m["key"].split("{")[0]
            if m["op"] in ("==", "!="):
                assert base in MATCH_KEYS, ln
                has_match = True
            else:
                assert base in ASSIGN_KEYS, ln
                has_assign = True
        assert has_match and has_assign, ln


def test_agent_speaks_sd_notify(tmp_path):
    sock_path = tmp_path / "notify.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(sock_path))
    s.settimeout(60)
    site = write_site(tmp_path / "k", kiosk_id="qhb-sd", group="zhoucun", pubs=[],
                      broker_url=f"mqtt://127.0.0.1:{free_port()}")  # no broker: the kiosk must still come up
    env = clean_env() | {"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "1000000"}
    p = subprocess.Popen([sys.executable, "-m", "kiosk.cli.main", "fleet", "agent", "--config", str(site)],
                         cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        first = s.recv(4096).decode()
        assert first.startswith("READY=1") and "qhb-sd" in first
        assert s.recv(4096).decode() == "WATCHDOG=1"
        p.send_signal(signal.SIGTERM)
        msgs = []
        while "STOPPING=1" not in msgs:
            msgs.append(s.recv(4096).decode())
        assert p.wait(30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        s.close()
