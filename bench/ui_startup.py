"""Cold start to the first frame of the home screen, idle memory and screen transitions, against a bare Kivy app.

Baselines, measured in the same run on the same machine:
- start-up: a bare Kivy app showing one Label in the same CJK font (interpreter start to first frame);
- memory: that bare app's idle RSS, and the bare app plus ``import cv2`` (the kiosk needs OpenCV for the
  camera and QR paths, so its floor includes it).
Targets (issue 6): kiosk start-up <= 1.5x bare; kiosk idle RSS <= 1.5x (bare + OpenCV).

Each variant runs in a fresh process (cold start), alternating, ``--runs`` times; medians are reported.
Run: ``.venv/bin/python -m bench.ui_startup [--runs 5]``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

CHILD_COMMON = r"""
import os, sys, time
os.environ.setdefault("KIVY_NO_ARGS", "1")
from screens.boot import configure_kivy
configure_kivy(1280, 800)

def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

def report(**kw):
    print("RESULT " + " ".join(f"{k}={v}" for k, v in kw.items()), flush=True)
"""

BARE = CHILD_COMMON + r"""
WITH_CV2 = {with_cv2}
if WITH_CV2:
    import cv2  # noqa: F401
from kivy.app import App
from kivy.clock import Clock
from kivy.uix.label import Label
from screens.theme import FONT

class Bare(App):
    def build(self):
        Clock.schedule_once(self.first, 0)
        return Label(text="齐好办", font_name=FONT, font_size=40)
    def first(self, dt):
        Clock.schedule_once(self.after_frame, 0)
    def after_frame(self, dt):
        print("FIRSTFRAME", flush=True)
        Clock.schedule_once(self.idle, {idle_s})
    def idle(self, dt):
        report(rss_kb=rss_kb())
        self.stop()
Bare().run()
"""

KIOSK = CHILD_COMMON + r"""
import statistics, tempfile
from kiosk.config import load_config
from kiosk.bootstrap.app import build_kiosk
from kiosk.infra.speech import NoSpeech
from kivy.clock import Clock
from kivy.base import EventLoop
from screens.app import KioskApp

state = tempfile.mkdtemp(prefix="bench-kiosk-")
svc = build_kiosk(load_config(profile="development"), simulate=True, state_dir=state, speech=NoSpeech())
app = KioskApp(svc)

def first(dt):
    Clock.schedule_once(after_frame, 0)

def after_frame(dt):
    print("FIRSTFRAME", flush=True)
    svc.start(background=True)  # as `kiosk run` does: the rest loads after the first frame
    Clock.schedule_once(complete, 0)

def complete(dt):
    if len(app.screen("home").items_grid.children) == 0:
        Clock.schedule_once(complete, 0)
        return
    Clock.schedule_once(lambda dt: print("HOMECOMPLETE", flush=True), 0)
    Clock.schedule_once(idle, {idle_s})

def idle(dt):
    svc.wait_ready()
    for _ in range(30):  # let the remaining screens finish building before measuring
        EventLoop.idle()
    rss = rss_kb()
    times = []
    route = [("search", {{}}), ("home", {{}}), ("browse", {{"domain": svc.browse.domains()[0]}}), ("home", {{}}),
             ("progress", {{}}), ("home", {{}}), ("help", {{}}), ("home", {{}})] * 3
    for name, params in route:
        t = time.perf_counter()
        app.go(name, **params)
        EventLoop.idle()  # layout + draw of the new screen
        times.append((time.perf_counter() - t) * 1000)
    report(rss_kb=rss, transition_ms=round(statistics.median(times), 2), transition_max_ms=round(max(times), 2))
    app.stop()

app.bind(on_start=lambda *a: Clock.schedule_once(first, 0))
try:
    app.run()
finally:
    svc.stop()
"""


def run_child(code: str, timeout: float = 120) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["KIVY_HOME"] = tempfile.mkdtemp(prefix="bench-kivy-")
    env["KIVY_NO_CONSOLELOG"] = "1"
    script = Path(env["KIVY_HOME"]) / "child.py"  # a file: Kivy's App looks up its class's source file
    script.write_text(code, encoding="utf-8")
    env["PYTHONPATH"] = str(ROOT)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out: dict = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("FIRSTFRAME"):
            out["startup_s"] = time.perf_counter() - t0
        elif line.startswith("HOMECOMPLETE"):
            out["complete_s"] = time.perf_counter() - t0
        elif line.startswith("RESULT "):
            for kv in line.split()[1:]:
                k, v = kv.split("=")
                out[k] = float(v)
    rc = proc.wait(timeout=timeout)
    if rc != 0 or "startup_s" not in out:
        raise RuntimeError(f"benchmark child failed (rc={rc}): {proc.stderr.read()[-2000:] if proc.stderr else ''}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--idle-s", type=float, default=2.0, help="idle time before reading RSS")
    args = ap.parse_args()
    variants = {
        "bare": BARE.replace("{with_cv2}", "False").replace("{idle_s}", str(args.idle_s)),
        "bare+cv2": BARE.replace("{with_cv2}", "True").replace("{idle_s}", str(args.idle_s)),
        "kiosk": KIOSK.replace("{idle_s}", str(args.idle_s)).replace("{{", "{").replace("}}", "}"),
    }
    runs: dict[str, list[dict]] = {k: [] for k in variants}
    run_child(variants["bare"])  # warm the page cache once so the first variant is not penalised
    for i in range(args.runs):
        for name, code in variants.items():
            runs[name].append(run_child(code))
        print(f"run {i + 1}/{args.runs} done", file=sys.stderr)

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    bare_s, kiosk_s = med("bare", "startup_s"), med("kiosk", "startup_s")
    bare_mb, cv_mb, kiosk_mb = (med(n, "rss_kb") / 1024 for n in ("bare", "bare+cv2", "kiosk"))
    summary = {
        "runs": args.runs,
        "startup_s": {"bare": round(bare_s, 3), "bare+cv2": round(med("bare+cv2", "startup_s"), 3),
                      "kiosk": round(kiosk_s, 3), "ratio_vs_bare": round(kiosk_s / bare_s, 2), "target": 1.5},
        "idle_rss_mb": {"bare": round(bare_mb, 1), "bare+cv2": round(cv_mb, 1), "kiosk": round(kiosk_mb, 1),
                        "ratio_vs_bare+cv2": round(kiosk_mb / cv_mb, 2), "target": 1.5},
        "home_complete_s": {"kiosk": round(med("kiosk", "complete_s"), 3),
                            "ratio_vs_bare": round(med("kiosk", "complete_s") / bare_s, 2)},
        "transition_ms": {"median": med("kiosk", "transition_ms"), "max_of_medians":
                          max(r["transition_max_ms"] for r in runs["kiosk"])},
        "raw": runs,
    }
    print()
    print(f"{'measure':<28}{'bare':>10}{'bare+cv2':>10}{'kiosk':>10}{'ratio':>8}{'target':>8}")
    print(f"{'start to first frame (s)':<28}{bare_s:>10.2f}{med('bare+cv2', 'startup_s'):>10.2f}{kiosk_s:>10.2f}"
          f"{kiosk_s / bare_s:>8.2f}{'<=1.5':>8}")
    print(f"{'... home with items (s)':<28}{'':>10}{'':>10}{med('kiosk', 'complete_s'):>10.2f}"
          f"{med('kiosk', 'complete_s') / bare_s:>8.2f}")
    print(f"{'idle RSS (MB)':<28}{bare_mb:>10.1f}{cv_mb:>10.1f}{kiosk_mb:>10.1f}{kiosk_mb / cv_mb:>8.2f}{'<=1.5':>8}")
    print(f"{'screen transition (ms)':<28}{'':>10}{'':>10}{summary['transition_ms']['median']:>10.1f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ui_startup.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(f"\nwritten {RESULTS / 'ui_startup.json'}")


if __name__ == "__main__":
    main()
