"""Restart keys with a boot counter: two starts without READY under a pushed layer restore the last good one."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from kiosk.fleet import boot_guard
from kiosk.fleet.apply import ConfigApplier, boot_ready, boot_started, load_effective
from kiosk.fleet.bundle import build_signed, parse_bundle, sign

from .helpers import PROJECT_ROOT, clean_env
from .test_agent_mqtt import _push_on

ENV: dict[str, str] = {}


def _bundle(keys, version, config, targets=("group:zhoucun",)) -> bytes:
    expires = datetime.now(UTC) + timedelta(days=7)
    return sign(build_signed(config, version, list(targets), expires=expires), keys).to_bytes()


def _apply(ap: ConfigApplier, raw: bytes):
    v = ap.verify(raw)
    assert v.accepted, v
    return ap.apply(v.bundle, raw)


GOOD = {"announcements": [{"text": "上一版配置"}]}
RESTART = {"announcements": [{"text": "新配置"}], "devices": {"printer": {"paper_mm": 58}}}


def test_guard_counts_starts_and_restores_after_two_failures(site_factory, admin_keys):
    site = site_factory("g1")
    ap = ConfigApplier(site, env=ENV)
    assert _apply(ap, _bundle(admin_keys[:1], 1, GOOD)).restart_keys == []
    assert boot_guard.armed(ap.state_dir) is None  # live keys only: nothing to guard
    res = _apply(ap, _bundle(admin_keys[:1], 2, RESTART))
    assert res.restart_keys == ["devices.printer.paper_mm"]
    guard = boot_guard.armed(ap.state_dir)
    assert guard["version"] == 2 and guard["fallback"]["version"] == 1 and guard["starts"] == 0
    boot_ready(site, env=ENV)  # READY of the process that was running before the restart: not a boot of v2
    assert boot_guard.armed(ap.state_dir) is not None
    boot_started(site, env=ENV)
    boot_started(site, env=ENV)  # two starts that never reached READY
    assert ap.effective().config.announcements[0].text == "新配置"
    boot_started(site, env=ENV)  # the third start undoes the layer before loading it
    eff = load_effective(site, env=ENV).config
    assert eff.announcements[0].text == "上一版配置" and "paper_mm" not in (eff.devices["printer"].model_extra or {})
    report = boot_guard.failure_report(ap.state_dir)
    assert report["version"] == 2 and report["restored_version"] == 1 and report["failed_starts"] == 2
    assert boot_guard.armed(ap.state_dir) is None
    assert ap.trust.current_version() == 2  # and v2 cannot be replayed
    assert ap.verify(_bundle(admin_keys[:1], 2, RESTART)).reason == "rollback"


def test_guard_disarmed_when_the_new_layer_reaches_ready(site_factory, admin_keys):
    site = site_factory("g2")
    ap = ConfigApplier(site, env=ENV)
    _apply(ap, _bundle(admin_keys[:1], 1, RESTART))
    assert boot_guard.armed(ap.state_dir)["fallback"] is None  # nothing pushed before: the site file alone
    boot_started(site, env=ENV)
    boot_ready(site, env=ENV)
    assert boot_guard.armed(ap.state_dir) is None and boot_guard.failure_report(ap.state_dir) is None
    for _ in range(3):
        boot_started(site, env=ENV)  # later crashes are not this layer's: nothing armed, nothing restored
    assert ap.effective().config.announcements[0].text == "新配置"


def _run_env(extra_env: dict[str, str] | None = None) -> dict[str, str]:
    return {k: v for k, v in clean_env().items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")} | (extra_env or {})


def _kiosk_run(site, extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    """A start that is expected to fail on its own."""
    return subprocess.run([sys.executable, "-m", "kiosk.cli.main", "run", "--simulate", "--config", str(site)],
                          cwd=PROJECT_ROOT, env=_run_env(extra_env), capture_output=True, text=True, timeout=180)


def _kiosk_run_until_ready(site, tmp_path) -> tuple[int, str]:
    """`kiosk run` as systemd runs it (Type=notify): wait for READY=1 on the notify socket, then SIGTERM."""
    sock_path = tmp_path / "notify.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(sock_path))
    s.settimeout(180)  # only guards against hanging forever
    p = subprocess.Popen([sys.executable, "-m", "kiosk.cli.main", "run", "--simulate", "--config", str(site)],
                         cwd=PROJECT_ROOT, env=_run_env({"NOTIFY_SOCKET": str(sock_path)}),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        while not s.recv(4096).decode().startswith("READY=1"):
            pass
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=120)
        return p.returncode, out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        s.close()


def test_kiosk_run_that_fails_twice_after_a_restart_key_goes_back_to_last_good(
        tmp_path, broker, site_factory, admin_keys, agent_factory, watcher):
    """Real processes: the agent applies v2 with a restart key; `kiosk run` then fails to start twice
    (its start-up is broken from outside, as a crash would be); the third start restores v1, comes up,
    and the next acknowledgement reports v2 as rolled back with reason restart_failed."""
    site = site_factory("g3", broker_url=broker.url)
    agent = agent_factory(site)
    _push_on(broker.url, _bundle(admin_keys[:1], 1, GOOD, ["kiosk:qhb-g3"]), "kiosk:qhb-g3")
    watcher.wait(lambda a: a["kiosk_id"] == "qhb-g3" and a["version"] == 1 and a["result"] == "applied")
    _push_on(broker.url, _bundle(admin_keys[:1], 2, RESTART, ["kiosk:qhb-g3"]), "kiosk:qhb-g3")
    ack = watcher.wait(lambda a: a["kiosk_id"] == "qhb-g3" and a["version"] == 2)
    assert ack["result"] == "applied" and ack["restart_keys"] == ["devices.printer.paper_mm"]
    agent.stop()
    state = agent.applier.state_dir

    crash = {"KIOSK__UI__IDLE_WARNING_S": "999"}  # start-up fails before READY
    for n in (1, 2):
        r = _kiosk_run(site, crash)
        assert r.returncode != 0 and "home screen shown" not in r.stderr, r.stderr[-2000:]
        assert json.loads((state / boot_guard.GUARD).read_text())["starts"] == n
    assert load_effective(site, env=ENV).config.announcements[0].text == "新配置"

    since = len(watcher.acks)
    rc, out = _kiosk_run_until_ready(site, tmp_path)  # the third start: last good restored, then READY
    assert rc == 0, out[-2000:]
    eff = load_effective(site, env=ENV).config
    assert eff.announcements[0].text == "上一版配置" and "paper_mm" not in (eff.devices["printer"].model_extra or {})
    assert not (state / boot_guard.GUARD).exists()
    if boot_guard.failure_report(state) is not None:  # the app's own agent may not have connected before it closed
        agent_factory(site)
    ack = watcher.wait(lambda a: a["kiosk_id"] == "qhb-g3" and a["version"] == 2 and a["reason"] == "restart_failed",
                       since=since)
    assert ack["result"] == "rolled_back" and "devices.printer.paper_mm" in ack["detail"]
    assert boot_guard.failure_report(state) is None  # reported once
    assert parse_bundle((state / "trusted.bundle").read_bytes()).version == 2  # the floor stays at v2
