"""Python's full garbage collections, kept out of a citizen's way.

A full collection walks every tracked object. After start-up the kiosk holds about 460,000 (screens, the catalog,
Kivy's rules), and one pass takes 150-300 ms on a 2-core kiosk: a frozen screen in the middle of a tap, at a
moment nobody chooses. So once every screen is built, the start-up objects are collected once and frozen
(`gc.freeze`: ignored by later collections), and the automatic collections only walk what visits create.

A frozen object that later becomes unreachable inside a reference cycle is not freed until it is unfrozen. That
happens to a bounded set (the start-up screens' first tiles when a screen is rebuilt), so once in a while, when the
kiosk stands on its home screen untouched (no citizen to notice a pause), everything is unfrozen, collected in
full and frozen again.

A visit leaves cyclic garbage too: the widgets a screen rebuilt for it (a guide's sections, a form's choices,
rating tiles), about 10,000 objects, which only a full collection frees. Left to CPython, a full collection
came every six visits or so and freed 55,000-65,000 objects at once: 210-235 ms on the UI thread in the middle of a
visit (the soak, 400 visits: 62 such pauses). So the automatic full collections are pushed far out
(`FULL_AFTER_GEN1`, a safety net for one very long visit) and `after_visit` collects each visit's garbage as the
kiosk returns to its home screen: one short pass while the citizen walks away.

That pass also walks every live object made since the last freeze: what visits leave behind for good (a
screen's content built at its first use, caches filling, a few objects a visit). On a busy kiosk with no idle
pause (the soak: thousands of visits back to back) those reached 54,000 objects by visit 40 and kept growing,
and the pass grew with them, 25 ms with nothing to free and 40-50 ms with a visit's garbage. So when a visit's
pass leaves more than `REFREEZE_ABOVE` live objects unfrozen, they are frozen too. Those of them that later die
in a cycle wait for the next idle full collection, like the start-up objects above: a bounded set, since every
later refreeze needs another `REFREEZE_ABOVE` new survivors first.

Freed memory is not given back to the system by itself: glibc keeps the pages of freed blocks in the middle of its
heaps for reuse, and over a kiosk's first thousand visits the process grew about 10 MB that way with nothing alive
in it (the soak: +10.3 MB at visit 1,000, and +1.7 MB with `malloc_trim(0)` after each visit's pass; see
docs/benchmarks.md). So the visit's pass ends with `malloc_trim(0)`, which returns those pages: on this machine it
costs about as much as a frame, on the home screen while the citizen walks away.
"""
from __future__ import annotations

import ctypes
import gc
import logging
import time
from collections.abc import Callable
from typing import Literal

__all__ = ["QuietCollector", "malloc_trim"]

log = logging.getLogger(__name__)

#: automatic full collections only after this many young-generation (1) collections (CPython's default: 10)
FULL_AFTER_GEN1 = 1000
#: a visit's collection freezes the survivors when more than this many live objects are left unfrozen
#: (a full pass over them alone costs about 10 ms on a 2-core kiosk)
REFREEZE_ABOVE = 20_000


def malloc_trim() -> Callable[[], object] | None:
    """glibc's malloc_trim(0), or None where the C library has none (musl, macOS)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the process's own symbols: no ldconfig run to find libc
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


class QuietCollector:
    """Freezes the start-up objects; does the full collection only while the kiosk is idle on its home screen."""

    def __init__(self, *, quiet_s: float = 300.0, every_s: float = 6 * 3600.0,
                 clock: Callable[[], float] = time.monotonic,
                 release_memory: Callable[[], object] | None | Literal["libc"] = "libc") -> None:
        self.quiet_s = quiet_s  # untouched this long on the home screen: nobody is using the kiosk
        self.every_s = every_s  # at most one full collection in this time
        self._clock = clock
        self._last_touch = clock()
        self._last_full = clock()
        self.frozen = False
        self.full_collections = 0
        self.visit_collections = 0
        self.refreezes = 0
        self.refreeze_above = REFREEZE_ABOVE
        self._thresholds: tuple[int, int, int] | None = None  # CPython's, while ours are set
        self._release_memory = malloc_trim() if release_memory == "libc" else release_memory
        self.memory_releases = 0

    def after_startup(self) -> None:
        """Every screen is built: collect once, then freeze what is left (the kiosk's long-lived objects)."""
        if self.frozen:
            return
        gc.collect()
        gc.freeze()
        self.frozen = True
        self._last_full = self._clock()
        self._thresholds = gc.get_threshold()
        gc.set_threshold(self._thresholds[0], self._thresholds[1], FULL_AFTER_GEN1)  # after_visit does them
        log.info("start-up objects frozen for the garbage collector: %d", gc.get_freeze_count())

    def after_visit(self) -> int:
        """A visit ended and the home screen is up: free the visit's cyclic garbage now; how many objects."""
        if not self.frozen:
            return 0
        found = gc.collect()
        self.visit_collections += 1
        unfrozen = len(gc.get_objects(generation=2))  # after a full pass every survivor is in the oldest
        if unfrozen > self.refreeze_above:
            gc.freeze()
            self.refreezes += 1
            log.info("%d objects left by visits frozen for the garbage collector", unfrozen)
        self._give_memory_back()
        return found

    def touched(self) -> None:
        self._last_touch = self._clock()

    def tick(self, *, on_home: bool) -> bool:
        """Called every second on the UI thread; True when it did the full collection now."""
        now = self._clock()
        if not (self.frozen and on_home and now - self._last_touch >= self.quiet_s
                and now - self._last_full >= self.every_s):
            return False
        found = self.collect_everything()
        self._last_full = now
        log.info("full garbage collection while idle: %d unreachable objects freed", found)
        return True

    def collect_everything(self) -> int:
        """The idle pass: the frozen objects too, then frozen again; how many objects it freed."""
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        self.full_collections += 1
        self._give_memory_back()
        return found

    def _give_memory_back(self) -> None:
        """The pages of what a pass freed go back to the system (glibc keeps them otherwise)."""
        if self._release_memory is not None:
            self._release_memory()
            self.memory_releases += 1

    def stop(self) -> None:
        """Give the frozen objects back to the collector (an app stopped inside a longer-lived process)."""
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
            self._thresholds = None
        if self.frozen:
            gc.unfreeze()
            self.frozen = False
