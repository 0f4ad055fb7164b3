"""Kept-alive platform connections are closed after a quiet spell (PlatformClient.close_idle_connections)."""
from __future__ import annotations

import threading
from urllib.parse import urlparse

from manual_clock import ManualClock
from tcp_support import established_to

from kiosk.platform.client import PlatformClient


def test_connections_unused_for_the_idle_time_are_closed_and_the_next_call_opens_one(sim, creds):
    clock = ManualClock(100.0)
    port = urlparse(sim.url).port
    c = PlatformClient(sim.url, creds.kiosk_id, creds.secret, read_timeout=5, clock=clock)
    try:
        assert not c.close_idle_connections(60)  # no call yet: nothing to close
        c.health()
        assert established_to(port) == 1  # kept alive for the next call
        clock.now += 59
        assert not c.close_idle_connections(60)
        assert established_to(port) == 1
        clock.now += 2
        assert c.close_idle_connections(60)
        assert established_to(port) == 0
        assert not c.close_idle_connections(60)  # already closed: nothing more to do
        c.health()  # a new connection, through a new pool
        assert established_to(port) == 1 and c.reachable
    finally:
        c.close()


def test_a_call_in_flight_keeps_its_connection(sim, creds):
    clock = ManualClock(100.0)
    c = PlatformClient(sim.url, creds.kiosk_id, creds.secret, read_timeout=5, clock=clock)
    c.health()
    clock.now += 120
    started, release = threading.Event(), threading.Event()
    real_request = c._request

    def slow_request(*a, **kw):
        started.set()
        release.wait(10)
        return real_request(*a, **kw)

    c._request = slow_request  # type: ignore[method-assign]
    t = threading.Thread(target=c.health)
    t.start()
    try:
        assert started.wait(10)
        assert not c.close_idle_connections(60)  # idle since the last call ended, but one is under way
    finally:
        release.set()
        t.join(10)
        c.close()
    assert c.reachable
