"""Peers for the ID-card tests: a SAM emulator behind a pty (stable symlink path)."""
from __future__ import annotations

import tracemalloc  # noqa: F401  (imported early: pytest's unraisable hook imports it from pyscard __del__ threads)

import pytest

from standins.sam_emulator import PtyServer, SamEmulator, sample_card


@pytest.fixture
def sam_pty(tmp_path):
    """(emulator, server, port path): a module with a card on it, answering on a pty."""
    emu = SamEmulator(sample_card())
    server = PtyServer(emu, str(tmp_path / "ttyIDCARD"))
    try:
        yield emu, server, server.link_path
    finally:
        server.close()


@pytest.fixture(scope="session")
def pcscd(tmp_path_factory):
    """A running pcscd with the vpcd virtual reader; stopped by pid at the end."""
    from pcscd_peer import PcscdPeer  # type: ignore

    reason = PcscdPeer.unavailable_reason()
    if reason:
        pytest.skip(reason)
    peer = PcscdPeer(str(tmp_path_factory.mktemp("pcscd") / "pcscd.log"))
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()
