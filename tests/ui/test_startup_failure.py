"""A start-up that fails puts the kiosk out of service and stops the systemd watchdog pings.

The fault is a real one: the state directory holds a queue (outbox.db) whose key
file has gone missing, which the outbox refuses to open (it never creates a new
key over an existing queue). Instead of a normal-looking home screen with every
device stuck in `starting`, the calm out-of-service page is shown and stays, and
the watchdog (fed only while the UI beats AND the core is healthy) stops pinging,
so systemd restarts the kiosk. The watchdog itself is checked against a real
notify socket.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from ui_support import ARTIFACTS

from kiosk.infra.systemd import Watchdog

pytestmark = pytest.mark.ui


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET; yields a reader of what arrived."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))

    def received() -> list[str]:
        out = []
        while True:
            try:
                out.append(sock.recv(4096).decode())
            except BlockingIOError:
                return out

    yield received
    sock.close()


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_watchdog_pings_only_while_the_ui_beats_and_the_core_is_healthy(notify_socket):
    clock, healthy = FakeClock(), [True]
    dog = Watchdog(lambda: healthy[0], stale_after_s=10.0, clock=clock)
    assert dog.ping() and notify_socket() == ["WATCHDOG=1"]
    clock.t += 11  # the UI clock stopped beating: a frozen UI thread
    assert not dog.ping() and notify_socket() == []
    dog.beat()
    assert dog.ping() and notify_socket() == ["WATCHDOG=1"]
    healthy[0] = False  # the core is not healthy (a failed start-up, a dead drainer)
    assert not dog.ping() and notify_socket() == []

    def broken() -> bool:
        raise RuntimeError("health check failed")

    assert not Watchdog(broken, clock=clock).ping() and notify_socket() == []


def test_arm_watchdog_beats_from_the_ui_clock_and_asks_the_core(notify_socket, monkeypatch):
    from kiosk.cli.run_cmds import _arm_watchdog

    monkeypatch.delenv("WATCHDOG_USEC", raising=False)  # no ping thread here: the test pings by hand

    class UiClock:
        def __init__(self) -> None:
            self.callbacks = []

        def schedule_interval(self, cb, interval):
            self.callbacks.append((cb, interval))

    ui, healthy = UiClock(), [True]
    dog = _arm_watchdog(ui, "测试站", lambda: healthy[0])
    assert notify_socket() == ["READY=1\nSTATUS=serving 测试站"]
    assert len(ui.callbacks) == 1
    ui.callbacks[0][0](1.0)  # one UI frame
    assert dog.ping() and notify_socket() == ["WATCHDOG=1"]
    healthy[0] = False
    assert not dog.ping() and notify_socket() == []


def test_startup_failure_shows_out_of_service_and_stops_the_pings(tmp_path, notify_socket):
    from kiosk.bootstrap.app import build_kiosk
    from kiosk.config import load_config
    from kiosk.infra.speech import RecordingSpeech
    from offline_cache.outbox import Outbox
    from standins.ui_driver import start_app, stop_app

    state = Path(tmp_path / "state")
    state.mkdir()
    Outbox(state / "outbox.db", os.urandom(16)).close()  # a queue whose key file has gone missing
    assert not (state / "kiosk.key").exists()
    cfg = load_config(cli={"ui": {"voice": True}})
    svc = build_kiosk(cfg, simulate=True, state_dir=state, speech=RecordingSpeech())
    app, drv = start_app(svc)
    try:
        svc.start(background=True)  # as `kiosk run` does, after the first frame
        drv.wait_screen("out_of_service", timeout=60)
        oos = app.screen("out_of_service")
        assert oos.everything_down and "维护" in oos.headline
        assert svc.lifecycle.startup_error  # the exception's name, for the technician
        assert not svc.lifecycle.healthy()
        dog = Watchdog(svc.lifecycle.healthy)
        dog.beat()  # the UI thread is fine; the core is not
        assert not dog.ping() and notify_socket() == []
        # nothing brings back a normal-looking home screen: not a touch on 回首页, not a status refresh
        app.go("home")
        drv.pump(0.2)
        assert app.current == "out_of_service"
        svc.ctx.events.post("status")
        drv.pump(0.3)
        assert app.current == "out_of_service"
        assert "启动失败" in svc.technician.technician_report()  # the technician reads why
        drv.screenshot(ARTIFACTS / "test_startup_failure" / "out-of-service.png")
    finally:
        stop_app(app)
        svc.stop()


def test_a_dead_drainer_makes_the_core_unhealthy(tmp_path):
    from ui_support import make_service

    svc = make_service(tmp_path)  # started: platform, outbox, drainer, devices
    try:
        assert svc.lifecycle.healthy() and svc.lifecycle.startup_error is None
        svc.ctx.drainer.stop(timeout=10)  # nothing delivers the queue any more: let systemd restart us
        assert not svc.lifecycle.healthy()
    finally:
        svc.stop()
    assert not svc.lifecycle.healthy()  # stopping is not healthy either
