"""Child process for the crash tests: enqueue applications as fast as possible, printing each returned id.

Usage: python tests/offline_cache/crash_child.py DB KEYHEX SEED
A line "OK <id>" is printed (and flushed) only after enqueue() has returned,
i.e. after the citizen would have been told "submitted".
"""
from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from offline_cache.outbox import Outbox  # noqa: E402
from tests.platform.samples import application_payload  # noqa: E402


def main() -> None:
    db, key_hex, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = random.Random(seed)
    ob = Outbox(db, bytes.fromhex(key_hex))
    out = sys.stdout
    out.write("READY\n")  # imports done: the parent starts its kill timer now (a loaded machine imports slowly)
    out.flush()
    while True:
        atts = [os.urandom(rng.randrange(200, 4000))] if rng.random() < 0.5 else []
        rid = ob.enqueue("application", application_payload(rng), attachments=atts)
        out.write(f"OK {rid}\n")
        out.flush()
        time.sleep(rng.random() * 0.01)  # a citizen's pace, compressed; keeps the default run short


if __name__ == "__main__":
    main()
