"""`kiosk config check [FILE]`: validate a site file against the schema before deploying it.

With ``[ui] production = true`` it also runs the production check
(kiosk.infra.production): every development value is listed with its reason, exit 1.
"""
from __future__ import annotations

import click

from kiosk.cli._groups import echo_json, group
from kiosk.config import ConfigError, load_config_layers
from kiosk.infra.production import format_problems, production_problems


def register(cli: click.Group) -> None:
    """Add `config check` to the root group (called by kiosk.cli.main)."""
    cfg = group(cli, "config", help="Configuration tools.")

    @cfg.command("check")
    @click.argument("file", required=False, type=click.Path(dir_okay=False))
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable verdict.")
    def check(file: str | None, as_json: bool) -> None:
        """Validate defaults + FILE (+ environment) and, in production, its rules. Exit 1 naming every problem."""
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
        refused = production_problems(loaded)
        if refused:
            if as_json:
                echo_json({"ok": False, "production": True, "problems": [
                    {"key": p.key, "source": p.source, "message": p.reason} for p in refused]})
            else:
                click.echo(format_problems(refused), err=True)
            raise SystemExit(1)
        if as_json:
            echo_json({"ok": True, "production": c.ui.production, "files": loaded.files, "kiosk": c.kiosk.id,
                       "group": c.kiosk.group})
        else:
            click.echo(f"OK: kiosk {c.kiosk.id} ({c.kiosk.station_name}), group {c.kiosk.group}")
            click.echo("files: " + " < ".join(loaded.files))
