"""Peers for the QR tests: a serial scanner's port on a pty (helpers in qr_helpers.py)."""
from __future__ import annotations

import pytest
from qr_helpers import PtyPort  # type: ignore


@pytest.fixture
def pty_port(tmp_path):
    p = PtyPort(str(tmp_path / "ttySCAN"))
    yield p
    p.unplug()
