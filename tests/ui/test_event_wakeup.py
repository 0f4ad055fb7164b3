"""An event posted from a device or worker thread reaches the screen at the next frame, not at the next poll."""
from __future__ import annotations

import threading

import pytest
from ui_support import make_service


@pytest.fixture
def slow_poll_kiosk(tmp_path):
    """A kiosk app whose regular poll would come only after an hour: only the waker can deliver sooner."""
    from standins.ui_driver import start_app, stop_app

    svc = make_service(tmp_path / "kiosk")
    app, drv = start_app(svc, poll_s=3600)
    yield app, drv, svc
    stop_app(app)
    svc.stop()


def test_an_event_from_another_thread_is_handled_without_waiting_for_the_poll(slow_poll_kiosk):
    app, drv, svc = slow_poll_kiosk
    drv.wait_until(lambda: svc.ctx.ready.is_set(), timeout=60, what="kiosk ready")
    drv.pump(0.2)
    seen: list[str] = []
    handle = app.handle_event
    app.handle_event = lambda ev: (seen.append(ev.kind), handle(ev))  # type: ignore[method-assign]
    poster = threading.Thread(target=svc.ctx.events.post, args=("idle_warning",), kwargs={"remaining": 9})
    poster.start()
    poster.join()
    drv.wait_until(lambda: "idle_warning" in seen, timeout=30, what="event handled")
    assert app.root.idle_banner.active and app.root.idle_banner.remaining == 9


def test_a_stopped_app_is_not_woken_by_later_events(slow_poll_kiosk):
    """The stopped app's clock trigger is dropped: a late post from a worker must not run its poll."""
    app, drv, svc = slow_poll_kiosk
    drv.wait_until(lambda: svc.ctx.ready.is_set(), timeout=60, what="kiosk ready")
    seen: list[str] = []
    handle = app.handle_event
    app.handle_event = lambda ev: (seen.append(ev.kind), handle(ev))  # type: ignore[method-assign]
    app.dispatch("on_stop")  # the app's own stop hook; the fixture detaches the app afterwards
    poster = threading.Thread(target=svc.ctx.events.post, args=("idle_warning",), kwargs={"remaining": 9})
    poster.start()
    poster.join()
    drv.pump(0.5)
    assert seen == []
    assert not app.root.idle_banner.active
