"""Signed remote commands: every refusal, at most once across restarts, and each action in a running kiosk.

The running-kiosk test drives the real app (simulated devices, the platform simulator) with its
fleet agent against a real Mosquitto; the screenshot is grabbed from a real Xvfb display.
"""
from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import tarfile
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from kiosk.app.fleet_link import FleetLink
from kiosk.app.remote_commands import x_display_screenshot
from kiosk.bootstrap.app import build_kiosk
from kiosk.fleet.apply import check_overrides, load_effective
from kiosk.fleet.bundle import Bundle, Signature, public_key_string
from kiosk.fleet.commands import (
    DEFAULT_THRESHOLDS,
    CommandChannel,
    CommandResult,
    build_command,
    command_topic_for_target,
    sign_command,
    thresholds_from,
    verify_command,
)
from kiosk.fleet.transport import make_client, publish_retained
from kiosk.fleet.verify import TrustPolicy, verify_bundle
from kiosk.infra.speech import NoSpeech

from .helpers import admin, wait_for

ME, GROUP = "qhb-cmd", "zhoucun"


def policy_for(keys, kiosk_id=ME, group=GROUP) -> TrustPolicy:
    return TrustPolicy.create([public_key_string(k.public_key()) for k in keys], 1, kiosk_id, group)


def command(keys, action="screenshot", target=f"kiosk:{ME}", *, ttl=timedelta(minutes=10), issued_ago=None):
    now = datetime.now(UTC)
    issued = now - issued_ago if issued_ago else now
    return sign_command(build_command(action, target, issued + ttl, issued_at=issued), keys).to_bytes()


# ------------------------------------------------------------------ the decision, no broker
def test_every_refusal_has_the_bundle_reason_code(admin_keys):
    pinned, stranger = admin_keys[:2], admin_keys[2]
    policy = policy_for(pinned)
    th = thresholds_from(None)
    assert verify_command(command(pinned[:1]), policy, th).reason == "ok"
    # a re-targeted copy (target edited after signing) no longer matches its signature
    doc = json.loads(command(pinned[:1]))
    doc["signed"]["target"] = "all"
    assert verify_command(json.dumps(doc).encode(), policy, th).reason == "bad_signature"
    assert verify_command(command([stranger]), policy, th).reason == "unknown_key"
    # restart and reboot need two signatures by default; one is not enough
    assert DEFAULT_THRESHOLDS["restart"] == 2 and DEFAULT_THRESHOLDS["screenshot"] == 1
    assert verify_command(command(pinned[:1], "restart"), policy, th).reason == "below_threshold"
    assert verify_command(command(pinned, "reboot"), policy, th).reason == "ok"
    # the threshold per action is configuration
    assert verify_command(command(pinned[:1], "restart"), policy, thresholds_from({"restart": 1})).reason == "ok"
    assert verify_command(command(pinned[:1], "screenshot"), policy,
                          thresholds_from({"screenshot": 2})).reason == "below_threshold"
    v = verify_command(command(pinned[:1], ttl=timedelta(hours=1), issued_ago=timedelta(hours=2)), policy, th)
    assert (v.reason, v.status) == ("expired", "expired")
    assert verify_command(command(pinned[:1], target="kiosk:qhb-other"), policy, th).reason == "not_targeted"
    assert verify_command(command(pinned[:1], target="group:boshan"), policy, th).reason == "not_targeted"
    assert verify_command(command(pinned[:1], target=f"group:{GROUP}"), policy, th).reason == "ok"
    assert verify_command(b"{not json", policy, th).reason == "malformed"
    assert verify_command(b" " * (70 * 1024), policy, th).reason == "too_large"
    doc = json.loads(command(pinned[:1]))
    doc["signed"]["action"] = "format-disk"
    assert verify_command(json.dumps(doc).encode(), policy, th).reason == "malformed"
    # a command signature is never a bundle signature (and the other way round): own signing tag
    good = json.loads(command(pinned[:1]))
    forged = Bundle(1, ["all"], {}, signed={"version": 1, "targets": ["all"], "config": {}},
                    signatures=[Signature(good["signatures"][0]["keyid"], base64.b64decode(good["signatures"][0]["sig"]))])
    assert verify_bundle(forged.to_bytes(), policy).reason == "bad_signature"
    # a bundle may not lower the command thresholds
    assert "command_thresholds" in (check_overrides({"fleet": {"command_thresholds": {"reboot": 1}}},
                                                    site_file=None, env={}) or "")


class Recorder:
    def __init__(self):
        self.calls = []

    def execute(self, cmd):
        self.calls.append(cmd.id)
        return CommandResult("done", data={"n": len(self.calls)})


def test_at_most_once_across_a_restart_and_redeliveries(tmp_path, admin_keys):
    published = []
    rec = Recorder()

    def channel():
        return CommandChannel(kiosk_id=ME, group=GROUP, policy=policy_for(admin_keys[:1]),
                              thresholds=thresholds_from(None), state_dir=tmp_path,
                              executor=rec, publish=lambda t, p: published.append((t, json.loads(p))))

    raw = command(admin_keys[:1])
    first = channel().handle(raw)
    assert (first["status"], first["data"]) == ("done", {"n": 1}) and published[-1][0] == f"qhb/kiosk/{ME}/result"
    again = channel()  # the kiosk restarted: the id is remembered on disk
    assert again.handle(raw, retained=True) is None  # the broker's retained copy on reconnect: already answered
    replay = again.handle(raw)  # someone publishes the same command again
    assert (replay["status"], replay["reason"]) == ("refused", "rollback")
    assert rec.calls == [json.loads(raw)["signed"]["id"]]
    expired = command(admin_keys[:1], ttl=timedelta(minutes=1), issued_ago=timedelta(minutes=5))
    assert again.handle(expired, retained=True)["status"] == "expired"
    assert again.handle(expired, retained=True) is None  # reported once, not on every reconnect
    assert len(rec.calls) == 1


# ------------------------------------------------------------------ the running kiosk, real broker
@pytest.fixture
def xvfb():
    """A real X server of its own; Xvfb picks a free display number and tells us on a pipe."""
    exe = shutil.which("Xvfb")
    if exe is None:
        pytest.fail("Xvfb is not installed (scripts/setup.sh installs xvfb)")
    r, w = os.pipe()
    proc = subprocess.Popen([exe, "-displayfd", str(w), "-screen", "0", "640x480x24", "-nolisten", "tcp"],
                            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r) as f:
        number = f.readline().strip()
    assert number, "Xvfb did not start"
    yield f":{number}"
    proc.terminate()
    proc.wait(10)


class ResultWatcher:
    def __init__(self, url: str):
        self.docs: list[dict] = []
        self.cv = threading.Condition()
        self.client, addr = make_client(url)
        subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("qhb/kiosk/+/result", qos=1)
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = self._on
        self.client.connect(addr.host, addr.port)
        self.client.loop_start()
        assert subscribed.wait(10)

    def _on(self, c, u, msg):
        if msg.payload and not msg.retain:
            with self.cv:
                self.docs.append(json.loads(msg.payload))
                self.cv.notify_all()

    def wait(self, command_id: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for d in self.docs:
                    if d.get("command_id") == command_id:
                        self.docs.remove(d)
                        return d
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no result for {command_id}; seen {self.docs}")
                self.cv.wait(left)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def cid(raw: bytes) -> str:
    return json.loads(raw)["signed"]["id"]


def test_each_action_in_a_running_kiosk(tmp_path, broker, site_factory, admin_keys, xvfb):
    site = site_factory("cmd", nkeys=3, broker_url=broker.url)
    cfg = load_effective(str(site)).config
    me = cfg.kiosk.id
    svc = build_kiosk(cfg, simulate=True, state_dir=tmp_path / "state", speech=NoSpeech(), status_interval_s=0.5)
    svc.start()
    assert svc.wait_ready(60)
    link = FleetLink(svc, str(site))
    link.commands.screenshot_source = lambda: x_display_screenshot(xvfb)
    reboots: list[float] = []
    link.commands.reboot = lambda: reboots.append(time.monotonic())
    link.commands.idle_poll_s = 0.1
    link.start()
    results = ResultWatcher(broker.url)

    def send(raw: bytes, topic: str | None = None) -> dict:
        target = json.loads(raw)["signed"]["target"]
        publish_retained(broker.url, [topic or command_topic_for_target(target)], raw)
        return results.wait(cid(raw))

    one, two = admin_keys[:1], admin_keys[:2]
    try:
        assert link.agent.connected.wait(30)
        # screenshot through the CLI: sign, then push
        keyfile = tmp_path / "admin.key"
        keyfile.write_bytes(admin_keys[0].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
        r = admin("command", "screenshot", "--target", f"kiosk:{me}", "--expires", "10m", "--key", str(keyfile),
                  "--out", str(tmp_path / "shot.json"))
        assert r.returncode == 0, r.stderr
        r = admin("push", str(tmp_path / "shot.json"), "--broker", broker.url)
        assert r.returncode == 0 and f"qhb/command/kiosk/{me}" in r.stdout, r.stderr
        shot_raw = (tmp_path / "shot.json").read_bytes()
        res = results.wait(cid(shot_raw))
        assert (res["status"], res["action"], res["kiosk_id"]) == ("done", "screenshot", me)
        png = Image.open(io.BytesIO(base64.b64decode(res["data"]["png_b64"])))
        assert (png.format, png.size) == ("PNG", (640, 480))

        # the same command again: executed once only
        res = send(shot_raw)
        assert (res["status"], res["reason"]) == ("refused", "rollback")

        # during a visit no screenshot (and no test page) is taken
        svc.ctx.session.choose_item(svc.browse.items()[0].code)
        res = send(command(one, target=f"kiosk:{me}"))
        assert (res["status"], res["reason"]) == ("refused", "visit_in_progress") and "png_b64" not in res["data"]
        res = send(command(one, "test-page", target=f"kiosk:{me}"))
        assert (res["status"], res["reason"]) == ("refused", "visit_in_progress")
        # a reboot waits for the idle moment, then runs after its result is out
        reboot = command(two, "reboot", target=f"group:{cfg.kiosk.group}")
        publish_retained(broker.url, [command_topic_for_target(f"group:{cfg.kiosk.group}")], reboot)
        time.sleep(1.0)
        assert reboots == []  # still waiting: a citizen is at the kiosk
        svc.visit.end_visit("test")
        res = results.wait(cid(reboot))
        assert (res["status"], res["data"]) == ("done", {"reboot": "now"})
        wait_for(lambda: reboots, what="the reboot after its result")
        assert len(reboots) == 1

        res = send(command(one, "test-page", target=f"kiosk:{me}"))
        assert (res["status"], res["data"]) == ("done", {"printed": True})
        res = send(command(one, "drain", target="all"))
        assert res["status"] == "done" and set(res["data"]) == {"delivered", "failed", "retried", "remaining"}

        res = send(command(one, "diagnostics", target=f"kiosk:{me}"))
        assert res["status"] == "done"
        with tarfile.open(fileobj=io.BytesIO(base64.b64decode(res["data"]["bundle_b64"]))) as tar:
            names = tar.getnames()
        assert "qhb-diagnose/diagnose.json" in names and "qhb-diagnose/config.json" in names

        # restart: one signature is refused, two are done and the app restarts at its next idle moment
        res = send(command(one, "restart", target=f"kiosk:{me}"))
        assert (res["status"], res["reason"]) == ("refused", "below_threshold")
        restart = command(two, "restart", target=f"kiosk:{me}")
        res = send(restart)
        assert res["status"] == "done" and res["data"]["restart"] == "at_idle"
        assert f"command:{cid(restart)}" in svc.station.restart_pending

        # re-targeted: another kiosk's command put on this kiosk's topic; expired; unknown key
        res = send(command(one, target="kiosk:qhb-elsewhere"), topic=f"qhb/command/kiosk/{me}")
        assert (res["status"], res["reason"]) == ("refused", "not_targeted")
        res = send(command(one, target=f"kiosk:{me}", ttl=timedelta(minutes=1), issued_ago=timedelta(minutes=2)))
        assert (res["status"], res["reason"]) == ("expired", "expired")
        res = send(command([Ed25519PrivateKey.generate()], target=f"kiosk:{me}"))
        assert (res["status"], res["reason"]) == ("refused", "unknown_key")
    finally:
        results.close()
        link.stop()
        svc.stop()
