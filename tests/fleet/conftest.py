"""Fleet fixtures: admin keys, kiosk site files in temp dirs, a real Mosquitto broker."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.fleet.agent import KioskAgent
from kiosk.fleet.bundle import public_key_string

from .helpers import AckWatcher, wait_for

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


@pytest.fixture(scope="session")
def admin_keys() -> list[Ed25519PrivateKey]:
    return [Ed25519PrivateKey.generate() for _ in range(3)]


def write_site(tmp: Path, *, kiosk_id: str, group: str, pubs: list[str], threshold: int = 1,
               broker_url: str = "mqtt://127.0.0.1:1", extra: str = "", health_interval_s: float = 1.0) -> Path:
    """A kiosk site file whose state lives under `tmp`."""
    tmp.mkdir(parents=True, exist_ok=True)
    keys = ", ".join(f'"{p}"' for p in pubs)
    site = tmp / "site.toml"
    site.write_text(textwrap.dedent(f"""\
        [kiosk]
        id = "{kiosk_id}"
        group = "{group}"
        [storage]
        data_dir = "{tmp / 'var'}"
        key_file = "{tmp / 'var' / 'kiosk.key'}"
        [logging]
        dir = "{tmp / 'var' / 'log'}"
        [fleet]
        enabled = true
        broker_url = "{broker_url}"
        admin_keys = [{keys}]
        threshold = {threshold}
        state_dir = "{tmp / 'fleet'}"
        health_interval_s = {health_interval_s}
        """) + extra, encoding="utf-8")
    return site


@pytest.fixture
def site_factory(tmp_path, admin_keys):
    def make(name: str = "k1", group: str = "zhoucun", threshold: int = 1, nkeys: int = 1, **kw) -> Path:
        pubs = [public_key_string(k.public_key()) for k in admin_keys[:nkeys]]
        return write_site(tmp_path / name, kiosk_id=f"qhb-{name}", group=group, pubs=pubs,
                          threshold=threshold, **kw)
    return make


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A Mosquitto process on loopback, stoppable and restartable on the same port."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                             f"log_dest stdout\nlog_type error\nlog_type warning\n")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        mosq = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([mosq, "-c", str(self.conf)], stdout=open(self.log, "ab"),
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def broker(tmp_path):
    if not (shutil.which("mosquitto") or os.path.exists("/usr/sbin/mosquitto")):
        pytest.fail("mosquitto is not installed (scripts/setup.sh installs it)")
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def watcher(broker):
    """Every ack the kiosks publish on the broker."""
    w = AckWatcher(broker.url)
    yield w
    w.close()


@pytest.fixture
def agent_factory():
    """In-process agents, started and connected; stopped at the end."""
    agents = []

    def make(site, **kw) -> KioskAgent:
        a = KioskAgent(str(site), env={}, **kw)
        a.start()
        agents.append(a)
        wait_for(a.connected.is_set, 30, "agent connected")
        return a

    yield make
    for a in agents:
        a.stop()
