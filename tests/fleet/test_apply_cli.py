"""Trust store, apply with last-known-good and rollback, `kiosk config verify`, `kiosk-admin keygen/sign`."""
from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kiosk.fleet.apply import ConfigApplier, HealthResult, check_overrides, classify, load_effective
from kiosk.fleet.bundle import build_signed, parse_bundle, sign
from kiosk.fleet.trust import TrustStore

ENV: dict[str, str] = {}  # isolate from the developer's environment
KIOSK = [sys.executable, "-m", "kiosk.cli.main"]
ADMIN = [sys.executable, "-m", "kiosk.cli.admin"]


def bundle(keys, version, config, targets=("group:zhoucun",)) -> bytes:
    expires = datetime.now(UTC) + timedelta(days=7)
    return sign(build_signed(config, version, list(targets), expires=expires), keys).to_bytes()


def accept(applier: ConfigApplier, raw: bytes):
    return applier.verify(raw)


def test_apply_live_and_restart_keys(site_factory, admin_keys):
    site = site_factory()
    seen = {}
    ap = ConfigApplier(site, env=ENV, on_live_change=lambda cfg, keys: seen.update(live=keys, cfg=cfg),
                       on_restart_needed=lambda keys: seen.update(restart=keys))
    raw = bundle(admin_keys[:1], 3, {"catalog": {"disabled": ["X1"]}, "ui": {"idle_timeout_s": 100},
                                    "devices": {"printer": {"paper_mm": 58}},
                                    "announcements": [{"text": "今日系统维护"}]})
    v = accept(ap, raw)
    assert v.accepted, v
    res = ap.apply(v.bundle, raw)
    assert res.status == "applied"
    assert res.live_keys == ["announcements", "catalog.disabled", "ui.idle_timeout_s"]
    assert res.restart_keys == ["devices.printer.paper_mm"] == seen["restart"]
    assert seen["cfg"].catalog.disabled == ["X1"]
    eff = load_effective(site, env=ENV)
    assert eff.config.devices["printer"].model_extra["paper_mm"] == 58
    assert eff.sources["devices.printer.paper_mm"] == "fleet bundle v3"
    # the trusted version survives a new process: a replay of v3 or older is a rollback
    ap2 = ConfigApplier(site, env=ENV)
    assert ap2.trust.current_version() == 3
    assert accept(ap2, raw).reason == "rollback"
    assert accept(ap2, bundle(admin_keys[:1], 2, {})).reason == "rollback"
    (ap2.state_dir / "trusted.json").write_text("lost")  # metadata damaged: the kept bundle still says v3
    assert ap2.trust.current_version() == 3


def test_schema_invalid_and_forbidden_overrides(site_factory, admin_keys):
    ap = ConfigApplier(site_factory(), env=ENV)
    for cfg in ({"ui": {"idle_timeout_s": -5}}, {"ui": {"idle_warning_s": 500}}, {"logging": {"level": "LOUD"}}):
        v = accept(ap, bundle(admin_keys[:1], 9, cfg))
        assert v.reason == "invalid_content", cfg
    for cfg, key in (({"nonsense": {"a": 1}}, "nonsense.a"), ({"fleet": {"admin_keys": ["ed25519:xx"]}},
                     "fleet.admin_keys"), ({"fleet": {"threshold": 1}}, "fleet.threshold"),
                     ({"logging": {"dir": "/proc/x"}}, "logging.dir")):
        v = accept(ap, bundle(admin_keys[:1], 9, cfg))
        assert v.reason == "forbidden_key" and key in v.detail, cfg
    assert check_overrides({"hours": {"self_service_24h": False}}, env=ENV) is None
    assert "ui.production" in check_overrides({"ui": {"production": False}}, env=ENV)
    # whoever calls apply directly: a forbidden key is never written
    raw = bundle(admin_keys[:1], 10, {"platform": {"verify_tls": False}})
    from kiosk.fleet.bundle import parse_bundle as parse
    with pytest.raises(ValueError, match="platform.verify_tls"):
        ap.apply(parse(raw), raw)
    assert ap.active_version() == 0


def test_classify():
    live, restart = classify(["hours.staffed", "platform.base_url", "ui.idle_warning_s", "devices.qr.driver"])
    assert live == ["hours.staffed", "ui.idle_warning_s"]
    assert restart == ["devices.qr.driver", "platform.base_url"]
    # a new 好差评 indicator set shows on the next rating screen, without a restart
    assert classify(["evaluation.version", "evaluation.levels"]) == (["evaluation.levels", "evaluation.version"], [])


@pytest.fixture
def platform_server():
    yield from _serve(0.0)


@pytest.fixture
def slow_platform_server():
    """Answers every request after half a second."""
    yield from _serve(0.5)


def _serve(delay_s: float):
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(delay_s)
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


def test_health_failure_rolls_back_to_last_good(site_factory, admin_keys, slow_platform_server):
    site = site_factory(extra=f'[platform]\nbase_url = "{slow_platform_server}"\n')
    ap = ConfigApplier(site, env=ENV)
    good = bundle(admin_keys[:1], 4, {"announcements": [{"text": "好的配置"}]})
    assert ap.apply(accept(ap, good).bundle, good).status == "applied"
    # the platform answers after 0.5 s: a pushed read timeout of 0.05 s cuts the kiosk off from it
    bad = bundle(admin_keys[:1], 5, {"platform": {"read_timeout_s": 0.05}, "announcements": [{"text": "坏的配置"}]})
    res = ap.apply(accept(ap, bad).bundle, bad)
    assert (res.status, res.reason) == ("rolled_back", "health_check_failed")
    assert "does not answer" in res.problems[0]
    eff = ap.effective().config
    assert eff.platform.read_timeout_s == 15 and eff.announcements[0].text == "好的配置"
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
                          env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "KIOSK_PROFILE": "development"}, **kw)


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
    sign7 = ADMIN + ["sign", str(tmp_path / "over.toml"), "--key", str(tmp_path / "alice.key"), "--version", "7",
                     "--target", "group:zhoucun", "--target", "kiosk:other", "--out", str(tmp_path / "b7.json")]
    r = run(sign7)  # --expires is required
    assert r.returncode == 2 and "--expires" in r.stderr and not (tmp_path / "b7.json").exists()
    for too_long in ("31d", "2099-01-01T00:00:00+08:00"):
        r = run(sign7 + ["--expires", too_long])
        assert r.returncode != 0 and "expiry_too_long" in r.stderr and not (tmp_path / "b7.json").exists()
    r = run(sign7 + ["--expires", "7d"])
    assert r.returncode == 0, r.stderr
    b = parse_bundle((tmp_path / "b7.json").read_bytes())
    assert b.targets == ["group:zhoucun", "kiosk:other"] and b.issued_by == [pub]
    assert b.issued_at is not None and b.expires - b.issued_at == timedelta(days=7)
    # keys that are not pushable are refused at signing, --no-check or not
    (tmp_path / "evil.toml").write_text('[ui]\nproduction = false\n[platform]\nverify_tls = false\n')
    for extra in ([], ["--no-check"]):
        r = run(ADMIN + ["sign", str(tmp_path / "evil.toml"), "--key", str(tmp_path / "alice.key"), "--version", "8",
                         "--target", "all", "--expires", "1d", "--out", str(tmp_path / "evil.json"), *extra])
        assert r.returncode != 0 and "forbidden_key" in r.stderr and "ui.production" in r.stderr
        assert "platform.verify_tls" in r.stderr and not (tmp_path / "evil.json").exists()

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
                     "--target", "all", "--expires", "1d", "--out", str(tmp_path / "b8.json")])
    assert r.returncode != 0 and "invalid_content" in r.stderr
    r = run(ADMIN + ["sign", str(tmp_path / "bad.toml"), "--key", str(tmp_path / "alice.key"), "--version", "8",
                     "--target", "all", "--expires", "1d", "--no-check", "--out", str(tmp_path / "b8.json")])
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
    good = bundle(admin_keys[:1], 2, {"ui": {"idle_timeout_s": 44}, "logging": {"level": "DEBUG"}})
    ap.apply(accept(ap, good).bundle, good)
    cfg, live, restart = watcher.poll()
    assert cfg.ui.idle_timeout_s == 44 and live == ["ui.idle_timeout_s"] and restart == ["logging.level"]
    assert watcher.poll() is None


def test_verify_with_a_site_file_broken_after_start_refuses_instead_of_raising(site_factory, admin_keys):
    site = site_factory()
    ap = ConfigApplier(site, env=ENV)
    site.write_text(site.read_text() + "\n[ui]\nidle_timeout_s = -1\n")
    v = ap.verify(bundle(admin_keys[:1], 1, {"announcements": [{"text": "x"}]}))
    assert (v.accepted, v.reason) == (False, "invalid_content") and "idle_timeout_s" in v.detail
