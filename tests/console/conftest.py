"""Console fixtures: a real Mosquitto (the fleet room's), a real PostgreSQL from Debian's package, kiosk sites."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from fleet.conftest import Broker, admin_keys, free_port, write_site  # noqa: F401  (fixtures and helpers)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.fail("PostgreSQL is not installed (scripts/setup.sh installs postgresql)")
    return found[-1]


class Postgres:
    """initdb + postgres on a temporary directory and a free loopback port, as the `postgres` user.

    PostgreSQL refuses to run as root, so the cluster belongs to the Debian package's `postgres`
    user (runuser); the directory is outside pytest's root-only tmp tree so that user can reach it.
    """

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="qhb-pg-"))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        if self.as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        data = self.dir / "data"
        subprocess.run([*self.as_user, _pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                        "--no-sync", "-E", "UTF8"], check=True, capture_output=True, timeout=120)
        self.log = open(self.dir / "postgres.log", "ab")
        self.proc = subprocess.Popen([*self.as_user, _pg_bin("postgres"), "-D", str(data), "-p", str(self.port),
                                      "-k", str(self.dir), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {(self.dir / 'postgres.log').read_text()}")
            r = subprocess.run([_pg_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True)
            if r.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("postgres did not become ready")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # runuser passes SIGTERM on: smart shutdown
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    pg = Postgres()
    pg.start()
    yield pg
    pg.stop()


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()
