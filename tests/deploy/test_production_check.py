"""Production refuses development values: `production_problems`, `kiosk config check` (exit 1), `kiosk run` (exit 78)."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.cli.admin_enroll import enroll_kiosk
from kiosk.config import load_config_layers
from kiosk.infra.pin_hash import hash_pin
from kiosk.infra.production import EX_CONFIG, production_problems

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KEY_A = "ed25519:" + base64.b64encode(bytes(range(32))).decode()
KEY_B = "ed25519:" + base64.b64encode(bytes(range(1, 33))).decode()


def production_site(tmp_path: Path, *, extra: str = "", fleet: str | None = None) -> Path:
    """A site file that passes the production check: enrolled credential, PIN hash, https, real drivers."""
    creds = tmp_path / "creds"
    if not (creds / "platform-credentials.toml").exists():
        enroll_kiosk("qhb-370306-0042", "zhoucun", creds)
    fleet = fleet if fleet is not None else (
        f'[fleet]\nenabled = true\nadmin_keys = ["{KEY_A}", "{KEY_B}"]\nthreshold = 2\nmin_version = 12\n'
        f'username = "qhb-370306-0042"\npassword_file = "{creds / "mqtt-password"}"\n')
    site = tmp_path / "site.toml"
    site.write_text(f"""
[kiosk]
id = "qhb-370306-0042"
group = "zhoucun"
region_code = "370306"
station_name = "周村区某某街道便民服务站"

[ui]
production = true
technician_pin_hash = "{hash_pin("135792")}"

[platform]
base_url = "https://platform.example.gov.cn"
credentials_file = "{creds / "platform-credentials.toml"}"

[storage]
data_dir = "{tmp_path / "var"}"
key_file = "{tmp_path / "var" / "kiosk.key"}"

[devices.idcard]
driver = "ga467-serial"
port = "/dev/qhb/idcard"

[devices.printer]
driver = "escpos-usb"
id_vendor = 0x0416
id_product = 0x5011

{fleet}
{extra}
""", encoding="utf-8")
    return site


def problems(site: Path | None, **kw) -> dict[str, list[str]]:
    loaded = load_config_layers(site_file=site, **{"env": {}, "profile": "", **kw})
    out: dict[str, list[str]] = {}
    for p in production_problems(loaded):
        out.setdefault(p.key, []).append(p.reason)
    return out


def test_a_proper_production_site_passes_and_production_off_checks_nothing(tmp_path):
    site = production_site(tmp_path)
    assert problems(site) == {}
    assert problems(site, cli={"ui": {"production": False}, "platform": {"embedded_simulator": True}}) == {}


def test_every_development_value_is_named_with_its_reason(tmp_path):
    got = problems(None, profile="development", cli={"ui": {"production": True, "technician_pin": "1234"}})
    assert "(profile)" in got
    assert "embedded platform simulator" in got["platform.embedded_simulator"][0]
    assert "development credential" in got["platform.credentials_file"][0]
    assert "https://" in got["platform.base_url"][0]
    assert any("plain-text" in r for r in got["ui.technician_pin"])
    assert any("shorter than 6 digits" in r for r in got["ui.technician_pin"])
    assert {"devices.idcard.driver", "devices.qr.driver", "devices.camera.driver", "devices.printer.driver",
            "fleet.min_version"} <= set(got)
    # a site file over the development profile: what it sets is fine, the rest is still named
    site_over_dev = problems(production_site(tmp_path), profile="development")
    assert set(site_over_dev) == {"(profile)", "platform.embedded_simulator", "ui.technician_pin", "devices.qr.driver",
                                  "devices.camera.driver"}


def test_each_rule_on_its_own(tmp_path):
    site = production_site(tmp_path)
    assert "platform.verify_tls" in problems(site, cli={"platform": {"verify_tls": False}})
    weak = "scrypt$n=1024,r=8,p=1$" + base64.b64encode(os.urandom(16)).decode() + "$" + \
        base64.b64encode(os.urandom(32)).decode()
    assert "below the scrypt floor" in problems(site, cli={"ui": {"technician_pin_hash": weak}})["ui.technician_pin_hash"][0]
    assert "kiosk-admin pin-hash" in problems(site, cli={"ui": {"technician_pin_hash": ""}})["ui.technician_pin_hash"][0]
    assert "simulated" in problems(site, cli={"devices": {"qr": {"driver": "simulated", "enabled": False}}})[
        "devices.qr.driver"][0]
    assert "not found" in problems(site, cli={"platform": {"credentials_file": str(tmp_path / "nope.toml")}})[
        "platform.credentials_file"][0]


def test_credential_files_open_to_group_or_others_are_refused(tmp_path):
    site = production_site(tmp_path)
    cred = tmp_path / "creds" / "platform-credentials.toml"
    pw = tmp_path / "creds" / "mqtt-password"
    assert oct(cred.stat().st_mode & 0o777) == "0o600" and oct(pw.stat().st_mode & 0o777) == "0o600"
    cred.chmod(0o640)
    pw.chmod(0o604)
    got = problems(site)
    assert "mode 0640" in got["platform.credentials_file"][0]
    assert "mode 0604" in got["fleet.password_file"][0]
    # a copy of the development credential under another name is still the development credential
    copy = tmp_path / "renamed.toml"
    copy.write_bytes((PROJECT_ROOT / "config" / "dev-credentials.toml").read_bytes())
    copy.chmod(0o600)
    assert "development credential" in problems(site, cli={"platform": {"credentials_file": str(copy)}})[
        "platform.credentials_file"][0]


def test_fleet_rules_count_keys_by_raw_bytes_and_want_min_version_from_the_site_file(tmp_path):
    no_keys = production_site(tmp_path, fleet="[fleet]\nenabled = true\nmin_version = 3\n")
    assert "no administrator key" in problems(no_keys)["fleet.admin_keys"][0]
    padded = KEY_A.replace("ed25519:", "ed25519: ")  # the same key spelled differently
    same = production_site(tmp_path, fleet=f'[fleet]\nenabled = true\nmin_version = 3\nthreshold = 1\n'
                                          f'admin_keys = ["{KEY_A}", "{padded}"]\n')
    assert problems(same) == {}
    unpinned = production_site(tmp_path, fleet=f'[fleet]\nenabled = true\nadmin_keys = ["{KEY_A}"]\n')
    assert "min_version" in problems(unpinned)["fleet.min_version"][0]
    # pinned by the environment, not the site file: still refused
    loaded = load_config_layers(site_file=unpinned, env={"KIOSK__FLEET__MIN_VERSION": "9"}, profile="")
    assert [p.key for p in production_problems(loaded)] == ["fleet.min_version"]


def _kiosk(*args: str, env_extra: dict[str, str] | None = None, timeout: float = 120,
           module: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK") and k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(env_extra or {})
    argv = [sys.executable, "-m", "kiosk.cli.main", *args] if module else [sys.executable, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=PROJECT_ROOT)


def test_config_check_exits_1_listing_every_problem_and_0_when_fit(tmp_path):
    site = production_site(tmp_path)
    ok = _kiosk("config", "check", str(site))
    assert ok.returncode == 0, ok.stderr
    bad = _kiosk("config", "check", "--json", env_extra={"KIOSK_PROFILE": "development", "KIOSK__UI__PRODUCTION": "true",
                                                         "KIOSK__PLATFORM__VERIFY_TLS": "false"})
    assert bad.returncode == 1
    doc = json.loads(bad.stdout)
    keys = {p["key"] for p in doc["problems"]}
    assert doc["ok"] is False and {"platform.embedded_simulator", "platform.credentials_file", "ui.technician_pin",
                                   "platform.base_url", "platform.verify_tls", "devices.qr.driver"} <= keys


@pytest.mark.ui
def test_kiosk_run_exits_78_before_any_window_or_kivy(tmp_path):
    r = _kiosk("-X", "importtime", "-m", "kiosk.cli.main", "run", "--exit-after", "1", module=False,
               env_extra={"KIOSK_PROFILE": "development", "KIOSK__UI__PRODUCTION": "true", "KIVY_NO_ARGS": "1"})
    assert r.returncode == EX_CONFIG, r.stderr[-2000:]
    assert "refusing to start" in r.stderr and "platform.embedded_simulator" in r.stderr
    assert "ui.technician_pin" in r.stderr and "devices.qr.driver" in r.stderr
    assert "config/development.toml" in r.stderr  # each key names the file that set it
    imported = [ln.rsplit("|", 1)[-1].strip() for ln in r.stderr.splitlines() if ln.startswith("import time:")]
    assert "kiosk.infra.production" in imported  # -X importtime did report
    assert not [m for m in imported if m.split(".")[0] == "kivy"], "Kivy was imported before the refusal"
    assert "home screen shown" not in r.stderr
