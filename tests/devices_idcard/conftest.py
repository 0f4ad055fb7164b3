"""Peers for the ID-card tests: a SAM emulator behind a pty (stable symlink path)."""
from __future__ import annotations

import pytest

from devices.idcard.sam_emulator import PtyServer, SamEmulator, sample_card


@pytest.fixture
def sam_pty(tmp_path):
    """(emulator, server, port path): a module with a card on it, answering on a pty."""
    emu = SamEmulator(sample_card())
    server = PtyServer(emu, str(tmp_path / "ttyIDCARD"))
    try:
        yield emu, server, server.link_path
    finally:
        server.close()
