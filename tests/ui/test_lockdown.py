"""Lockdown: no settings panel, no exit keys, no close, no cursor, no multitouch emulation.

In-process against the app object (the window the UI tests share), and `kiosk run --simulate`
in production under the real X server with keys pressed by xdotool (XTEST, as a keyboard would),
the window manager's close request (WM_DELETE_WINDOW, what a window manager sends on Alt+F4 or its
close button) sent through Xlib, and the pointer's cursor read back from the server (XFixes).
"""
from __future__ import annotations

import ctypes
import ctypes.util
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

class _XClientMessageEvent(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]


class _XEvent(ctypes.Union):
    _fields_ = [("xclient", _XClientMessageEvent), ("pad", ctypes.c_long * 24)]


class _XFixesCursorImage(ctypes.Structure):
    _fields_ = [("x", ctypes.c_short), ("y", ctypes.c_short), ("width", ctypes.c_ushort),
                ("height", ctypes.c_ushort), ("xhot", ctypes.c_ushort), ("yhot", ctypes.c_ushort),
                ("cursor_serial", ctypes.c_ulong), ("pixels", ctypes.POINTER(ctypes.c_ulong)),
                ("atom", ctypes.c_ulong), ("name", ctypes.c_char_p)]


def _xlibs() -> tuple[ctypes.CDLL, ctypes.CDLL]:
    x11_name, xfixes_name = ctypes.util.find_library("X11"), ctypes.util.find_library("Xfixes")
    if not x11_name or not xfixes_name:
        pytest.skip("libX11/libXfixes not installed")
    x11, xfixes = ctypes.CDLL(x11_name), ctypes.CDLL(xfixes_name)
    x11.XOpenDisplay.restype, x11.XOpenDisplay.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    x11.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    x11.XFree.argtypes = [ctypes.c_void_p]
    xfixes.XFixesGetCursorImage.restype = ctypes.POINTER(_XFixesCursorImage)
    xfixes.XFixesGetCursorImage.argtypes = [ctypes.c_void_p]
    return x11, xfixes


def _send_close_request(display: str, wid: int) -> None:
    """WM_DELETE_WINDOW to the window, as a window manager sends it for Alt+F4 or its close button."""
    x11, _ = _xlibs()
    dpy = x11.XOpenDisplay(display.encode())
    assert dpy, f"cannot open {display}"
    try:
        ev = _XEvent()
        ev.xclient.type = 33  # ClientMessage
        ev.xclient.window = wid
        ev.xclient.message_type = x11.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
        ev.xclient.format = 32
        ev.xclient.data[0] = x11.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
        assert x11.XSendEvent(dpy, wid, 0, 0, ctypes.byref(ev))
        x11.XSync(dpy, 0)
    finally:
        x11.XCloseDisplay(dpy)


def _visible_cursor_pixels(display: str) -> int:
    """How many pixels of the cursor the X server shows now (where the pointer is) are not transparent."""
    x11, xfixes = _xlibs()
    dpy = x11.XOpenDisplay(display.encode())
    assert dpy, f"cannot open {display}"
    try:
        ptr = xfixes.XFixesGetCursorImage(dpy)
        assert ptr, "XFixesGetCursorImage failed"
        img = ptr.contents
        opaque = sum(1 for i in range(img.width * img.height) if (img.pixels[i] >> 24) & 0xFF)
        x11.XFree(ptr)
        return opaque
    finally:
        x11.XCloseDisplay(dpy)


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


class _KioskProcess:
    """`kiosk run --simulate` on the test's X server; its output read line by line."""

    def __init__(self, tmp_path: Path, *, production: bool):
        env = dict(os.environ)
        env.update({"KIOSK__STORAGE__DATA_DIR": f'"{tmp_path}"', "KIOSK__UI__PRODUCTION": str(production).lower(),
                    "KIOSK__LOGGING__LEVEL": '"INFO"'})
        self.log_dir = tmp_path / "log"
        self.proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli.main", "run", "--simulate"], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.q: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.q.put(line)
        self.q.put(None)

    def wait_line(self, text: str, timeout: float = 90) -> None:
        while not any(text in s for s in self.seen):
            line = self.q.get(timeout=timeout)
            assert line is not None, "".join(self.seen)
            self.seen.append(line)

    def window(self) -> str:
        return _xdotool("search", "--sync", "--pid", str(self.proc.pid)).splitlines()[0]

    def output(self) -> str:
        """Everything printed, once the process has ended."""
        while True:
            try:
                item = self.q.get(timeout=10)
            except queue.Empty:
                break
            if item is None:
                break
            self.seen.append(item)
        return "".join(self.seen)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _x_display() -> str:
    if not shutil.which("xdotool"):
        pytest.skip("xdotool not installed (scripts/setup.sh installs it)")
    display = os.environ.get("DISPLAY")
    if not display:
        pytest.skip("no X server (the UI conftest starts Xvfb when it is installed)")
    return display


def test_production_kiosk_under_x_ignores_f1_escape_alt_f4_close_and_shows_no_cursor(tmp_path):
    display = _x_display()
    _xlibs()
    from PIL import ImageGrab

    k = _KioskProcess(tmp_path, production=True)
    try:
        k.wait_line("production mode")  # printed right after "home screen shown"
        assert any("cursor_shown=False exit_keys=disabled" in s for s in k.seen), "".join(k.seen)
        wid = k.window()
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
        # The cursor the X server draws over the kiosk's window: SDL's blank one, nothing visible.
        assert _visible_cursor_pixels(display) == 0
        art = Path(os.environ.get("KIOSK_UI_ARTIFACTS", tmp_path)) / "test_lockdown"
        art.mkdir(parents=True, exist_ok=True)
        before.save(art / "before-keys.png")
        for keys, logged in ((["F1"], "lockdown: key F1 ignored"), (["Escape"], "lockdown: key Escape ignored"),
                             (["alt+F4"], "lockdown: key F4 ignored"), (None, "lockdown: window close refused")):
            if keys is None:  # what a window manager does on Alt+F4 or its close button
                _send_close_request(display, int(wid))
            else:
                _xdotool("key", *keys)
            name = keys[0] if keys else "close-request"
            try:  # the app says when a key reached it; without the lockdown nothing is logged
                _wait_for(lambda lg=logged: lg in _log_lines(k.log_dir), f"{name} to reach the app", timeout=8)
            except AssertionError:
                pass
            time.sleep(0.5)  # a settings panel, had one opened, is drawn by now
            after = ImageGrab.grab(xdisplay=display)
            after.save(art / f"after-{name}.png")
            assert k.proc.poll() is None, f"{name} ended the kiosk: " + "".join(k.seen)
            # Kivy's settings panel covers the whole window; the home screen changes only its clock.
            assert _changed_fraction(before, after) < 0.05, f"the screen changed after {name}"
            assert logged in _log_lines(k.log_dir), f"{name} never reached the app"
        assert wid in _xdotool("search", "--pid", str(k.proc.pid)).splitlines()  # the window is still there
        rc = k.stop()
    finally:
        k.kill()
    out = k.output()
    assert rc == 0, out
    assert "kiosk run: stopped" in out and "Traceback" not in out


def test_development_kiosk_under_x_shows_the_cursor_and_closes_on_request(tmp_path):
    """The control for the probes above: without production the same cursor read sees the pointer and the
    same close request ends the kiosk, so the production test's 'nothing happened' is not a dead probe."""
    display = _x_display()
    _xlibs()
    k = _KioskProcess(tmp_path, production=False)
    try:
        k.wait_line("home screen shown")
        wid = k.window()
        _xdotool("mousemove", "--window", wid, "20", "20")
        _wait_for(lambda: _visible_cursor_pixels(display) > 0, "the pointer's cursor", timeout=10)
        _send_close_request(display, int(wid))
        rc = k.proc.wait(timeout=60)
    finally:
        k.kill()
    out = k.output()
    assert rc == 0 and "kiosk run: stopped" in out, out
