"""Shared helpers for CLI modules: each module adds its commands to named groups."""
from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click


def group(root: click.Group, *path: str, help: str | None = None) -> click.Group:
    """Return the nested group at `path` under root, creating it on first use."""
    node = root
    for name in path:
        sub = node.commands.get(name)
        if sub is None:
            sub = click.Group(name=name, help=help if name == path[-1] else None)
            node.add_command(sub)
        node = sub  # type: ignore[assignment]
    return node


def echo_json(obj: Any) -> None:
    """JSON for tools: UTF-8, Chinese unescaped, one document per call."""
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def fail(message: str, code: int = 1) -> NoReturn:
    """Print MESSAGE on stderr and exit with CODE (the command's documented exit code)."""
    click.echo(message, err=True)
    sys.exit(code)


config_option = click.option(
    "--config", "config_file", type=click.Path(dir_okay=False), default=None,
    help="Site configuration file (default: $KIOSK_CONFIG, then config/default.toml only).",
)
