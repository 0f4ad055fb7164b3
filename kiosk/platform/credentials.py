"""The kiosk's platform credential (kiosk id + HMAC secret) from a TOML file.

The file holds ``kiosk_id`` and ``secret`` (hex). The development pair lives in
``config/dev-credentials.toml`` and is what a plain ``kiosk platform-sim`` trusts.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from kiosk.config import DEV_CREDENTIALS_FILE, KioskConfig, load_config


@dataclass(frozen=True)
class Credentials:
    kiosk_id: str
    secret: bytes

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials(kiosk_id={self.kiosk_id!r}, secret=<{len(self.secret)} bytes>)"


class CredentialsError(Exception):
    pass


def load_credentials(path: str | Path) -> Credentials:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
        kiosk_id = str(data["kiosk_id"])
        secret = bytes.fromhex(str(data["secret"]))
    except FileNotFoundError:
        raise CredentialsError(f"credentials file not found: {path}") from None
    except (KeyError, ValueError, tomllib.TOMLDecodeError) as e:
        raise CredentialsError(f"credentials file {path} needs kiosk_id and secret (hex): {type(e).__name__}") from None
    if len(secret) < 16:
        raise CredentialsError(f"credentials file {path}: secret shorter than 16 bytes")
    return Credentials(kiosk_id, secret)


def development_credentials() -> Credentials:
    """The development credential (config/dev-credentials.toml), for the simulators."""
    return load_credentials(DEV_CREDENTIALS_FILE)


def configured_credentials(cfg: KioskConfig | None = None) -> Credentials:
    """The credential named by ``[platform] credentials_file`` of the loaded configuration."""
    if cfg is None:
        cfg = load_config()
    return load_credentials(cfg.resolve_path(cfg.platform.credentials_file))
