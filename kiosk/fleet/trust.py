"""The last bundle this kiosk trusted, kept on disk so replays fail after a restart.

``state_dir/trusted.bundle`` holds the exact bytes of the newest accepted bundle
and ``state_dir/trusted.json`` its version (the rollback high-water mark). Both
are written atomically; the version only ever goes up.
"""
from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk.fleet.bundle import BundleError, parse_bundle
from kiosk.infra.atomic_file import atomic_write, atomic_write_json

log = logging.getLogger(__name__)

TRUSTED_BUNDLE = "trusted.bundle"
TRUSTED_META = "trusted.json"
PUSHED = "pushed.json"  # the active pushed layer (kiosk.fleet.apply)
LAST_GOOD = "last_good.json"  # the layer that last passed its checks


def read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.error("fleet state file unreadable", extra={"file": str(path), "error": type(e).__name__})
        return None


class TrustStore:
    """Rollback protection that survives restarts."""

    def __init__(self, state_dir: str | os.PathLike[str]):
        self.dir = Path(state_dir)

    @property
    def meta(self) -> dict[str, Any]:
        return read_json(self.dir / TRUSTED_META) or {}

    def current_version(self) -> int:
        """The highest version ever trusted; also read from the bundle if the metadata is lost."""
        v = self.meta.get("version", 0)
        version = v if isinstance(v, int) else 0
        raw = self.trusted_bundle()
        if raw is not None:
            try:
                version = max(version, parse_bundle(raw, max_bytes=1 << 30).version)
            except BundleError:
                pass
        return version

    def trusted_bundle(self) -> bytes | None:
        try:
            return (self.dir / TRUSTED_BUNDLE).read_bytes()
        except FileNotFoundError:
            return None

    def record(self, raw: bytes, version: int, digest: str, outcome: str) -> None:
        """Make `version` the new high-water mark (also when its application was rolled back)."""
        if version <= self.current_version():
            raise ValueError(f"version {version} does not advance the trusted version")
        atomic_write(self.dir / TRUSTED_BUNDLE, raw)
        atomic_write_json(self.dir / TRUSTED_META, {
            "version": version,
            "digest": digest,
            "outcome": outcome,
            "accepted_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        })
