"""Platform traffic of an idle kiosk, extrapolated to a day, beside the old status probe's cost.

- Platform: ``kiosk platform-sim`` in its own process; its ``/__sim/stats`` counts every /v1 request,
  the bytes received (request line, headers, body), the bytes sent (status line, headers, body) and
  the TCP connections that carried them. The bench's own /__sim calls are not counted.
- Ours: the real kiosk, ``kiosk run --simulate --platform URL`` (simulated devices, the real window
  under Xvfb, the real status refresh, drainer and platform client), left idle for ``--seconds``
  (default 600) after its home screen is up; traffic between two stats snapshots, times 86,400 / window.
  The start-up's own requests are reported apart (they happen once per boot, not per day).
- Baseline, same run, same simulator: what the old indicator did, ``get_catalog(etag="probe")``
  through the same client every 3 s (``--baseline-probes`` of them, one every 3 s), times 28,800 a day.

Target (issue 12): an idle kiosk costs at most 5 MB of platform traffic a day.
Run: ``.venv/bin/python -m bench.idle_traffic [--seconds 600] [--json]``; ``--seconds 60`` to try it.
Counts are HTTP bytes; TCP/IP and TLS add to them on a real uplink (the ``connections`` figure shows
whether the kiosk kept one connection or opened new ones, each a TLS handshake on HTTPS).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

from kiosk.config import load_config
from kiosk.platform.client import PlatformClient
from kiosk.platform.credentials import configured_credentials
from screens.boot import has_display, start_xvfb

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DAY_S = 86_400
TARGET_BYTES_PER_DAY = 5 * 1_000_000
OLD_PROBE_INTERVAL_S = 3.0


class Simulator:
    """`kiosk platform-sim --port 0` in its own process."""

    def __init__(self, state_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk.cli.main", "platform-sim", "--port", "0", "--state", str(state_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            raise RuntimeError(f"platform-sim did not start: {line!r}")
        self.url = line.split("listening on ", 1)[1].split()[0]

    def stats(self) -> dict[str, int]:
        st: dict[str, int] = requests.get(self.url + "/__sim/stats", timeout=10).json()
        return st

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def delta(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: b[k] - a[k] for k in ("requests", "bytes_in", "bytes_out", "connections")}


def per_day(d: dict[str, int], window_s: float) -> dict[str, float]:
    f = DAY_S / window_s
    return {"requests": d["requests"] * f, "bytes_in": d["bytes_in"] * f, "bytes_out": d["bytes_out"] * f,
            "bytes": (d["bytes_in"] + d["bytes_out"]) * f, "connections": d["connections"] * f}


def baseline(sim: Simulator, probes: int) -> dict[str, Any]:
    """The old indicator: a signed catalog GET whose ETag never matches, every 3 s."""
    cfg = load_config(profile="development")
    creds = configured_credentials(cfg)
    client = PlatformClient(sim.url, creds.kiosk_id, creds.secret)
    try:
        before = sim.stats()
        t0 = time.monotonic()
        for i in range(probes):
            client.get_catalog(etag="probe")
            if i < probes - 1:
                time.sleep(max(0.0, t0 + (i + 1) * OLD_PROBE_INTERVAL_S - time.monotonic()))
        d = delta(before, sim.stats())
    finally:
        client.close()
    window = probes * OLD_PROBE_INTERVAL_S  # each probe stands for one 3-second period
    return {"probes": probes, "window_s": window, "measured": d, "per_day": per_day(d, window),
            "bytes_per_probe": (d["bytes_in"] + d["bytes_out"]) / max(1, d["requests"])}


def run_kiosk(sim: Simulator, seconds: float, state: Path, log: Any) -> dict[str, Any]:
    """`kiosk run --simulate --platform URL` under Xvfb; idle `seconds` after the home screen is up."""
    env = dict(os.environ, KIOSK__STORAGE__DATA_DIR=str(state), KIOSK_PROFILE="development")
    env.pop("KIOSK_CONFIG", None)
    boot = sim.stats()
    t_launch = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli.main", "run", "--simulate", "--platform", sim.url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    assert proc.stderr is not None
    home = threading.Event()
    lines: list[str] = []

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line.rstrip())
            if "home screen shown" in line:
                home.set()

    threading.Thread(target=read_stderr, daemon=True).start()
    try:
        if not home.wait(120):
            raise RuntimeError("the kiosk did not show its home screen:\n" + "\n".join(lines[-20:]))
        # start-up: catalog, platform, outbox, devices come up after the first frame; give them a moment
        settle_until = time.monotonic() + 15
        while time.monotonic() < settle_until and proc.poll() is None:
            time.sleep(0.5)
        if proc.poll() is not None:
            raise RuntimeError("the kiosk exited early:\n" + "\n".join(lines[-20:]))
        start = sim.stats()
        t0 = time.monotonic()
        next_note = t0 + 60
        while time.monotonic() - t0 < seconds:
            time.sleep(min(5.0, max(0.1, seconds - (time.monotonic() - t0))))
            if proc.poll() is not None:
                raise RuntimeError("the kiosk exited while idle:\n" + "\n".join(lines[-20:]))
            if time.monotonic() >= next_note:
                d = delta(start, sim.stats())
                print(f"  idle {time.monotonic() - t0:5.0f} s: {d['requests']} requests, "
                      f"{d['bytes_in'] + d['bytes_out']} bytes, {d['connections']} connections", file=log, flush=True)
                next_note += 60
        end = sim.stats()
        window = time.monotonic() - t0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    d = delta(start, end)
    return {"window_s": round(window, 1), "startup": delta(boot, start),
            "startup_s": round(t0 - t_launch, 1), "measured": d, "per_day": per_day(d, window)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--seconds", type=float, default=600.0, help="Idle window measured (default ten minutes).")
    ap.add_argument("--baseline-probes", type=int, default=10, help="Old-style catalog probes, one every 3 s.")
    ap.add_argument("--json", action="store_true", help="Print the result as JSON only.")
    args = ap.parse_args(argv)
    log = sys.stderr if args.json else sys.stdout
    xvfb = None
    if not has_display():
        xvfb = start_xvfb(1280, 800)
        if xvfb is None:
            print("no display and no Xvfb: the kiosk renders offscreen", file=log)
    tmp = Path(tempfile.mkdtemp(prefix="bench-idle-"))
    sim = Simulator(tmp / "sim")
    try:
        print(f"simulator {sim.url}; baseline: {args.baseline_probes} catalog probes, one every 3 s", file=log,
              flush=True)
        base = baseline(sim, args.baseline_probes)
        print(f"kiosk run --simulate --platform {sim.url}: idle {args.seconds:.0f} s", file=log, flush=True)
        ours = run_kiosk(sim, args.seconds, tmp / "kiosk", log)
    finally:
        sim.stop()
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(10)
    ours_day, base_day = ours["per_day"]["bytes"], base["per_day"]["bytes"]
    result = {"bench": "idle_traffic", "at": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": args.seconds,
              "baseline": base, "ours": ours, "target_bytes_per_day": TARGET_BYTES_PER_DAY,
              "ratio": ours_day / base_day if base_day else None, "met": ours_day <= TARGET_BYTES_PER_DAY}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "idle_traffic.json").write_text(json.dumps(result, indent=2), "utf-8")
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    mb = 1_000_000
    print()
    print("| what | window | requests | bytes in+out | connections | per day | target |")
    print("|---|---|---|---|---|---|---|")
    bm = base["measured"]
    print(f"| old: catalog probe every 3 s | {base['window_s']:.0f} s | {bm['requests']} | "
          f"{bm['bytes_in'] + bm['bytes_out']:,} | {bm['connections']} | {base_day / mb:,.1f} MB "
          f"({base['per_day']['requests']:,.0f} requests) | |")
    om = ours["measured"]
    print(f"| ours: idle `kiosk run --simulate --platform` | {ours['window_s']:.0f} s | {om['requests']} | "
          f"{om['bytes_in'] + om['bytes_out']:,} | {om['connections']} | {ours_day / mb:.2f} MB "
          f"({ours['per_day']['requests']:,.0f} requests) | <= 5 MB: {'met' if result['met'] else 'NOT met'} |")
    st = ours["startup"]
    print(f"\nstart-up (once per boot, not in the daily figure): {st['requests']} requests, "
          f"{st['bytes_in'] + st['bytes_out']:,} bytes; ratio ours/old {result['ratio']:.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
