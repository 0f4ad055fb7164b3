"""UI test fixtures: one kiosk app per test module, real simulated devices, the platform simulator in-process.

Without a display the tests start their own Xvfb (a real X server, as on a kiosk) and render
into it; only where Xvfb is not installed do they fall back to SDL's offscreen EGL driver
(KIOSK_UI_OFFSCREEN=1 forces that). Screenshots land in artifacts/ui/<module>/.
"""
from __future__ import annotations

import atexit
import os
from pathlib import Path

from screens.boot import configure_kivy, has_display, start_xvfb

if not has_display() and os.environ.get("KIOSK_UI_OFFSCREEN") != "1":
    _xvfb = start_xvfb(1280, 800)
    if _xvfb is not None:
        atexit.register(lambda: (_xvfb.terminate(), _xvfb.wait(timeout=10)))
RENDERING = configure_kivy(1280, 800)

import pytest  # noqa: E402
from ui_support import ARTIFACTS, make_service  # noqa: E402,F401


@pytest.fixture(scope="module")
def kiosk(request, tmp_path_factory):
    """(app, driver, service) for the whole module; each test starts from the home screen."""
    from standins.ui_driver import start_app, stop_app

    svc = make_service(tmp_path_factory.mktemp("kiosk"))
    app, drv = start_app(svc)
    drv.artifacts = ARTIFACTS / Path(request.module.__file__).stem  # type: ignore[attr-defined]
    yield app, drv, svc
    stop_app(app)
    svc.stop()


@pytest.fixture
def ui(kiosk):
    app, drv, svc = kiosk
    svc.visit.end_visit("test-start")
    drv.wait_until(lambda: svc.ctx.events.pending() == 0, what="clear event handled")
    drv.pump(0.2)
    drv.wait_screen("home")
    if svc.mode.elderly:
        app.toggle_elderly()
    app.screen_log.clear()
    return kiosk


def pytest_configure(config):
    os.environ.setdefault("KIOSK_UI_ARTIFACTS", str(ARTIFACTS))
