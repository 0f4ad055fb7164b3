"""The kiosk process gives big blocks back: worker threads that handle camera frames must not leave each
arena holding its peak (the soak's RSS growth; kiosk.infra.allocator)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent("""
    import sys, threading
    import numpy as np
    from kiosk.infra.allocator import tune_allocator

    def rss_mb():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

    tuned = tune_allocator()
    def work():  # what the capture workers do: 6 MB frames made, copied and dropped
        for _ in range(30):
            frames = [np.ones((1224, 1632, 3), np.uint8) for _ in range(3)]
            copies = [f.copy() for f in frames]
            del frames, copies
    before = rss_mb()
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(tuned, round(rss_mb() - before, 1))
""")


def test_frames_handled_in_worker_threads_are_given_back_to_the_system():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120, check=True)
    tuned, retained_mb = out.stdout.split()
    assert tuned == "True"
    assert float(retained_mb) < 20, out.stdout  # glibc's defaults keep ~130 MB here
