"""`kiosk device qr decode IMAGE`: decode the first QR code in an image (or video) file."""
from __future__ import annotations

import sys

import click

from kiosk.cli._groups import echo_json, group
from kiosk.domain.qr_payload import PayloadRefused, QrClassifier


def register(cli: click.Group) -> None:
    """Add `device qr decode|classify` to the root group (called by kiosk.cli.main)."""
    grp = group(cli, "device", "qr", help="QR scanner tools.")

    @grp.command("decode")
    @click.argument("image", type=click.Path(exists=True, dir_okay=False))
    @click.option("--decoder", default="zxing", show_default=True, type=click.Choice(["zxing", "pyzbar"]))
    @click.option("--json", "as_json", is_flag=True)
    def decode(image: str, decoder: str, as_json: bool) -> None:
        """Print {"text", "format", "ms"} for the first code found; exit 1 when none."""
        import cv2  # noqa: PLC0415 - OpenCV takes ~0.3 s to import; only `decode` needs it

        from devices.qr.decoders import QrImageDecoder  # noqa: PLC0415 - imports numpy and the zxing/zbar decoders

        frame = cv2.imread(image, cv2.IMREAD_COLOR)
        if frame is None:  # not a still image: try it as a video, first frames
            cap = cv2.VideoCapture(image)
            frames = []
            for _ in range(30):
                ok, f = cap.read()
                if not ok:
                    break
                frames.append(f)
            cap.release()
            if not frames:
                raise click.BadParameter("not an image or video OpenCV can read", param_hint="IMAGE")
        else:
            frames = [frame]
        dec = QrImageDecoder(decoder)
        for f in frames:
            found = dec.decode(f)
            if found:
                out = found[0].as_dict()
                if as_json:
                    echo_json(out)
                else:
                    click.echo(f"{out['format']}\t{out['ms']} ms\t{out['text']}")
                return
        if as_json:
            echo_json({"text": None, "format": None, "ms": None})
        else:
            click.echo("未识别到二维码", err=True)
        sys.exit(1)

    @grp.command("classify")
    @click.argument("text")
    @click.option("--allow-url", "allow", multiple=True, help="Host allowed for URLs (repeatable).")
    @click.option("--json", "as_json", is_flag=True)
    def classify_cmd(text: str, allow: tuple[str, ...], as_json: bool) -> None:
        """Show how the kiosk classifies a payload; exit 2 when it would be refused."""
        try:
            p = QrClassifier(allow).classify(text)
        except PayloadRefused as e:
            if as_json:
                echo_json({"ok": False, "reason": e.reason, "message": e.message})
            else:
                click.echo(f"{e.reason}: {e.message}", err=True)
            sys.exit(2)
        if as_json:
            echo_json({"ok": True, **p.as_dict()})
        else:
            click.echo(f"{p.kind.value}\t{p.value}")
