"""`kiosk device idcard read|decode|emulate`, `kiosk device sscard read`: technician tools for card readers.

Output is masked unless ``--unmasked`` is given; decode exits with status 2 and
the reason (bad_preamble, bad_length, bad_checksum, sam_status, malformed_text).
"""
from __future__ import annotations

import datetime as dt
import sys
import time
from typing import Any, NoReturn

import click

from devices.base import DeviceError, DeviceState
from devices.idcard.ga467 import FrameError, GA467Frame, parse_read_data, sam_error
from devices.idcard.reader import NoCard
from devices.idcard.text_block import parse_text_block
from kiosk.bootstrap import drivers
from kiosk.cli._groups import echo_json, group
from kiosk.domain.identity_card import IdentityCard
from standins.sam_emulator import PtyServer, SamEmulator, sample_card

DECODE_EXIT = 2


def _card_view(card: IdentityCard, unmasked: bool) -> dict[str, Any]:
    """The card as printed: masked unless the technician asked otherwise, plus whether it has expired."""
    d = card.unmasked() if unmasked else card.masked()
    d["expired"] = card.is_expired(dt.date.today())
    return d


def _print_card(d: dict[str, Any]) -> None:
    labels = [("card_type_name", "证件类型"), ("name", "姓名"), ("english_name", "英文姓名"), ("sex", "性别"),
              ("nation", "民族"), ("nationality", "国籍"), ("birth_date", "出生日期"), ("birth_year", "出生年份"),
              ("address", "住址"), ("id_number", "证件号码"), ("authority", "签发机关"),
              ("valid_from", "有效期起"), ("valid_to", "有效期止"), ("pass_number", "通行证号码"),
              ("photo_bytes", "照片(WLT)字节"), ("fingerprint_bytes", "指纹字节")]
    for key, label in labels:
        v = d.get(key)
        if v not in (None, ""):
            click.echo(f"{label}: {v}")
    if d.get("expired"):
        click.echo("注意: 证件已过有效期")


def _fail(as_json: bool, reason: str, message: str, exit_code: int, /, **extra: Any) -> NoReturn:
    if as_json:
        echo_json({"ok": False, "reason": reason, "message": message, **extra})
    else:
        click.echo(f"{reason}: {message}", err=True)
    sys.exit(exit_code)


def register(cli: click.Group) -> None:
    """Add the ID-card and social security card commands (called by kiosk.cli.main)."""
    register_idcard(cli)
    register_sscard(cli)


def register_idcard(cli: click.Group) -> None:
    """`device idcard read|decode|emulate`."""
    grp = group(cli, "device", "idcard", help="ID-card reader tools.")

    @grp.command("read")
    @click.option("--driver", default="ga467-serial", show_default=True,
                  type=click.Choice(["ga467-serial", "simulated"]))
    @click.option("--port", help="Serial port of the SAM module, e.g. /dev/ttyUSB0.")
    @click.option("--baudrate", default=115200, show_default=True, type=int)
    @click.option("--wait", "wait_s", default=5.0, show_default=True, type=float,
                  help="Seconds to wait for a card (and for the module to answer).")
    @click.option("--fingerprint", is_flag=True, help="Also read fingerprint data (30 10).")
    @click.option("--json", "as_json", is_flag=True)
    @click.option("--unmasked", is_flag=True, help="Show personal data in full (technician only).")
    def read(driver: str, port: str | None, baudrate: int, wait_s: float, fingerprint: bool, as_json: bool,
             unmasked: bool) -> None:
        """Read one card and print it (masked). Exit 1 on reader problems, 2 on a card that cannot be used."""
        if driver == "ga467-serial" and not port:
            raise click.UsageError("--port is required for ga467-serial")
        settings = {"driver": driver, "port": port, "baudrate": baudrate, "card_present": True,
                    "reconnect_initial_s": 0.2, "reconnect_max_s": 1.0}
        dev = drivers.create("idcard", settings)
        dev.open()
        try:
            end = time.monotonic() + wait_s
            if not dev.wait_for_state(DeviceState.READY, timeout=wait_s):
                st = dev.status
                _fail(as_json, st.code, st.message, 1)
            while True:
                try:
                    card = dev.read_card(fingerprint=fingerprint, accept_expired=True)  # type: ignore[attr-defined]
                    break
                except NoCard as e:
                    if time.monotonic() >= end:
                        _fail(as_json, e.code, e.message, 1)
                    time.sleep(0.2)
                except DeviceError as e:
                    exit_code = 2 if e.code in ("malformed_text", "unsupported_card") else 1
                    _fail(as_json, e.code, e.message, exit_code)
            view = _card_view(card, unmasked)
            view["read_ms"] = dev.statistics.get("read_ms")
            if as_json:
                echo_json({"ok": True, "card": view})
            else:
                _print_card(view)
        finally:
            dev.close()

    @grp.command("decode")
    @click.option("--hex", "hex_text", required=True, help="A captured response frame, preamble to checksum.")
    @click.option("--json", "as_json", is_flag=True)
    @click.option("--unmasked", is_flag=True, help="Show personal data in full (technician only).")
    def decode(hex_text: str, as_json: bool, unmasked: bool) -> None:
        """Decode a read-card response frame and print the card (masked), or exit 2 with the reason."""
        cleaned = "".join(hex_text.replace("0x", "").replace(",", " ").split())
        try:
            raw = bytes.fromhex(cleaned)
        except ValueError:
            raise click.BadParameter("not hexadecimal", param_hint="--hex") from None
        try:
            frame = GA467Frame.decode(raw)
        except FrameError as e:
            _fail(as_json, e.reason, str(e), DECODE_EXIT)
        try:
            sw3 = frame.sw3
        except FrameError as e:
            _fail(as_json, "bad_length", str(e), DECODE_EXIT)
        if sw3 != 0x90:
            err = sam_error(sw3)
            _fail(as_json, "sam_status", f"SW3={sw3:02X} {err.code}: {err.message}", DECODE_EXIT,
                  sw3=f"{sw3:02X}", code=err.code)
        try:
            parts = parse_read_data(frame.data)
            card = parse_text_block(parts.text, parts.photo, parts.fingerprint)
        except DeviceError as e:
            _fail(as_json, "malformed_text", f"{e.message}（{e.detail}）" if e.detail else e.message, DECODE_EXIT,
                  code=e.code)
        view = _card_view(card, unmasked)
        if as_json:
            echo_json({"ok": True, "card": view})
        else:
            _print_card(view)

    @grp.command("emulate")
    @click.option("--link", required=True, type=click.Path(dir_okay=False),
                  help="Path of a symlink to create for the emulated module's serial port.")
    @click.option("--no-card", is_flag=True, help="Start with no card on the reader.")
    @click.option("--seconds", type=float, default=0, help="Stop after this long (0: until Ctrl-C).")
    def emulate(link: str, no_card: bool, seconds: float) -> None:
        """Run the GA 467 SAM emulator on a pseudo-terminal (demo and bench without hardware)."""
        server = PtyServer(SamEmulator(None if no_card else sample_card()), link)
        click.echo(f"SAM emulator on {link}")
        try:
            if seconds:
                time.sleep(seconds)
            else:
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            server.close()


def register_sscard(cli: click.Group) -> None:
    """`device sscard read`."""
    grp = group(cli, "device", "sscard", help="Social security card (PC/SC) tools.")

    @grp.command("read")
    @click.option("--reader", "reader_name", default="", help="Part of the PC/SC reader name (default: first).")
    @click.option("--wait", "wait_s", default=5.0, show_default=True, type=float, help="Seconds to wait for a card.")
    @click.option("--json", "as_json", is_flag=True)
    def read(reader_name: str, wait_s: float, as_json: bool) -> None:
        """Read the card on a PC/SC reader (masked). Exit 1 on reader problems or no card, 2 on card errors."""
        dev = drivers.create("sscard", {"driver": "pcsc", "reader": reader_name})
        dev.open()
        try:
            if dev.status.state != DeviceState.READY:
                _fail(as_json, dev.status.code, dev.status.message, 1)
            end = time.monotonic() + wait_s
            while True:
                try:
                    got = dev.read_present_card()  # type: ignore[attr-defined]
                    break
                except DeviceError as e:
                    if e.code in ("no_card", "card_removed") and time.monotonic() < end:
                        time.sleep(0.3)
                        continue
                    _fail(as_json, e.code, e.message,
                          1 if e.code in ("no_card", "card_removed", "reader_missing") else 2)
            view = {"atr": got["atr"], "reader": got["reader"], "card": got["card"].masked()}
            if as_json:
                echo_json({"ok": True, **view})
            else:
                click.echo(f"读卡器: {view['reader']}\nATR: {view['atr']}")
                for k, v in view["card"].items():
                    if v not in (None, ""):
                        click.echo(f"{k}: {v}")
        finally:
            dev.close()
