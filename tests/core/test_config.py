import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from kiosk.config import ConfigError, load_config, load_config_layers

ROOT = Path(__file__).resolve().parents[2]


def test_development_profile_loads_with_contract_keys():
    c = load_config(env={}, profile="development")
    assert c.kiosk.region_code == "370306"
    assert c.ui.idle_warning_s < c.ui.idle_timeout_s
    assert c.platform.base_url.startswith("http")
    assert set(c.devices) >= {"idcard", "qr", "camera", "printer"}
    assert all(d.driver for d in c.devices.values())


def test_defaults_hold_only_safe_values_and_a_bare_load_names_what_is_missing():
    raw = tomllib.loads((ROOT / "config" / "default.toml").read_text("utf-8"))
    assert raw["platform"]["embedded_simulator"] is False
    assert "credentials_file" not in raw["platform"] and "base_url" not in raw["platform"]
    assert "technician_pin" not in raw["ui"] and "technician_pin_hash" not in raw["ui"]
    assert "devices" not in raw and "id" not in raw["kiosk"]
    with pytest.raises(ConfigError) as e:
        load_config(env={}, profile="")
    missing = {k for k, _src, msg in e.value.problems if msg == "required key is missing"}
    assert {"kiosk.id", "kiosk.station_name", "platform.base_url", "platform.credentials_file"} <= missing


def test_profile_comes_from_the_parameter_or_kiosk_profile_and_sits_under_the_site_file(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('[kiosk]\nid = "qhb-370306-0042"\n', "utf-8")
    loaded = load_config_layers(site_file=site, env={"KIOSK_PROFILE": "development"})
    assert loaded.profile == "development" and loaded.site_file == str(site)
    assert loaded.config.kiosk.id == "qhb-370306-0042" and loaded.sources["kiosk.id"] == str(site)
    assert loaded.sources["platform.embedded_simulator"].endswith("development.toml")
    assert loaded.config.ui.technician_pin == "246810"
    with pytest.raises(ConfigError, match="not a profile name"):
        load_config_layers(profile="../secrets")


def test_layer_order_defaults_site_pushed_env_cli(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('[kiosk]\nstation_name = "某村"\n[ui]\nidle_timeout_s = 100\nidle_warning_s = 10\n', "utf-8")
    loaded = load_config_layers(
        site_file=site,
        overrides=[("bundle v3", {"ui": {"idle_timeout_s": 120}})],
        env={"KIOSK__UI__IDLE_WARNING_S": "20"},
        cli={"ui": {"elderly_mode": True}},
    )
    c = loaded.config
    assert c.kiosk.station_name == "某村" and loaded.sources["kiosk.station_name"] == str(site)
    assert c.ui.idle_timeout_s == 120 and loaded.sources["ui.idle_timeout_s"] == "bundle v3"
    assert c.ui.idle_warning_s == 20 and loaded.sources["ui.idle_warning_s"] == "environment"
    assert c.ui.elderly_mode is True


def test_error_names_key_file_and_expectation(tmp_path):
    site = tmp_path / "bad.toml"
    site.write_text('[ui]\nidle_timeout_s = "soon"\n[devices.printer]\ndriver = ""\nport = 9100\n[kiosk]\nregion_code = "37"\n', "utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(site_file=site, env={})
    keys = {k: (src, msg) for k, src, msg in e.value.problems}
    assert keys["ui.idle_timeout_s"][0] == str(site) and "number" in keys["ui.idle_timeout_s"][1]
    assert keys["kiosk.region_code"][0] == str(site) and "pattern" in keys["kiosk.region_code"][1]
    assert keys["devices.printer.driver"][0] == str(site)


def test_unknown_keys_and_bad_syntax_are_refused(tmp_path):
    bad = tmp_path / "typo.toml"
    bad.write_text("[ui]\nidle_timout_s = 30\n", "utf-8")
    with pytest.raises(ConfigError, match="idle_timout_s: unknown key"):
        load_config(site_file=bad, env={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[ui\n", "utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(site_file=broken, env={})


def test_warning_must_be_shorter_than_timeout():
    with pytest.raises(ConfigError, match="idle_warning_s must be shorter"):
        load_config(env={"KIOSK__UI__IDLE_WARNING_S": "500"})


def test_cli_config_check_exit_codes(tmp_path):
    kiosk = str(Path(sys.executable).parent / "kiosk")
    ok = subprocess.run([kiosk, "config", "check"], capture_output=True, text=True)  # conftest: development
    assert ok.returncode == 0 and "qhb-dev-0001" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[kiosk]\nregion_code = "x"\n', "utf-8")
    r = subprocess.run([kiosk, "config", "check", str(bad)], capture_output=True, text=True)
    assert r.returncode == 1 and "kiosk.region_code" in r.stderr and str(bad) in r.stderr


def test_every_section_refuses_unknown_keys_naming_key_and_file(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text("[fleet]\ntreshold = 2\n[storage]\nkeyfile = \"x\"\n[devices.printer]\ndriver = \"escpos-serial\"\n"
                    "devfile = \"/dev/ttyUSB1\"\nbuadrate = 19200\n[devices.qr]\ndriver = \"evdev\"\ngrab = true\n",
                    "utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(site_file=site, env={})
    got = {k: (src, msg) for k, src, msg in e.value.problems}
    assert got["fleet.treshold"] == (str(site), "unknown key")
    assert got["storage.keyfile"] == (str(site), "unknown key")
    assert got["devices.printer.buadrate"][0] == str(site) and "baudrate" in got["devices.printer.buadrate"][1]
    assert not any(k.startswith("devices.qr") or k == "devices.printer.devfile" for k in got)
    wrong_driver = tmp_path / "driver.toml"
    wrong_driver.write_text('[devices.camera]\ndriver = "opencv2"\n', "utf-8")
    with pytest.raises(ConfigError, match=r"devices.camera.driver: unknown driver 'opencv2' \(known: opencv, simulated\)"):
        load_config(site_file=wrong_driver, env={})


def test_the_declared_device_parameters_cover_exactly_the_driver_table():
    from kiosk.bootstrap.drivers import DRIVERS
    from kiosk.config import DEVICE_PARAMETERS

    assert set(DEVICE_PARAMETERS) == set(DRIVERS)


def test_threshold_is_between_1_and_the_distinct_admin_keys_by_raw_bytes(tmp_path):
    import base64

    a = "ed25519:" + base64.b64encode(bytes(range(32))).decode()
    b = "ed25519:" + base64.b64encode(bytes(range(1, 33))).decode()
    site = tmp_path / "site.toml"

    def load(keys: list[str], threshold: int):
        site.write_text(f"[fleet]\nadmin_keys = {keys!r}\nthreshold = {threshold}\n".replace("'", '"'), "utf-8")
        return load_config(site_file=site, env={})

    assert load([a, b], 2).fleet.threshold == 2
    with pytest.raises(ConfigError, match=r"fleet.threshold: .*threshold 2 is above the 1 distinct admin key"):
        load([a, " " + a.replace("ed25519:", "ed25519: ")], 2)  # one key spelled twice
    with pytest.raises(ConfigError, match="fleet.threshold: .*greater than or equal to 1"):
        load([a], 0)


def test_a_plain_development_pin_is_ascii_digits_only():
    assert load_config(env={}, cli={"ui": {"technician_pin": "135792"}}).ui.technician_pin == "135792"
    for pin in ("１３５７９２", "١٣٥٧٩٢", "13579a"):
        with pytest.raises(ConfigError, match="ui.technician_pin"):
            load_config(env={}, cli={"ui": {"technician_pin": pin}})


# ---------------------------------------------------------------- issue 11, item 7: strict schema
_UNKNOWN_KEY_IN_EVERY_SECTION = [
    ("[kiosk]\nstaion_name = \"x\"\n", "kiosk.staion_name"),
    ("[ui]\nprodution = true\n", "ui.prodution"),
    ("[hours]\nself_service = false\n", "hours.self_service"),
    ("[[hours.staffed]]\ndays = \"mon-fri\"\nopen = \"09:00\"\nclose = \"17:00\"\nclosed = true\n", "hours.staffed.0.closed"),
    ("[[announcements]]\ntext = \"公告\"\nstart = \"2026-01-01\"\n", "announcements.0.start"),
    ("[catalog]\ndisable = [\"A\"]\n", "catalog.disable"),
    ("[platform]\nverify_ssl = false\n", "platform.verify_ssl"),
    ("[storage]\nkeyfile = \"x\"\n", "storage.keyfile"),
    ("[logging]\ndirectory = \"/proc/x\"\n", "logging.directory"),
    ("[calendar]\nholiday = [\"2026-10-01\"]\n", "calendar.holiday"),
    ("[devices.printer]\npaper = 80\n", "devices.printer.paper"),
    ("[fleet]\ntreshold = 2\n", "fleet.treshold"),
    ("[fleet.command_thresholds]\nreboto = 2\n", "fleet.command_thresholds"),
    ("[evaluation]\nlevel = []\n", "evaluation.level"),
    ("[[evaluation.reasons]]\ncode = \"slow\"\ntext = \"慢\"\nhnt = \"x\"\n", "evaluation.reasons.0.hnt"),
    ("[fleets]\nenabled = false\n", "fleets"),
]


@pytest.mark.parametrize("text,key", _UNKNOWN_KEY_IN_EVERY_SECTION, ids=[k for _, k in _UNKNOWN_KEY_IN_EVERY_SECTION])
def test_each_section_refuses_its_unknown_key_naming_key_and_file(tmp_path, text, key):
    site = tmp_path / "site.toml"
    site.write_text(text, "utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(site_file=site, env={})
    got = {k: (src, msg) for k, src, msg in e.value.problems}
    assert key in got, e.value.problems
    assert got[key][0] == str(site) and "unknown" in got[key][1], got[key]
    assert f"{key}: " in str(e.value) and str(site) in str(e.value)


def test_cli_config_check_names_the_typo_and_the_file(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text("[fleet]\ntreshold = 2\n", "utf-8")
    kiosk = str(Path(sys.executable).with_name("kiosk"))
    r = subprocess.run([kiosk, "config", "check", str(site)], capture_output=True, text=True)
    assert r.returncode == 1 and "fleet.treshold: unknown key" in r.stderr and str(site) in r.stderr


def test_admin_keys_must_be_keys_and_the_threshold_counts_only_raw_keys(tmp_path):
    import base64

    a = "ed25519:" + base64.b64encode(bytes(range(32))).decode()
    site = tmp_path / "site.toml"
    # a placeholder beside a real key does not make two administrators
    site.write_text(f'[fleet]\nadmin_keys = ["{a}", "ed25519:...bob..."]\nthreshold = 2\n', "utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(site_file=site, env={})
    got = {k: (src, msg) for k, src, msg in e.value.problems}
    assert "entry 1 not an ed25519" in got["fleet.admin_keys"][1] and got["fleet.admin_keys"][0] == str(site)
    short = "ed25519:" + base64.b64encode(bytes(16)).decode()  # base64, but not 32 bytes
    site.write_text(f'[fleet]\nadmin_keys = ["{short}"]\n', "utf-8")
    with pytest.raises(ConfigError, match="fleet.admin_keys: .*entry 0 not an ed25519"):
        load_config(site_file=site, env={})
    # the upper bound holds from any layer, the environment included
    site.write_text(f'[fleet]\nadmin_keys = ["{a}"]\n', "utf-8")
    with pytest.raises(ConfigError, match=r"fleet.threshold: .*threshold 2 is above the 1 distinct admin key.*environment"):
        load_config(site_file=site, env={"KIOSK__FLEET__THRESHOLD": "2"})


def test_command_thresholds_take_only_known_actions_and_at_least_one_signature(tmp_path):
    from kiosk.config import COMMAND_ACTIONS
    from kiosk.fleet.commands import ACTIONS

    assert COMMAND_ACTIONS == ACTIONS
    site = tmp_path / "site.toml"
    site.write_text("[fleet.command_thresholds]\nreboot = 3\nrestart = 1\n", "utf-8")
    assert load_config(site_file=site, env={}).fleet.command_thresholds["reboot"] == 3
    site.write_text("[fleet.command_thresholds]\nreboto = 1\n", "utf-8")
    with pytest.raises(ConfigError, match=r"fleet.command_thresholds: .*unknown command action\(s\) reboto"):
        load_config(site_file=site, env={})
    site.write_text("[fleet.command_thresholds]\nreboot = 0\n", "utf-8")
    with pytest.raises(ConfigError, match="fleet.command_thresholds: .*reboot: a command needs at least 1 signature"):
        load_config(site_file=site, env={})


@pytest.mark.parametrize("param,value", [
    ("paper_mm", 57), ("paper_mm", "58"), ("timeout_s", "soon"), ("timeout_s", -1), ("timeout_s", True),
    ("poll_status", 1), ("status_timeout_s", float("inf")),
])
def test_device_tuning_values_are_checked_whichever_layer_sets_them(param, value):
    """These are the values a fleet bundle may push: a wrong one is refused before it takes effect."""
    cli = {"devices": {"printer": {"driver": "escpos-serial", "devfile": "/dev/null", param: value}}}
    with pytest.raises(ConfigError, match=rf"devices.printer.{param}: must be .* \(in command line\)"):
        load_config(env={}, cli=cli)
    ok = {"paper_mm": 80, "timeout_s": 2.5, "poll_status": False, "status_timeout_s": 0}[param]
    cli["devices"]["printer"][param] = ok
    assert load_config(env={}, cli=cli).devices["printer"].model_extra[param] == ok


def test_pushable_ui_and_platform_values_are_bounded():
    """A session that never times out leaves one citizen's data for the next: the pushable values have a ceiling."""
    for cli, key in [({"ui": {"idle_timeout_s": 10**9}}, "ui.idle_timeout_s"),
                     ({"ui": {"elderly_idle_timeout_s": 10**9}}, "ui.elderly_idle_timeout_s"),
                     ({"ui": {"items_per_page": 1000}}, "ui.items_per_page"),
                     ({"platform": {"read_timeout_s": 10**6}}, "platform.read_timeout_s"),
                     ({"platform": {"connect_timeout_s": 10**6}}, "platform.connect_timeout_s")]:
        with pytest.raises(ConfigError, match=rf"{key}: .*less than or equal"):
            load_config(env={}, cli=cli)
