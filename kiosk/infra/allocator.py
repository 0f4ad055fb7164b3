"""The C allocator's settings for a process that runs for months.

The kiosk's worker threads handle 2-8 MP camera frames (several megabytes each) and the UI thread
renders text. With glibc's defaults each thread that allocates gets an arena of its own (up to
8 per core), and the threshold above which a block is mmapped (and given back when freed) rises to
the largest block freed so far, up to 32 MB: after the first frames, frames come from the arenas,
and every arena keeps the most it ever held. Measured: four threads copying 6 MB frames retain
132 MB after they finish with the defaults, 0.2 MB with the settings below; the soak's kiosk starts
at 404 MB instead of 554 MB and grows 8.5 MB (instead of 25-40 MB) in the first 200 visits
(docs/benchmarks.md). Same effect as MALLOC_ARENA_MAX=2 and MALLOC_MMAP_THRESHOLD_=1048576 in the
environment, but it cannot be forgotten in a unit file.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

#: mallopt parameters (glibc's malloc.h)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
#: two arenas: the UI thread and the workers still rarely wait on each other's allocations
ARENA_MAX = 2
#: blocks of 1 MiB and more (frames, JPEGs, photos) are mmapped and given back to the system when freed
MMAP_THRESHOLD = 1 << 20


def tune_allocator() -> bool:
    """Set the arena count and a fixed mmap threshold (glibc only; elsewhere nothing happens).

    Call it first thing in the process, before threads allocate: arenas already made stay."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): its allocator's defaults stay
        log.debug("no mallopt in %s; allocator left as it is", name)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = bool(mallopt(M_ARENA_MAX, ARENA_MAX)) and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    if not ok:
        log.warning("mallopt refused the allocator settings; memory may grow to each thread's peak")
    return ok
