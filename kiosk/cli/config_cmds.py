"""`kiosk config check [FILE]`: validate a site file against the schema before deploying it."""
from __future__ import annotations

import click

from kiosk.cli._groups import echo_json, group
from kiosk.config import ConfigError, load_config_layers


def register(cli: click.Group) -> None:
    """Add `config check` to the root group (called by kiosk.cli.main)."""
    cfg = group(cli, "config", help="Configuration tools.")

    @cfg.command("check")
    @click.argument("file", required=False, type=click.Path(dir_okay=False))
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable verdict.")
    def check(file: str | None, as_json: bool) -> None:
        """Validate defaults + FILE (+ environment). Exit 1 with every problem named."""
        try:
            loaded = load_config_layers(site_file=file)
        except ConfigError as e:
            if as_json:
                echo_json({"ok": False, "problems": [
                    {"key": k, "source": s, "message": m} for k, s, m in e.problems]})
            else:
                click.echo(str(e), err=True)
            raise SystemExit(1) from None
        c = loaded.config
        if as_json:
            echo_json({"ok": True, "files": loaded.files, "kiosk": c.kiosk.id, "group": c.kiosk.group})
        else:
            click.echo(f"OK: kiosk {c.kiosk.id} ({c.kiosk.station_name}), group {c.kiosk.group}")
            click.echo("files: " + " < ".join(loaded.files))
