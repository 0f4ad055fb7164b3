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


def _variant(tmp_path: Path, old: str, new: str, **kw) -> Path:
    site = production_site(tmp_path, **kw)
    text = site.read_text(encoding="utf-8")
    assert old in text, old
    site.write_text(text.replace(old, new, 1), encoding="utf-8")
    return site


_URL = 'base_url = "https://platform.example.gov.cn"'
_PIN_HASH = "technician_pin_hash = "
_WEAK_HASH = ("scrypt$n=1024,r=8,p=1$" + base64.b64encode(bytes(16)).decode() + "$"
              + base64.b64encode(bytes(32)).decode())


def _cred_mode(mode: int):
    def site(tmp_path: Path) -> Path:
        s = production_site(tmp_path)
        (tmp_path / "creds" / "platform-credentials.toml").chmod(mode)
        return s
    return site


def _key_mode(mode: int):
    def site(tmp_path: Path) -> Path:
        s = production_site(tmp_path)
        key = tmp_path / "var" / "kiosk.key"
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_bytes(os.urandom(16))
        key.chmod(mode)
        return s
    return site


#: every refusal the issue lists: (id, site file maker, the key named, a fragment of its reason)
REFUSALS = [
    ("embedded-simulator", lambda t: _variant(t, _URL, _URL + "\nembedded_simulator = true"),
     "platform.embedded_simulator", "embedded platform simulator must be off"),
    ("development-credential", lambda t: _variant(
        t, 'credentials_file = "', f'credentials_file = "{PROJECT_ROOT / "config" / "dev-credentials.toml"}"\n#'),
     "platform.credentials_file", "development credential is published"),
    ("credential-readable-by-group", _cred_mode(0o640), "platform.credentials_file", "by group or others (mode 0640)"),
    ("credential-readable-by-others", _cred_mode(0o604), "platform.credentials_file", "by group or others (mode 0604)"),
    ("storage-key-readable-by-others", _key_mode(0o644), "storage.key_file", "by group or others (mode 0644)"),
    ("plain-text-pin", lambda t: _variant(t, _PIN_HASH, 'technician_pin = "135792"\n#'),
     "ui.technician_pin", "a plain-text PIN"),
    ("pin-shorter-than-6", lambda t: _variant(t, _PIN_HASH, 'technician_pin = "13579"\n#'),
     "ui.technician_pin", "shorter than 6 digits"),
    ("weak-pin-hash", lambda t: _variant(t, _PIN_HASH, f'technician_pin_hash = "{_WEAK_HASH}"\n#'),
     "ui.technician_pin_hash", "below the scrypt floor"),
    ("http-platform", lambda t: _variant(t, _URL, 'base_url = "http://platform.example.gov.cn"'),
     "platform.base_url", "over https://"),
    ("verify-tls-off", lambda t: _variant(t, _URL, _URL + "\nverify_tls = false"),
     "platform.verify_tls", "verification must stay on"),
    ("simulated-driver", lambda t: production_site(t, extra='[devices.qr]\ndriver = "simulated"\n'),
     "devices.qr.driver", "a simulated device driver"),
    ("fleet-without-admin-keys", lambda t: production_site(t, fleet="[fleet]\nenabled = true\nmin_version = 3\n"),
     "fleet.admin_keys", "no administrator key is pinned"),
    ("threshold-above-distinct-keys", lambda t: production_site(
        t, fleet=f'[fleet]\nenabled = true\nmin_version = 3\nthreshold = 2\nadmin_keys = ["{KEY_A}", " {KEY_A}"]\n'),
     "fleet.threshold", "threshold 2 is above the 1 distinct admin key"),
    ("min-version-not-pinned", lambda t: production_site(t, fleet=f'[fleet]\nenabled = true\nadmin_keys = ["{KEY_A}"]\n'),
     "fleet.min_version", "must pin [fleet] min_version"),
]


@pytest.mark.parametrize(("make", "key", "reason"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_config_check_refuses_each_development_value_naming_key_reason_and_file(tmp_path, make, key, reason):
    site = make(tmp_path)
    r = _kiosk("config", "check", "--json", str(site))
    assert r.returncode == 1, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    named = {p["key"] for p in doc["problems"]}
    assert named == {key}, doc  # this value alone: the rest of the site file is fit for production
    (problem,) = [p for p in doc["problems"] if reason in p["message"]]
    assert problem["source"] == str(site)
    text = _kiosk("config", "check", str(site))
    assert text.returncode == 1 and f"{key}: " in text.stderr and reason in text.stderr


def test_config_check_lists_the_production_refusals_next_to_a_schema_error(tmp_path):
    """A threshold above the distinct keys is the schema's refusal; the development values beside it are named too."""
    site = _variant(tmp_path, _URL, 'base_url = "http://platform.example.gov.cn"\nverify_tls = false',
                    fleet=f'[fleet]\nenabled = true\nmin_version = 3\nthreshold = 3\nadmin_keys = ["{KEY_A}", "{KEY_B}"]\n',
                    extra='[devices.qr]\ndriver = "simulated"\n')
    r = _kiosk("config", "check", "--json", str(site))
    assert r.returncode == 1
    named = {p["key"] for p in json.loads(r.stdout)["problems"]}
    assert named == {"fleet.threshold", "platform.base_url", "platform.verify_tls", "devices.qr.driver"}
    # an unknown key stops the check at the schema (no guessing what the file meant)
    typo = _variant(tmp_path, _URL, _URL + "\nverify_tsl = false")
    r = _kiosk("config", "check", "--json", str(typo))
    assert r.returncode == 1 and [p["key"] for p in json.loads(r.stdout)["problems"]] == ["platform.verify_tsl"]


@pytest.mark.ui
def test_kiosk_run_exits_78_listing_every_refusal_of_the_site_file_alone(tmp_path):
    """No development profile: the site file's own values, and a schema refusal among them, stop `kiosk run`."""
    site = _variant(tmp_path, _PIN_HASH, 'technician_pin = "1234"\n#',
                    fleet=f'[fleet]\nenabled = true\nthreshold = 3\nadmin_keys = ["{KEY_A}", "{KEY_B}"]\n',
                    extra='[devices.qr]\ndriver = "simulated"\n')
    site.write_text(site.read_text(encoding="utf-8").replace(_URL, 'base_url = "http://platform.example.gov.cn"\n'
                                                             'embedded_simulator = true\nverify_tls = false'),
                    encoding="utf-8")
    (tmp_path / "creds" / "platform-credentials.toml").chmod(0o644)
    r = _kiosk("run", "--config", str(site), "--exit-after", "1", env_extra={"KIVY_NO_ARGS": "1"})
    assert r.returncode == EX_CONFIG, r.stderr[-3000:]
    assert "refusing to start" in r.stderr and "home screen shown" not in r.stderr
    for key, reason in [("fleet.threshold", "threshold 3 is above the 2 distinct"),
                        ("platform.embedded_simulator", "must be off"),
                        ("platform.credentials_file", "mode 0644"),
                        ("ui.technician_pin", "plain-text PIN"), ("ui.technician_pin", "shorter than 6 digits"),
                        ("platform.base_url", "https://"), ("platform.verify_tls", "must stay on"),
                        ("devices.qr.driver", "simulated"), ("fleet.min_version", "must pin")]:
        assert any(ln.strip().startswith(f"{key}: ") and reason in ln for ln in r.stderr.splitlines()), (key, r.stderr)
