"""`kiosk config verify` and `kiosk fleet agent`: the kiosk side of fleet operations."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from kiosk.cli._groups import config_option, echo_json, group
from kiosk.config import ConfigError
from kiosk.fleet.apply import ConfigApplier
from kiosk.fleet.verify import TrustPolicy, Verdict
from offline_cache.drainer import open_outbox


def register(cli: click.Group) -> None:
    """Add `config verify` and `fleet agent` to the root group (called by kiosk.cli.main)."""
    cfg_grp = group(cli, "config", help="Configuration: show, check, verify bundles.")
    fleet_grp = group(cli, "fleet", help="Fleet agent: signed configuration over MQTT, health telemetry.")

    @cfg_grp.command("verify")
    @click.argument("bundle_file", metavar="BUNDLE", type=click.Path(dir_okay=False))
    @config_option
    @click.option("--apply", "do_apply", is_flag=True, help="Apply an accepted bundle and trust it from now on.")
    def verify_cmd(bundle_file: str, config_file: str | None, do_apply: bool) -> None:
        """Verify a signed configuration bundle as this kiosk would.

        Prints {"accepted", "reason", "version"}; exit 0 accepted, 1 refused,
        2 accepted but rolled back by the health check after --apply.
        """
        try:
            applier = ConfigApplier(config_file)
            cfg = applier.effective().config
            policy = TrustPolicy.from_config(cfg)
        except (ConfigError, ValueError) as e:
            click.echo(f"cannot load this kiosk's configuration: {e}", err=True)
            sys.exit(3)
        try:
            raw = Path(bundle_file).read_bytes()
        except OSError as e:
            verdict = Verdict(False, "malformed", None, f"cannot read bundle: {e.strerror}")
        else:
            verdict = applier.verify(raw, policy)
        out = verdict.as_json() | {"detail": verdict.detail}
        code = 0 if verdict.accepted else 1
        if verdict.accepted and do_apply:
            result = applier.apply(verdict.bundle, raw)
            out["apply"] = result.as_json()
            code = 0 if result.status == "applied" else 2
        echo_json(out)
        sys.exit(code)

    @fleet_grp.command("agent")
    @config_option
    @click.option("--once", is_flag=True, help="Connect, catch up on retained bundles, report health, exit.")
    def agent_cmd(config_file: str | None, once: bool) -> None:
        """Run the kiosk's MQTT agent in the foreground (systemd: Type=notify)."""
        from kiosk.fleet.agent import run_agent  # noqa: PLC0415 - pulls paho-mqtt; only the agent needs it

        sys.exit(run_agent(config_file, once=once, open_outbox=open_outbox))
