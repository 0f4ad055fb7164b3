"""`kiosk-admin command`, `push` (bundles and commands), `fleet simulate`, `console`: the fleet console's commands.

Registered on the `kiosk-admin` group by kiosk.cli.admin. Signing happens here, on the
administrator's machine; the console and the broker only ever see signed documents.
"""
from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from kiosk.cli._groups import fail
from kiosk.cli.admin_console_users import register as register_console_users
from kiosk.fleet.bundle import BundleError, load_private_key, public_key_string
from kiosk.fleet.commands import ACTIONS, build_command, is_command, parse_command, sign_command

DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> timedelta:
    """'30m', '2h', '1d12h', '90s' -> timedelta; click.BadParameter otherwise."""
    m = DURATION_RE.match(text.strip())
    if not m or not any(m.groups()):
        raise click.BadParameter(f"{text!r} is not a duration like 30m, 2h, 1d or 1h30m")
    d, h, mi, s = (int(x or 0) for x in m.groups())
    return timedelta(days=d, hours=h, minutes=mi, seconds=s)


def _broker_kw(username: str | None, password_file: str | None, tls_ca: str | None, tls_cert: str | None,
               tls_key: str | None) -> dict[str, Any]:
    pw = Path(password_file).read_text().strip() if password_file else None
    return {"username": username, "password": pw, "tls_ca": tls_ca, "tls_cert": tls_cert, "tls_key": tls_key}


def register(admin: click.Group) -> None:
    """Add `command`, `push` (replacing the bundle-only one), `fleet simulate` and `console` to kiosk-admin."""
    register_console_users(admin)  # console-user add|list (kiosk.cli.admin_console_users)

    @admin.command("command")
    @click.argument("action", type=click.Choice(ACTIONS))
    @click.option("--target", required=True, help="all | group:NAME | kiosk:ID")
    @click.option("--expires", "expires", required=True, help="How long the command stays valid: 30m, 2h, 1d.")
    @click.option("--key", "keys", multiple=True, required=True, type=click.Path(exists=True, dir_okay=False),
                  help="Private key file; repeat for actions that need several signatures (restart, reboot).")
    @click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Command file to write.")
    def command_cmd(action: str, target: str, expires: str, keys: tuple[str, ...], out: str) -> None:
        """Sign a remote command (screenshot, diagnostics, test-page, drain, restart, reboot)."""
        try:
            priv = [load_private_key(k) for k in keys]
            now = datetime.now(UTC)
            signed = build_command(action, target, now + parse_duration(expires), issued_at=now,
                                   issued_by=[public_key_string(k.public_key()) for k in priv])
            cmd = sign_command(signed, priv)
        except ValueError as e:
            fail(str(e))
        Path(out).write_bytes(cmd.to_bytes())
        click.echo(f"signed {action} {cmd.id} for {target} with {len(priv)} key(s), expires "
                   f"{cmd.signed['expires']}: {out}")

    @admin.command("push")
    @click.argument("file", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
    @click.option("--broker", required=True, help="mqtt://host:1883 or mqtts://host:8883")
    @click.option("--username", default=None, help="Broker user (default: from the URL).")
    @click.option("--password-file", default=None, type=click.Path(exists=True, dir_okay=False))
    @click.option("--tls-ca", default=None, type=click.Path(exists=True, dir_okay=False))
    @click.option("--tls-cert", default=None, type=click.Path(exists=True, dir_okay=False))
    @click.option("--tls-key", default=None, type=click.Path(exists=True, dir_okay=False))
    def push_cmd(file: str, broker: str, username: str | None, password_file: str | None, tls_ca: str | None,
                 tls_cert: str | None, tls_key: str | None) -> None:
        """Publish a signed bundle or a signed command (retained) to its targets' topics."""
        from kiosk.fleet.commands import push_command  # noqa: PLC0415 - pulls paho-mqtt; signing works without it
        from kiosk.fleet.fleetview import push  # noqa: PLC0415 - pulls paho-mqtt; signing works without it

        raw = Path(file).read_bytes()
        kw = _broker_kw(username, password_file, tls_ca, tls_cert, tls_key)
        try:
            if is_command(raw):
                parse_command(raw)
                topics = push_command(broker, raw, **kw)
            else:
                topics = push(broker, raw, **kw)
        except BundleError as e:
            fail(f"{file} is not a bundle or a command: {e}")
        except (ConnectionError, OSError, ValueError) as e:
            fail(f"push failed: {e}")
        for t in topics:
            click.echo(f"published (retained) on {t}")

    fleet = admin.commands.get("fleet")
    if isinstance(fleet, click.Group):
        @fleet.command("simulate")
        @click.option("--count", required=True, type=click.IntRange(1, 100_000), help="How many kiosks.")
        @click.option("--broker", required=True, help="mqtt://host:1883")
        @click.option("--seed", default=0, show_default=True, type=int, help="Chooses each kiosk's faults.")
        @click.option("--state", "state_dir", default=None, type=click.Path(file_okay=False),
                      help="Where the simulated kiosks keep their fleet state (default: a temporary directory).")
        @click.option("--admin-key", "admin_keys", multiple=True, required=True,
                      help="Pinned administrator public key (ed25519:...) or .pub file; repeatable.")
        @click.option("--threshold", default=1, show_default=True, type=int)
        @click.option("--groups", default="zhoucun,boshan,zhangdian", show_default=True)
        @click.option("--health-interval", default=30.0, show_default=True, type=float)
        @click.option("--duration", default=None, type=float, help="Stop after this many seconds (default: run).")
        def simulate_cmd(count: int, broker: str, seed: int, state_dir: str | None, admin_keys: tuple[str, ...],
                         threshold: int, groups: str, health_interval: float, duration: float | None) -> None:
            """Run COUNT simulated kiosks (the real agent code, simulated devices and faults) in one process."""
            from standins.fleet_sim import run_simulation  # noqa: PLC0415 - the simulator only for this command

            pubs = [Path(k).read_text().strip() if Path(k).is_file() else k for k in admin_keys]
            sys.exit(run_simulation(count=count, broker_url=broker, seed=seed, state_dir=state_dir, admin_keys=pubs,
                                    threshold=threshold, groups=[g for g in groups.split(",") if g],
                                    health_interval_s=health_interval, duration_s=duration))

    @admin.command("console")
    @click.option("--broker", required=True, help="mqtt://host:1883")
    @click.option("--port", "port", default=8080, show_default=True, type=int)
    @click.option("--state", "state_dir", required=True, type=click.Path(file_okay=False))
    @click.option("--db", "db_url", default=None, help="postgresql://... (default: SQLite in the state directory)")
    @click.option("--admin-key", "admin_keys", multiple=True,
                  help="Pinned administrator public key (ed25519:...) or .pub file, to verify uploads; repeatable.")
    @click.option("--threshold", default=1, show_default=True, type=int)
    def console_cmd(broker: str, port: int, state_dir: str, db_url: str | None, admin_keys: tuple[str, ...],
                    threshold: int) -> None:
        """Serve the fleet console on 127.0.0.1:PORT (ingest, rollouts, the JSON API)."""
        from kiosk.console.server import run_console  # noqa: PLC0415 - Flask and SQLAlchemy only for the console

        pubs = [Path(k).read_text().strip() if Path(k).is_file() else k for k in admin_keys]
        sys.exit(run_console(broker_url=broker, port=port, state_dir=state_dir, db_url=db_url, admin_keys=pubs,
                             threshold=threshold))
