"""`kiosk-admin console-user add|list`: the fleet console's administrator accounts.

Run on the console's machine against its state directory (or its PostgreSQL database);
the first login, ``admin`` with DIR/admin-token as its password, exists from the first start.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from kiosk.cli._groups import fail

if TYPE_CHECKING:  # pragma: no cover
    from kiosk.console.accounts import Accounts

ROLES = ("viewer", "operator")


def _accounts(state_dir: str, db_url: str | None) -> Accounts:
    from kiosk.console.accounts import Accounts  # noqa: PLC0415 - SQLAlchemy only for the console's commands
    from kiosk.console.db import ConsoleDB, database_url  # noqa: PLC0415 - SQLAlchemy only for the console's commands

    return Accounts(ConsoleDB(database_url(state_dir, db_url)).engine)


def register(admin: click.Group) -> None:
    """Add the `console-user` group to kiosk-admin."""

    @admin.group("console-user")
    def console_user() -> None:
        """Administrator accounts of the fleet console (roles: viewer, operator)."""

    @console_user.command("add")
    @click.argument("name")
    @click.option("--role", required=True, type=click.Choice(ROLES), help="viewer reads; operator also uploads, "
                  "starts rollouts and sends commands.")
    @click.option("--state", "state_dir", required=True, type=click.Path(file_okay=False),
                  help="The console's state directory (--state of `kiosk-admin console`).")
    @click.option("--db", "db_url", default=None, help="postgresql://... when the console runs with --db.")
    @click.option("--password-file", default=None, type=click.Path(exists=True, dir_okay=False),
                  help="Read the password from this file (default: ask twice, hidden).")
    def add_cmd(name: str, role: str, state_dir: str, db_url: str | None, password_file: str | None) -> None:
        """Add the account NAME with role ROLE; its password is hashed with scrypt."""
        from kiosk.console.accounts import AccountError  # noqa: PLC0415 - SQLAlchemy only for the console

        password = (Path(password_file).read_text(encoding="utf-8").strip() if password_file
                    else click.prompt("password", hide_input=True, confirmation_prompt=True))
        try:
            _accounts(state_dir, db_url).add(name, role, password)
        except AccountError as e:
            fail(str(e))
        click.echo(f"console account {name} ({role}) added")

    @console_user.command("list")
    @click.option("--state", "state_dir", required=True, type=click.Path(file_okay=False))
    @click.option("--db", "db_url", default=None)
    def list_cmd(state_dir: str, db_url: str | None) -> None:
        """The console's accounts and roles."""
        for a in _accounts(state_dir, db_url).all():
            note = " (must set a new password)" if a["must_change"] else ""
            click.echo(f"{a['name']}\t{a['role']}{note}")
