"""Drain throughput: the outbox drainer vs a bare keep-alive client posting the same requests.

Both talk to the same platform simulator process (``kiosk platform-sim``) over
loopback with signed requests. The drainer's rate includes everything that
makes delivery exactly-once: claiming records (durable), decrypting, building
the request, and durably recording the platform's tracking number. The bare
client only signs and posts. Blocks alternate so machine noise hits both alike.

    .venv/bin/python -m bench.drain [--blocks 8] [--block 50]
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))


def start_sim(state: Path) -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen([sys.executable, "-m", "kiosk.cli.main", "platform-sim", "--port", "0", "--state", str(state)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    line = p.stdout.readline()
    if "listening on" not in line:
        p.kill()
        raise SystemExit(f"platform-sim did not start: {line!r}")
    return p, line.split("listening on ", 1)[1].split()[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=8)
    ap.add_argument("--block", type=int, default=50)
    args = ap.parse_args()

    import requests

    from kiosk.platform import signing
    from kiosk.platform.client import PlatformClient, encode_json
    from kiosk.platform.credentials import configured_credentials
    from offline_cache.drainer import Drainer
    from offline_cache.outbox import Outbox
    from tests.platform.samples import application_payload

    creds = configured_credentials()
    (ROOT / "var").mkdir(exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix="bench-drain-", dir=ROOT / "var"))
    sim, url = start_sim(d / "sim")
    rng = random.Random(7)
    rates: dict[str, list[float]] = {"bare keep-alive client": [], "outbox drainer": []}
    try:
        ob = Outbox(d / "outbox.db", os.urandom(16))
        client = PlatformClient(url, creds.kiosk_id, creds.secret)
        drainer = Drainer(ob, client, batch=16)
        session = requests.Session()

        def bare_block(n: int) -> float:
            bodies = []
            for _ in range(n):
                p = application_payload(rng)
                bodies.append({**p, "materials": [], "kiosk_id": creds.kiosk_id, "local_tracking_no": "LQBENCH",
                               "created_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")})
            t = time.perf_counter()
            for b in bodies:
                raw = encode_json(b)
                hdr = signing.sign_headers(creds.kiosk_id, creds.secret, "POST", "/v1/applications", raw)
                hdr.update({"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex})
                r = session.post(url + "/v1/applications", data=raw, headers=hdr, timeout=15)
                if r.status_code != 201:
                    raise SystemExit(f"bare client got {r.status_code}")
                r.json()
            return n / (time.perf_counter() - t)

        def drain_block(n: int) -> float:
            for _ in range(n):
                ob.enqueue("application", application_payload(rng))
            t = time.perf_counter()
            rep = drainer.drain_once()
            dt = time.perf_counter() - t
            if rep.delivered != n:
                raise SystemExit(f"drainer delivered {rep.delivered} of {n}: {rep.errors[:1]}")
            return n / dt

        bare_block(10), drain_block(10)  # warm up connections and caches
        for i in range(args.blocks):
            pair = [("bare keep-alive client", bare_block), ("outbox drainer", drain_block)]
            for name, fn in (pair if i % 2 == 0 else pair[::-1]):
                rates[name].append(fn(args.block))
        accepted = requests.get(url + "/__sim/stats", timeout=10).json()
        ob.close()
    finally:
        sim.terminate()
        sim.wait(10)
        shutil.rmtree(d, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    ratio = med["outbox drainer"] / med["bare keep-alive client"]
    print(f"drain to platform-sim over loopback: {args.blocks} interleaved blocks of {args.block} applications "
          f"(median block rate)")
    print(f"{'contender':<26}{'req/s':>10}{'ms/req':>9}{'drainer / it':>15}")
    for k in rates:
        print(f"{k:<26}{med[k]:>10.1f}{1000 / med[k]:>9.2f}{med['outbox drainer'] / med[k]:>15.2f}")
    print(f"target (drainer >= 0.50 x bare client): {'met' if ratio >= 0.5 else 'NOT met'}; "
          f"platform accepted {accepted['accepted']}, duplicates {accepted['duplicates_suppressed']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "drain.json").write_text(json.dumps(
        {"blocks": args.blocks, "block": args.block, "rates": rates, "median_req_s": med, "ratio": round(ratio, 3),
         "target_met": ratio >= 0.5, "sim_stats": accepted}, indent=2))


if __name__ == "__main__":
    main()
