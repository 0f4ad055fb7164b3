"""Frame-gap probe: how long the Kivy (UI) thread went without drawing a frame.

A `Clock.schedule_interval(callback, 0)` callback runs once per frame; the time
between two calls is the frame gap. A UI thread that waits on a device, the
network or an fsync shows up as a long gap. Used by the UI tests and by the soak
(bench/soak.py), which report the 99th percentile and the maximum; nothing here
asserts a timing, it only measures.

    probe = FrameGapProbe().start()
    ...  # drive the app
    probe.stop()
    print(probe.summary())   # {"frames": 812, "frame_gap_ms_p50": 16.9, "frame_gap_ms_p99": 33.1, ...}
"""
from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["FrameGapProbe", "percentile", "summarize_gaps"]


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


class FrameGapProbe:
    """Records the gap between consecutive Kivy frames while started (UI thread only).

    `max_samples` bounds memory for a long soak (the oldest gaps are dropped, the
    maximum is kept separately so a single stall is never forgotten).
    `clock` is injectable for tests of the probe itself.
    """

    def __init__(self, max_samples: int = 500_000, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._gaps: deque[float] = deque(maxlen=max_samples)
        self._max_ms = 0.0
        self._last: float | None = None
        self._event: Any = None

    # ------------------------------------------------------------------ control
    def start(self) -> FrameGapProbe:
        """Begin recording on the Kivy clock (call on the UI thread, after the window exists)."""
        from kivy.clock import Clock  # noqa: PLC0415 - Kivy reads its environment at import; the soak imports us before configure_kivy

        if self._event is None:
            self._last = None
            self._event = Clock.schedule_interval(self._on_frame, 0)
        return self

    def stop(self) -> FrameGapProbe:
        """Stop recording; the figures stay until `reset()`."""
        if self._event is not None:
            self._event.cancel()
            self._event = None
        self._last = None
        return self

    def reset(self) -> None:
        """Forget the recorded gaps (e.g. after warm-up)."""
        self._gaps.clear()
        self._max_ms = 0.0
        self._last = None

    @property
    def running(self) -> bool:
        return self._event is not None

    # ------------------------------------------------------------------ recording
    def _on_frame(self, _dt: float) -> None:
        self.mark()

    def mark(self) -> None:
        """One frame happened now (the clock callback; public so a probe can be fed by hand in tests)."""
        now = self._clock()
        if self._last is not None:
            gap = (now - self._last) * 1000.0
            self._gaps.append(gap)
            if gap > self._max_ms:
                self._max_ms = gap
        self._last = now

    # ------------------------------------------------------------------ figures
    @property
    def gaps_ms(self) -> list[float]:
        return list(self._gaps)

    @property
    def frames(self) -> int:
        return len(self._gaps)

    @property
    def p99_ms(self) -> float:
        return percentile(self._gaps, 99)

    @property
    def max_ms(self) -> float:
        return self._max_ms

    def summary(self) -> dict[str, Any]:
        """frames, frame_gap_ms_p50, frame_gap_ms_p99, frame_gap_ms_max (the soak's JSON field names)."""
        out = summarize_gaps(self._gaps)
        out["frame_gap_ms_max"] = round(self._max_ms, 1)
        return out
