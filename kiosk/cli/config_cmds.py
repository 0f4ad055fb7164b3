"""`kiosk config check [FILE]`: validate a site file against the schema before deploying it.

With ``[ui] production = true`` it also runs the production check
(kiosk.infra.production.check_site): every development value is listed with its
reason, next to whatever the schema refuses, exit 1.
"""
from __future__ import annotations

import click

from kiosk.cli._groups import echo_json, group
from kiosk.infra.production import check_site


def register(cli: click.Group) -> None:
    """Add `config check` to the root group (called by kiosk.cli.main)."""
    cfg = group(cli, "config", help="Configuration tools.")

    @cfg.command("check")
    @click.argument("file", required=False, type=click.Path(dir_okay=False))
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable verdict.")
    def check(file: str | None, as_json: bool) -> None:
        """Validate defaults + FILE (+ environment) and, in production, its rules. Exit 1 naming every problem."""
        result = check_site(file)
        loaded = result.loaded
        if loaded is None or not result.ok:
            if as_json:
                echo_json({"ok": False, "production": bool(result.production), "problems": [
                    *({"key": k, "source": s, "message": m} for k, s, m in result.schema),
                    *({"key": p.key, "source": p.source, "message": p.reason} for p in result.production)]})
            else:
                click.echo(result.text(), err=True)
            raise SystemExit(1)
        c = loaded.config
        if as_json:
            echo_json({"ok": True, "production": c.ui.production, "files": loaded.files, "kiosk": c.kiosk.id,
                       "group": c.kiosk.group})
        else:
            click.echo(f"OK: kiosk {c.kiosk.id} ({c.kiosk.station_name}), group {c.kiosk.group}")
            click.echo("files: " + " < ".join(loaded.files))
