"""Test helpers: wait for fleet state through the real broker, watch acks, run agents as processes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.fleet.fleetview import FleetSnapshot, snapshot
from kiosk.fleet.transport import make_client

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK") or k == "KIOSK_PROFILE"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll until predicate() is truthy; the deadline only guards against hanging forever."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # broker briefly away, etc.
            last_exc = e
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}" + (f" (last error: {last_exc})" if last_exc else ""))


def wait_snapshot(url: str, predicate: Callable[[FleetSnapshot], bool], what: str, timeout: float = 60.0) -> FleetSnapshot:
    def probe():
        snap = snapshot(url, timeout=5)
        return snap if predicate(snap) else None
    return wait_for(probe, timeout, what)


class AckWatcher:
    """Collects every ack published on the broker, in arrival order."""

    def __init__(self, url: str):
        self.acks: list[dict[str, Any]] = []
        self._cv = threading.Condition()
        self.client, addr = make_client(url)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("qhb/kiosk/+/ack", qos=1)
        self.client.on_message = self._on_message
        self.client.connect(addr.host, addr.port)
        self.client.loop_start()

    def _on_message(self, c, u, msg):
        if msg.payload and not msg.retain:
            with self._cv:
                self.acks.append(json.loads(msg.payload))
                self._cv.notify_all()

    def wait(self, pred: Callable[[dict], bool], timeout: float = 60.0, since: int = 0) -> dict[str, Any]:
        """The first ack (from index `since` on) matching pred."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for a in self.acks[since:]:
                    if pred(a):
                        return a
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching ack; seen: {self.acks}")
                self._cv.wait(left)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def start_agent_process(site: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kiosk.cli.main", "fleet", "agent", "--config", str(site)],
                            cwd=PROJECT_ROOT, env=clean_env(), stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def stop_process(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def admin(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kiosk.cli.admin", *args], cwd=PROJECT_ROOT, env=clean_env(),
                          capture_output=True, text=True, timeout=120)
