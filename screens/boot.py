"""Configure Kivy before its window exists: size, fullscreen, logging, headless rendering.

Must run before anything imports `kivy.core.window` (that import opens the window).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def start_xvfb(width: int = 1280, height: int = 800) -> subprocess.Popen | None:
    """Start a private Xvfb and point DISPLAY at it; None when Xvfb is not installed or will not start.

    The caller owns the process (terminate it when done). Used by `kiosk demo --xvfb` and the UI tests.
    """
    exe = shutil.which("Xvfb")
    if not exe:
        return None
    for n in range(90, 120):
        if Path(f"/tmp/.X{n}-lock").exists():
            continue
        proc = subprocess.Popen([exe, f":{n}", "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(50):
            if Path(f"/tmp/.X11-unix/X{n}").exists():
                os.environ["DISPLAY"] = f":{n}"
                return proc
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        proc.kill()
    return None


def configure_kivy(width: int = 1280, height: int = 800, *, production: bool = False, quiet: bool = True) -> str:
    """Set Kivy's config; returns 'window' or 'offscreen' (no display: SDL's offscreen EGL driver).

    `production` is the lockdown's part that must be set before the window opens: fullscreen,
    borderless, no cursor, no Kivy modules. Escape and multitouch emulation are off in every mode.
    """
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "MIXED")  # keep sys.stderr and the root logger ours
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    if quiet:
        os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="kivy-home-"))
    mode = "window" if has_display() else "offscreen"
    if mode == "offscreen":
        os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
    from kivy.config import Config  # noqa: PLC0415 - Kivy reads its environment at import: set it first

    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
    Config.set("graphics", "resizable", "0")
    # Escape never exits, in any mode: a clean exit (status 0) ends a citizen's visit and, under a
    # unit without Restart=always, leaves the kiosk dead. KioskApp's key filter drops it as well.
    Config.set("kivy", "exit_on_escape", "0")
    Config.set("input", "mouse", "mouse,disable_multitouch")  # no red multitouch dots from a right click
    if production:
        Config.set("graphics", "fullscreen", "auto")
        Config.set("graphics", "borderless", "1")
        Config.set("graphics", "show_cursor", "0")
        # Kivy modules (inspector, keybinding's F11 rotation/fullscreen, monitor...) from a stray
        # config.ini in KIVY_HOME: none on a kiosk.
        for name in Config.options("modules") if Config.has_section("modules") else []:
            Config.remove_option("modules", name)
    return mode
