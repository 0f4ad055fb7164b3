"""Full garbage collections only while the kiosk stands idle on its home screen (screens.quiet_gc)."""
from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from pathlib import Path

import pytest
from manual_clock import ManualClock

from screens.quiet_gc import FULL_AFTER_GEN1, QuietCollector

ROOT = Path(__file__).resolve().parents[2]


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


def test_a_visits_garbage_is_collected_when_it_ends_not_by_cpython_in_the_middle(collector):
    c, _ = collector
    before = gc.get_threshold()
    c.after_startup()
    assert gc.get_threshold() == (before[0], before[1], FULL_AFTER_GEN1)  # no automatic full pass mid-visit
    visit_garbage = Cycle()
    ref = weakref.ref(visit_garbage)
    gc.collect(1)  # alive through a young collection: now in the old generation, as a visit's widgets are
    del visit_garbage
    gc.collect(1)  # what CPython still does by itself: the young generations only
    assert ref() is not None
    assert c.after_visit() >= 1
    assert ref() is None and c.visit_collections == 1
    c.stop()
    assert gc.get_threshold() == before


def test_what_visits_leave_behind_is_frozen_once_there_is_much_of_it(collector):
    """The per-visit pass would otherwise walk every object visits left alive, growing with the kiosk's age."""
    c, clock = collector
    c.after_startup()
    c.refreeze_above = 5_000
    left_behind = [Cycle() for _ in range(1_000)]  # fewer than the limit: walked, not frozen
    c.after_visit()
    assert c.refreezes == 0 and len(gc.get_objects(generation=2)) >= 1_000
    left_behind += [Cycle() for _ in range(5_000)]
    c.after_visit()
    assert c.refreezes == 1
    # frozen: in no generation a collection walks (not the freeze count: frozen objects of other tests that die
    # by reference counting leave it in the meantime)
    walked = {id(o) for g in range(3) for o in gc.get_objects(generation=g)}
    assert not any(id(x) in walked for x in left_behind)
    assert len(gc.get_objects(generation=2)) < 1_000  # the next visit's pass walks only what comes after
    ref = weakref.ref(left_behind[0])
    del left_behind
    c.after_visit()
    assert ref() is not None  # frozen: it dies with the next idle full collection, not a visit's pass
    clock.now += 3600
    assert c.tick(on_home=True)
    assert ref() is None


def test_nothing_is_collected_for_a_visit_before_start_up_is_done(collector):
    c, _ = collector
    assert c.after_visit() == 0 and c.visit_collections == 0


def test_an_app_whose_screens_are_built_has_frozen_its_startup_objects(tmp_path):
    from ui_support import make_service

    from standins.ui_driver import start_app, stop_app

    svc = make_service(tmp_path / "kiosk")
    app, drv = start_app(svc)
    try:
        drv.wait_until(lambda: app.collector.frozen, timeout=60, what="screens built")
        assert all(app.root.sm.has_screen(n) for n in ("home", "identify", "form", "receipt", "rating"))
        assert gc.get_freeze_count() > 10_000
        svc.visit.end_visit("test")  # a visit ends: its garbage goes once the home screen is up
        drv.wait_until(lambda: app.collector.visit_collections == 1, timeout=30, what="the visit's collection")
    finally:
        stop_app(app)
        svc.stop()
    assert gc.get_freeze_count() == 0


def test_a_visits_pass_and_the_idle_pass_give_freed_memory_back(collector):
    """Without it glibc keeps freed pages: the soak grew about 10 MB over 1,000 visits with nothing alive in them."""
    _, clock = collector
    released: list[int] = []
    c = QuietCollector(quiet_s=300, every_s=3600, clock=clock, release_memory=lambda: released.append(1))
    try:
        c.after_visit()
        assert released == []  # not before start-up is done: nothing collected, nothing to give back
        c.after_startup()
        c.after_visit()
        assert len(released) == 1 and c.memory_releases == 1
        clock.now += 3600
        assert c.tick(on_home=True)
        assert len(released) == 2
    finally:
        c.stop()


RELEASE_SCRIPT = """
import sys
from screens.quiet_gc import malloc_trim
def rss_kb():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1])
blocks = [bytearray(4000) for _ in range(60_000)]  # ~240 MB of malloc'd (not pymalloc) blocks
kept = blocks[::50]  # one in fifty stays: the heap cannot shrink from its top
del blocks
before = rss_kb()
trim = malloc_trim()
if trim is None:
    print("none"); sys.exit(0)
trim()
print(before, rss_kb(), len(kept))
"""


def test_malloc_trim_gives_the_pages_of_freed_blocks_back_to_the_system():
    out = subprocess.run([sys.executable, "-c", RELEASE_SCRIPT], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    if out == ["none"]:
        pytest.skip("this C library has no malloc_trim")
    before, after = int(out[0]), int(out[1])
    assert before - after > 100_000, (before, after)  # most of the ~235 MB freed in the middle came back
