"""`kiosk demo --out DIR`: the scripted walk-through with the simulators, one PNG per step.

Without a display it renders with SDL's offscreen (EGL) driver, or inside an Xvfb
it starts itself with --xvfb; never needs a real screen.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from kiosk.config import DEVELOPMENT_PROFILE, PROFILE_ENV
from screens.boot import configure_kivy, start_xvfb


def _parse_size(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[int, int]:
    """`WxH` -> (W, H); a plain error for anything else."""
    try:
        w, h = (int(x) for x in value.lower().replace("×", "x").split("x"))
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected WxH, e.g. 1080x1920") from None
    if not (320 <= w <= 7680 and 320 <= h <= 7680):
        raise click.BadParameter(f"{value!r}: width and height must be between 320 and 7680")
    return w, h


def register(cli: click.Group) -> None:
    @cli.command("demo")
    @click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
                  help="Directory for NN-step.png, receipts/ and walkthrough.json.")
    @click.option("--xvfb/--offscreen", default=False,
                  help="Without a display: start Xvfb (--xvfb) or use SDL's offscreen driver (default).")
    @click.option("--size", "size", default="1280x800", show_default=True, callback=_parse_size,
                  help="Window size WxH: 1080x1920 (upright 政务一体机), 1920x1080, 1366x768, 1280x800.")
    def demo_cmd(out_dir: str, xvfb: bool, size: tuple[int, int]) -> None:
        """Scripted walk-through of the kiosk with simulated devices and platform."""
        os.environ[PROFILE_ENV] = DEVELOPMENT_PROFILE  # the demo runs on the development profile
        xproc = None
        if not os.environ.get("DISPLAY"):
            if xvfb:
                xproc = start_xvfb(*size)
                click.echo(f"kiosk demo: started Xvfb on {os.environ.get('DISPLAY')}" if xproc else
                           "kiosk demo: Xvfb not available; rendering offscreen", err=True)
            else:
                click.echo("kiosk demo: no display; rendering offscreen (SDL offscreen/EGL)", err=True)
        try:
            configure_kivy(*size)
            # Kivy (through the UI driver), OpenCV and the drivers load only after configure_kivy
            from kiosk.bootstrap.app import build_kiosk  # noqa: PLC0415 - drivers, outbox, requests
            from standins.demo import run_demo  # noqa: PLC0415 - Kivy: only after configure_kivy

            out = Path(out_dir).resolve()
            steps = run_demo(out, build=build_kiosk, log=lambda s: click.echo(s, err=True))
        finally:
            if xproc is not None:
                xproc.terminate()
                xproc.wait(timeout=5)
        click.echo(f"kiosk demo: {len(steps)} steps, screenshots in {out}, walkthrough in {out / 'walkthrough.json'}")
        sys.stdout.flush()
