"""The services' worker threads, all started at boot.

`ThreadPoolExecutor` starts a worker only when a task finds none idle, and keeps it for good: over days a
kiosk's thread count would creep up to the pool's size whenever two slow things overlapped (a payment poll and
a capture), and a technician or the soak could not tell that from a thread leak. Started up front, the count is
constant from boot, so any growth is a real leak.
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import threading

__all__ = ["started_pool"]

log = logging.getLogger(__name__)


def started_pool(workers: int, name: str) -> cf.ThreadPoolExecutor:
    """A pool of `workers` threads named `name`_N, every one of them running before this returns."""
    pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
    gate = threading.Barrier(workers + 1, timeout=10)
    # each task holds its worker at the gate, so the next submit finds none idle and starts another
    held = [pool.submit(gate.wait) for _ in range(workers)]
    try:
        gate.wait()
    except threading.BrokenBarrierError:  # the pool still works; its threads start as tasks come
        log.exception("not every worker thread of %s started at once", name)
    cf.wait(held)
    return pool
