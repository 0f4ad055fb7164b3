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
