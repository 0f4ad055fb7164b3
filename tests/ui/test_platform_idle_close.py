"""The station's status refresh closes platform connections left unused for a minute (a 4G NAT forgets them)."""
from __future__ import annotations

from urllib.parse import urlparse

import pytest
from manual_clock import ManualClock
from tcp_support import local_ports_to
from ui_support import make_service


@pytest.fixture
def quiet_kiosk(tmp_path):
    """(service, its clock, the platform's port) with the simulated devices and the embedded platform."""
    clock = ManualClock(1000.0)
    svc = make_service(tmp_path / "kiosk", clock=clock)
    yield svc, clock, urlparse(svc.ctx.platform.base_url).port
    svc.stop()


def test_a_status_refresh_after_a_quiet_minute_replaces_the_kept_alive_connection(quiet_kiosk):
    svc, clock, port = quiet_kiosk
    svc.ctx.platform.health()
    svc.station.refresh_status()
    kept = local_ports_to(port)
    assert kept  # a busy kiosk keeps its connection for the next call
    clock.now += svc.ctx.timings.platform_idle_close_s + 1
    svc.station.refresh_status()
    assert not kept & local_ports_to(port)  # the quiet minute's connection is gone


def test_an_idle_kiosk_probing_every_quiet_spell_keeps_its_one_connection(quiet_kiosk):
    """The health probe (after reachability.QUIET_S without contact) comes before the idle rule would close."""
    from kiosk.app.reachability import QUIET_S

    svc, clock, port = quiet_kiosk
    svc.station.refresh_status()
    before = svc.ctx.platform.last_contact
    kept = local_ports_to(port)
    for _ in range(5):
        clock.now += QUIET_S + 1
        svc.station.refresh_status()
    assert svc.ctx.platform.last_contact != before  # probes went out
    assert kept and kept <= local_ports_to(port)  # all on the connection kept alive
