"""`kiosk diagnose [--json] [--bundle OUT.tar.gz]`: one screen telling a technician what is wrong."""
from __future__ import annotations

import sys

import click

from kiosk.cli._groups import config_option, echo_json

MARKS = {"ok": "正常 ok  ", "warn": "注意 warn", "fail": "故障 FAIL", "unavailable": "--   n/a "}


def register(cli: click.Group) -> None:
    @cli.command("diagnose")
    @config_option
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
    @click.option("--bundle", "bundle_out", type=click.Path(dir_okay=False), default=None,
                  help="Also write a support bundle OUT.tar.gz (redacted logs, config without secrets, device stats).")
    @click.option("--no-devices", is_flag=True, help="Skip device checks (e.g. while the kiosk app holds the devices).")
    @click.option("--timeout", default=5.0, show_default=True, help="Platform HTTP timeout in seconds.")
    def diagnose_cmd(config_file: str | None, as_json: bool, bundle_out: str | None, no_devices: bool,
                     timeout: float) -> None:
        """Check devices, platform and clock, queue, databases, disk and configuration.

        Exit 0 when nothing needs a technician, 1 when something does.
        """
        # requests, the driver table and the outbox load only when the command runs: `kiosk --help` stays instant
        from kiosk.app.diagnostics import run_diagnostics, write_support_bundle  # noqa: PLC0415 - requests
        from kiosk.bootstrap import drivers  # noqa: PLC0415 - the device drivers' modules
        from offline_cache.drainer import open_outbox  # noqa: PLC0415 - the outbox and its crypto

        report = run_diagnostics(config_file, devices=not no_devices, http_timeout=timeout,
                                 create_device=drivers.create, open_outbox=open_outbox)
        if bundle_out:
            write_support_bundle(bundle_out, report, config_file)
        if as_json:
            echo_json(report.as_json() | ({"bundle": bundle_out} if bundle_out else {}))
        else:
            for c in report.checks:
                click.echo(f"{MARKS.get(c.status, c.status)}  {c.name:<16} {c.summary}")
            click.echo("需要技术人员处理 (needs a technician)" if report.needs_technician else "一切正常 (all good)")
            if bundle_out:
                click.echo(f"support bundle: {bundle_out}")
        sys.exit(1 if report.needs_technician else 0)
