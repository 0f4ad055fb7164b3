"""`kiosk-admin enroll` and `kiosk-admin pin-hash`: a kiosk's own secrets, made on the administrator's machine.

`enroll` issues the kiosk's platform credential (the request-signature key id and
secret, the format kiosk.platform.credentials reads) and its broker password, each
in a 0600 file, and prints the site-file lines that point at them. `pin-hash`
turns a technician PIN into the salted scrypt hash the site file holds instead of
the PIN. Neither ever prints a secret.
"""
from __future__ import annotations

import os
import re
import secrets
import sys
from pathlib import Path

import click

from kiosk.cli._groups import fail
from kiosk.infra.pin_hash import hash_pin, pin_problem

CREDENTIALS_NAME = "platform-credentials.toml"
MQTT_PASSWORD_NAME = "mqtt-password"
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def write_secret_file(path: Path, text: str) -> None:
    """Create `path` with mode 0600 from the first byte on; refuse to overwrite an existing secret."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def enroll_kiosk(kiosk_id: str, group: str, out: Path) -> tuple[Path, Path]:
    """Write OUT/platform-credentials.toml and OUT/mqtt-password for `kiosk_id`; both 0600."""
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    cred, pw = out / CREDENTIALS_NAME, out / MQTT_PASSWORD_NAME
    for p in (cred, pw):
        if p.exists():
            raise FileExistsError(f"{p} already exists; refusing to overwrite an issued secret")
    write_secret_file(cred, (
        f"# Platform credential of kiosk {kiosk_id} (group {group}), issued by `kiosk-admin enroll`.\n"
        "# Keep it 0600, owned by the kiosk's user. The platform trusts exactly this pair.\n"
        f'kiosk_id = "{kiosk_id}"\n'
        f'secret = "{secrets.token_hex(32)}"\n'
    ))
    write_secret_file(pw, secrets.token_urlsafe(32) + "\n")
    return cred, pw


def register(admin: click.Group) -> None:
    """Add `enroll` and `pin-hash` to `kiosk-admin` (called by kiosk.cli.admin)."""

    @admin.command("enroll")
    @click.option("--kiosk", "kiosk_id", required=True, help="The kiosk's id (also its broker account).")
    @click.option("--group", required=True, help="The kiosk's group (bundles can target group:G).")
    @click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
                  help="Directory for platform-credentials.toml and mqtt-password (created 0700).")
    @click.option("--install-dir", default=None,
                  help="Where the files will live on the kiosk (for the printed lines). Default: --out.")
    def enroll_cmd(kiosk_id: str, group: str, out_dir: str, install_dir: str | None) -> None:
        """Issue a kiosk's platform credential and broker password (both 0600); print its site-file lines."""
        for what, value in (("--kiosk", kiosk_id), ("--group", group)):
            if not _ID.match(value):
                fail(f"{what} must be 1-64 of A-Z a-z 0-9 _ . -", 2)
        out = Path(out_dir).resolve()
        try:
            cred, pw = enroll_kiosk(kiosk_id, group, out)
        except FileExistsError as e:
            fail(str(e), 1)
        where = Path(install_dir) if install_dir else out
        click.echo(f"enrolled {kiosk_id}: {cred} and {pw} (mode 0600)", err=True)
        click.echo(f"trust it on the platform: kiosk platform-sim --credentials-file {cred} (or the platform's own "
                   f"enrollment), and add broker account {kiosk_id} with the password in {pw}", err=True)
        click.echo("# site.toml lines for this kiosk")
        click.echo("[kiosk]")
        click.echo(f'id = "{kiosk_id}"')
        click.echo(f'group = "{group}"')
        click.echo("")
        click.echo("[platform]")
        click.echo(f'credentials_file = "{where / CREDENTIALS_NAME}"')
        click.echo("")
        click.echo("[fleet]")
        click.echo(f'username = "{kiosk_id}"')
        click.echo(f'password_file = "{where / MQTT_PASSWORD_NAME}"')

    @admin.command("pin-hash")
    @click.option("--pin-stdin", is_flag=True,
                  help="Read the PIN from standard input (one line; a second line, if given, must match).")
    def pin_hash_cmd(pin_stdin: bool) -> None:
        """Hash a technician PIN (scrypt, salted); print the [ui] technician_pin_hash line for the site file."""
        if pin_stdin:
            lines = sys.stdin.read().splitlines()
            pin = lines[0].strip() if lines else ""
            if len(lines) > 1 and lines[1].strip() and lines[1].strip() != pin:
                fail("the two PINs differ", 1)
        else:
            pin = click.prompt("technician PIN", hide_input=True, confirmation_prompt="repeat the PIN", err=True)
            pin = pin.strip()
        problem = pin_problem(pin)
        if problem:
            fail(f"pin-hash: {problem}", 1)
        click.echo("[ui]")
        click.echo(f'technician_pin_hash = "{hash_pin(pin)}"')
