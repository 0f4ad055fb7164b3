"""`kiosk-admin`: what a district administrator runs on their own machine.

Make keys, sign configuration bundles (co-sign for k-of-n), push them to the
broker and watch the fleet answer. Never runs on a kiosk.
"""
from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from kiosk.cli import admin_fleet_console
from kiosk.cli._groups import echo_json, fail
from kiosk.cli.admin_enroll import register as register_enroll
from kiosk.fleet.apply import check_overrides
from kiosk.fleet.bundle import (
    BundleError,
    add_signature,
    build_signed,
    generate_keypair,
    load_private_key,
    parse_bundle,
    parse_time,
    public_key_string,
    sign,
)
from kiosk.fleet.pushable import describe_forbidden, forbidden_keys
from kiosk.fleet.verify import MAX_VALIDITY, check_expiry

if TYPE_CHECKING:  # pragma: no cover
    from kiosk.fleet.fleetview import FleetSnapshot

F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def admin() -> None:
    """齐好办 fleet administration: keys, signed configuration bundles, fleet status."""


def _iso(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError:
        raise click.BadParameter(f"{what} must be ISO 8601, e.g. 2026-12-31T18:00:00+08:00") from None


_RELATIVE = re.compile(r"^(\d{1,4})([dh])$")


def _expiry(value: str, now: datetime) -> datetime:
    """--expires: an ISO 8601 time, or a duration from now such as 7d or 36h."""
    m = _RELATIVE.match(value.strip())
    if m:
        n = int(m.group(1))
        return now + (timedelta(days=n) if m.group(2) == "d" else timedelta(hours=n))
    t = _iso(value, "--expires")
    assert t is not None
    return t


@admin.command("keygen")
@click.option("--out", "out", required=True, help="Writes OUT.key (private, 0600) and OUT.pub.")
def keygen(out: str) -> None:
    """Make an Ed25519 administrator key pair."""
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
@click.option("--expires", required=True,
              help=f"Expiry: ISO 8601 time, or 7d / 36h from now; at most {MAX_VALIDITY.days} days after signing.")
@click.option("--not-before", "not_before", default=None, help="ISO 8601 start of validity.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Bundle file to write.")
@click.option("--no-check", is_flag=True, help="Do not validate CONFIG against the schema before signing.")
def sign_cmd(config_file: str, keys: tuple[str, ...], version: int, targets: tuple[str, ...],
             expires: str, not_before: str | None, out: str, no_check: bool) -> None:
    """Sign a TOML file of configuration overrides into a bundle.

    Refuses what every kiosk would refuse: keys that are not pushable
    (forbidden_key) and an expiry more than 30 days after signing (expiry_too_long).
    """
    try:
        with open(config_file, "rb") as f:
            overrides = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        fail(f"{config_file}: not valid TOML: {e}")
    bad = forbidden_keys(overrides)
    if bad:  # even with --no-check: no kiosk accepts these, whatever its site file says
        fail(f"{config_file} would be refused by kiosks (forbidden_key):\n  {describe_forbidden(bad)}")
    issued_at = datetime.now(UTC).replace(microsecond=0)
    expires_at = _expiry(expires, issued_at)
    expiry = check_expiry(issued_at, expires_at, issued_at)
    if expiry is not None:
        fail(f"--expires {expires} would be refused by kiosks ({expiry[0]}): {expiry[1]}")
    if expires_at <= issued_at:
        fail(f"--expires {expires} is already past")
    if not no_check:
        problem = check_overrides(overrides, site_file=None, env={}, only_touched=True)
        if problem:
            fail(f"{config_file} would be refused by kiosks (invalid_content):\n  {problem}\n"
                 "fix it, or pass --no-check if the kiosks' site files make it valid")
    try:
        priv = [load_private_key(k) for k in keys]
        signed = build_signed(
            overrides, version, list(targets),
            expires=expires_at, not_before=_iso(not_before, "--not-before"), issued_at=issued_at,
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
    try:
        bundle = parse_bundle(Path(bundle_file).read_bytes(), max_bytes=sys.maxsize)
    except BundleError as e:
        fail(f"{bundle_file}: {e}")
    bundle = add_signature(bundle, load_private_key(key))
    Path(bundle_file).write_bytes(bundle.to_bytes())
    click.echo(f"{bundle_file}: now {len(bundle.signatures)} signature(s)")


def _broker_options(f: F) -> F:
    """The broker address, credentials and TLS files every fleet command takes."""
    f = click.option("--broker", required=True, help="mqtt://host:1883 or mqtts://host:8883")(f)
    f = click.option("--username", default=None, help="Broker user (default: from the URL).")(f)
    f = click.option("--password-file", default=None, type=click.Path(exists=True, dir_okay=False))(f)
    f = click.option("--tls-ca", default=None, type=click.Path(exists=True, dir_okay=False))(f)
    f = click.option("--tls-cert", default=None, type=click.Path(exists=True, dir_okay=False))(f)
    f = click.option("--tls-key", default=None, type=click.Path(exists=True, dir_okay=False))(f)
    return f


def _client_kw(username: str | None, password_file: str | None, tls_ca: str | None, tls_cert: str | None,
               tls_key: str | None) -> dict[str, Any]:
    pw = Path(password_file).read_text().strip() if password_file else None
    return {"username": username, "password": pw, "tls_ca": tls_ca, "tls_cert": tls_cert, "tls_key": tls_key}


@admin.command("push")
@click.argument("bundle_file", metavar="BUNDLE", type=click.Path(exists=True, dir_okay=False))
@_broker_options
def push_cmd(bundle_file: str, broker: str, username: str | None, password_file: str | None, tls_ca: str | None,
             tls_cert: str | None, tls_key: str | None) -> None:
    """Publish a signed bundle (retained) to its targets' topics."""
    from kiosk.fleet.fleetview import push  # noqa: PLC0415 - pulls paho-mqtt; keygen/sign/cosign work without it

    raw = Path(bundle_file).read_bytes()
    try:
        topics = push(broker, raw, **_client_kw(username, password_file, tls_ca, tls_cert, tls_key))
    except BundleError as e:
        fail(f"{bundle_file} is not a bundle: {e}")
    except (ConnectionError, OSError, ValueError) as e:
        fail(f"push failed: {e}")
    for t in topics:
        click.echo(f"published (retained) on {t}")


@admin.group("fleet")
def fleet_grp() -> None:
    """What the kiosks report."""


def _snapshot(broker: str, kw: dict[str, Any], timeout: float) -> FleetSnapshot:
    from kiosk.fleet.fleetview import snapshot  # noqa: PLC0415 - pulls paho-mqtt; keygen/sign/cosign work without it

    try:
        return snapshot(broker, timeout=timeout, **kw)
    except (ConnectionError, OSError, ValueError) as e:
        fail(f"cannot read the fleet from {broker}: {e}")


def _table(rows: list[dict[str, Any]], cols: list[tuple[str, str]]) -> None:
    cells = [[h for _, h in cols]] + [["-" if r.get(k) in (None, "") else str(r.get(k)) for k, _ in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


@fleet_grp.command("status")
@_broker_options
@click.option("--json", "as_json", is_flag=True)
@click.option("--timeout", default=10.0, show_default=True)
def status_cmd(broker: str, username: str | None, password_file: str | None, tls_ca: str | None,
               tls_cert: str | None, tls_key: str | None, as_json: bool, timeout: float) -> None:
    """Table: kiosk, online, last heartbeat, configuration version, queue depth, device faults."""
    snap = _snapshot(broker, _client_kw(username, password_file, tls_ca, tls_cert, tls_key), timeout)
    rows = snap.status_rows()
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        r["online"] = {True: "yes", False: "NO", None: "?"}[r["online"]]
        r["device_faults"] = ",".join(r["device_faults"]) or "none"
        if r["heartbeat_age_s"] is not None:
            r["last_heartbeat"] = f"{r['last_heartbeat']} ({r['heartbeat_age_s']:.0f}s ago)"
    _table(rows, [("kiosk", "KIOSK"), ("group", "GROUP"), ("online", "ONLINE"), ("last_heartbeat", "LAST HEARTBEAT"),
                  ("config_version", "CONFIG"), ("queue_depth", "QUEUE"), ("device_faults", "DEVICE FAULTS")])
    click.echo(f"{len(rows)} kiosk(s)")


@fleet_grp.command("acks")
@_broker_options
@click.option("--version", "version", required=True, type=int)
@click.option("--json", "as_json", is_flag=True)
@click.option("--timeout", default=10.0, show_default=True)
def acks_cmd(broker: str, username: str | None, password_file: str | None, tls_ca: str | None, tls_cert: str | None,
             tls_key: str | None, version: int, as_json: bool, timeout: float) -> None:
    """Who applied bundle VERSION, who refused it and why, who has not answered."""
    snap = _snapshot(broker, _client_kw(username, password_file, tls_ca, tls_cert, tls_key), timeout)
    out = snap.acks(version)
    if as_json:
        echo_json(out)
        return
    click.echo(f"version {version}, targets: {', '.join(out['targets'] or ['(bundle not retained; all kiosks)'])}")
    click.echo(f"applied ({len(out['applied'])}): " + ", ".join(a["kiosk"] for a in out["applied"]))
    click.echo(f"refused ({len(out['refused'])}):")
    for r in out["refused"]:
        click.echo(f"  {r['kiosk']}: {r['result']} {r['reason']}")
    click.echo(f"not answered ({len(out['not_answered'])}): "
               + ", ".join(f"{s['kiosk']}{'' if s['online'] else ' (offline)'}" for s in out["not_answered"]))


admin_fleet_console.register(admin)  # command, push (bundles and commands), fleet simulate, console


register_enroll(admin)  # enroll, pin-hash


def main() -> None:
    """Entry point of the `kiosk-admin` console script."""
    admin(prog_name="kiosk-admin")


if __name__ == "__main__":
    main()
