"""The technician PIN gate: the hash from the site file, and a lockout that survives a restart."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from kiosk.app.pin_gate import STATE_FILE, PinGate
from kiosk.app.technician import PinGate as ReExported
from kiosk.infra.pin_hash import hash_pin

PIN = "135790"


class Clocks:
    """A monotonic clock that restarts at 0 on every 'boot', and a wall clock that keeps going."""

    def __init__(self) -> None:
        self.mono = 0.0
        self.wall = 1_800_000_000.0

    def advance(self, s: float) -> None:
        self.mono += s
        self.wall += s

    def reboot(self, downtime_s: float = 30.0) -> None:
        self.mono = 0.0
        self.wall += downtime_s


@pytest.fixture(scope="module")
def pin_hash() -> str:
    return hash_pin(PIN)


def gate(state_dir, clocks: Clocks, *, pin_hash: str = "", pin: str = "", attempts: int = 3) -> PinGate:
    ui = SimpleNamespace(technician_pin=pin, technician_pin_hash=pin_hash, technician_lockout_attempts=attempts,
                         technician_lockout_s=600)
    return PinGate.from_config(ui, state_dir, clock=lambda: clocks.mono, wall_clock=lambda: clocks.wall)


def test_the_hash_from_the_site_file_is_what_passes(tmp_path, pin_hash):
    c = Clocks()
    g = gate(tmp_path, c, pin_hash=pin_hash)
    assert g.check("000000") == "wrong"
    assert g.check(PIN) == "ok" and g.attempts_left() == 3
    assert PIN not in (tmp_path / STATE_FILE).read_text()


def test_lockout_survives_a_restart_and_ends_when_it_expires(tmp_path, pin_hash):
    c = Clocks()
    g = gate(tmp_path, c, pin_hash=pin_hash)
    assert [g.check("111111"), g.check("222222"), g.check("333333")] == ["wrong", "wrong", "locked"]
    c.reboot(downtime_s=60)
    g2 = gate(tmp_path, c, pin_hash=pin_hash)  # rebuilt from disk: a power cycle does not reopen it
    assert g2.locked() and g2.check(PIN) == "locked"
    assert 0 < g2.lockout_remaining() <= 600 - 60
    c.advance(600 - 60 + 1)
    assert not g2.locked()
    c.reboot(downtime_s=5)
    g3 = gate(tmp_path, c, pin_hash=pin_hash)
    assert not g3.locked() and g3.check(PIN) == "ok"


def test_the_count_survives_a_restart(tmp_path, pin_hash):
    c = Clocks()
    g = gate(tmp_path, c, pin_hash=pin_hash)
    assert [g.check("111111"), g.check("222222")] == ["wrong", "wrong"]
    c.reboot()
    g2 = gate(tmp_path, c, pin_hash=pin_hash)
    assert g2.attempts_left() == 1 and g2.check("333333") == "locked"


def test_an_attempt_is_counted_before_the_pin_is_checked(tmp_path, pin_hash):
    """Cutting the power while the hash is computed gives no free guess."""
    c = Clocks()
    g = gate(tmp_path, c, pin_hash=pin_hash)
    seen = []

    def power_cut(entered: str) -> bool:
        seen.append(json.loads((tmp_path / STATE_FILE).read_text())["failures"])
        raise SystemExit("power cut")

    g._matches = power_cut  # type: ignore[method-assign]
    for _ in range(3):
        with pytest.raises(SystemExit):
            g.check("999999")
        c.reboot()
        g = gate(tmp_path, c, pin_hash=pin_hash)
        g._matches = power_cut  # type: ignore[method-assign]
    assert seen == [1, 2, 3]
    assert g.locked()


def test_a_lockout_read_back_never_outlasts_its_period(tmp_path, pin_hash):
    c = Clocks()
    g = gate(tmp_path, c, pin_hash=pin_hash)
    for p in ("1", "2", "3"):
        g.check(p)
    c.wall -= 10 * 86400  # the wall clock jumped back ten days while the kiosk was off
    c.reboot(downtime_s=0)
    g2 = gate(tmp_path, c, pin_hash=pin_hash)
    assert g2.locked() and g2.lockout_remaining() <= 600


@pytest.mark.parametrize("content", ["{not json", '{"failures": "x"}', "[]", ""])
def test_a_malformed_state_file_fails_closed(tmp_path, pin_hash, content):
    (tmp_path / STATE_FILE).write_text(content)
    c = Clocks()
    g = gate(tmp_path, c, pin_hash=pin_hash)
    assert g.check(PIN) == "locked"
    c.advance(601)
    assert g.check(PIN) == "ok"


def test_state_file_is_written_atomically_and_private(tmp_path, pin_hash):
    c = Clocks()
    g = gate(tmp_path / "state", c, pin_hash=pin_hash)
    g.check("000000")
    files = os.listdir(tmp_path / "state")
    assert files == [STATE_FILE]  # no temporary file left behind
    mode = stat.S_IMODE((tmp_path / "state" / STATE_FILE).stat().st_mode)
    assert mode & 0o077 == 0


def test_development_plain_pin_still_works_and_no_pin_is_disabled(tmp_path):
    c = Clocks()
    assert gate(tmp_path, c, pin="246810").check("246810") == "ok"
    assert gate(tmp_path / "none", c).check("") == "disabled"
    assert ReExported is PinGate


# ---------------------------------------------------------------- a real restart: new processes, real clocks

_ONE_BOOT = r"""
import json, sys
from kiosk.bootstrap.app import build_kiosk
from kiosk.config import load_config
from kiosk.infra.speech import RecordingSpeech

cfg = load_config(sys.argv[1], profile="development", env={})  # its kiosk id, platform, devices
svc = build_kiosk(cfg, speech=RecordingSpeech())  # what `kiosk run` builds: its state under storage.data_dir
gate = svc.technician.pin_gate
out = {"state_file": str(gate.state_path), "locked_at_start": gate.locked(),
       "remaining_at_start": gate.lockout_remaining(),
       "results": [svc.technician.technician_unlock(pin) for pin in sys.argv[2:]]}
print(json.dumps(out))
"""


def _boot(site, *pins: str) -> dict:
    """One kiosk process: build the services from the site file, type `pins` at the technician gate, exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK")}
    r = subprocess.run([sys.executable, "-c", _ONE_BOOT, str(site), *pins], capture_output=True, text=True,
                       timeout=120, env=env, start_new_session=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_lockout_survives_a_process_restart_and_expires_by_the_wall_clock(tmp_path, pin_hash):
    """Three kiosk processes in turn over one data directory, as a power cycle would leave it."""
    lockout_s = 4.0
    data = tmp_path / "data"
    site = tmp_path / "site.toml"
    site.write_text(f'[storage]\ndata_dir = "{data}"\n\n[ui]\ntechnician_pin = ""\ntechnician_pin_hash = "{pin_hash}"\n'
                    f"technician_lockout_attempts = 3\ntechnician_lockout_s = {lockout_s}\n")
    first = _boot(site, "111111", "222222", "333333")
    assert first["results"] == ["wrong", "wrong", "locked"]
    locked_at = time.time()
    assert first["state_file"] == str(data / STATE_FILE) and (data / STATE_FILE).exists()

    second = _boot(site, PIN)  # a new process: the right PIN is still refused
    assert second["locked_at_start"] and second["results"] == ["locked"]
    assert 0 < second["remaining_at_start"] <= lockout_s

    time.sleep(max(0.0, locked_at + lockout_s + 0.5 - time.time()))
    third = _boot(site, PIN)  # the lockout's end, read back from disk, is honoured
    assert not third["locked_at_start"] and third["results"] == ["ok"]


def test_wrong_attempts_add_up_across_processes(tmp_path, pin_hash):
    data = tmp_path / "data"
    site = tmp_path / "site.toml"
    site.write_text(f'[storage]\ndata_dir = "{data}"\n\n[ui]\ntechnician_pin = ""\ntechnician_pin_hash = "{pin_hash}"\n'
                    "technician_lockout_attempts = 3\ntechnician_lockout_s = 600\n")
    assert _boot(site, "111111")["results"] == ["wrong"]
    assert _boot(site, "222222")["results"] == ["wrong"]
    third = _boot(site, "333333", PIN)  # one guess per boot still reaches the limit
    assert third["results"] == ["locked", "locked"]
