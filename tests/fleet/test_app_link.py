"""The fleet agent inside the kiosk process: real device health out, live configuration in."""
from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

from fleet.helpers import AckWatcher, wait_for
from kiosk.app.fleet_link import FleetLink
from kiosk.bootstrap.app import build_kiosk
from kiosk.fleet.apply import load_effective
from kiosk.fleet.bundle import build_signed, sign
from kiosk.fleet.transport import health_topic, make_client
from kiosk.infra.speech import NoSpeech


def _week() -> datetime:
    return datetime.now(UTC) + timedelta(days=7)


def push(url: str, topic: str, payload: bytes) -> None:
    client, addr = make_client(url)
    client.connect(addr.host, addr.port)
    client.loop_start()
    client.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


class HealthWatcher:
    def __init__(self, url: str, kiosk_id: str):
        self.docs: list[dict] = []
        self.cv = threading.Condition()
        self.client, addr = make_client(url)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(health_topic(kiosk_id), qos=1)
        self.client.on_message = self._on
        self.client.connect(addr.host, addr.port)
        self.client.loop_start()

    def _on(self, c, u, msg):
        if msg.payload:
            with self.cv:
                self.docs.append(json.loads(msg.payload))

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_running_kiosk_reports_live_devices_and_applies_pushed_keys(tmp_path, broker, site_factory, admin_keys):
    site = site_factory("app", broker_url=broker.url)
    cfg = load_effective(str(site)).config
    svc = build_kiosk(cfg, simulate=True, state_dir=tmp_path / "state", speech=NoSpeech(), status_interval_s=0.5)
    svc.start()
    link = FleetLink(svc, str(site)).start()
    health = HealthWatcher(broker.url, cfg.kiosk.id)
    acks = AckWatcher(broker.url)
    try:
        # health carries the adapters' real state, not the standalone agent's "unknown"
        doc = wait_for(lambda: next((d for d in reversed(health.docs) if d.get("devices")), None), what="health")
        assert doc["devices"]["printer"]["state"] == "ready" and doc["device_faults"] == []
        assert doc["queue"]["available"] is True

        code = svc.browse.items()[0].code
        bundle = sign(build_signed({"catalog": {"disabled": [code]},
                                    "announcements": [{"text": "今晚22点系统维护，自助服务暂停半小时"}],
                                    "ui": {"idle_timeout_s": 150},
                                    "devices": {"printer": {"paper_mm": 58}}},
                                   2, [f"kiosk:{cfg.kiosk.id}"], expires=_week()), admin_keys[:1]).to_bytes()
        push(broker.url, f"qhb/config/kiosk/{cfg.kiosk.id}", bundle)
        ack = acks.wait(lambda a: a["kiosk_id"] == cfg.kiosk.id and a["version"] == 2)
        assert ack["result"] == "applied", ack
        wait_for(lambda: code not in {i.code for i in svc.browse.items()}, what="item switched off live")
        assert svc.browse.announcements() == ["今晚22点系统维护，自助服务暂停半小时"]
        assert svc.ctx.session.idle_timeout_s == 150
        assert any(k.startswith("devices.printer") for k in svc.station.restart_pending)
        kinds: list[str] = []
        svc.ctx.events.drain(lambda ev: kinds.append(ev.kind), limit=10_000)
        assert "catalog" in kinds  # the screens are told to rebuild their lists and announcements
    finally:
        acks.close()
        health.close()
        link.stop()
        svc.stop()


def test_kiosk_run_restarts_at_idle_for_keys_that_need_it(tmp_path, broker, site_factory, admin_keys):
    """`kiosk run` with [fleet] enabled exits 75 at an idle moment so systemd restarts it on the new config."""
    import os
    import subprocess
    import sys

    from kiosk.cli.run_cmds import RESTART_EXIT_CODE

    site = site_factory("runner", broker_url=broker.url)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli.main", "run", "--simulate", "--config", str(site)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("home screen shown" in ln for ln in lines), what="home screen")
        bundle = sign(build_signed({"devices": {"printer": {"paper_mm": 58}}},
                                   5, ["kiosk:qhb-runner"], expires=_week()), admin_keys[:1]).to_bytes()
        push(broker.url, "qhb/config/kiosk/qhb-runner", bundle)
        rc = proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(5)
    out = "".join(lines)
    assert rc == RESTART_EXIT_CODE, out
    assert "restarting for pushed configuration: devices.printer" in out
    # what the restarted kiosk will load: site file + the confirmed bundle
    assert load_effective(str(site)).config.devices["printer"].model_extra["paper_mm"] == 58
