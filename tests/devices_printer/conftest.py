"""Peers for printer tests: an in-process emulator on 127.0.0.1 and a subprocess one (`kiosk device printer emulate`)."""
from __future__ import annotations

import datetime as dt
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.domain.receipt import Receipt
from kiosk.domain.tracking import new_tracking_no
from standins.printer_emulator import PrinterEmulator

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FULL_ID = "370306199001011234"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def emulator(tmp_path):
    emu = PrinterEmulator(port=0, out_dir=tmp_path / "out").start()
    yield emu
    emu.stop()


@pytest.fixture
def receipt() -> Receipt:
    return Receipt.from_mapping(dict(
        station="周村区城北路街道便民服务站", item="城乡居民基本养老保险参保登记",
        applicant_name="张三丰", applicant_id=FULL_ID, tracking_no=new_tracking_no("LQ", dt.date(2026, 11, 27)),
        submitted_at="2026-11-27T14:32:00+08:00", promised_date="2026-12-04", queued=True,
    ))


class EmulatorProcess:
    """`kiosk device printer emulate` as a child process: start, kill -9, restart on the same port."""

    def __init__(self, port: int, out: Path, status: str = "ok"):
        self.port, self.out, self.status = port, out, status
        self.proc: subprocess.Popen | None = None

    def start(self) -> EmulatorProcess:
        cmd = [sys.executable, "-m", "kiosk.cli.main", "device", "printer", "emulate",
               "--port", str(self.port), "--out", str(self.out), "--status", self.status]
        self.proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline()  # printed once listening
        if "listening" not in line:
            self.proc.kill()
            raise RuntimeError("emulator did not start: " + line + self.proc.stderr.read())
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=10)


@pytest.fixture
def emulator_process(tmp_path):
    procs: list[EmulatorProcess] = []

    def make(status: str = "ok", port: int | None = None) -> EmulatorProcess:
        p = EmulatorProcess(port or free_port(), tmp_path / "sub-out", status)
        procs.append(p)
        return p

    yield make
    for p in procs:
        p.kill()


def wait_until(pred, timeout: float = 15.0, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()
