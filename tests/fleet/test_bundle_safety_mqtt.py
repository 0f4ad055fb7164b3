"""Issue 11 against a real Mosquitto: the rollback floor from the site file, the production check
on a pushed bundle, oversize messages dropped before parsing, and the bounded work queue."""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import textwrap
import threading

import pytest

from kiosk.fleet import agent as agent_mod
from kiosk.fleet import verify as verify_mod
from kiosk.fleet.apply import HealthResult
from kiosk.fleet.bundle import public_key_string
from kiosk.fleet.transport import make_client, topic_for_target
from kiosk.infra.pin_hash import hash_pin

from .helpers import wait_for
from .test_agent_mqtt import _push_on, make_bundle


def _ack_for(watcher, kiosk_id, version, since=0):
    return watcher.wait(lambda a: a["kiosk_id"] == kiosk_id and a["version"] == version, since=since)


def test_min_version_is_the_rollback_floor_of_a_reimaged_kiosk(broker, site_factory, admin_keys, agent_factory,
                                                               watcher):
    """A fresh state directory (re-imaged kiosk) still refuses an old signed bundle: the site file pins the floor."""
    site = site_factory("kv", broker_url=broker.url, extra="min_version = 7\n")
    agent = agent_factory(site)
    assert agent.applier.trust.current_version() == 0 and not any(agent.applier.state_dir.glob("trusted*"))
    # an untrusted broker replays an old, validly signed bundle
    _push_on(broker.url, make_bundle(admin_keys[:1], 5, {"ui": {"idle_timeout_s": 55}}, ["kiosk:qhb-kv"]),
             "kiosk:qhb-kv")
    ack = _ack_for(watcher, "qhb-kv", 5)
    assert (ack["result"], ack["reason"]) == ("refused", "rollback") and "min_version 7" in ack["detail"]
    assert agent.applier.effective().config.ui.idle_timeout_s != 55
    _push_on(broker.url, make_bundle(admin_keys[:1], 7, {"ui": {"idle_timeout_s": 77}}, ["kiosk:qhb-kv"]),
             "kiosk:qhb-kv")
    ack = _ack_for(watcher, "qhb-kv", 7)
    assert (ack["result"], ack["reason"]) == ("applied", "ok")
    assert agent.applier.effective().config.ui.idle_timeout_s == 77


def _production_site(tmp, pubs, broker_url):
    """A site file that passes the production check (no development profile, enrolled-style credential)."""
    tmp.mkdir(parents=True, exist_ok=True)
    cred = tmp / "platform-credentials.toml"
    cred.write_text(f'kiosk_id = "qhb-kp"\nsecret = "{secrets.token_hex(32)}"\n')
    os.chmod(cred, 0o600)
    keys = ", ".join(f'"{p}"' for p in pubs)
    site = tmp / "site.toml"
    site.write_text(textwrap.dedent(f"""\
        [kiosk]
        id = "qhb-kp"
        group = "zhoucun"
        region_code = "370306"
        station_name = "周村区测试站"
        [ui]
        production = true
        technician_pin_hash = "{hash_pin('135790')}"
        [platform]
        base_url = "https://platform.example.gov.cn"
        credentials_file = "{cred}"
        [storage]
        data_dir = "{tmp / 'var'}"
        key_file = "{tmp / 'var' / 'kiosk.key'}"
        [logging]
        dir = "{tmp / 'var' / 'log'}"
        [fleet]
        enabled = true
        broker_url = "{broker_url}"
        admin_keys = [{keys}]
        threshold = 1
        min_version = 1
        state_dir = "{tmp / 'fleet'}"
        health_interval_s = 1.0
        """), encoding="utf-8")
    return site, cred


def test_unsafe_config_refused_when_a_bundle_would_take_effect(tmp_path, broker, admin_keys, agent_factory,
                                                               watcher, monkeypatch):
    monkeypatch.delenv("KIOSK_PROFILE", raising=False)  # a real kiosk: defaults + site file, no development profile
    site, cred = _production_site(tmp_path / "kp", [public_key_string(admin_keys[0].public_key())], broker.url)
    from kiosk.config import load_config_layers
    from kiosk.infra.production import production_problems
    assert production_problems(load_config_layers(site, env={})) == []  # fit for production as written
    agent = agent_factory(site)
    push1 = make_bundle(admin_keys[:1], 1, {"announcements": [{"text": "生产配置"}]}, ["kiosk:qhb-kp"])
    _push_on(broker.url, push1, "kiosk:qhb-kp")
    assert _ack_for(watcher, "qhb-kp", 1)["result"] == "applied"
    # the credential becomes readable by others: the next bundle would run the kiosk on an unsafe configuration
    os.chmod(cred, 0o644)
    _push_on(broker.url, make_bundle(admin_keys[:1], 2, {"announcements": [{"text": "新公告"}]}, ["kiosk:qhb-kp"]),
             "kiosk:qhb-kp")
    ack = _ack_for(watcher, "qhb-kp", 2)
    assert (ack["result"], ack["reason"]) == ("refused", "unsafe_config"), ack
    assert "platform.credentials_file" in ack["detail"]
    assert agent.applier.effective().config.announcements[0].text == "生产配置"
    assert agent.applier.trust.current_version() == 1


def test_oversize_message_dropped_before_parsing(broker, site_factory, admin_keys, agent_factory, watcher,
                                                 monkeypatch):
    parsed: list[int] = []  # sizes of everything the agent side hands to the bundle parser
    for mod in (agent_mod, verify_mod):
        real = mod.parse_bundle
        monkeypatch.setattr(mod, "parse_bundle", lambda data, *a, _real=real, **kw: parsed.append(len(data))
                            or _real(data, *a, **kw))
    agent = agent_factory(site_factory("kz", broker_url=broker.url))
    huge = b'{"format": "qhb-config-bundle/1", "signed": {"pad": "' + b"x" * (20 * 1024 * 1024) + b'"}}'
    _push_on(broker.url, huge, "kiosk:qhb-kz")
    ack = watcher.wait(lambda a: a["kiosk_id"] == "qhb-kz" and a["reason"] == "too_large")
    assert ack["result"] == "refused" and ack["version"] is None and str(len(huge)) in ack["detail"]
    assert agent.dropped == 1
    # the agent still serves the next valid bundle
    _push_on(broker.url, make_bundle(admin_keys[:1], 3, {"ui": {"idle_timeout_s": 133}}, ["kiosk:qhb-kz"]),
             "kiosk:qhb-kz")
    assert _ack_for(watcher, "qhb-kz", 3)["result"] == "applied"
    assert agent.applier.effective().config.ui.idle_timeout_s == 133
    assert parsed and max(parsed) < agent.policy.max_bytes  # the 20 MB message never reached a parser


def test_work_queue_is_bounded_and_drops_the_oldest(broker, site_factory, admin_keys, agent_factory, watcher,
                                                   caplog):
    entered, gate = threading.Event(), threading.Event()

    def blocking_check(before, after):
        entered.set()
        gate.wait(120)
        return HealthResult(True)

    agent = agent_factory(site_factory("kq", broker_url=broker.url), health_check=blocking_check)
    _push_on(broker.url, make_bundle(admin_keys[:1], 1, {"ui": {"idle_timeout_s": 111}}, ["kiosk:qhb-kq"]),
             "kiosk:qhb-kq")
    wait_for(entered.is_set, 60, "worker busy in the health check")
    flood = 3 * agent_mod.WORK_MAX
    caplog.set_level(logging.WARNING, logger="kiosk.fleet.agent")
    c, addr = make_client(broker.url)
    c.connect(addr.host, addr.port)
    c.loop_start()
    topic = topic_for_target("kiosk:qhb-kq")
    try:
        infos = [c.publish(topic, f"junk {i}".encode(), qos=1) for i in range(flood)]
        infos.append(c.publish(topic, make_bundle(admin_keys[:1], 2, {"ui": {"idle_timeout_s": 122}},
                                                  ["kiosk:qhb-kq"]), qos=1))
        for info in infos:
            info.wait_for_publish(30)
    finally:
        c.disconnect()
        c.loop_stop()
    wait_for(lambda: agent.dropped == flood + 1 - agent_mod.WORK_MAX, 60, "the flood received")
    assert agent._work.qsize() == agent_mod.WORK_MAX
    assert any("queue full" in r.getMessage() for r in caplog.records)
    gate.set()
    # the newest message (the valid bundle) was kept; the oldest junk was dropped
    ack = _ack_for(watcher, "qhb-kq", 2)
    assert ack["result"] == "applied" and agent.applier.trust.current_version() == 2
    wait_for(lambda: agent._work.qsize() == 0, 60, "queue drained")
    refused = [a for a in watcher.acks if a["kiosk_id"] == "qhb-kq" and a["reason"] == "malformed"]
    assert len(refused) < agent_mod.WORK_MAX  # at most what fitted in the queue, never the whole flood


#: One sample per security-relevant category the issue names (ui.production ... kiosk.id); each hides
#: behind a pushable change, as an attacker holding one signing key would try.
FORBIDDEN_SAMPLES = [
    ("ui.production", {"ui": {"production": False}}),
    ("platform.base_url", {"platform": {"base_url": "http://evil.example"}}),
    ("platform.verify_tls", {"platform": {"verify_tls": False}}),
    ("platform.embedded_simulator", {"platform": {"embedded_simulator": True}}),
    ("platform.credentials_file", {"platform": {"credentials_file": "/tmp/attacker-credentials.toml"}}),
    ("storage.key_file", {"storage": {"key_file": "/tmp/attacker.key"}}),
    ("logging.dir", {"logging": {"dir": "/proc/x", "level": "DEBUG"}}),  # the crash loop of the issue
    ("fleet.admin_keys", {"fleet": {"admin_keys": ["ed25519:" + "A" * 43 + "="]}}),
    ("fleet.broker_url", {"fleet": {"broker_url": "mqtt://evil.example:1883"}}),
    ("kiosk.id", {"kiosk": {"id": "qhb-other"}}),
]


def test_every_forbidden_category_is_refused_by_a_running_agent(broker, site_factory, admin_keys, agent_factory,
                                                                watcher):
    site = site_factory("kf", broker_url=broker.url)
    agent = agent_factory(site)
    before = agent.applier.effective().config
    for n, (key, config) in enumerate(FORBIDDEN_SAMPLES, start=1):
        since = len(watcher.acks)
        _push_on(broker.url, make_bundle(admin_keys[:1], n, {"announcements": [{"text": "看似无害"}], **config},
                                         ["kiosk:qhb-kf"]), "kiosk:qhb-kf")
        ack = _ack_for(watcher, "qhb-kf", n, since)
        assert (ack["result"], ack["reason"]) == ("refused", "forbidden_key"), (key, ack)
        assert key in ack["detail"] and "announcements" not in ack["detail"], (key, ack["detail"])
        if key == "logging.dir":
            assert "logging.level" not in ack["detail"]  # the pushable key beside it is not blamed
    after = agent.applier.effective().config
    assert after.model_dump() == before.model_dump() and agent.applier.trust.current_version() == 0
    assert after.logging.dir == before.logging.dir != "/proc/x"
    assert not (agent.applier.state_dir / "pushed.json").exists()
    # a device tuning value of the wrong kind is pushable in name only: refused before it takes effect
    n = len(FORBIDDEN_SAMPLES) + 1
    _push_on(broker.url, make_bundle(admin_keys[:1], n, {"devices": {"printer": {"paper_mm": 57}}},
                                     ["kiosk:qhb-kf"]), "kiosk:qhb-kf")
    ack = _ack_for(watcher, "qhb-kf", n)
    assert (ack["result"], ack["reason"]) == ("refused", "invalid_content") and "paper_mm" in ack["detail"], ack
    # and the agent still takes what is safe
    _push_on(broker.url, make_bundle(admin_keys[:1], n + 1, {"logging": {"level": "DEBUG"}}, ["kiosk:qhb-kf"]),
             "kiosk:qhb-kf")
    ack = _ack_for(watcher, "qhb-kf", n + 1)
    assert (ack["result"], ack["restart_keys"]) == ("applied", ["logging.level"]), ack


def test_lost_state_directory_and_an_old_bundle_replayed_is_refused(broker, site_factory, admin_keys, agent_factory,
                                                                    watcher):
    """The kiosk trusted v8; its state directory is lost (re-imaged disk); a broker replays v5 and v6 (both
    validly signed, not expired): the floor from the site file's min_version refuses them."""
    site = site_factory("kl", broker_url=broker.url, extra="min_version = 7\n")
    old = {v: make_bundle(admin_keys[:1], v, {"ui": {"idle_timeout_s": 10 * v}}, ["kiosk:qhb-kl"]) for v in (5, 6)}
    agent = agent_factory(site)
    _push_on(broker.url, make_bundle(admin_keys[:1], 8, {"ui": {"idle_timeout_s": 88}}, ["kiosk:qhb-kl"]),
             "group:zhoucun")
    assert _ack_for(watcher, "qhb-kl", 8)["result"] == "applied"
    state = agent.applier.state_dir
    agent.stop()
    shutil.rmtree(state)  # the high-water mark is gone
    _push_on(broker.url, b"", "group:zhoucun")  # the untrusted broker withholds the current bundle ...
    since = len(watcher.acks)
    again = agent_factory(site)
    assert again.applier.trust.current_version() == 0
    for v, raw in old.items():  # ... and replays older ones
        _push_on(broker.url, raw, "kiosk:qhb-kl")
        ack = _ack_for(watcher, "qhb-kl", v, since)
        assert (ack["result"], ack["reason"]) == ("refused", "rollback") and "min_version 7" in ack["detail"], ack
    assert again.applier.trust.current_version() == 0
    assert again.applier.effective().config.ui.idle_timeout_s not in (50, 60)


def test_command_queue_is_bounded_and_oversize_commands_are_dropped_unparsed(broker, site_factory, admin_keys,
                                                                            agent_factory, caplog, monkeypatch):
    from datetime import UTC, datetime, timedelta

    from kiosk.fleet import commands as commands_mod
    from kiosk.fleet.commands import CommandResult, build_command, command_topic_for_target, sign_command

    entered, gate, done = threading.Event(), threading.Event(), []

    class Blocking:
        def execute(self, cmd):
            entered.set()
            gate.wait(120)
            done.append(cmd.id)
            return CommandResult("done")

    parsed: list[int] = []  # sizes of everything handed to the command parser
    real = commands_mod.parse_command
    monkeypatch.setattr(commands_mod, "parse_command",
                        lambda data, *a, **kw: parsed.append(len(data)) or real(data, *a, **kw))
    try:
        agent = agent_factory(site_factory("kc", broker_url=broker.url), command_executor=Blocking())

        def cmd() -> bytes:
            expires = datetime.now(UTC) + timedelta(minutes=10)
            return sign_command(build_command("screenshot", "kiosk:qhb-kc", expires), admin_keys[:1]).to_bytes()

        first, last = cmd(), cmd()
        caplog.set_level(logging.WARNING, logger="kiosk.fleet.commands")
        c, addr = make_client(broker.url)
        c.connect(addr.host, addr.port)
        c.loop_start()
        topic = command_topic_for_target("kiosk:qhb-kc")
        try:
            c.publish(topic, first, qos=1).wait_for_publish(30)
            wait_for(entered.is_set, 60, "the command worker busy in an action")
            flood = 3 * commands_mod.COMMAND_QUEUE_MAX
            oversize = b"{" + b" " * (commands_mod.MAX_COMMAND_BYTES + 10) + b"}"  # under the bundle limit
            assert len(oversize) < agent.policy.max_bytes
            infos = [c.publish(topic, f"junk {i}".encode(), qos=1) for i in range(flood)]
            infos += [c.publish(topic, oversize, qos=1), c.publish(topic, last, qos=1)]
            for info in infos:
                info.wait_for_publish(30)
        finally:
            c.disconnect()
            c.loop_stop()
        expected = flood + 1 - commands_mod.COMMAND_QUEUE_MAX + 1  # the overflow, and the oversize one
        wait_for(lambda: agent.commands.dropped == expected, 60, "the flood received")
        assert agent.commands._work.qsize() == commands_mod.COMMAND_QUEUE_MAX
        assert any("command queue full" in r.getMessage() for r in caplog.records)
        assert any("over the size limit dropped unparsed" in r.getMessage() for r in caplog.records)
        gate.set()
        wait_for(lambda: len(done) == 2, 60, "the newest command carried out")  # kept; the oldest junk dropped
        assert parsed and max(parsed) <= commands_mod.MAX_COMMAND_BYTES  # the oversize one never reached the parser
    finally:
        gate.set()  # never leave the executor blocked


@pytest.fixture(autouse=True)
def _quiet_paho():
    logging.getLogger("paho").setLevel(logging.WARNING)


def test_a_stored_layer_with_a_forbidden_key_never_takes_effect(site_factory):
    """A pushed.json left by an older release (which let logging.dir through) or written by hand is ignored
    whole: the kiosk starts on its site file instead of crash-looping on /proc/x."""
    import json

    from kiosk.fleet.apply import load_effective

    site = site_factory("ks")
    base = load_effective(site, env={}).config
    state = base.resolve_path(base.fleet.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    (state / "pushed.json").write_text(json.dumps({"version": 3, "digest": "x", "config": {
        "logging": {"dir": "/proc/x"}, "announcements": [{"text": "旧版本推送"}]}}), "utf-8")
    eff = load_effective(site, env={}).config
    assert eff.logging.dir == base.logging.dir != "/proc/x" and eff.announcements == base.announcements
