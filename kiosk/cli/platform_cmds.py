"""`kiosk platform-sim`: run the platform simulator as a real HTTP server."""
from __future__ import annotations

import sys

import click

from kiosk.cli._groups import config_option
from kiosk.config import load_config
from kiosk.platform.credentials import configured_credentials, load_credentials
from standins.platform_sim import make_server

MODES = ("normal", "outage", "flaky", "slow", "garbage", "accept-then-drop")


def register(cli: click.Group) -> None:
    """Add `platform-sim` to the root group (called by kiosk.cli.main)."""
    @cli.command("platform-sim")
    @click.option("--port", type=int, default=18080, show_default=True, help="TCP port (0: any free port).")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--state", "state_dir", type=click.Path(file_okay=False), default="var/platform-sim",
                  show_default=True, help="Directory for the simulator's SQLite state and materials.")
    @click.option("--latency-ms", type=int, default=0, help="Delay every /v1 answer (after committing).")
    @click.option("--fail-rate", type=float, default=None, help="Share of requests the fault mode hits (mode default).")
    @click.option("--mode", type=click.Choice(MODES), default="normal", show_default=True)
    @click.option("--progress-step-s", type=float, default=30.0, show_default=True,
                  help="Seconds between back-office progress steps.")
    @click.option("--credentials-file", type=click.Path(dir_okay=False), multiple=True,
                  help="Trust this kiosk credential (repeatable). Default: [platform] credentials_file of the config.")
    @click.option("--seed", type=int, default=None, help="Seed for fault injection.")
    @config_option
    def platform_sim(port: int, host: str, state_dir: str, latency_ms: int, fail_rate: float | None, mode: str,
                     progress_step_s: float, credentials_file: tuple[str, ...], seed: int | None,
                     config_file: str | None) -> None:
        """Serve the platform contract (docs/platform-api.yaml) with fault injection."""
        if credentials_file:
            creds = [load_credentials(p) for p in credentials_file]
        else:
            creds = [configured_credentials(load_config(config_file))]
        server = make_server(state_dir, port=port, host=host, secrets_by_kiosk={c.kiosk_id: c.secret for c in creds},
                             mode=mode, fail_rate=fail_rate, latency_ms=latency_ms, progress_step_s=progress_step_s,
                             seed=seed)
        click.echo(f"platform-sim listening on {server.url} mode={mode} state={state_dir}", err=False)
        sys.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
            server.state.close()
