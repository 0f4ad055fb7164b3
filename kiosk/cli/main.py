"""`kiosk`: the command line of the terminal (run, catalog, config, devices, queue, ...).

Each concern lives in its own module exposing ``register(cli)``; heavy imports
(OpenCV, Kivy, requests) stay inside the commands so `kiosk --help` is instant.
"""
from __future__ import annotations

import importlib

import click

COMMAND_MODULES = [
    "kiosk.cli.run_cmds",
    "kiosk.cli.catalog_cmds",
    "kiosk.cli.config_cmds",
    "kiosk.cli.idcard_cmds",
    "kiosk.cli.qr_cmds",
    "kiosk.cli.camera_cmds",
    "kiosk.cli.printer_cmds",
    "kiosk.cli.queue_cmds",
    "kiosk.cli.platform_cmds",
    "kiosk.cli.fleet_cmds",
    "kiosk.cli.diagnose_cmds",
    "kiosk.cli.demo_cmds",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qhb-kiosk")
def cli() -> None:
    """齐好办 self-service kiosk."""


def _load() -> None:
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that concern has not landed yet
                continue
            raise
        mod.register(cli)


_load()


def main() -> None:
    cli(prog_name="kiosk")


if __name__ == "__main__":
    main()
