"""Trust store, apply with last-known-good and rollback, `kiosk config verify`, `kiosk-admin keygen/sign`."""
from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kiosk.fleet.apply import ConfigApplier, HealthResult, check_overrides, classify, load_effective
from kiosk.fleet.bundle import build_signed, parse_bundle, sign
from kiosk.fleet.trust import TrustStore
from kiosk.fleet.verify import TrustPolicy, verify_bundle

ENV: dict[str, str] = {}  # isolate from the developer's environment
KIOSK = [sys.executable, "-m", "kiosk.cli.main"]
ADMIN = [sys.executable, "-m", "kiosk.cli.admin"]


def bundle(keys, version, config, targets=("group:zhoucun",)) -> bytes:
    return sign(build_signed(config, version, list(targets)), keys).to_bytes()


def accept(applier: ConfigApplier, raw: bytes):
    cfg = applier.effective().config
    v = verify_bundle(raw, TrustPolicy.from_config(cfg), applier.trust.current_version(),
                      content_check=applier.content_check)
    return v


def test_apply_live_and_restart_keys(site_factory, admin_keys):
    site = site_factory()
    seen = {}
    ap = ConfigApplier(site, env=ENV, on_live_change=lambda cfg, keys: seen.update(live=keys, cfg=cfg),
                       on_restart_needed=lambda keys: seen.update(restart=keys))
    raw = bundle(admin_keys[:1], 3, {"catalog": {"disabled": ["X1"]}, "ui": {"idle_timeout_s": 100, "width": 1920},
                                    "announcements": [{"text": "今日系统维护"}]})
    v = accept(ap, raw)
    assert v.accepted, v
    res = ap.apply(v.bundle, raw)
    assert res.status == "applied"
    assert res.live_keys == ["announcements", "catalog.disabled", "ui.idle_timeout_s"]
    assert res.restart_keys == ["ui.width"] == seen["restart"]
    assert seen["cfg"].catalog.disabled == ["X1"]
    eff = load_effective(site, env=ENV)
    assert eff.config.ui.width == 1920 and eff.sources["ui.width"] == "fleet bundle v3"
    # the trusted version survives a new process: a replay of v3 or older is a rollback
    ap2 = ConfigApplier(site, env=ENV)
    assert ap2.trust.current_version() == 3
    assert accept(ap2, raw).reason == "rollback"
    assert accept(ap2, bundle(admin_keys[:1], 2, {})).reason == "rollback"
    (ap2.state_dir / "trusted.json").write_text("lost")  # metadata damaged: the kept bundle still says v3
    assert ap2.trust.current_version() == 3


def test_schema_invalid_and_forbidden_overrides(site_factory, admin_keys):
    ap = ConfigApplier(site_factory(), env=ENV)
    for cfg in ({"ui": {"idle_timeout_s": -5}}, {"nonsense": {"a": 1}},
                {"ui": {"idle_warning_s": 500}}, {"fleet": {"admin_keys": ["ed25519:xx"]}},
                {"fleet": {"threshold": 1}}):
        v = accept(ap, bundle(admin_keys[:1], 9, cfg))
        assert v.reason == "invalid_content", cfg
    assert check_overrides({"hours": {"self_service_24h": False}}, env=ENV) is None


def test_classify():
    live, restart = classify(["hours.staffed", "platform.base_url", "ui.idle_warning_s", "devices.qr.driver"])
    assert live == ["hours.staffed", "ui.idle_warning_s"]
    assert restart == ["devices.qr.driver", "platform.base_url"]


@pytest.fixture
def platform_server():
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_health_failure_rolls_back_to_last_good(site_factory, admin_keys, platform_server):
    from .conftest import free_port

    site = site_factory(extra=f'[platform]\nbase_url = "{platform_server}"\n')
    ap = ConfigApplier(site, env=ENV)
    good = bundle(admin_keys[:1], 4, {"announcements": [{"text": "好的配置"}]})
    assert ap.apply(accept(ap, good).bundle, good).status == "applied"
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    bad = bundle(admin_keys[:1], 5, {"platform": {"base_url": dead}, "announcements": [{"text": "坏的配置"}]})
    res = ap.apply(accept(ap, bad).bundle, bad)
    assert (res.status, res.reason) == ("rolled_back", "health_check_failed")
    assert dead in res.problems[0]
    eff = ap.effective().config
    assert eff.platform.base_url == platform_server and eff.announcements[0].text == "好的配置"
    assert ap.trust.current_version() == 5  # the bad bundle cannot be replayed either
    assert accept(ap, bad).reason == "rollback"


def test_crash_mid_apply_recovers_last_good(site_factory, admin_keys):
    site = site_factory()
    calls = []
    ap = ConfigApplier(site, env=ENV, health_check=lambda b, a: calls.append(1) or HealthResult(True))
    raw = bundle(admin_keys[:1], 1, {"ui": {"idle_timeout_s": 77}})
    ap.apply(accept(ap, raw).bundle, raw)
    # simulate a crash after pushed.json was written but before it was confirmed
    (ap.state_dir / "pushed.json").write_text(json.dumps({"version": 2, "config": {"ui": {"idle_timeout_s": 11}}}))
    assert ap.recover() is True
    assert ap.effective().config.ui.idle_timeout_s == 77
    assert ap.recover() is False


def test_trust_store_never_goes_down(tmp_path):
    ts = TrustStore(tmp_path)
    assert ts.current_version() == 0
    ts.record(b"x", 3, "d", "applied")
    with pytest.raises(ValueError):
        ts.record(b"y", 3, "d", "applied")
    (tmp_path / "trusted.json").write_text("garbage")
    assert ts.current_version() == 0  # neither metadata nor bundle readable: nothing trusted


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2],
                          env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"}, **kw)


def test_keygen_sign_verify_apply_via_cli(tmp_path, site_factory):
    r = run(ADMIN + ["keygen", "--out", str(tmp_path / "alice")])
    assert r.returncode == 0, r.stderr
    pub = (tmp_path / "alice.pub").read_text().strip()
    assert pub.startswith("ed25519:") and (tmp_path / "alice.key").stat().st_mode & 0o777 == 0o600
    assert run(ADMIN + ["keygen", "--out", str(tmp_path / "alice")]).returncode != 0  # never overwrites

    site = tmp_path / "k" / "site.toml"
    from .conftest import write_site
    write_site(tmp_path / "k", kiosk_id="qhb-k", group="zhoucun", pubs=[pub])
    (tmp_path / "over.toml").write_text('[catalog]\ndisabled = ["A"]\n[ui]\nidle_timeout_s = 95\n')
    r = run(ADMIN + ["sign", str(tmp_path / "over.toml"), "--key", str(tmp_path / "alice.key"), "--version", "7",
                     "--target", "group:zhoucun", "--target", "kiosk:other",
                     "--expires", "2099-01-01T00:00:00+08:00", "--out", str(tmp_path / "b7.json")])
    assert r.returncode == 0, r.stderr
    b = parse_bundle((tmp_path / "b7.json").read_bytes())
    assert b.targets == ["group:zhoucun", "kiosk:other"] and b.issued_by == [pub]

    r = run(KIOSK + ["config", "verify", str(tmp_path / "b7.json"), "--config", str(site)])
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["accepted"], out["reason"], out["version"]) == (True, "ok", 7)
    r = run(KIOSK + ["config", "verify", str(tmp_path / "b7.json"), "--config", str(site), "--apply"])
    assert r.returncode == 0 and json.loads(r.stdout)["apply"]["status"] == "applied"
    r = run(KIOSK + ["config", "verify", str(tmp_path / "b7.json"), "--config", str(site)])
    out = json.loads(r.stdout)
    assert r.returncode == 1 and (out["accepted"], out["reason"], out["version"]) == (False, "rollback", 7)

    (tmp_path / "bad.toml").write_text('[ui]\nidle_timeout_s = "soon"\n')
    r = run(ADMIN + ["sign", str(tmp_path / "bad.toml"), "--key", str(tmp_path / "alice.key"), "--version", "8",
                     "--target", "all", "--out", str(tmp_path / "b8.json")])
    assert r.returncode != 0 and "invalid_content" in r.stderr
    r = run(ADMIN + ["sign", str(tmp_path / "bad.toml"), "--key", str(tmp_path / "alice.key"), "--version", "8",
                     "--target", "all", "--no-check", "--out", str(tmp_path / "b8.json")])
    assert r.returncode == 0
    r = run(KIOSK + ["config", "verify", str(tmp_path / "b8.json"), "--config", str(site)])
    assert r.returncode == 1 and json.loads(r.stdout)["reason"] == "invalid_content"
    (tmp_path / "junk.json").write_bytes(b"not a bundle")
    r = run(KIOSK + ["config", "verify", str(tmp_path / "junk.json"), "--config", str(site)])
    assert r.returncode == 1 and json.loads(r.stdout)["reason"] == "malformed"


def test_app_side_watcher_sees_only_confirmed_bundles(site_factory, admin_keys):
    from kiosk.fleet.apply import PushedConfigWatcher

    site = site_factory()
    watcher = PushedConfigWatcher(site, env=ENV)
    assert watcher.poll() is None
    ap = ConfigApplier(site, env=ENV, health_check=lambda b, a: HealthResult(False, ["printer gone"]))
    bad = bundle(admin_keys[:1], 1, {"ui": {"idle_timeout_s": 33}})
    assert ap.apply(accept(ap, bad).bundle, bad).status == "rolled_back"
    assert watcher.poll() is None  # a rolled-back bundle never reaches the app
    ap.health_check = lambda b, a: HealthResult(True)
    good = bundle(admin_keys[:1], 2, {"ui": {"idle_timeout_s": 44, "fullscreen": True}})
    ap.apply(accept(ap, good).bundle, good)
    cfg, live, restart = watcher.poll()
    assert cfg.ui.idle_timeout_s == 44 and live == ["ui.idle_timeout_s"] and restart == ["ui.fullscreen"]
    assert watcher.poll() is None
