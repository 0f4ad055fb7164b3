"""Catalog cache: offline browsing from disk, refresh with ETag against the simulator."""
from __future__ import annotations

import pytest

from kiosk.platform.client import PlatformClient, RetryableError
from kiosk.platform.credentials import configured_credentials
from offline_cache.catalog_cache import CatalogCache
from standins.platform_sim import start_in_thread


def test_refresh_stores_then_revalidates_and_survives_an_outage(tmp_path):
    sim = start_in_thread(tmp_path / "sim")
    c = configured_credentials()
    client = PlatformClient(sim.url, c.kiosk_id, c.secret)
    try:
        cache = CatalogCache(tmp_path / "cache")
        assert cache.load() is None
        assert cache.refresh(client) is True
        assert any(i["code"] == "QHB-RS-001" for i in cache.load()["items"]) and cache.etag
        assert cache.refresh(client) is False  # 304 Not Modified
        sim.options.mode = "outage"
        with pytest.raises(RetryableError):
            cache.refresh(client)
        assert CatalogCache(tmp_path / "cache").load()["items"]  # still browsable offline
    finally:
        client.close()
        sim.stop()
