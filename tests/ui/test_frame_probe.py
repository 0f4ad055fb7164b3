"""The frame-gap probe's arithmetic (its use on the running app is in test_ui_thread.py)."""
from __future__ import annotations

from screens.frame_probe import FrameGapProbe, GapHistogram, percentile, summarize_gaps


def test_percentile_nearest_rank():
    vals = list(range(1, 101))  # 1..100
    assert percentile(vals, 99) == 99
    assert percentile(vals, 50) == 50
    assert percentile(vals, 100) == 100
    assert percentile([], 99) == 0.0
    assert percentile([7.0], 99) == 7.0


def test_probe_records_gaps_between_marks_and_keeps_the_max():
    now = [0.0]
    probe = FrameGapProbe(recent=3, clock=lambda: now[0])
    for t in (0.0, 0.268, 0.284, 0.300, 0.316, 0.332):  # a 268 ms stall, then 16 ms frames
        now[0] = t
        probe.mark()
    assert probe.frames == 5  # every gap counted
    assert [round(g) for g in probe.gaps_ms] == [16, 16, 16]  # only the recent ones kept as they were
    assert round(probe.max_ms) == 268  # ... and the stall is never forgotten
    s = probe.summary()
    assert s["frames"] == 5 and s["frame_gap_ms_max"] == 268.0 and s["frame_gap_ms_p50"] == 16.1
    assert s["frame_gap_ms_p99"] == 268.1  # nearest rank of five: the stall, to the 0.1 ms bin's upper edge
    assert set(s) == {"frames", "frame_gap_ms_p50", "frame_gap_ms_p99", "frame_gap_ms_max"}
    probe.reset()
    assert probe.frames == 0 and probe.max_ms == 0.0 and probe.gaps_ms == []
    assert summarize_gaps([10.0, 20.0])["frame_gap_ms_p99"] == 20.0


def test_histogram_percentiles_match_the_exact_ones_in_constant_memory():
    """A soak's million frames cost the probe a fixed table, not a growing list; the figures stay exact to 0.1 ms,
    and gaps beyond the table (stalls of 2 s and more) are kept one by one."""
    import random

    rng = random.Random(3)
    gaps = [rng.expovariate(1 / 8.0) for _ in range(20_000)] + [2500.0, 3100.0, 40.0]
    h = GapHistogram()
    size = len(h.counts)
    for g in gaps:
        h.add(g)
    assert h.n == len(gaps) and len(h.counts) == size and list(h.long) == [2500.0, 3100.0]
    for q in (50, 90, 99, 99.9):
        exact = percentile(gaps, q)
        assert exact <= h.percentile(q) <= exact + 0.1 + 1e-9, q
    assert h.percentile(100) == 3100.0
    assert GapHistogram().percentile(99) == 0.0


def test_time_the_test_driver_kept_the_ui_thread_is_not_the_apps():
    """A driver that runs Kivy's loop frame by frame does its own work between frames (finding widgets, a soak's
    checks); a kiosk's App.run never leaves the loop, so that time is taken off the gap it fell into."""
    now, outside = [0.0], [0.0]
    probe = FrameGapProbe(clock=lambda: now[0], outside=lambda: outside[0])
    probe.mark()
    now[0], outside[0] = 1.000, 0.800  # one second between frames, 800 ms of it in the driver
    probe.mark()
    now[0] = 1.050  # a plain 50 ms frame: nothing of the driver's
    probe.mark()
    assert [round(g) for g in probe.gaps_ms] == [200, 50]
    assert round(probe.max_ms) == 200


def test_the_longest_gaps_are_kept_with_what_the_app_was_doing():
    """A soak's maximum gap says when it happened (the visit, the screen), so a stall can be traced."""
    now, doing = [0.0], ["home"]
    probe = FrameGapProbe(clock=lambda: now[0], context=lambda: doing[0], keep_longest=2)
    probe.mark()
    for gap_ms, what in ((16, "home"), (300, "elderly switch"), (20, "form"), (120, "receipt"), (90, "form")):
        now[0] += gap_ms / 1000
        doing[0] = what
        probe.mark()
    assert [(g["ms"], g["during"]) for g in probe.longest()] == [(300.0, "elderly switch"), (120.0, "receipt")]
    assert probe.summary()["frame_gaps_longest"][0]["frame"] == 2
    probe.reset()
    assert probe.longest() == []


def test_a_failing_context_does_not_stop_the_probe():
    now = [0.0]

    def broken() -> str:
        raise RuntimeError("no screen yet")

    probe = FrameGapProbe(clock=lambda: now[0], context=broken)
    probe.mark()
    now[0] = 0.05
    probe.mark()
    assert probe.frames == 1 and probe.longest() == [{"ms": 50.0, "frame": 1, "during": "?"}]
