"""Durable enqueue throughput: the outbox vs the raw SQLite floor vs persist-queue, at equal durability.

All three commit every operation with WAL + ``synchronous=FULL`` on the same
disk (temporary databases under var/). The outbox additionally allocates a
local tracking number, seals the payload with SM4-GCM and keeps the per-applicant
pseudonym. The machine is shared and noisy, so the contenders run in small
interleaved blocks and each reports the median block rate.

    .venv/bin/python -m bench.outbox_enqueue [--blocks 40] [--block 100]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))


def payloads(n: int) -> list[dict]:
    from tests.platform.samples import application_payload
    rng = random.Random(42)
    return [application_payload(rng) for _ in range(n)]


class Raw:
    """The floor: a bare insert-and-commit loop on a one-table database."""
    name = "raw sqlite floor"

    def __init__(self, d: Path):
        self.con = sqlite3.connect(d / "raw.db", isolation_level=None)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=FULL")
        self.con.execute("CREATE TABLE q(id INTEGER PRIMARY KEY, payload BLOB NOT NULL, created_at REAL)")

    def prepare(self, items):
        return [json.dumps(p, ensure_ascii=False).encode() for p in items]

    def run(self, prepared) -> None:
        con = self.con
        for b in prepared:  # autocommit: each INSERT is its own fsynced transaction, the cheapest durable write
            con.execute("INSERT INTO q(payload, created_at) VALUES(?, ?)", (b, time.time()))

    def close(self):
        self.con.close()


class PersistQueue:
    name = "persist-queue SQLiteAckQueue"

    def __init__(self, d: Path):
        import persistqueue
        self.q = persistqueue.SQLiteAckQueue(str(d / "pq"), auto_commit=True)
        for conn in {id(self.q._conn): self.q._conn, id(self.q._putter): self.q._putter}.values():
            conn.execute("PRAGMA synchronous=FULL")  # equal durability; WAL is persist-queue's own setting

    def prepare(self, items):
        return items

    def run(self, items) -> None:
        put = self.q.put
        for p in items:
            put(p)

    def close(self):
        self.q.close()


class PersistQueueSealed(PersistQueue):
    """persist-queue doing the outbox's extra work: JSON + SM4-GCM sealing of each payload (equal work)."""
    name = "persist-queue + SM4 sealing"

    def __init__(self, d: Path):
        super().__init__(d / "sealed")
        from offline_cache.crypto import Sealer
        self.sealer = Sealer(os.urandom(16))

    def run(self, items) -> None:
        put, seal = self.q.put, self.sealer.seal
        for p in items:
            put(seal(json.dumps(p, ensure_ascii=False).encode()))


class OutboxEnqueue:
    name = "outbox.enqueue (SM4-GCM)"

    def __init__(self, d: Path):
        from offline_cache.outbox import Outbox
        self.ob = Outbox(d / "outbox.db", os.urandom(16))

    def prepare(self, items):
        return items

    def run(self, items) -> None:
        enq = self.ob.enqueue
        for p in items:
            enq("application", p)

    def close(self):
        self.ob.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=40)
    ap.add_argument("--block", type=int, default=100)
    args = ap.parse_args()
    items = payloads(args.block)
    base = ROOT / "var"
    base.mkdir(exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix="bench-enqueue-", dir=base))
    contenders = [Raw(d), PersistQueue(d), PersistQueueSealed(d), OutboxEnqueue(d)]
    rates: dict[str, list[float]] = {c.name: [] for c in contenders}
    try:
        prepared = {c.name: c.prepare(items) for c in contenders}
        for c in contenders:  # warm-up block, not counted
            c.run(prepared[c.name])
        for i in range(args.blocks):
            order = contenders if i % 2 == 0 else contenders[::-1]
            for c in order:
                t = time.perf_counter()
                c.run(prepared[c.name])
                rates[c.name].append(args.block / (time.perf_counter() - t))
    finally:
        for c in contenders:
            c.close()
        shutil.rmtree(d, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    ours, floor, pq = med["outbox.enqueue (SM4-GCM)"], med["raw sqlite floor"], med["persist-queue SQLiteAckQueue"]
    print(f"durable enqueue: {args.blocks} interleaved blocks of {args.block} ops each "
          f"(median block rate; WAL + synchronous=FULL, same disk)")
    print(f"{'contender':<32}{'ops/s':>10}{'us/op':>8}{'outbox / it':>14}")
    for k in rates:
        print(f"{k:<32}{med[k]:>10.0f}{1e6 / med[k]:>8.0f}{ours / med[k]:>14.2f}")
    verdict = {"vs_raw_floor": round(ours / floor, 3), "vs_persist_queue": round(ours / pq, 3),
               "vs_persist_queue_sealed": round(ours / med["persist-queue + SM4 sealing"], 3),
               "target_met": ours >= 0.5 * floor and ours >= pq}
    met = "met" if verdict["target_met"] else "NOT met"
    print(f"targets (outbox >= 0.50 x floor and >= 1.00 x persist-queue): {met}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "outbox_enqueue.json").write_text(json.dumps(
        {"blocks": args.blocks, "block": args.block, "rates": rates, "median_ops_s": med, **verdict}, indent=2))


if __name__ == "__main__":
    main()
