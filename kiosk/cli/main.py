"""`kiosk`: the command line of the terminal (run, catalog, config, devices, queue, ...).

Each concern lives in its own module exposing ``register(cli)``. The root group
imports them all before it runs anything (``kiosk --help`` included), and a module
that fails to import or register stops the CLI with exit code 70, the module's name,
the error and its traceback on stderr: a broken installation must never look like a
working one with a command missing. Heavy optional dependencies (OpenCV, Kivy,
paho, pyscard) stay inside the commands so `kiosk --help` stays quick.
"""
from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Sequence
from typing import Any

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

EXIT_BROKEN_INSTALL = 70  # EX_SOFTWARE (sysexits.h): the CLI itself is broken, not the user's input


class CommandModuleError(ImportError):
    """A command module could not be imported or could not register its commands."""

    def __init__(self, module: str, cause: BaseException) -> None:
        super().__init__(f"command module {module} failed to load: {type(cause).__name__}: {cause}", name=module)
        self.module = module
        self.cause = cause


class KioskCli(click.Group):
    """The root group: loads every command module on first use, loudly or not at all."""

    def __init__(self, *args: Any, modules: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.modules = list(modules)
        self._loaded = False

    def load_commands(self) -> None:
        """Import and register every command module; raise CommandModuleError on the first that fails."""
        if self._loaded:
            return
        for name in self.modules:
            try:
                importlib.import_module(name).register(self)
            except Exception as e:  # any failure at all means a missing command: re-raised, named
                raise CommandModuleError(name, e) from e
        self._loaded = True

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Load the commands first; a broken module ends the process with EXIT_BROKEN_INSTALL."""
        try:
            self.load_commands()
        except CommandModuleError as e:
            traceback.print_exception(e.cause, file=sys.stderr)
            click.echo(f"kiosk: {e}", err=True)
            click.echo("kiosk: the installation is broken; no command was run", err=True)
            sys.exit(EXIT_BROKEN_INSTALL)
        return super().main(*args, **kwargs)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self.load_commands()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.load_commands()
        return super().list_commands(ctx)


@click.group(cls=KioskCli, modules=COMMAND_MODULES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qhb-kiosk")
def cli() -> None:
    """齐好办 self-service kiosk."""


def main() -> None:
    """Entry point of the `kiosk` console script."""
    cli(prog_name="kiosk")


if __name__ == "__main__":
    main()
