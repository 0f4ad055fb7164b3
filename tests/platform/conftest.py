"""Fixtures: the platform simulator in a thread (fast) or in its own process, and the dev kiosk credential."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from kiosk.platform.client import PlatformClient
from kiosk.platform.credentials import configured_credentials
from standins.platform_sim import start_in_thread

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def creds():
    return configured_credentials()


@pytest.fixture
def sim(tmp_path):
    h = start_in_thread(tmp_path / "sim", seed=1234)
    yield h
    h.stop()


@pytest.fixture
def client(sim, creds):
    c = PlatformClient(sim.url, creds.kiosk_id, creds.secret, read_timeout=5)
    yield c
    c.close()


class SimProcess:
    """`kiosk platform-sim` in its own process on a free port (what a kiosk talks to over the network)."""

    def __init__(self, state_dir: Path, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk.cli.main", "platform-sim", "--port", "0", "--state", str(state_dir), *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=PROJECT_ROOT)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"platform-sim did not start: {line!r}")
        self.url = line.split("listening on ", 1)[1].split()[0]

    def stats(self) -> dict:
        return requests.get(self.url + "/__sim/stats", timeout=10).json()

    def set_mode(self, mode: str, **kw) -> None:
        requests.post(self.url + "/__sim/mode", json={"mode": mode, **kw}, timeout=10).raise_for_status()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def sim_proc_module(tmp_path_factory):
    s = SimProcess(tmp_path_factory.mktemp("sim-proc"))
    yield s
    s.stop()


@pytest.fixture
def sim_proc(sim_proc_module):
    """The module's simulator process, back in normal mode after each test."""
    yield sim_proc_module
    sim_proc_module.set_mode("normal", fail_rate=None, latency_ms=0)
