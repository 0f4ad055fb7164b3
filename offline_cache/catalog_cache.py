"""Catalog cache: browse the item catalog offline, refresh it with ETag when the platform is reachable."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from kiosk.infra.atomic_file import atomic_write
from kiosk.ports.platform import PlatformPort


class CatalogCache:
    """``catalog.json`` + ``catalog.etag`` in a directory, replaced atomically (the catalog holds no personal data)."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.file = self.dir / "catalog.json"
        self.etag_file = self.dir / "catalog.etag"

    def load(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.file.read_text("utf-8"))
            return data if isinstance(data, dict) else None
        except (FileNotFoundError, ValueError):
            return None

    @property
    def etag(self) -> str | None:
        try:
            return self.etag_file.read_text("utf-8").strip() or None
        except FileNotFoundError:
            return None

    def store(self, catalog: dict[str, Any], etag: str | None) -> None:
        atomic_write(self.file, json.dumps(catalog, ensure_ascii=False).encode(), mode=0o644)  # public data
        atomic_write(self.etag_file, (etag or "").encode(), mode=0o644)

    def refresh(self, client: PlatformPort) -> bool:
        """Ask the platform; True when a new catalog was stored, False when unchanged. Raises PlatformError."""
        etag, catalog = client.get_catalog(self.etag if self.file.exists() else None)
        if catalog is None:
            return False
        self.store(catalog, etag)
        return True
