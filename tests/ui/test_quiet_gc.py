"""Full garbage collections only while the kiosk stands idle on its home screen (screens.quiet_gc)."""
from __future__ import annotations

import gc
import weakref

import pytest
from manual_clock import ManualClock

from screens.quiet_gc import QuietCollector


class Cycle:
    """An object kept alive only by a reference cycle once the test drops it."""

    def __init__(self) -> None:
        self.me = self



@pytest.fixture
def collector():
    clock = ManualClock(1000.0)
    c = QuietCollector(quiet_s=300, every_s=3600, clock=clock)
    yield c, clock
    c.stop()


def test_startup_objects_are_frozen_and_given_back_when_the_app_stops(collector):
    c, _ = collector
    kept = Cycle()
    c.after_startup()
    assert c.frozen and gc.get_freeze_count() > 0
    ref = weakref.ref(kept)
    del kept
    gc.collect()
    assert ref() is not None  # frozen: an automatic (or any) collection does not walk it
    c.stop()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert ref() is None


def test_the_full_collection_waits_for_an_idle_home_screen(collector):
    c, clock = collector
    kept = Cycle()
    c.after_startup()
    ref = weakref.ref(kept)
    del kept
    clock.now += 3600  # due, but a citizen touched the screen a moment ago
    c.touched()
    clock.now += 10
    assert not c.tick(on_home=True)
    clock.now += 300  # untouched for five minutes, but a visit is open on another screen
    assert not c.tick(on_home=False)
    assert ref() is not None
    assert c.tick(on_home=True)  # untouched on the home screen: now
    assert ref() is None and c.full_collections == 1
    assert c.frozen and gc.get_freeze_count() > 0  # frozen again for the visits to come
    clock.now += 600
    assert not c.tick(on_home=True)  # at most one in `every_s`


def test_an_app_whose_screens_are_built_has_frozen_its_startup_objects(tmp_path):
    from ui_support import make_service

    from standins.ui_driver import start_app, stop_app

    svc = make_service(tmp_path / "kiosk")
    app, drv = start_app(svc)
    try:
        drv.wait_until(lambda: app.collector.frozen, timeout=60, what="screens built")
        assert all(app.root.sm.has_screen(n) for n in ("home", "identify", "form", "receipt", "rating"))
        assert gc.get_freeze_count() > 10_000
    finally:
        stop_app(app)
        svc.stop()
    assert gc.get_freeze_count() == 0
