"""The services' worker threads start at boot, so the thread count of a long-running kiosk never creeps."""
from __future__ import annotations

import threading
import time

from kiosk.app.worker_pool import started_pool


def names(prefix: str) -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith(prefix)}


def test_every_worker_runs_before_the_first_task():
    pool = started_pool(4, "wp-boot")
    try:
        assert names("wp-boot") == {f"wp-boot_{i}" for i in range(4)}
    finally:
        pool.shutdown(wait=True)
    assert not names("wp-boot")


def test_overlapping_slow_tasks_start_no_new_thread():
    pool = started_pool(3, "wp-load")
    try:
        before = threading.active_count()
        gate = threading.Event()
        running = [pool.submit(gate.wait, 10) for _ in range(3)]  # three slow things at once
        time.sleep(0.05)
        more = [pool.submit(lambda: 1) for _ in range(5)]  # queued behind them
        assert threading.active_count() == before
        gate.set()
        assert all(f.result(10) for f in running) and [f.result(10) for f in more] == [1] * 5
        assert threading.active_count() == before
    finally:
        pool.shutdown(wait=True)
