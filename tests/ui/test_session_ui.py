"""Idle countdown and wipe, technician mode, recovery after a screen error: with an injected clock."""
from __future__ import annotations

import pytest
from ui_support import ARTIFACTS, make_service

pytestmark = pytest.mark.ui


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def kiosk_clock(request, tmp_path_factory):
    from standins.ui_driver import start_app, stop_app

    clock = FakeClock()
    svc = make_service(tmp_path_factory.mktemp("kiosk"), clock=clock)
    app, drv = start_app(svc)
    drv.artifacts = ARTIFACTS / "test_session_ui"
    yield app, drv, svc, clock
    stop_app(app)
    svc.stop()


def test_idle_countdown_then_wipe(kiosk_clock):
    app, drv, svc, clock = kiosk_clock
    app.go("guide", code="QHB-RS-018")
    drv.tap("guide-start")
    drv.wait_screen("identify")
    svc.ctx.devices["idcard"].insert_card()
    drv.wait_until(lambda: drv.has("identify-next"), what="identified")
    drv.tap("identify-next")
    drv.wait_screen("form")
    drv.type_keys("139")
    assert app.screen("form").shown == "139"
    clock.t += svc.ctx.session.idle_timeout_s - svc.ctx.config.ui.idle_warning_s + 1
    banner = app.root.idle_banner
    drv.wait_until(lambda: banner.active, what="idle warning")
    assert 0 < banner.remaining <= svc.ctx.config.ui.idle_warning_s
    drv.screenshot(drv.artifacts / "idle-countdown.png")
    assert app.current == "form"  # a banner, not a pop-up over the task
    drv.tap("idle-continue")  # the citizen is still there
    assert not banner.active and svc.ctx.session.data.identity is not None
    clock.t += svc.ctx.session.idle_timeout_s + 1
    drv.wait_screen("home")
    svc.ctx.devices["idcard"].remove_card()
    assert svc.ctx.session.data.identity is None and svc.ctx.session.data.form == {}
    form = app.screen("form")
    assert form.shown == "" and form.values == {}
    assert app.screen("identify").person == {}
    drv.screenshot(drv.artifacts / "idle-wiped-home.png")


def test_idle_away_from_home_without_a_visit(kiosk_clock):
    app, drv, svc, clock = kiosk_clock
    drv.tap("home-help")
    drv.tap("help-now")
    drv.type_keys("139")
    assert app.screen("help").phone == "139"
    clock.t += svc.mode.idle_timeout_s + 1
    drv.wait_screen("home")
    assert app.screen("help").phone == ""


def test_technician_pin_lockout_and_panel(kiosk_clock):
    app, drv, svc, clock = kiosk_clock
    brand = app.root.brand_label
    for _ in range(5):  # the hidden gesture: five taps on the brand
        drv.tap_widget(brand, settle=0.02)
    drv.wait_screen("technician")
    tech = app.screen("technician")
    pin = svc.ctx.config.ui.technician_pin
    wrong = "0" * len(pin) if pin != "0" * len(pin) else "1" * len(pin)
    for _ in range(svc.ctx.config.ui.technician_lockout_attempts):
        drv.type_keys(wrong)
        drv.tap("key-OK")
    assert "锁定" in tech.message and not tech.unlocked
    drv.type_keys(pin)
    drv.tap("key-OK")
    assert not tech.unlocked  # the right PIN does not open a locked gate
    clock.t += svc.ctx.config.ui.technician_lockout_s + 1
    drv.wait_screen("home")  # an unattended technician screen closes like any other
    for _ in range(5):
        drv.tap_widget(brand, settle=0.02)
    drv.wait_screen("technician")
    drv.type_keys(pin)
    drv.tap("key-OK")
    assert tech.unlocked
    drv.wait_until(lambda: "设备状态" in tech.report, what="report")
    assert "队列" in tech.report and "配置版本" in tech.report and "平台" in tech.report
    drv.tap("tech-health-printer")
    drv.wait_until(lambda: "printer internal" in tech.report, what="printer health")
    drv.tap("tech-drain")  # runs off the UI thread; the text comes back as an event
    drv.wait_until(lambda: "已提交" in tech.report, what="drain report")
    drv.tap("tech-reprint")
    drv.wait_until(lambda: not tech.busy, what="reprint done")
    assert tech.report == "没有未打印的回执" or tech.report.startswith("已补打回执")
    drv.tap("tech-log")
    drv.wait_until(lambda: not tech.busy, what="log tail")
    drv.screenshot(drv.artifacts / "technician.png")
    drv.tap("tech-exit")
    drv.wait_screen("home")


def test_screen_error_restarts_screens_cleanly(kiosk_clock):
    app, drv, svc, clock = kiosk_clock
    app.go("search")
    drv.pump(0.1)
    old = app.screen("search")

    def boom(key):
        raise RuntimeError("a bug in a screen")

    old.keyboard.on_key = boom
    drv.tap("key-a")
    drv.wait_screen("home")
    assert app.recoveries == 1
    assert app.screen("search") is not old  # rebuilt from scratch
    app.go("search")
    drv.type_keys("yl")
    assert app.screen("search").query == "yl"
    drv.tap("nav-home")
    drv.wait_screen("home")
