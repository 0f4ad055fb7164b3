"""`kiosk platform-sim`: run the platform simulator as a real HTTP server."""
from __future__ import annotations

import sys

import click

from kiosk.platform.credentials import CredentialsError, development_credentials, load_credentials
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
                  help="Trust exactly these kiosk credentials (repeatable; `kiosk-admin enroll` writes them). "
                       "Default: the development credential config/dev-credentials.toml.")
    @click.option("--seed", type=int, default=None, help="Seed for fault injection.")
    @click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True), default=None,
                  help="Serve HTTPS with this PEM certificate chain (with --tls-key).")
    @click.option("--tls-key", type=click.Path(dir_okay=False, exists=True), default=None,
                  help="The private key of --tls-cert (PEM).")
    @click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None, hidden=True,
                  help="Accepted for compatibility; the simulator's trust comes from --credentials-file.")
    def platform_sim(port: int, host: str, state_dir: str, latency_ms: int, fail_rate: float | None, mode: str,
                     progress_step_s: float, credentials_file: tuple[str, ...], seed: int | None,
                     tls_cert: str | None, tls_key: str | None, config_file: str | None) -> None:
        """Serve the platform contract (docs/platform-api.yaml) with fault injection."""
        try:
            creds = [load_credentials(p) for p in credentials_file] if credentials_file else [development_credentials()]
        except CredentialsError as e:
            click.echo(f"platform-sim: {e}", err=True)
            sys.exit(2)
        by_kiosk = {c.kiosk_id: c.secret for c in creds}
        if len(by_kiosk) != len(creds):  # two files for one kiosk: trusting either would be a guess
            twice = sorted({c.kiosk_id for c in creds if sum(d.kiosk_id == c.kiosk_id for d in creds) > 1})
            click.echo(f"platform-sim: more than one --credentials-file for kiosk {', '.join(twice)}", err=True)
            sys.exit(2)
        if bool(tls_cert) != bool(tls_key):
            click.echo("platform-sim: --tls-cert and --tls-key go together", err=True)
            sys.exit(2)
        server = make_server(state_dir, port=port, host=host, secrets_by_kiosk=by_kiosk,
                             mode=mode, fail_rate=fail_rate, latency_ms=latency_ms, progress_step_s=progress_step_s,
                             seed=seed, tls_cert=tls_cert, tls_key=tls_key)
        trusted = ", ".join(sorted({c.kiosk_id for c in creds}))
        click.echo(f"platform-sim listening on {server.url} mode={mode} state={state_dir} trusts={trusted}", err=False)
        sys.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
            server.state.close()
