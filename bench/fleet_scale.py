"""Fleet console at scale: N simulated kiosks (the real agent code) against Mosquitto and `kiosk-admin console`.

    .venv/bin/python -m bench.fleet_scale [--count 10000] [--procs 4] [--fill-to 10000] [--health-interval 30]

Everything runs as it would in production, each in its own process: Mosquitto, the console
(`kiosk-admin console`, SQLite in its state directory) and `--procs` processes of
`kiosk-admin fleet simulate` (each kiosk a real KioskAgent: verify, apply, ack, health).
The benchmark measures, from the outside:

1. the broker's memory per connected kiosk (Mosquitto's RSS before and after they connect);
2. a signed bundle pushed to `all` through the console's API: time until every kiosk acked it
   (counted by our own MQTT subscriber on qhb/kiosk/+/ack);
3. a staged rollout (10 canaries, then 5 % -> 25 % -> 100 %, soak 0 s): each stage's
   transition time (the previous stage's last ack -> the next stage released, from the
   console's rollout_members.sent) and each stage's length;
4. the console's ingest rate of health messages: the fleet's steady rate, and a burst of
   health reports we publish for synthetic kiosks (which also fills the fleet to --fill-to
   kiosks when fewer simulated ones fit on the machine);
5. the fleet page's server response time (logged in, first page, filters, a later page),
   target under 300 ms, and the whole JSON list for comparison.

Prints a table and writes bench/results/fleet_scale-<time>.json.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from kiosk.fleet.bundle import build_signed, public_key_string, sign

ROOT = Path(__file__).resolve().parent.parent
DISTRICTS = ["zhoucun", "boshan", "zhangdian", "linzi", "zichuan", "huantai", "gaoqing", "yiyuan"]
TARGET_PAGE_MS = 300.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def wait_until(pred: Any, timeout: float, what: str, every: float = 0.5) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return time.monotonic() - t0
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


class AckWatch:
    """Our own subscriber: when each kiosk acked which version (wall clock, like the console's)."""

    def __init__(self, port: int):
        self.lock = threading.Lock()
        self.acks: dict[int, dict[str, tuple[float, str]]] = {}
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-ackwatch", clean_session=True)
        self.c.on_connect = lambda cl, u, f, rc, p: cl.subscribe("qhb/kiosk/+/ack", qos=1)
        self.c.on_message = self._msg
        self.c.max_inflight_messages_set(1000)
        self.c.connect("127.0.0.1", port, keepalive=300)
        self.c.loop_start()

    def _msg(self, cl: Any, u: Any, msg: Any) -> None:
        try:
            doc = json.loads(msg.payload)
        except ValueError:
            return
        v, kid = doc.get("version"), msg.topic.split("/")[2]
        if isinstance(v, int):
            with self.lock:
                self.acks.setdefault(v, {}).setdefault(kid, (time.time(), str(doc.get("result"))))

    def count(self, version: int) -> int:
        with self.lock:
            return len(self.acks.get(version, {}))

    def of(self, version: int) -> dict[str, tuple[float, str]]:
        with self.lock:
            return dict(self.acks.get(version, {}))

    def stop(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def health_doc(kid: str, group: str, i: int) -> dict[str, Any]:
    """A health report shaped like kiosk.fleet.health's (what a simulated kiosk sends)."""
    paper = "out" if i % 20 == 0 else "ok"
    return {"kiosk_id": kid, "group": group, "station_name": f"合成第{i}便民服务站", "ts": time.time(),
            "app_version": "0.1.0", "config_version": 0, "last_visit": "2026-11-30T08:00:00Z",
            "devices": {"printer": {"state": "error" if paper == "out" else "ready",
                                    "code": "paper_out" if paper == "out" else "ok"},
                        "idcard": {"state": "ready", "code": "ok"}, "qr": {"state": "ready", "code": "ok"},
                        "camera": {"state": "ready", "code": "ok"}},
            "device_faults": ["printer: paper_out"] if paper == "out" else [],
            "queue": {"available": True, "depth": i % 7, "oldest_age_s": 4000.0 if i % 13 == 0 else None}}


def publish_burst(port: int, docs: list[tuple[str, bytes]]) -> float:
    """Publish (topic, payload) at QoS 1 as fast as the broker takes them; returns the seconds it took."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-burst", clean_session=True)
    c.max_inflight_messages_set(2000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port, keepalive=300)
    c.loop_start()
    t0 = time.monotonic()
    infos = [c.publish(t, p, qos=1, retain=True) for t, p in docs]
    for info in infos:
        info.wait_for_publish(120)
    took = time.monotonic() - t0
    c.loop_stop()
    c.disconnect()
    return took


def ingest_in_process(state: Path, n: int = 5000) -> float:
    """The console's database writes alone: n health reports in batches of 1,000 (SQLite)."""
    from kiosk.console.db import ConsoleDB, database_url

    db = ConsoleDB(database_url(state))
    docs = [("health", f"alone-{i:05d}", health_doc(f"alone-{i:05d}", "boshan", i)) for i in range(n)]
    t = time.perf_counter()
    for i in range(0, n, 1000):
        db.ingest(docs[i:i + 1000])
    took = time.perf_counter() - t
    db.close()
    return round(n / took, 0)


def timed_gets(s: requests.Session, url: str, n: int) -> dict[str, float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = s.get(url, timeout=60)
        times.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
    times.sort()
    return {"median_ms": round(statistics.median(times), 1), "p95_ms": round(times[int(0.95 * (n - 1))], 1),
            "bytes": len(r.content)}


def login(base: str, token: str) -> requests.Session:
    """The first login: admin + the admin token, then a password of our own."""
    s = requests.Session()
    for path, form in [("/login", {"username": "admin", "password": token}),
                       ("/password", {"new": "bench-password-2026", "again": "bench-password-2026"})]:
        page = s.get(base + path, timeout=30).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf, page[:300]
        r = s.post(base + path, data={**form, "csrf_token": csrf.group(1)}, timeout=60)
        r.raise_for_status()
    return s


def sim_worker(argv: list[str]) -> int:
    """One simulator process: H's SimulatedFleet (kiosk-admin fleet simulate's code) without offline periods,
    so that "acknowledged by all" and the stage transitions measure the console and the broker, not a
    kiosk that happens to be in a simulated outage."""
    from standins.fleet_sim import SimulatedFleet

    count, groups, seed, pub, broker, state, interval = argv
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    fleet = SimulatedFleet(int(count), broker, seed=int(seed), state_dir=state, admin_keys=[pub],
                           groups=groups.split(","), health_interval_s=float(interval), offline_periods=False).start()
    stop.wait()
    fleet.stop()
    return 0


def bundles_and_rollout(args: argparse.Namespace, base: str, auth: dict[str, str], key: Ed25519PrivateKey,
                        watch: AckWatch, db: sqlite3.Connection, out: dict[str, Any]) -> None:
    """One bundle to all (time until every ack), then a staged rollout (each stage's transition)."""
    # ---------------------------------------------------------------- one bundle to all
    def bundle(version: int) -> bytes:
        return sign(build_signed({"announcements": [{"text": f"第{version}版公告"}]}, version, ["all"],
                                 expires=datetime.now(UTC) + timedelta(days=1)), [key]).to_bytes()
    t_push = time.monotonic()
    r = requests.post(f"{base}/api/bundles", data=bundle(1), headers=auth, timeout=60)
    r.raise_for_status()
    wait_until(lambda: watch.count(1) >= args.count, 900, "every kiosk's ack of version 1", 0.1)
    out["bundle_all_acked_s"] = round(time.monotonic() - t_push, 2)
    acked = watch.of(1)
    out["bundle_applied"] = sum(1 for _, res in acked.values() if res == "applied")
    log(f"bundle v1 acked by all {args.count} in {out['bundle_all_acked_s']} s "
        f"({out['bundle_applied']} applied)")

    # ---------------------------------------------------------------- a staged rollout
    ids = sorted(r["id"] for r in requests.get(f"{base}/api/kiosks", headers=auth, timeout=120).json()
                 if r["id"].startswith("sim-"))
    plan = {"canaries": ids[:10], "percentages": [5, 25, 100], "soak_s": 0, "max_failure_share": 0.2}
    t_roll = time.time()
    r = requests.post(f"{base}/api/rollouts", headers=auth, timeout=120,
                      json={"bundle": base64.b64encode(bundle(2)).decode(), "plan": plan})
    r.raise_for_status()
    rid = r.json()["id"]
    wait_until(lambda: requests.get(f"{base}/api/rollouts/{rid}", headers=auth, timeout=60).json()["state"]
               in ("completed", "halted"), 1200, "the rollout", 0.5)
    st = requests.get(f"{base}/api/rollouts/{rid}", headers=auth, timeout=60).json()
    members = db.execute("SELECT kiosk_id, stage, sent FROM rollout_members WHERE rollout_id = ?",
                         (rid,)).fetchall()
    acks2 = watch.of(2)
    stages = []
    for s in sorted({m[1] for m in members}):
        ms = [m for m in members if m[1] == s]
        sent = ms[0][2]
        last_ack = max((acks2[m[0]][0] for m in ms if m[0] in acks2), default=None)
        stages.append({"stage": s, "kiosks": len(ms), "released_at_s": round(sent - t_roll, 2),
                       "last_ack_at_s": None if last_ack is None else round(last_ack - t_roll, 2)})
    for prev, nxt in zip(stages, stages[1:], strict=False):
        nxt["transition_s"] = (None if prev["last_ack_at_s"] is None
                               else round(nxt["released_at_s"] - prev["last_ack_at_s"], 2))
    out["rollout"] = {"state": st["state"], "stages": stages,
                      "total_s": round(max(a for a, _ in acks2.values()) - t_roll, 1) if acks2 else None}
    log(f"rollout {st['state']}: " + "; ".join(
        f"stage {x['stage']}: {x['kiosks']} kiosks, released {x['released_at_s']} s, last ack "
        f"{x['last_ack_at_s']} s, transition {x.get('transition_s', '-')} s" for x in stages))



def main(argv: list[str]) -> int:
    if argv[:1] == ["--sim-worker"]:
        return sim_worker(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=10_000, help="simulated kiosks (real agent code)")
    ap.add_argument("--procs", type=int, default=4, help="simulator processes")
    ap.add_argument("--fill-to", type=int, default=10_000, help="synthetic kiosks make the fleet this big")
    ap.add_argument("--health-interval", type=float, default=30.0)
    ap.add_argument("--burst", type=int, default=10_000, help="health messages in the ingest burst (at least)")
    ap.add_argument("--connect-timeout", type=float, default=900.0)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--skip-bundles", action="store_true", help="no bundle push and no rollout (ingest and pages only)")
    args = ap.parse_args(argv)
    procs = max(1, min(args.procs, len(DISTRICTS) // 2))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped benchmark still stops its children
    work = Path(tempfile.mkdtemp(prefix="qhb-fleet-scale-"))
    children: list[subprocess.Popen] = []
    out: dict[str, Any] = {"count": args.count, "procs": procs, "health_interval_s": args.health_interval,
                           "cpus": os.cpu_count(), "load_before": os.getloadavg()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    admin = [sys.executable, "-m", "kiosk.cli.admin"]  # the console exactly as administrators start it
    watch: AckWatch | None = None
    finished = False
    try:
        # ---------------------------------------------------------------- broker and console
        port = free_port()
        (work / "mosquitto.conf").write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n"
            "max_inflight_messages 0\nlog_dest stdout\nlog_type error\nlog_type warning\n")
        broker = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c",
                                   str(work / "mosquitto.conf")], stdout=open(work / "mosquitto.log", "ab"),
                                  stderr=subprocess.STDOUT)
        children.append(broker)
        wait_until(lambda: _connectable(port), 20, "mosquitto", 0.05)
        key = Ed25519PrivateKey.generate()
        pub = public_key_string(key.public_key())
        cport = free_port()
        console = subprocess.Popen([*admin, "console", "--broker", f"mqtt://127.0.0.1:{port}", "--port", str(cport),
                                    "--state", str(work / "console"), "--admin-key", pub], cwd=ROOT, env=env,
                                   stdout=open(work / "console.log", "ab"), stderr=subprocess.STDOUT)
        children.append(console)
        wait_until(lambda: _connectable(cport), 120, "the console")
        base = f"http://127.0.0.1:{cport}"
        token = (work / "console" / "admin-token").read_text().strip()
        auth = {"Authorization": f"Bearer {token}"}
        db = sqlite3.connect(f"file:{work / 'console' / 'console.db'}?mode=ro", uri=True, timeout=30)
        watch = AckWatch(port)
        time.sleep(1.0)
        broker_before = rss_kb(broker.pid)
        out["broker_rss_before_kb"] = broker_before
        log(f"mosquitto {broker_before} KB, console up; starting {args.count} kiosks in {procs} processes")

        # ---------------------------------------------------------------- the simulated fleet
        per = [args.count // procs + (1 if i < args.count % procs else 0) for i in range(procs)]
        for i, n in enumerate(per):
            groups = ",".join(DISTRICTS[2 * i:2 * i + 2])  # kiosk ids name their group: distinct per process
            children.append(subprocess.Popen(
                [sys.executable, "-m", "bench.fleet_scale", "--sim-worker", str(n), groups, str(i + 1), pub,
                 f"mqtt://127.0.0.1:{port}", str(work / f"sim{i}"), str(args.health_interval)], cwd=ROOT, env=env,
                stdout=open(work / f"sim{i}.log", "ab"), stderr=subprocess.STDOUT))

        def counts() -> dict[str, int]:
            return requests.get(f"{base}/api/counts", headers=auth, timeout=30).json()

        last = [0.0]

        def all_online() -> bool:
            c = counts()
            if time.monotonic() - last[0] > 15:
                last[0] = time.monotonic()
                log(f"  online {c['online']} of {args.count}; mosquitto {rss_kb(broker.pid)} KB")
            for p in children[2:]:
                if p.poll() is not None:
                    raise RuntimeError(f"a simulator exited ({p.returncode}); see {work}")
            return c["online"] >= args.count
        out["fleet_up_s"] = round(wait_until(all_online, args.connect_timeout, "every kiosk online", 1.0), 1)
        time.sleep(5.0)
        broker_after = rss_kb(broker.pid)
        out["broker_rss_after_kb"] = broker_after
        out["broker_kb_per_kiosk"] = round((broker_after - broker_before) / args.count, 2)
        out["sim_rss_mb"] = [round(rss_kb(p.pid) / 1024, 1) for p in children[2:]]
        log(f"all {args.count} online after {out['fleet_up_s']} s; mosquitto {broker_after} KB "
            f"({out['broker_kb_per_kiosk']} KB per kiosk)")

        # ---------------------------------------------------------------- steady ingest
        # the console keeps a health history row only on change (or every 10 min): count refreshed kiosks instead
        t_h = time.time()
        time.sleep(args.health_interval + 5.0)
        fresh = int(db.execute("SELECT count(*) FROM kiosks WHERE id LIKE 'sim-%' AND health_at > ?",
                               (t_h,)).fetchone()[0])
        out["steady_refreshed"] = {"kiosks": fresh, "of": args.count, "window_s": args.health_interval + 5.0}
        out["steady_expected_per_s"] = round(args.count / args.health_interval, 1)
        log(f"steady ingest: {fresh} of {args.count} kiosks' health written within one report interval "
            f"({args.health_interval:.0f} s + 5 s; the fleet sends {out['steady_expected_per_s']}/s)")

        if not args.skip_bundles:
            bundles_and_rollout(args, base, auth, key, watch, db, out)

        # ---------------------------------------------------------------- ingest burst (and fill to --fill-to)
        synth = max(0, args.fill_to - args.count)
        n_ids = max(synth, 1)
        rounds = max(1, -(-args.burst // n_ids))
        docs = []
        for rnd in range(rounds):
            for i in range(n_ids):
                kid = f"synth-{i:05d}"
                docs.append((f"qhb/kiosk/{kid}/health",
                             json.dumps(health_doc(kid, DISTRICTS[i % len(DISTRICTS)], i + rnd),
                                        ensure_ascii=False).encode()))
        last_ts = min(json.loads(p)["ts"] for _, p in docs[-n_ids:])  # every id's last report is at least this new
        t_b = time.monotonic()
        pub_s = publish_burst(port, docs)
        wait_until(lambda: int(db.execute("SELECT count(*) FROM kiosks WHERE id LIKE 'synth-%' AND health_at >= ?",
                                          (last_ts,)).fetchone()[0]) >= n_ids, 600, "the burst written", 0.1)
        took = time.monotonic() - t_b
        out["ingest_burst"] = {"messages": len(docs), "published_in_s": round(pub_s, 2), "written_in_s": round(took, 2),
                               "per_s": round(len(docs) / took, 0)}
        log(f"ingest burst: {len(docs)} health messages written in {took:.2f} s ({len(docs) / took:.0f}/s; "
            f"publishing took {pub_s:.2f} s) while {args.count} kiosks kept reporting")

        out["ingest_in_process_per_s"] = ingest_in_process(work / "ingest-alone")
        log(f"ingest code alone (ConsoleDB.ingest, no broker, this process): {out['ingest_in_process_per_s']}/s")

        # ---------------------------------------------------------------- the fleet page
        total = counts()["total"]
        s = login(base, token)
        some_group = DISTRICTS[1]
        pages = {"/fleet": f"{base}/fleet", "/fleet?problem=paper_out": f"{base}/fleet?problem=paper_out",
                 "/fleet?problem=offline": f"{base}/fleet?problem=offline",
                 "/fleet?problem=queue_old": f"{base}/fleet?problem=queue_old",
                 f"/fleet?group={some_group}": f"{base}/fleet?group={some_group}",
                 "/fleet?page=50": f"{base}/fleet?page=50",
                 "/api/kiosks (whole list)": f"{base}/api/kiosks"}
        out["fleet_rows"] = total
        out["pages"] = {name: timed_gets(s, url, 5 if "api" in name else 15) for name, url in pages.items()}
        log(f"fleet pages with {total} kiosks in the database:")
        for name, t in out["pages"].items():
            ok = "" if "api" in name else ("  (target < 300 ms: met)" if t["p95_ms"] < TARGET_PAGE_MS
                                          else "  (target < 300 ms: NOT met)")
            log(f"  {name:32} median {t['median_ms']:7.1f} ms  p95 {t['p95_ms']:7.1f} ms  {t['bytes']} B{ok}")
        out["console_rss_mb"] = round(rss_kb(console.pid) / 1024, 1)
        out["load_after"] = os.getloadavg()
        finished = True
    finally:
        if watch is not None:
            watch.stop()
        for p in reversed(children):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(children):
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if args.keep or not finished:  # a run that failed or was stopped keeps the logs of every process
            log(f"kept {work} (mosquitto.log, console.log, sim*.log, console/console.db)")
        else:
            shutil.rmtree(work, ignore_errors=True)
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"fleet_scale-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False))
    log(f"results: {path}")
    return 0


def _connectable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
