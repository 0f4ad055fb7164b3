"""`kiosk-admin`: what a district administrator runs on their own machine.

Make keys, sign configuration bundles (co-sign for k-of-n), push them to the
broker and watch the fleet answer. Never runs on a kiosk.
"""
from __future__ import annotations

import json
import sys
import tomllib
from datetime import datetime, timezone
from pathlib import Path

import click

from kiosk.cli._groups import echo_json, fail


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def admin() -> None:
    """齐好办 fleet administration: keys, signed configuration bundles, fleet status."""


def _iso(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    from kiosk.fleet.bundle import parse_time

    try:
        return parse_time(value)
    except ValueError:
        raise click.BadParameter(f"{what} must be ISO 8601, e.g. 2026-12-31T18:00:00+08:00") from None


@admin.command("keygen")
@click.option("--out", "out", required=True, help="Writes OUT.key (private, 0600) and OUT.pub.")
def keygen(out: str) -> None:
    """Make an Ed25519 administrator key pair."""
    from kiosk.fleet.bundle import generate_keypair

    if Path(f"{out}.key").exists() or Path(f"{out}.pub").exists():
        fail(f"{out}.key or {out}.pub already exists; refusing to overwrite a key")
    key_path, pub_path = generate_keypair(out)
    click.echo(f"private key: {key_path} (keep it offline)")
    click.echo(f"public key:  {pub_path}: {pub_path.read_text().strip()}")
    click.echo('pin it on kiosks in [fleet] admin_keys = ["ed25519:..."]')


@admin.command("sign")
@click.argument("config_file", metavar="CONFIG", type=click.Path(exists=True, dir_okay=False))
@click.option("--key", "keys", multiple=True, required=True, type=click.Path(exists=True, dir_okay=False),
              help="Private key file; repeat to add several signatures.")
@click.option("--version", "version", required=True, type=int, help="Bundle version, above every earlier one.")
@click.option("--target", "targets", multiple=True, required=True, help="all | group:NAME | kiosk:ID (repeatable).")
@click.option("--expires", default=None, help="ISO 8601 expiry time.")
@click.option("--not-before", "not_before", default=None, help="ISO 8601 start of validity.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Bundle file to write.")
@click.option("--no-check", is_flag=True, help="Do not validate CONFIG against the schema before signing.")
def sign_cmd(config_file: str, keys: tuple[str, ...], version: int, targets: tuple[str, ...],
             expires: str | None, not_before: str | None, out: str, no_check: bool) -> None:
    """Sign a TOML file of configuration overrides into a bundle."""
    from kiosk.fleet.bundle import build_signed, load_private_key, public_key_string, sign

    try:
        with open(config_file, "rb") as f:
            overrides = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        fail(f"{config_file}: not valid TOML: {e}")
    if not no_check:
        from kiosk.fleet.apply import check_overrides

        problem = check_overrides(overrides, site_file=None, env={})
        if problem:
            fail(f"{config_file} would be refused by kiosks (invalid_content):\n  {problem}\n"
                 "fix it, or pass --no-check if the kiosks' site files make it valid")
    try:
        priv = [load_private_key(k) for k in keys]
        signed = build_signed(
            overrides, version, list(targets),
            expires=_iso(expires, "--expires"), not_before=_iso(not_before, "--not-before"),
            issued_by=[public_key_string(k.public_key()) for k in priv],
        )
        bundle = sign(signed, priv)
    except ValueError as e:
        fail(str(e))
    Path(out).write_bytes(bundle.to_bytes())
    click.echo(f"signed version {version} for {', '.join(targets)} with {len(priv)} key(s): {out}")


@admin.command("cosign")
@click.argument("bundle_file", metavar="BUNDLE", type=click.Path(exists=True, dir_okay=False))
@click.option("--key", required=True, type=click.Path(exists=True, dir_okay=False))
def cosign_cmd(bundle_file: str, key: str) -> None:
    """Add another administrator's signature to a bundle (k-of-n thresholds)."""
    from kiosk.fleet.bundle import BundleError, add_signature, load_private_key, parse_bundle

    try:
        bundle = parse_bundle(Path(bundle_file).read_bytes(), max_bytes=sys.maxsize)
    except BundleError as e:
        fail(f"{bundle_file}: {e}")
    bundle = add_signature(bundle, load_private_key(key))
    Path(bundle_file).write_bytes(bundle.to_bytes())
    click.echo(f"{bundle_file}: now {len(bundle.signatures)} signature(s)")


def main() -> None:
    admin(prog_name="kiosk-admin")


if __name__ == "__main__":
    main()
