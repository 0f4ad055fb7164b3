"""Kiosk agents against a real Mosquitto: group push, every attack refused, rollback, broker restart, status."""
from __future__ import annotations

import json
import signal
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.fleet.apply import load_effective
from kiosk.fleet.bundle import add_signature, build_signed, parse_bundle, sign
from kiosk.fleet.fleetview import push
from kiosk.fleet.health import HealthProviders

from .helpers import admin, start_agent_process, stop_process, wait_for, wait_snapshot
from .test_apply_cli import slow_platform_server  # noqa: F401  (fixture)


def make_bundle(keys, version, config, targets, **kw) -> bytes:
    kw.setdefault("expires", datetime.now(UTC) + timedelta(days=7))
    return sign(build_signed(config, version, targets, **kw), keys).to_bytes()


def test_group_push_two_agent_processes_apply_and_ack(tmp_path, broker, site_factory, admin_keys, watcher):
    sites = {n: site_factory(n, group=g, broker_url=broker.url)
             for n, g in (("k1", "zhoucun"), ("k2", "zhoucun"), ("k3", "boshan"))}
    procs = {n: start_agent_process(sites[n], tmp_path / f"{n}.log") for n in ("k1", "k3")}
    try:
        wait_snapshot(broker.url, lambda s: all(s.view(f"qhb-{n}").online for n in ("k1", "k3")), "agents online")
        (tmp_path / "over.toml").write_text('[catalog]\ndisabled = ["370300-QHB-001"]\n'
                                            '[[announcements]]\ntext = "周村组今晚22点系统升级"\n')
        from cryptography.hazmat.primitives import serialization  # the pinned admin key as the admin's PEM file
        keyfile = tmp_path / "admin.key"
        keyfile.write_bytes(admin_keys[0].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
        r = admin("sign", str(tmp_path / "over.toml"), "--key", str(keyfile), "--version", "1",
                  "--target", "group:zhoucun", "--expires", "7d", "--out", str(tmp_path / "b1.json"))
        assert r.returncode == 0, r.stderr
        r = admin("push", str(tmp_path / "b1.json"), "--broker", broker.url)
        assert r.returncode == 0 and "qhb/config/group/zhoucun" in r.stdout, r.stderr
        watcher.wait(lambda a: a["kiosk_id"] == "qhb-k1" and a["version"] == 1)
        # a kiosk that starts later catches up from the retained bundle
        procs["k2"] = start_agent_process(sites["k2"], tmp_path / "k2.log")
        ack2 = watcher.wait(lambda a: a["kiosk_id"] == "qhb-k2" and a["version"] == 1)
        ack1 = watcher.wait(lambda a: a["kiosk_id"] == "qhb-k1" and a["version"] == 1)
        for ack in (ack1, ack2):
            assert (ack["result"], ack["reason"]) == ("applied", "ok")
            assert "catalog.disabled" in ack["live_keys"] and "announcements" in ack["live_keys"]
        for n in ("k1", "k2"):
            cfg = load_effective(sites[n], env={}).config
            assert cfg.catalog.disabled == ["370300-QHB-001"] and cfg.announcements[0].text == "周村组今晚22点系统升级"
        assert load_effective(sites["k3"], env={}).config.catalog.disabled == []

        wait_snapshot(broker.url, lambda s: (s.view("qhb-k2").health or {}).get("config_version") == 1,
                             "k2 health with v1")
        r = admin("fleet", "acks", "--version", "1", "--broker", broker.url, "--json")
        out = json.loads(r.stdout)
        assert sorted(a["kiosk"] for a in out["applied"]) == ["qhb-k1", "qhb-k2"]
        assert out["refused"] == [] and out["not_answered"] == [] and out["targets"] == ["group:zhoucun"]

        r = admin("fleet", "status", "--broker", broker.url, "--json")
        rows = {row["kiosk"]: row for row in json.loads(r.stdout)}
        assert {k: (v["online"], v["config_version"]) for k, v in rows.items()} == {
            "qhb-k1": (True, 1), "qhb-k2": (True, 1), "qhb-k3": (True, 0)}
        # a kiosk that dies without a goodbye is marked offline by its last will
        procs["k3"].send_signal(signal.SIGKILL)
        procs["k3"].wait()
        wait_snapshot(broker.url, lambda s: s.view("qhb-k3").online is False, "k3 offline via last will")
        r = admin("fleet", "status", "--broker", broker.url)
        line = next(ln for ln in r.stdout.splitlines() if ln.startswith("qhb-k3"))
        assert " NO " in line
    finally:
        for p in procs.values():
            stop_process(p)


def test_every_attack_is_refused_with_its_reason(broker, site_factory, admin_keys, agent_factory, watcher):
    site = site_factory("kx", group="zhoucun", threshold=2, nkeys=2, broker_url=broker.url)
    # a small bundle size limit for this kiosk (added to its [fleet] table)
    text = site.read_text().replace("health_interval_s = 1.0", "health_interval_s = 1.0\nmax_bundle_bytes = 8192")
    site.write_text(text)
    agent = agent_factory(site)
    k2 = admin_keys[:2]
    now = datetime.now(UTC)

    def attempt(raw: bytes, topic_target: str = "kiosk:qhb-kx") -> dict:
        before = len(watcher.acks)
        _push_on(broker.url, raw, topic_target)
        return watcher.wait(lambda a: a["kiosk_id"] == "qhb-kx", since=before)

    good = make_bundle(k2, 5, {"ui": {"idle_timeout_s": 120}}, ["kiosk:qhb-kx"])
    assert attempt(good)["result"] == "applied"
    cases = {
        "bad_signature": _tamper(make_bundle(k2, 6, {"ui": {"idle_timeout_s": 60}}, ["kiosk:qhb-kx"])),
        "unknown_key": make_bundle([Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()], 7, {}, ["kiosk:qhb-kx"]),
        "below_threshold": make_bundle(admin_keys[:1], 8, {}, ["kiosk:qhb-kx"]),
        "rollback": make_bundle(k2, 4, {}, ["kiosk:qhb-kx"]),
        "expired": make_bundle(k2, 9, {}, ["kiosk:qhb-kx"], expires=now - timedelta(minutes=1)),
        "not_yet_valid": make_bundle(k2, 10, {}, ["kiosk:qhb-kx"], not_before=now + timedelta(days=1)),
        "not_targeted": make_bundle(k2, 11, {}, ["group:boshan"]),
        "invalid_content": make_bundle(k2, 12, {"ui": {"idle_timeout_s": "forever"}}, ["kiosk:qhb-kx"]),
        "too_large": make_bundle(k2, 13, {"announcements": [{"text": "公告" * 200}] * 20}, ["kiosk:qhb-kx"]),
        "malformed": b'{"format": "qhb-config-bundle/1", "signed": 1}',
        "forbidden_key": make_bundle(k2, 15, {"ui": {"production": False}, "platform": {"verify_tls": False},
                                              "announcements": [{"text": "看似无害"}]}, ["kiosk:qhb-kx"]),
        "expiry_required": make_bundle(k2, 16, {}, ["kiosk:qhb-kx"], expires=None),
        "expiry_too_long": make_bundle(k2, 17, {}, ["kiosk:qhb-kx"], expires=now + timedelta(days=45)),
    }
    for reason, raw in cases.items():
        ack = attempt(raw)
        assert (ack["result"], ack["reason"]) == ("refused", reason), (reason, ack)
        if reason == "forbidden_key":
            assert "ui.production" in ack["detail"] and "platform.verify_tls" in ack["detail"]
    # nothing refused changed the configuration or the trusted version
    assert agent.applier.trust.current_version() == 5
    assert agent.applier.effective().config.ui.idle_timeout_s == 120
    # the same forged bundle delivered again (reconnect, replay) is answered once, not re-evaluated
    n = len(watcher.acks)
    assert agent.handle(cases["bad_signature"]) is None and len(watcher.acks) == n
    # a restarted kiosk still refuses a replay of its last trusted bundle
    agent.stop()
    again = agent_factory(site)
    assert again.applier.trust.current_version() == 5
    from kiosk.fleet.verify import verify_bundle
    assert verify_bundle(good, again.policy, again.applier.trust.current_version()).reason == "rollback"
    ack = attempt(add_signature(parse_bundle(make_bundle(admin_keys[1:2], 14, {"ui": {"idle_timeout_s": 99}},
                                                         ["group:zhoucun"])), admin_keys[0]).to_bytes(),
                  "group:zhoucun")
    assert (ack["result"], ack["version"]) == ("applied", 14)


def _push_on(url: str, raw: bytes, target: str) -> None:
    """Publish on a chosen target's topic regardless of what the bundle says (attackers do)."""
    from kiosk.fleet.transport import make_client, topic_for_target
    c, addr = make_client(url)
    c.connect(addr.host, addr.port)
    c.loop_start()
    c.publish(topic_for_target(target), raw, qos=1, retain=True).wait_for_publish(10)
    c.disconnect()
    c.loop_stop()


def _tamper(raw: bytes) -> bytes:
    doc = json.loads(raw)
    doc["signed"]["config"]["ui"]["idle_timeout_s"] = 30
    return json.dumps(doc).encode()


def test_health_check_failure_rolls_back_and_reports(broker, site_factory, admin_keys, agent_factory, watcher,
                                                     slow_platform_server):  # noqa: F811
    site = site_factory("kr", broker_url=broker.url, extra=f'[platform]\nbase_url = "{slow_platform_server}"\n')
    agent = agent_factory(site)
    # the platform answers after 0.5 s; a pushed read timeout of 0.05 s would cut the kiosk off
    push(broker.url, make_bundle(admin_keys[:1], 3, {"platform": {"read_timeout_s": 0.05}}, ["all"]))
    ack = watcher.wait(lambda a: a["kiosk_id"] == "qhb-kr" and a["version"] == 3)
    assert (ack["result"], ack["reason"]) == ("rolled_back", "health_check_failed") and "0.05" in ack["detail"]
    assert agent.applier.effective().config.platform.read_timeout_s == 15
    r = admin("fleet", "acks", "--version", "3", "--broker", broker.url, "--json")
    out = json.loads(r.stdout)
    assert out["refused"] == [{"kiosk": "qhb-kr", "result": "rolled_back", "reason": "health_check_failed",
                               "at": ack["at"]}]


def test_broker_restart_while_agents_run(broker, site_factory, admin_keys, agent_factory, watcher):
    site = site_factory("kb", broker_url=broker.url)
    site.write_text(site.read_text().replace("health_interval_s = 1.0", "health_interval_s = 1.0\nreconnect_max_s = 2"))
    faults = {"printer": {"state": "error", "code": "paper_out", "message": "打印纸用完"},
              "idcard": {"state": "ready", "code": "ok", "message": "设备正常"}}
    agent = agent_factory(site, providers=HealthProviders(devices=lambda: faults,
                                                          queue=lambda: {"available": True, "depth": 3,
                                                                         "oldest_age_s": 42.0}))
    push(broker.url, make_bundle(admin_keys[:1], 1, {"ui": {"idle_timeout_s": 111}}, ["group:zhoucun"]))
    watcher.wait(lambda a: a["kiosk_id"] == "qhb-kb" and a["version"] == 1)
    watcher.close()

    broker.stop()
    wait_for(lambda: not agent.connected.is_set(), 30, "agent notices the broker is gone")
    # the kiosk keeps its configuration while offline
    assert agent.applier.effective().config.ui.idle_timeout_s == 111
    broker.start()  # same port; persistence is off, so nothing retained survived
    wait_for(agent.connected.is_set, 60, "agent reconnects with backoff")
    push(broker.url, make_bundle(admin_keys[:1], 2, {"ui": {"idle_timeout_s": 222}}, ["all"]))
    wait_for(lambda: agent.applier.trust.current_version() == 2, 60, "v2 applied after the restart")
    snap = wait_snapshot(broker.url, lambda s: (s.view("qhb-kb").health or {}).get("config_version") == 2,
                         "health after restart")
    row = next(r for r in snap.status_rows() if r["kiosk"] == "qhb-kb")
    assert row["online"] is True and row["queue_depth"] == 3 and row["device_faults"] == ["printer"]
    r = admin("fleet", "status", "--broker", broker.url)
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("qhb-kb"))
    assert "printer" in line and " yes " in line


def test_not_yet_valid_bundle_applies_once_valid(broker, site_factory, admin_keys, agent_factory, watcher):
    agent = agent_factory(site_factory("kf", broker_url=broker.url))
    # bundles carry whole seconds: compare against the instant the bundle actually names
    start = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    push(broker.url, make_bundle(admin_keys[:1], 4, {"ui": {"idle_timeout_s": 44}}, ["kiosk:qhb-kf"], not_before=start))
    first = watcher.wait(lambda a: a["kiosk_id"] == "qhb-kf" and a["version"] == 4)
    assert (first["result"], first["reason"]) == ("refused", "not_yet_valid")
    later = watcher.wait(lambda a: a["kiosk_id"] == "qhb-kf" and a["version"] == 4 and a["result"] == "applied")
    assert datetime.now(UTC) >= start and later["reason"] == "ok"
    assert agent.applier.effective().config.ui.idle_timeout_s == 44
    assert [a["result"] for a in watcher.acks if a["kiosk_id"] == "qhb-kf"] == ["refused", "applied"]
