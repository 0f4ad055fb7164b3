"""Lockdown: no settings panel, no exit keys, no close, no cursor, no multitouch emulation.

In-process against the app object (the window the UI tests share), and `kiosk run --simulate`
in production under the real X server with keys pressed by xdotool (XTEST, as a keyboard would).
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ui_support import make_service

pytestmark = pytest.mark.ui

F1, ESCAPE, F4 = 282, 27, 285


def _settings_widgets(window) -> list:
    from kivy.uix.settings import Settings
    return [w for w in window.children if isinstance(w, Settings)]


@pytest.fixture
def app_factory(tmp_path):
    """Start a KioskApp on the shared window; undo its window changes afterwards."""
    from kivy.base import EventLoop
    from kivy.core.window import Window

    from standins.ui_driver import start_app, stop_app

    started = []
    saved = (Window.fullscreen, Window.borderless, Window.show_cursor, tuple(Window.size))
    mt = [(p, getattr(p, "disable_multitouch", None)) for p in EventLoop.input_providers]

    def start(production: bool):
        svc = make_service(tmp_path / f"kiosk-{len(started)}")
        app, drv = start_app(svc, production=production)
        started.append((app, svc))
        drv.wait_screen("home")
        return app, drv

    yield start
    for app, svc in started:
        stop_app(app)
        svc.stop()
    Window.fullscreen, Window.borderless, Window.show_cursor = saved[:3]
    Window.size = saved[3]
    for p, v in mt:
        if v is not None:
            p.disable_multitouch = v


def test_development_escape_and_f1_do_nothing(app_factory):
    from kivy.core.window import Window

    app, drv = app_factory(production=False)
    assert Window.dispatch("on_keyboard", ESCAPE, 9, None, []) is True  # handled: no exit
    assert Window.dispatch("on_keyboard", F1, 67, None, []) in (None, False)  # not ours, and nobody opens
    drv.pump(0.2)
    assert app.current == "home" and app.root.parent is Window
    assert not _settings_widgets(Window) and app._app_settings is None
    assert app.open_settings() is False and not _settings_widgets(Window)


def test_production_app_swallows_keys_refuses_close_hides_cursor(app_factory):
    from kivy.base import EventLoop
    from kivy.config import Config
    from kivy.core.window import Window

    app, drv = app_factory(production=True)
    for key, mods in ((F1, []), (ESCAPE, []), (F4, ["alt"])):
        assert Window.dispatch("on_keyboard", key, 0, None, mods) is True
    assert Window.dispatch("on_request_close") is True
    drv.pump(0.2)
    assert app.current == "home" and app.root.parent is Window
    assert not _settings_widgets(Window) and app.open_settings() is False
    assert Window.show_cursor is False and Window.borderless and Window.fullscreen == "auto"
    assert "disable_multitouch" in Config.get("input", "mouse")
    mice = [p for p in EventLoop.input_providers if hasattr(p, "disable_multitouch")]
    assert all(p.disable_multitouch for p in mice)
    assert app.use_kivy_settings is False


# ---------------------------------------------------------------- the real process under X

def _xdotool(*args: str, timeout: float = 20) -> str:
    return subprocess.run(["xdotool", *args], capture_output=True, text=True, timeout=timeout,
                          check=True).stdout.strip()


def _log_lines(log_dir: Path) -> list[str]:
    out = []
    for p in sorted(log_dir.glob("kiosk.jsonl*")):
        for raw in p.read_text("utf-8", "replace").splitlines():
            try:
                out.append(json.loads(raw).get("msg", ""))
            except ValueError:
                continue
    return out


def _wait_for(pred, what: str, timeout: float = 60.0) -> None:
    """Poll until pred(); the timeout only guards against hanging forever."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _changed_fraction(a, b) -> float:
    from PIL import ImageChops
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB")).convert("L").point(lambda v: 255 if v > 24 else 0)
    return diff.histogram()[255] / (diff.width * diff.height)


@pytest.mark.skipif(not shutil.which("xdotool"), reason="xdotool not installed (scripts/setup.sh installs it)")
def test_production_kiosk_under_x_ignores_f1_escape_alt_f4(tmp_path):
    display = os.environ.get("DISPLAY")
    if not display:
        pytest.skip("no X server (the UI conftest starts Xvfb when it is installed)")
    from PIL import ImageGrab

    env = dict(os.environ)
    env.update({"KIOSK__STORAGE__DATA_DIR": f'"{tmp_path}"', "KIOSK__UI__PRODUCTION": "true",
                "KIOSK__LOGGING__LEVEL": '"INFO"'})
    proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli.main", "run", "--simulate"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    q: queue.Queue = queue.Queue()

    def pump_lines() -> None:
        for line in proc.stdout:
            q.put(line)
        q.put(None)

    threading.Thread(target=pump_lines, daemon=True).start()
    seen: list[str] = []
    try:
        while not any("production mode" in s for s in seen):  # printed right after "home screen shown"
            line = q.get(timeout=90)
            assert line is not None, "".join(seen)
            seen.append(line)
        assert any("cursor_shown=False exit_keys=disabled" in s for s in seen), "".join(seen)
        wid = _xdotool("search", "--sync", "--pid", str(proc.pid)).splitlines()[0]
        _xdotool("mousemove", "--window", wid, "20", "20")
        _xdotool("windowfocus", wid)
        before = ImageGrab.grab(xdisplay=display)
        for _ in range(60):  # the reference picture once start-up (catalog, device icons) stops changing it
            time.sleep(0.5)
            now = ImageGrab.grab(xdisplay=display)
            settled = _changed_fraction(before, now) < 0.005
            before = now
            if settled:
                break
        log_dir = tmp_path / "log"
        art = Path(os.environ.get("KIOSK_UI_ARTIFACTS", tmp_path)) / "test_lockdown"
        art.mkdir(parents=True, exist_ok=True)
        before.save(art / "before-keys.png")
        for keys, logged in ((["F1"], "lockdown: key F1 ignored"), (["Escape"], "lockdown: key Escape ignored"),
                             (["alt+F4"], "lockdown: key F4 ignored")):
            _xdotool("key", *keys)
            try:  # the app says when a key reached it; without the lockdown nothing is logged
                _wait_for(lambda lg=logged: lg in _log_lines(log_dir), f"{keys} to reach the app", timeout=8)
            except AssertionError:
                pass
            time.sleep(0.5)  # a settings panel, had one opened, is drawn by now
            after = ImageGrab.grab(xdisplay=display)
            after.save(art / f"after-{keys[0]}.png")
            assert proc.poll() is None, f"{keys} ended the kiosk: " + "".join(seen)
            # Kivy's settings panel covers the whole window; the home screen changes only its clock.
            assert _changed_fraction(before, after) < 0.05, f"the screen changed after {keys}"
            assert logged in _log_lines(log_dir), f"{keys} never reached the app"
        assert wid in _xdotool("search", "--pid", str(proc.pid)).splitlines()  # the window is still there
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    rest = []
    while True:
        try:
            item = q.get(timeout=10)
        except queue.Empty:
            break
        if item is None:
            break
        rest.append(item)
    out = "".join(seen + rest)
    assert rc == 0, out
    assert "kiosk run: stopped" in out and "Traceback" not in out
