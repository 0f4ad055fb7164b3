"""Frame-gap probe: how long the Kivy (UI) thread went without drawing a frame.

A `Clock.schedule_interval(callback, 0)` callback runs once per frame; the time
between two calls is the frame gap. A UI thread that waits on a device, the
network or an fsync shows up as a long gap. Used by the UI tests and by the soak
(bench/soak.py), which report the 99th percentile and the maximum; nothing here
asserts a timing, it only measures.

With `stall_ms` set, a sampler thread also records WHERE the UI thread was while
a frame was overdue by more than that: `stall_sites` counts the innermost frames
(file:line function) and `stall_stacks` keeps the sampled stacks, so a stall can
be told apart from slow rendering (inside the window's flip) or from a screen
that waits on a device or the network (a port call on the UI thread).

With `measure_swap`, the time spent in the window's buffer swap (`Window.flip`:
the GL driver and the X server, e.g. llvmpipe on Xvfb starved of CPU) is timed
too, and the `*_without_swap` figures give the gaps minus that time: what the
UI thread spent in Python (our code, Kivy's layout and events).

With `context` set (a callable saying what the app was doing: the soak passes the visit, its
kind and fault and the screen), the `keep_longest` longest gaps are kept with what was going on
when each ended (`longest()`, `frame_gaps_longest` in the summary): a soak's maximum can be told
apart from a mode switch, a screen build or the machine's other work.

    probe = FrameGapProbe().start()
    ...  # drive the app
    probe.stop()
    print(probe.summary())   # {"frames": 812, "frame_gap_ms_p50": 16.9, "frame_gap_ms_p99": 33.1, ...}
"""
from __future__ import annotations

import heapq
import logging
import math
import sys
import threading
import time
import traceback
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["FrameGapProbe", "GapHistogram", "percentile", "summarize_gaps"]

log = logging.getLogger(__name__)


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; 0.0 for no values."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summarize_gaps(gaps_ms: Iterable[float]) -> dict[str, Any]:
    """frames, p50, p99 and max of a list of frame gaps in milliseconds (rounded to 0.1 ms)."""
    gaps = list(gaps_ms)
    return {
        "frames": len(gaps),
        "frame_gap_ms_p50": round(percentile(gaps, 50), 1),
        "frame_gap_ms_p99": round(percentile(gaps, 99), 1),
        "frame_gap_ms_max": round(max(gaps), 1) if gaps else 0.0,
    }


class GapHistogram:
    """Frame gaps counted in 0.1 ms bins up to 2 s, the rarer longer ones kept exactly: every gap of a
    10,000-visit soak (over a million frames) in constant memory, so the probe's own memory is not
    counted as the kiosk's growth. Percentiles are the upper edge of the nearest-rank bin (at most
    0.1 ms above the exact value, the resolution the figures are reported in)."""

    BIN_MS = 0.1
    BINS = 20_000  # 0-2,000 ms

    def __init__(self, max_long: int = 100_000) -> None:
        self.counts = array("Q", bytes(8 * self.BINS))
        self.long: deque[float] = deque(maxlen=max_long)  # gaps of 2 s and more: stalls worth seeing one by one
        self.n = 0

    def add(self, gap_ms: float) -> None:
        i = int(gap_ms / self.BIN_MS)
        if i < self.BINS:
            self.counts[i] += 1
        else:
            self.long.append(gap_ms)
        self.n += 1

    def clear(self) -> None:
        self.counts = array("Q", bytes(8 * self.BINS))
        self.long.clear()
        self.n = 0

    def percentile(self, q: float) -> float:
        if self.n == 0:
            return 0.0
        rank = min(self.n, max(1, math.ceil(q / 100.0 * self.n)))
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank:
                return round((i + 1) * self.BIN_MS, 1)
        return sorted(self.long)[min(rank - seen, len(self.long)) - 1]


class FrameGapProbe:
    """Records the gap between consecutive Kivy frames while started (UI thread only).

    Every gap is counted (`GapHistogram`: constant memory however long the soak); the
    maximum is kept exactly, so a single stall is never forgotten; the most recent
    `recent` gaps are kept as they were (`gaps_ms`). `clock` is injectable for tests
    of the probe itself.
    """

    def __init__(self, recent: int = 1_000, clock: Callable[[], float] = time.perf_counter,
                 stall_ms: float | None = None, max_stacks: int = 200, measure_swap: bool = False,
                 outside: Callable[[], float] | None = None, context: Callable[[], str] | None = None,
                 keep_longest: int = 10) -> None:
        self._clock = clock
        self._context = context
        self._keep_longest = keep_longest
        self._longest: list[tuple[float, int, str]] = []  # a min-heap of (gap, sequence, context)
        # a test driver that runs the loop frame by frame says how long it kept the UI thread itself
        # (standins.ui_driver.harness_seconds); that time is not the app's and is taken off each gap
        self._outside = outside
        self._outside_last = 0.0
        self._hist = GapHistogram()
        self._recent: deque[float] = deque(maxlen=recent)
        self._max_ms = 0.0
        self._last: float | None = None
        self._event: Any = None
        self.stall_ms = stall_ms
        self.stall_sites: Counter[str] = Counter()
        self.stall_stacks: deque[list[str]] = deque(maxlen=max_stacks)
        self._sampler: threading.Thread | None = None
        self._sampling = threading.Event()
        self._ui_thread: int | None = None
        self.measure_swap = measure_swap
        self._hist_without_swap = GapHistogram()
        self._swap_s = 0.0  # swap time since the last frame mark
        self._max_without_swap_ms = 0.0
        self._window: Any = None

    # ------------------------------------------------------------------ control
    def start(self) -> FrameGapProbe:
        """Begin recording on the Kivy clock (call on the UI thread, after the window exists)."""
        from kivy.clock import Clock  # noqa: PLC0415 - Kivy reads its environment at import; the soak imports us before configure_kivy

        if self._event is None:
            self._last = None
            self._event = Clock.schedule_interval(self._on_frame, 0)
        if self.measure_swap and self._window is None:
            from kivy.base import EventLoop  # noqa: PLC0415 - as above: Kivy only once the window exists

            win = EventLoop.window
            if win is not None:
                flip = win.flip

                def timed_flip() -> Any:
                    t = self._clock()
                    try:
                        return flip()
                    finally:
                        self._swap_s += self._clock() - t

                win.flip = timed_flip
                self._window = win
        if self.stall_ms is not None and self._sampler is None:
            self._ui_thread = threading.get_ident()
            self._sampling.set()
            self._sampler = threading.Thread(target=self._sample_loop, name="frame-probe-sampler", daemon=True)
            self._sampler.start()
        return self

    def stop(self) -> FrameGapProbe:
        """Stop recording; the figures stay until `reset()`."""
        if self._event is not None:
            self._event.cancel()
            self._event = None
        if self._window is not None:
            vars(self._window).pop("flip", None)  # the class's own flip again
            self._window = None
        self._sampling.clear()
        if self._sampler is not None:
            self._sampler.join(timeout=2)
            self._sampler = None
        self._last = None
        return self

    def _sample_loop(self) -> None:
        """Every 50 ms: if the UI thread is overdue by more than `stall_ms`, note where it is."""
        limit = (self.stall_ms or 0.0) / 1000.0
        while self._sampling.is_set():
            time.sleep(0.05)
            last = self._last
            harness = (self._outside() - self._outside_last) if self._outside is not None else 0.0
            if last is None or self._clock() - last - harness <= limit or self._ui_thread is None:
                continue
            frame = sys._current_frames().get(self._ui_thread)
            if frame is None:
                continue
            stack = traceback.extract_stack(frame)
            inner = stack[-1]
            self.stall_sites[f"{inner.filename}:{inner.lineno} {inner.name}"] += 1
            self.stall_stacks.append([f"{f.filename}:{f.lineno} {f.name}" for f in stack])

    def reset(self) -> None:
        """Forget the recorded gaps and stall samples (e.g. after warm-up)."""
        self._hist.clear()
        self._recent.clear()
        self._max_ms = 0.0
        self._last = None
        self.stall_sites.clear()
        self.stall_stacks.clear()
        self._hist_without_swap.clear()
        self._max_without_swap_ms = 0.0
        self._swap_s = 0.0
        self._longest.clear()

    @property
    def running(self) -> bool:
        return self._event is not None

    # ------------------------------------------------------------------ recording
    def _on_frame(self, _dt: float) -> None:
        self.mark()

    def mark(self) -> None:
        """One frame happened now (the clock callback; public so a probe can be fed by hand in tests)."""
        now = self._clock()
        outside = self._outside() if self._outside is not None else 0.0
        if self._last is not None:
            gap = max(0.0, (now - self._last) - (outside - self._outside_last)) * 1000.0
            self._hist.add(gap)
            self._recent.append(gap)
            if gap > self._max_ms:
                self._max_ms = gap
            if self._context is not None:
                self._note_if_long(gap)
            if self._window is not None:
                rest = max(0.0, gap - self._swap_s * 1000.0)
                self._hist_without_swap.add(rest)
                self._max_without_swap_ms = max(self._max_without_swap_ms, rest)
        self._swap_s = 0.0
        self._last = now
        self._outside_last = outside

    def _note_if_long(self, gap: float) -> None:
        """Keep the gap with its context when it is among the longest so far (context asked only then)."""
        heap = self._longest
        if len(heap) >= self._keep_longest and gap <= heap[0][0]:
            return
        try:
            what = self._context() if self._context is not None else ""
        except Exception:  # noqa: BLE001 - the probe only measures: a failing context must not stop the UI thread
            log.exception("the frame probe's context failed")
            what = "?"
        item = (gap, self._hist.n, what)
        if len(heap) < self._keep_longest:
            heapq.heappush(heap, item)
        else:
            heapq.heapreplace(heap, item)

    def longest(self) -> list[dict[str, Any]]:
        """The longest gaps kept, longest first: {"ms", "frame" (its number), "during" (the context)}."""
        return [{"ms": round(g, 1), "frame": n, "during": what}
                for g, n, what in sorted(self._longest, reverse=True)]

    # ------------------------------------------------------------------ figures
    @property
    def gaps_ms(self) -> list[float]:
        """The most recent gaps, as measured."""
        return list(self._recent)

    @property
    def frames(self) -> int:
        return self._hist.n

    @property
    def p99_ms(self) -> float:
        return self._hist.percentile(99)

    @property
    def max_ms(self) -> float:
        return self._max_ms

    def app_sites(self) -> Counter[str]:
        """For each sampled stall, the innermost frame in this project's code (not a library's): which of
        our screens or services the UI thread was in when the time went into Kivy's text or layout."""
        sites: Counter[str] = Counter()
        for stack in self.stall_stacks:
            ours = [f for f in stack if "site-packages" not in f and "/lib/python" not in f
                    and "frame_probe" not in f and "ui_driver" not in f]
            if ours:
                sites[ours[-1].split("/work/main/")[-1]] += 1
        return sites

    def summary(self) -> dict[str, Any]:
        """frames, frame_gap_ms_p50, frame_gap_ms_p99, frame_gap_ms_max (the soak's JSON field names)."""
        out: dict[str, Any] = {"frames": self._hist.n, "frame_gap_ms_p50": self._hist.percentile(50),
                               "frame_gap_ms_p99": self._hist.percentile(99),
                               "frame_gap_ms_max": round(self._max_ms, 1)}
        if self._hist_without_swap.n:
            out["frame_gap_ms_p99_without_swap"] = self._hist_without_swap.percentile(99)
            out["frame_gap_ms_max_without_swap"] = round(self._max_without_swap_ms, 1)
        if self._context is not None:
            out["frame_gaps_longest"] = self.longest()
        if self.stall_ms is not None:
            out["stall_sites"] = dict(self.stall_sites.most_common(5))
            out["stall_app_sites"] = dict(self.app_sites().most_common(8))
        return out
