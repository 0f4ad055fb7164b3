"""`kiosk run --simulate` starts offscreen and stops cleanly on SIGTERM; `kiosk demo` writes its pictures."""
from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kiosk.config import EvaluationSection

pytestmark = pytest.mark.ui


def _lines(stream, q):
    for line in stream:
        q.put(line)
    q.put(None)


def run_until_home_then_term(env):
    proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli.main", "run", "--simulate"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    q: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, q), daemon=True).start()
    seen = []
    try:
        while True:
            line = q.get(timeout=60)
            assert line is not None, "".join(seen)
            seen.append(line)
            if "home screen shown" in line:
                break
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(seen) + "".join(iter(lambda: q.get(timeout=10) or "", ""))
    return rc, out


def _env(tmp_path, **extra):
    # `kiosk run` as a kiosk runs it: no display, real drawing (the other UI tests mock GL: tests/conftest.py)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "KIVY_GL_BACKEND")}
    env["KIOSK__STORAGE__DATA_DIR"] = f'"{tmp_path}"'
    env.update(extra)
    return env


def test_kiosk_run_simulate_offscreen_and_sigterm(tmp_path):
    rc, out = run_until_home_then_term(_env(tmp_path))
    assert rc == 0, out
    assert "rendering offscreen" in out and "kiosk run: stopped" in out
    assert "Traceback" not in out and "production mode" not in out


def test_production_mode_is_fullscreen_without_exits_but_stops_on_sigterm(tmp_path):
    rc, out = run_until_home_then_term(_env(tmp_path, KIOSK__UI__PRODUCTION="true"))
    assert rc == 0, out
    assert "fullscreen=auto borderless=True cursor_shown=False exit_keys=disabled" in out
    assert "kiosk run: stopped" in out


def test_kiosk_demo_walkthrough(tmp_path):
    """The README's run command on a machine without a display: the whole scripted walk-through (~1-2 min).

    Drawn with Kivy's mock GL like the other in-process UI tests (tests/conftest.py), so the pictures are blank
    and only their files are checked; with KIOSK_TEST_REAL_GL=1 or KIOSK_TEST_FULL=1 the demo draws and every
    picture must hold a real screen (the `kiosk run` tests above always draw for real)."""
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    real_pictures = "KIVY_GL_BACKEND" not in env
    r = subprocess.run([sys.executable, "-m", "kiosk.cli.main", "demo", "--out", str(tmp_path)], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads((tmp_path / "walkthrough.json").read_text(encoding="utf-8"))
    names = [s["name"] for s in doc["steps"]]
    assert names[:3] == ["home", "search", "guide"] and "idle-wipe" in names and "elderly-home" in names
    for s in doc["steps"]:
        assert (tmp_path / s["png"]).stat().st_size > (10_000 if real_pictures else 0)
    offline = next(s for s in doc["steps"] if s["name"] == "submit-offline-receipt")
    ob = offline["outbox"]  # kept here: waiting, or being retried by the drainer at that moment
    assert ob["pending"] + ob["inflight"] == 1 and ob["done"] == 0 and offline["platform"]["mode"] == "outage"
    drained = next(s for s in doc["steps"] if s["name"] == "network-back-drained")
    assert drained["outbox"]["pending"] == 0 and drained["outbox"]["done"] >= 2
    assert len(doc["receipts"]) >= 2 and all(Path(tmp_path / "receipts" / r).exists() for r in doc["receipts"])
    # issue 14: a printed guide, an e-licence instead of a photo, the real-estate query, a later evaluation
    step = {s["name"]: s for s in doc["steps"]}
    for part in ("guide-print", "licence", "property", "rating-later"):
        assert any(part in n for n in names), (part, names)
    guide = step["guide-print"]
    assert guide["screen"] == "guide" and "一次性告知单" in guide["slip"]["head"]
    assert guide["slip"]["png"] in doc["receipts"]
    assert step["licence-offer"]["screen"] == "materials" and step["licence-offer"]["mode"] == "licence"
    fetched = step["licence-fetched"]
    assert fetched["fetched"] and "不动产权证书" in fetched["title"] and fetched["holder_masked"]
    submitted = step["licence-submitted"]
    assert submitted["screen"] == "receipt" and submitted["platform"]["cases"] == fetched["platform"]["cases"] + 1
    assert submitted["application"] == {"photos": 0, "licences": [{
        "licence_ref": "ELZB0000000104", "licence_type": "real_estate_certificate",
        "material": "经营场所使用证明（房产证或租房合同）"}]}
    prop = step["property-results"]
    assert prop["screen"] == "property" and prop["results"] == 2 and prop["message"] == "查到 2 处不动产"
    assert "不动产登记信息查询单" in prop["slip"]["head"] and prop["slip"]["png"] in doc["receipts"]
    assert step["rating-later-progress"]["screen"] == "progress"
    later = step["rating-later"]
    assert later["screen"] == "rating"
    assert later["evaluation"] == {"level": "不满意", "reasons": ["service_efficiency"], "later": True,
                                   "indicator_set_version": EvaluationSection().version}  # at the platform
    again = step["rating-later-again"]
    assert again["screen"] == "progress" and not again["offered"] and "已经评价过了" in again["rate_note"]
    assert again["outbox"]["done"] == submitted["outbox"]["done"] + 1  # the evaluation went through the outbox


def test_kiosk_run_speaks_sd_notify_ready_watchdog_and_stopping(tmp_path):
    """Under systemd (Type=notify, WatchdogSec) the UI loop feeds the watchdog."""
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.2)
    got: list[str] = []
    stop = threading.Event()

    def collect():
        while not stop.is_set():
            try:
                got.append(sock.recv(4096).decode())
            except TimeoutError:
                pass

    t = threading.Thread(target=collect, daemon=True)
    t.start()
    env = _env(tmp_path, NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="1000000")
    proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli.main", "run", "--simulate", "--exit-after", "6"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        stop.set()
        t.join(2)
        sock.close()
    assert proc.returncode == 0, out
    assert any(m.startswith("READY=1") for m in got), got
    assert "WATCHDOG=1" in got and "STOPPING=1" in got and got[0].startswith("READY=1")
