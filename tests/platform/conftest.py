"""Fixtures: the platform simulator in a thread (fast) and the dev kiosk credential."""
from __future__ import annotations

import pytest

from kiosk.platform.client import PlatformClient
from kiosk.platform.credentials import configured_credentials
from standins.platform_sim import start_in_thread


@pytest.fixture(scope="session")
def creds():
    return configured_credentials()


@pytest.fixture
def sim(tmp_path):
    h = start_in_thread(tmp_path / "sim", seed=1234)
    yield h
    h.stop()


@pytest.fixture
def client(sim, creds):
    c = PlatformClient(sim.url, creds.kiosk_id, creds.secret, read_timeout=5)
    yield c
    c.close()
