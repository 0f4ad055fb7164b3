"""The CLI loads every command module or refuses to run: never a silently missing command.

Also pins the command tree and the flags of every command (the CLI contract is frozen).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kiosk.cli.admin import admin
from kiosk.cli.main import COMMAND_MODULES, EXIT_BROKEN_INSTALL, CommandModuleError, KioskCli, cli

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# every command today, with its options (and arguments, upper case)
EXPECTED = {
    'kiosk catalog list': ['--config', '--enabled-only', '--json'],
    'kiosk catalog search': ['--config', '--json', '--limit', 'QUERY'],
    'kiosk catalog show': ['--config', '--json', 'CODE'],
    'kiosk config check': ['--json', 'FILE'],
    'kiosk config verify': ['--apply', '--config', 'BUNDLE_FILE'],
    'kiosk demo': ['--out', '--size', '--xvfb'],
    'kiosk device camera face': ['--config', '--json', '--out', 'IMAGE'],
    'kiosk device camera pdf': ['--dpi', '--out', 'PAGES'],
    'kiosk device camera scan': ['--config', '--json', '--mode', '--out', 'IMAGE'],
    'kiosk device idcard decode': ['--hex', '--json', '--unmasked'],
    'kiosk device idcard emulate': ['--link', '--no-card', '--seconds'],
    'kiosk device idcard read': ['--baudrate', '--driver', '--fingerprint', '--json', '--port', '--unmasked', '--wait'],
    'kiosk device printer emulate': ['--chinese-default', '--host', '--out', '--paper', '--port', '--status'],
    'kiosk device printer render': ['--paper', '--png', 'RECEIPT_JSON'],
    'kiosk device printer test-page': ['--config', '--json', '--out'],
    'kiosk device qr classify': ['--allow-url', '--json', 'TEXT'],
    'kiosk device qr decode': ['--decoder', '--json', 'IMAGE'],
    'kiosk device sscard read': ['--json', '--reader', '--wait'],
    'kiosk diagnose': ['--bundle', '--config', '--json', '--no-devices', '--timeout'],
    'kiosk fleet agent': ['--config', '--once'],
    'kiosk platform-sim': ['--config', '--credentials-file', '--fail-rate', '--host', '--latency-ms', '--mode', '--port', '--progress-step-s', '--seed', '--state', '--tls-cert', '--tls-key'],
    'kiosk queue drain': ['--config', '--db', '--key-file', '--once', '--platform', '--poll-s'],
    'kiosk queue init-key': ['--aes', '--config', '--key-file'],
    'kiosk queue list': ['--config', '--db', '--json', '--key-file', '--limit', '--platform', '--state'],
    'kiosk queue purge': ['--config', '--db', '--key-file', '--older-than-days', '--platform'],
    'kiosk queue retry': ['--config', '--db', '--key-file', '--platform', 'RECORD_ID'],
    'kiosk queue status': ['--config', '--db', '--json', '--key-file', '--platform'],
    'kiosk run': ['--config', '--exit-after', '--platform', '--screenshot', '--simulate'],
    'kiosk-admin command': ['--expires', '--key', '--out', '--target', 'ACTION'],
    'kiosk-admin console': ['--admin-key', '--broker', '--db', '--port', '--state', '--threshold'],
    'kiosk-admin console-user add': ['--db', '--password-file', '--role', '--state', 'NAME'],
    'kiosk-admin console-user list': ['--db', '--state'],
    'kiosk-admin cosign': ['--key', 'BUNDLE_FILE'],
    'kiosk-admin enroll': ['--group', '--install-dir', '--kiosk', '--out'],
    'kiosk-admin fleet acks': ['--broker', '--json', '--password-file', '--timeout', '--tls-ca', '--tls-cert', '--tls-key', '--username', '--version'],
    'kiosk-admin fleet simulate': ['--admin-key', '--broker', '--count', '--duration', '--groups', '--health-interval', '--seed', '--state', '--threshold'],
    'kiosk-admin fleet status': ['--broker', '--json', '--password-file', '--timeout', '--tls-ca', '--tls-cert', '--tls-key', '--username'],
    'kiosk-admin keygen': ['--out'],
    'kiosk-admin pin-hash': ['--pin-stdin'],
    'kiosk-admin push': ['--broker', '--password-file', '--tls-ca', '--tls-cert', '--tls-key', '--username', 'FILE'],
    'kiosk-admin sign': ['--expires', '--key', '--no-check', '--not-before', '--out', '--target', '--version', 'CONFIG_FILE'],
}
TOP_LEVEL = ["catalog", "config", "demo", "device", "diagnose", "fleet", "platform-sim", "queue", "run"]


def _tree(group: click.Group, path: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            out |= _tree(cmd, (*path, name))
        else:
            out[" ".join((*path, name))] = sorted(
                o for p in cmd.params for o in (p.opts if isinstance(p, click.Option) else [str(p.name).upper()]))
    return out


def _broken_package(tmp_path: Path) -> Path:
    """Command modules that fail in the ways a broken installation does."""
    pkg = tmp_path / "h4broken"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "raises.py").write_text('raise RuntimeError("boom at import")\n')
    (pkg / "missing_dep.py").write_text("import no_such_dependency_xyz  # noqa: F401\n")
    (pkg / "no_register.py").write_text("X = 1\n")
    (pkg / "good.py").write_text(textwrap.dedent("""\
        import click

        def register(cli):
            @cli.command("hello")
            def hello():
                click.echo("hi")
        """))
    return tmp_path


def _run_broken(tmp_path: Path, module: str) -> subprocess.CompletedProcess[str]:
    """`kiosk --help` through the real entry point, with one more (broken) command module."""
    code = (f"import kiosk.cli.main as m; m.cli.modules.insert(0, {module!r}); "
            "import sys; sys.argv = ['kiosk', '--help']; m.main()")
    return subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=60, env={**_clean_env(), "PYTHONPATH": str(_broken_package(tmp_path))})


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("KIOSK") or k == "KIOSK_PROFILE"}


# ---------------------------------------------------------------- a good installation


def test_every_command_module_is_registered_and_the_tree_is_complete() -> None:
    root = KioskCli(modules=COMMAND_MODULES)
    root.load_commands()
    got = _tree(root, ("kiosk",)) | _tree(admin, ("kiosk-admin",))
    assert got == EXPECTED


def test_kiosk_help_lists_every_top_level_command() -> None:
    r = subprocess.run([sys.executable, "-m", "kiosk.cli.main", "--help"], cwd=PROJECT_ROOT, capture_output=True,
                       text=True, timeout=60, env=_clean_env())
    assert r.returncode == 0, r.stderr
    listed = r.stdout.split("Commands:", 1)[1].split()
    for name in TOP_LEVEL:
        assert name in listed, r.stdout
    assert r.stderr == ""


def test_the_shared_root_group_is_complete_through_click() -> None:
    res = CliRunner().invoke(cli, ["--help"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["device", "--help"])
    assert res.exit_code == 0
    for name in ("camera", "idcard", "printer", "qr", "sscard"):
        assert name in res.output


def test_every_command_module_imports_on_its_own() -> None:
    """No module relies on another having been imported first (or on a lucky import order)."""
    code = "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]"
    for mod in [*COMMAND_MODULES, "kiosk.cli.admin"]:
        r = subprocess.run([sys.executable, "-c", code, mod], cwd=PROJECT_ROOT, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, f"{mod}: {r.stderr}"


# ---------------------------------------------------------------- a broken installation


@pytest.mark.parametrize("module, error", [
    ("h4broken.raises", "RuntimeError: boom at import"),
    ("h4broken.missing_dep", "ModuleNotFoundError: No module named 'no_such_dependency_xyz'"),
    ("h4broken.not_there", "ModuleNotFoundError: No module named 'h4broken.not_there'"),
    ("h4broken.no_register", "AttributeError"),
])
def test_a_broken_command_module_stops_the_cli_loudly(tmp_path: Path, module: str, error: str) -> None:
    r = _run_broken(tmp_path, module)
    assert r.returncode == EXIT_BROKEN_INSTALL, r.stdout + r.stderr
    assert f"kiosk: command module {module} failed to load: {error}" in r.stderr
    assert "Traceback (most recent call last)" in r.stderr
    assert "Usage:" not in r.stdout  # no help with a command missing


def test_a_module_whose_own_name_is_missing_is_not_skipped(tmp_path: Path) -> None:
    """The old loader skipped a command module that was not there at all ("not landed yet")."""
    r = _run_broken(tmp_path, "kiosk.cli.no_such_cmds")
    assert r.returncode == EXIT_BROKEN_INSTALL
    assert "command module kiosk.cli.no_such_cmds failed to load" in r.stderr


def test_in_process_load_raises_naming_the_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(_broken_package(tmp_path)))
    root = KioskCli(modules=["h4broken.good", "h4broken.raises"])
    with pytest.raises(CommandModuleError) as info:
        root.load_commands()
    assert info.value.module == "h4broken.raises"
    assert isinstance(info.value.cause, RuntimeError)
    res = CliRunner().invoke(root, ["hello"])
    assert res.exit_code == EXIT_BROKEN_INSTALL
    assert "h4broken.raises" in res.output and "hi" not in res.output
    ok = KioskCli(modules=["h4broken.good"])
    assert CliRunner().invoke(ok, ["hello"]).output == "hi\n"
