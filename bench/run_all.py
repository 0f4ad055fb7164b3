"""`make bench`: every benchmark, one after the other, each in its own process (cold imports, no shared state).

Each script prints its own table with the baseline beside it and writes JSON to
bench/results/. Pass names to run a subset: `python -m bench.run_all qr_decode drain`.
"""
from __future__ import annotations

import subprocess
import sys
import time

BENCHES = ["qr_decode", "camera_pipeline", "receipt_compose", "outbox_enqueue", "drain", "ui_startup", "fleet"]


def main(argv: list[str]) -> int:
    names = argv or BENCHES
    unknown = sorted(set(names) - set(BENCHES))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        print(f"\n=== bench.{name} ===", flush=True)
        t = time.monotonic()
        rc = subprocess.call([sys.executable, "-m", f"bench.{name}"])
        print(f"=== bench.{name}: exit {rc} in {time.monotonic() - t:.0f} s ===", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
