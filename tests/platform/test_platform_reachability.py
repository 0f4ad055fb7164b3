"""The network indicator: "online" from real calls, the health probe only after a quiet spell, backoff while
offline, back online on the first answer. The real client against the simulator in its own process; the
clock is a hand-moved one shared by the client and the indicator, so no assertion depends on timing."""
from __future__ import annotations

import pytest

from kiosk.app.reachability import QUIET_S, Reachability, offline_backoff
from kiosk.infra.backoff import Backoff
from kiosk.platform.client import PlatformClient, RetryableError


class StepClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def link(sim_proc, creds):
    """(clock, client, indicator, sim process)."""
    clock = StepClock()
    client = PlatformClient(sim_proc.url, creds.kiosk_id, creds.secret, read_timeout=10, clock=clock)
    yield clock, client, Reachability(lambda: client, clock), sim_proc
    client.close()


def requests_at(sim_proc) -> int:
    return sim_proc.stats()["requests"]


def test_quiet_period_and_backoff_are_in_the_range_asked_for():
    assert 30 <= QUIET_S <= 60
    b = offline_backoff()
    assert [b.next_delay() for _ in range(6)] == [5, 10, 20, 40, 60, 60]


def test_first_check_without_any_call_probes_once(link):
    clock, client, reach, sim = link
    n = requests_at(sim)
    assert reach.check() is True and reach.probes == 1
    assert requests_at(sim) - n == 1 and client.last_contact == clock.t
    assert reach.check() is True and reach.probes == 1  # and not again while the answer is fresh


def test_no_probe_while_real_calls_succeed(link):
    clock, client, reach, sim = link
    client.get_catalog()  # a real call (the drainer, a visit) is contact
    n = requests_at(sim)
    for _ in range(10):  # thirty minutes of a busy kiosk: a real call every 40 s, refreshes in between
        for _ in range(4):
            clock.t += 10
            assert reach.check() is True
        client.get_catalog(etag='"unchanged"')
    assert reach.probes == 0
    assert requests_at(sim) - n == 10  # only the real calls reached the platform


def test_probe_only_after_the_quiet_period(link):
    clock, client, reach, sim = link
    client.get_catalog()
    start = clock.t
    clock.t = start + QUIET_S - 1
    n = requests_at(sim)
    assert reach.check() is True and reach.probes == 0 and requests_at(sim) == n
    clock.t = start + QUIET_S
    assert reach.check() is True and reach.probes == 1 and requests_at(sim) == n + 1
    assert client.last_contact == start + QUIET_S  # the probe's answer is contact: the next quiet spell starts now
    clock.t += QUIET_S - 1
    assert reach.check() is True and reach.probes == 1


def test_a_failed_real_call_is_offline_at_once_then_probes_back_off(link):
    clock, client, reach, sim = link
    client.get_catalog()
    assert reach.check() is True
    sim.set_mode("outage")
    clock.t += 10
    with pytest.raises(RetryableError):
        client.get_catalog()  # e.g. the drainer's delivery fails
    failed_at = clock.t
    n = requests_at(sim)
    assert reach.check() is False and reach.probes == 0  # offline without asking again
    expected = Backoff(5.0, 60.0)
    due = failed_at + expected.next_delay()
    assert reach.next_probe_at == due
    delays = []
    for _ in range(6):
        clock.t = due - 0.5
        assert reach.check() is False
        probes = reach.probes
        clock.t = due
        assert reach.check() is False and reach.probes == probes + 1  # the probe went, got 503
        delays.append(reach.next_probe_at - due)
        due = reach.next_probe_at
    assert delays == [10, 20, 40, 60, 60, 60]
    assert requests_at(sim) - n == 6  # one tiny probe per step, nothing in between


def test_back_online_on_the_first_successful_real_call(link):
    clock, client, reach, sim = link
    sim.set_mode("outage")
    with pytest.raises(RetryableError):
        client.get_catalog()
    assert reach.check() is False
    sim.set_mode("normal")
    clock.t += 1  # long before the next probe is due
    client.get_catalog()  # the drainer gets through
    n = requests_at(sim)
    assert reach.check() is True and reach.probes == 0 and requests_at(sim) == n
    # the backoff starts over: the next outage's first probe comes after the first delay again
    sim.set_mode("outage")
    clock.t += 1
    with pytest.raises(RetryableError):
        client.get_catalog()
    assert reach.check() is False and reach.next_probe_at == clock.t + 5


def test_back_online_on_the_first_successful_probe(link):
    clock, client, reach, sim = link
    sim.set_mode("outage")
    with pytest.raises(RetryableError):
        client.get_catalog()
    assert reach.check() is False
    clock.t = reach.next_probe_at
    assert reach.check() is False and reach.probes == 1
    sim.set_mode("normal")
    clock.t = reach.next_probe_at
    assert reach.check() is True and reach.probes == 2 and reach.next_probe_at is None


def test_an_unreachable_platform_is_offline_and_probed_with_backoff(creds):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clock = StepClock()
    client = PlatformClient(f"http://127.0.0.1:{port}", creds.kiosk_id, creds.secret, connect_timeout=2, clock=clock)
    reach = Reachability(lambda: client, clock)
    try:
        assert reach.check() is False and reach.probes == 1 and reach.next_probe_at == clock.t + 5
        clock.t += 5
        assert reach.check() is False and reach.probes == 2 and reach.next_probe_at == clock.t + 10
    finally:
        client.close()


def test_the_kiosk_indicator_sends_nothing_while_idle_and_fresh(sim_proc, tmp_path):
    """The whole kiosk (simulated devices) against the platform at a URL: start-up probes once, idle refreshes
    send nothing until the quiet period, then one health probe; never the catalog."""
    from kiosk.bootstrap.app import build_kiosk
    from kiosk.config import load_config
    from kiosk.infra.speech import make_speech

    clock = StepClock()
    cfg = load_config(cli={"devices": {k: {"enabled": False} for k in ("idcard", "qr", "camera", "printer")}})
    svc = build_kiosk(cfg, simulate=True, platform_url=sim_proc.url, state_dir=tmp_path / "kiosk", clock=clock,
                      speech=make_speech("none", False), status_interval_s=3600)
    try:
        svc.start()
        assert svc.wiring.simulator is None  # no embedded simulator: the traffic is all at sim_proc
        assert svc.ctx.platform.base_url == sim_proc.url
        st = sim_proc.stats()
        assert st["requests"] >= 1 and svc.station.reachability.probes == 1 and svc.ctx.status.online
        for _ in range(5):
            svc.station.refresh_status()
        assert sim_proc.stats()["requests"] == st["requests"]
        clock.t += QUIET_S
        svc.station.refresh_status()
        after = sim_proc.stats()
        assert after["requests"] == st["requests"] + 1 and after["bytes_out"] - st["bytes_out"] < 500
        assert svc.ctx.last_platform_contact is not None
    finally:
        svc.stop()


def test_kiosk_run_simulate_platform_url_talks_to_that_platform(sim_proc, tmp_path):
    """`kiosk run --simulate --platform URL`: simulated devices, no embedded simulator, its status probe
    arrives at the simulator process at URL."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["KIOSK__STORAGE__DATA_DIR"] = f'"{tmp_path}"'
    for kind in ("IDCARD", "QR", "CAMERA"):  # the printer stays: simulated devices still come up
        env[f"KIOSK__DEVICES__{kind}__ENABLED"] = "false"
    before = sim_proc.stats()["requests"]
    proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli.main", "run", "--simulate", "--platform", sim_proc.url],
                            env=env, cwd=Path(__file__).resolve().parents[2], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90  # a bound on waiting for the event, not a measured time
        while sim_proc.stats()["requests"] == before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.3)
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert sim_proc.stats()["requests"] > before  # the start-up health probe reached the platform at URL
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    assert "kiosk run: stopped" in err and "Traceback" not in err
    assert not (tmp_path / "platform-sim").exists()  # no embedded simulator state
