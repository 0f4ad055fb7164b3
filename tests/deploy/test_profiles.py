"""Profiles: `kiosk run --simulate` and `kiosk demo` load the development profile themselves (a real kiosk's
environment has no KIOSK_PROFILE), and nothing else does."""
from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from kiosk.config import load_config_layers
from tests.deploy.support import PROJECT_ROOT, clean_env


@pytest.mark.ui
def test_readme_run_command_kiosk_run_simulate_needs_no_profile_in_the_environment(tmp_path):
    # scripts/run.sh (the README's run command) runs exactly this with a display, `kiosk demo` without
    run_sh = (PROJECT_ROOT / "scripts" / "run.sh").read_text(encoding="utf-8")
    assert "kiosk run --simulate" in run_sh and "kiosk demo --out var/demo" in run_sh
    env = clean_env(KIVY_NO_ARGS="1", KIOSK__STORAGE__DATA_DIR=f'"{tmp_path}"')
    assert "KIOSK_PROFILE" not in env
    r = subprocess.run([sys.executable, "-m", "kiosk.cli.main", "run", "--simulate", "--exit-after", "2"],
                       cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "home screen shown" in r.stderr and "周村区城北路街道便民服务站 (simulated devices)" in r.stderr
    # the same environment without --simulate has no kiosk at all: the defaults name no development value
    bare = subprocess.run([sys.executable, "-m", "kiosk.cli.main", "config", "check"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert bare.returncode == 1 and "platform.credentials_file: required key is missing" in bare.stderr


def test_kiosk_demo_loads_the_development_profile_itself(monkeypatch, tmp_path):
    from kiosk.cli import demo_cmds
    from kiosk.cli.main import cli

    monkeypatch.delenv("KIOSK_PROFILE", raising=False)
    seen: list[tuple[str | None, bool]] = []

    def fake_run_demo(out, build, log):  # the demo's walk-through itself is tests/ui/test_cli.py's
        loaded = load_config_layers()
        seen.append((loaded.profile, loaded.config.platform.embedded_simulator))
        return []

    monkeypatch.setattr(demo_cmds, "configure_kivy", lambda *_a, **_k: "offscreen")
    monkeypatch.setattr("standins.demo.run_demo", fake_run_demo)
    r = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "demo")])
    assert r.exit_code == 0, r.output
    assert seen == [("development", True)]
