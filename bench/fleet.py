"""Fleet benchmark: one signed bundle to N simulated kiosks through a local Mosquitto.

    .venv/bin/python -m bench.fleet [--agents 1000] [--procs 4] [--groups 10] [--rounds 3]

Simulated kiosks are paho clients (many per process, driven by one selector loop
each) subscribed like the real agent to qhb/config/all, .../group/{g} and
.../kiosk/{id}. Each verifies every bundle exactly as a kiosk does
(kiosk.fleet.verify.verify_bundle: Ed25519 signatures, window, targets, rollback,
and the configuration schema) and publishes a retained QoS 1 ack. It does not
write the bundle to disk (the fsync'd apply is per kiosk and independent of fleet
size). The floor is the same clients acking a plain unsigned retained message.
Prints a table and writes bench/results/fleet-<time>.json.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from kiosk.fleet.apply import check_overrides
from kiosk.fleet.bundle import build_signed, public_key_string, sign
from kiosk.fleet.verify import TrustPolicy, verify_bundle

ROOT = Path(__file__).resolve().parent.parent
CLK = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------- /proc helpers
def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK  # utime + stime


def mem_kb(pid: int, key: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------- simulated kiosks
def worker(port: int, first: int, count: int, groups: int, pubs: list[str], ready: mp.Queue, stop: mp.Event) -> None:
    """`count` kiosks in one process: verify like a kiosk, ack like a kiosk."""
    base = TrustPolicy.create(pubs, 1, "x", "y")
    verify_times: list[float] = []
    subscribed = 0
    clients = []

    def make(i: int):
        kid, group = f"bench-{i:05d}", f"g{i % groups}"
        policy = TrustPolicy(base.admin_keys, 1, kid, group, base.max_bytes)
        state = {"version": 0}
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=kid, clean_session=True)

        def on_connect(cl, u, flags, rc, props):
            cl.subscribe([("qhb/config/all", 1), (f"qhb/config/group/{group}", 1), (f"qhb/config/kiosk/{kid}", 1)])

        def on_subscribe(cl, u, mid, rcs, props):
            nonlocal subscribed
            subscribed += 1

        def on_message(cl, u, msg):
            raw = bytes(msg.payload)
            if raw.startswith(b"plain "):
                ack = {"kiosk_id": kid, "token": raw[6:].decode(), "result": "received"}
            else:
                t = time.perf_counter()
                v = verify_bundle(raw, policy, state["version"], content_check=lambda c: check_overrides(c, env={}))
                verify_times.append(time.perf_counter() - t)
                if v.accepted:
                    state["version"] = v.version
                ack = {"kiosk_id": kid, "version": v.version, "result": "applied" if v.accepted else "refused",
                       "reason": v.reason}
            cl.publish(f"qhb/kiosk/{kid}/ack", json.dumps(ack), qos=1, retain=True)

        c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
        c.connect("127.0.0.1", port, keepalive=300)
        return c

    sel = selectors.DefaultSelector()
    for i in range(first, first + count):
        c = make(i)
        clients.append(c)
        sel.register(c.socket(), selectors.EVENT_READ, c)
    announced = False
    last_misc = time.monotonic()
    while not stop.is_set():
        for key, _ in sel.select(timeout=0.05):
            key.data.loop_read()
        for c in clients:
            if c.want_write():
                c.loop_write()
        if time.monotonic() - last_misc > 1.0:
            for c in clients:
                c.loop_misc()
            last_misc = time.monotonic()
        if not announced and subscribed >= count:
            ready.put(("ready", first, count))
            announced = True
    ready.put(("verify", verify_times))
    for c in clients:
        c.disconnect()


# ----------------------------------------------------------------- coordinator
class AckCounter:
    def __init__(self, port: int):
        self.lock = threading.Condition()
        self.by_token: dict[str, set[str]] = {}
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-coordinator", clean_session=True)
        self.c.on_connect = lambda cl, u, f, rc, p: cl.subscribe("qhb/kiosk/+/ack", qos=1)
        self.c.on_message = self.on_message
        self.c.max_inflight_messages_set(1000)
        self.c.connect("127.0.0.1", port, keepalive=300)
        self.c.loop_start()

    def on_message(self, cl, u, msg):
        if msg.retain:
            return
        d = json.loads(msg.payload)
        token = str(d.get("token") or f"v{d.get('version')}")
        with self.lock:
            self.by_token.setdefault(token, set()).add(d["kiosk_id"])
            self.lock.notify_all()

    def wait(self, token: str, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.by_token.get(token, ())) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(left)
        return True


def run(args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n"
                    "max_queued_messages 10000\nmax_inflight_messages 100\n")
    broker = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    key = Ed25519PrivateKey.generate()
    pubs = [public_key_string(key.public_key())]
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    procs = []
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("mosquitto did not start") from None
                time.sleep(0.05)
        counter = AckCounter(port)
        per = [args.agents // args.procs + (1 if i < args.agents % args.procs else 0) for i in range(args.procs)]
        t_conn = time.perf_counter()
        first = 0
        for n in per:
            p = ctx.Process(target=worker, args=(port, first, n, args.groups, pubs, ready, stop), daemon=True)
            p.start()
            procs.append(p)
            first += n
        for _ in procs:
            kind, *_ = ready.get(timeout=args.timeout)
            assert kind == "ready"
        connect_s = time.perf_counter() - t_conn
        time.sleep(1.0)
        group_topics = [f"qhb/config/group/g{g}" for g in range(args.groups)]

        def measure(payload: bytes, token: str) -> dict:
            b0 = cpu_seconds(broker.pid)
            a0 = sum(cpu_seconds(p.pid) for p in procs)
            t0 = time.perf_counter()
            for t in group_topics:
                counter.c.publish(t, payload, qos=1, retain=True)
            ok = counter.wait(token, args.agents, args.timeout)
            dt = time.perf_counter() - t0
            time.sleep(0.3)
            return {"ok": ok, "acked": len(counter.by_token.get(token, ())), "seconds": dt,
                    "acks_per_s": len(counter.by_token.get(token, ())) / dt,
                    "broker_cpu_s": cpu_seconds(broker.pid) - b0,
                    "agents_cpu_s": sum(cpu_seconds(p.pid) for p in procs) - a0}

        plain, signed = [], []
        bundle_size = 0
        for r in range(args.rounds):
            plain.append(measure(f"plain r{r}".encode(), f"r{r}"))
            overrides = {"catalog": {"disabled": [f"370300-QHB-{r:03d}"]},
                         "announcements": [{"text": f"第{r + 1}轮配置：自助服务区全天开放。"}]}
            raw = sign(build_signed(overrides, r + 1, [f"group:g{g}" for g in range(args.groups)],
                                    expires=datetime.now(UTC) + timedelta(days=7)), [key]).to_bytes()
            bundle_size = len(raw)
            signed.append(measure(raw, f"v{r + 1}"))
        mem = {"broker_rss_kb": mem_kb(broker.pid), "broker_hwm_kb": mem_kb(broker.pid, "VmHWM"),
               "agents_rss_kb": sum(mem_kb(p.pid) for p in procs)}
        stop.set()
        verify_times: list[float] = []
        for _ in procs:
            try:
                kind, data = ready.get(timeout=30)
                if kind == "verify":
                    verify_times += data
            except queue.Empty:  # an agent process that never reported its verify times: the figure says fewer
                print("fleet bench: an agent process sent no verify times within 30 s", file=sys.stderr)
                break
        counter.c.disconnect()
        counter.c.loop_stop()
    finally:
        stop.set()
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)

    # the same checks in isolation (this process, no broker traffic): what one kiosk spends
    pol = TrustPolicy.create(pubs, 1, "bench-00000", "g0")
    t = time.perf_counter()
    for _ in range(200):
        verify_bundle(raw, pol, 0)
    sig_only_ms = (time.perf_counter() - t) / 200 * 1000
    t = time.perf_counter()
    for _ in range(50):
        verify_bundle(raw, pol, 0, content_check=lambda c: check_overrides(c, env={}))
    full_ms = (time.perf_counter() - t) / 50 * 1000

    def med(rows: list[dict], k: str) -> float:
        return statistics.median(x[k] for x in rows)

    return {
        "agents": args.agents, "procs": args.procs, "groups": args.groups, "rounds": args.rounds,
        "cpus": os.cpu_count(), "connect_and_subscribe_s": connect_s, "bundle_bytes": bundle_size,
        "plain": plain, "signed": signed,
        "median": {k: {"plain": med(plain, k), "signed": med(signed, k)}
                   for k in ("seconds", "acks_per_s", "broker_cpu_s", "agents_cpu_s")},
        "verify_ms_median": 1000 * statistics.median(verify_times) if verify_times else None,
        "verify_ms_p95": 1000 * sorted(verify_times)[int(0.95 * len(verify_times))] if verify_times else None,
        "all_acked": all(x["ok"] for x in plain + signed),
        "isolated_verify_signature_ms": sig_only_ms, "isolated_verify_with_schema_ms": full_ms,
        **mem,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--groups", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args()
    res = run(args)
    m = res["median"]
    print(f"\nfleet benchmark: {res['agents']} simulated kiosks in {res['procs']} processes, {res['groups']} groups, "
          f"{res['cpus']} CPUs; median of {res['rounds']} rounds; bundle {res['bundle_bytes']} bytes")
    print(f"connect + subscribe all: {res['connect_and_subscribe_s']:.1f} s; all acked: {res['all_acked']}")
    print(f"{'metric':<28}{'plain retained (floor)':>24}{'signed bundle':>16}{'ratio':>8}")
    for k, label, fmt in (("seconds", "time until all acked (s)", "{:.2f}"),
                          ("acks_per_s", "acks per second", "{:.0f}"),
                          ("broker_cpu_s", "broker CPU per push (s)", "{:.2f}"),
                          ("agents_cpu_s", "agents CPU per push (s)", "{:.2f}")):
        p, s = m[k]["plain"], m[k]["signed"]
        ratio = f"{s / p:.1f}x" if p else "n/a"
        print(f"{label:<28}{fmt.format(p):>24}{fmt.format(s):>16}{ratio:>8}")
    print(f"verify per kiosk (signature + window + schema): median {res['verify_ms_median']:.2f} ms, "
          f"p95 {res['verify_ms_p95']:.2f} ms")
    print(f"one kiosk, isolated: signatures/window/targets {res['isolated_verify_signature_ms']:.2f} ms, "
          f"with schema validation {res['isolated_verify_with_schema_ms']:.2f} ms")
    print(f"broker RSS {res['broker_rss_kb'] / 1024:.1f} MB (peak {res['broker_hwm_kb'] / 1024:.1f} MB); "
          f"agents RSS {res['agents_rss_kb'] / 1024:.0f} MB total, "
          f"{res['agents_rss_kb'] / res['agents']:.0f} KB per simulated kiosk")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"fleet-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(res, indent=1))
    print(f"written {path.relative_to(ROOT)}")
    sys.exit(0 if res["all_acked"] else 1)


if __name__ == "__main__":
    main()
