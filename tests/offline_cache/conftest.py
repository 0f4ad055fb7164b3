"""Fixtures: a storage key, an outbox, and the platform simulator as a real separate process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def key() -> bytes:
    return os.urandom(16)


@pytest.fixture
def outbox(tmp_path, key):
    from offline_cache.outbox import Outbox
    ob = Outbox(tmp_path / "outbox.db", key)
    yield ob
    ob.close()


class SimProcess:
    """`kiosk platform-sim` in a subprocess on a free port; mode switched through /__sim/mode."""

    def __init__(self, state_dir: Path, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk.cli.main", "platform-sim", "--port", "0", "--state", str(state_dir), *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=PROJECT_ROOT)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            raise RuntimeError(f"platform-sim did not start: {line!r}")
        self.url = line.split("listening on ", 1)[1].split()[0]

    def stats(self) -> dict:
        return requests.get(self.url + "/__sim/stats", timeout=10).json()

    def applications(self) -> list[dict]:
        return requests.get(self.url + "/__sim/applications", timeout=10).json()["applications"]

    def set_mode(self, mode: str, **kw) -> None:
        r = requests.post(self.url + "/__sim/mode", json={"mode": mode, **kw}, timeout=10)
        r.raise_for_status()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def sim_proc(tmp_path):
    s = SimProcess(tmp_path / "sim")
    yield s
    s.stop()


@pytest.fixture
def key_file(tmp_path, key) -> Path:
    p = tmp_path / "kiosk.key"
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, key.hex().encode())
    os.close(fd)
    return p
