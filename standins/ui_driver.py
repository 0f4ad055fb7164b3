"""Drive the running kiosk like a citizen's finger: find a button by its key, tap it, wait, screenshot.

Used by the UI tests and by `kiosk demo`. Touches go through Kivy's real input
dispatch (the same path a touchscreen event takes), frames are advanced by
running the event loop, so buttons see press, hold (min_state_time) and release.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from kivy.base import EventLoop, ExceptionManager
from kivy.clock import Clock
from kivy.tests.common import UnitTestTouch
from kivy.uix.behaviors import ButtonBehavior

from kiosk.app.services import Kiosk
from screens.widgets import walk


class DriverError(AssertionError):
    pass


def guarded(fn: Callable[[], Any]) -> None:
    """Run `fn` with the main loop's exception handling (as `App.run` would): the app's handlers decide."""
    try:
        fn()
    except BaseException as inst:  # noqa: BLE001
        if ExceptionManager.handle_exception(inst) == ExceptionManager.RAISE:
            raise


class _LoopTime:
    """How long the UI thread spent outside Kivy's loop, in this driver's own code (finding widgets,
    checking predicates, a soak's bookkeeping). A kiosk's `App.run` never leaves the loop, so the frame
    probe subtracts this: the gaps it reports are the app's, not the test harness's."""

    outside_s = 0.0
    left_at: float | None = None
    inside = False


def frame() -> None:
    """One iteration of Kivy's main loop."""
    t = time.perf_counter()
    if _LoopTime.left_at is not None:
        _LoopTime.outside_s += t - _LoopTime.left_at
    _LoopTime.inside = True
    try:
        guarded(EventLoop.idle)
    finally:
        _LoopTime.inside = False
        _LoopTime.left_at = time.perf_counter()


def harness_seconds() -> float:
    """Seconds the UI thread has spent in the driver instead of Kivy's loop so far (FrameGapProbe's `outside`)."""
    if _LoopTime.inside or _LoopTime.left_at is None:
        return _LoopTime.outside_s
    return _LoopTime.outside_s + time.perf_counter() - _LoopTime.left_at


def visible(w: Any) -> bool:
    """Shown and usable: no ancestor hidden (opacity 0), disabled or collapsed to zero size."""
    node = w
    while node is not None and node is not node.parent:
        if getattr(node, "opacity", 1) == 0 or getattr(node, "disabled", False):
            return False
        if node.width <= 1 or node.height <= 1:
            return False
        node = node.parent
    return True


class Driver:
    def __init__(self, app: Any) -> None:
        self.app = app

    # ------------------------------------------------------------------ time
    def pump(self, seconds: float = 0.05) -> None:
        """Run the event loop for `seconds` of wall time (at least one frame)."""
        end = time.monotonic() + seconds
        frame()
        while time.monotonic() < end:
            frame()

    def wait_until(self, pred: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
        """Advance frames until `pred()`; the timeout is only a guard against hanging forever."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            frame()
            if pred():
                return
        raise DriverError(f"timed out waiting for {what} (screen {self.app.current})")

    def wait_screen(self, name: str, timeout: float = 15.0) -> None:
        self.wait_until(lambda: self.app.current == name, timeout, f"screen {name}")

    # ------------------------------------------------------------------ finding
    @property
    def screen(self) -> Any:
        return self.app.root.sm.current_screen

    def widgets(self) -> list[Any]:
        return list(walk(self.app.root))

    def find(self, key: str, *, only_visible: bool = True) -> Any:
        hits = [w for w in self.widgets() if getattr(w, "key", None) == key and (not only_visible or visible(w))]
        if not hits:
            raise DriverError(f"no visible widget with key {key!r} on screen {self.app.current}")
        return hits[0]

    def has(self, key: str) -> bool:
        try:
            self.find(key)
            return True
        except DriverError:
            return False

    def buttons(self) -> list[Any]:
        return [w for w in self.widgets() if isinstance(w, ButtonBehavior) and visible(w)]

    def texts(self) -> list[str]:
        return [str(getattr(w, "text", "")) for w in self.widgets() if getattr(w, "text", "")]

    # ------------------------------------------------------------------ acting
    def tap(self, key: str, settle: float = 0.03) -> None:
        self.pump(0.03)  # let a screen that just opened lay itself out
        w = self.find(key)
        for _ in range(30):  # until the layout has settled (same place two frames in a row)
            before = tuple(w.to_window(*w.center))
            self.pump(0.02)
            w = self.find(key)
            if tuple(w.to_window(*w.center)) == before:
                break
        self.tap_widget(w, settle)

    def press(self, key: str, max_frames: int = 60) -> None:
        """A tap without wall-clock waits (the soak): frames until the button is visible and stays put
        for one frame, then down, up and one frame. The button's on_release fires on the touch-up."""
        w = None
        before = None
        for _ in range(max_frames):
            frame()
            hits = [x for x in walk(self.app.root) if getattr(x, "key", None) == key and visible(x)]
            if hits:
                w = hits[0]
                here = tuple(w.to_window(*w.center))
                if here == before:
                    break
                before = here
        if w is None:
            raise DriverError(f"no visible widget with key {key!r} on screen {self.app.current}")
        x, y = w.to_window(*w.center)
        t = UnitTestTouch(x, y)
        guarded(t.touch_down)
        guarded(t.touch_up)
        frame()

    def tap_widget(self, w: Any, settle: float = 0.03, hold: float = 0.045) -> None:
        x, y = w.to_window(*w.center)
        t = UnitTestTouch(x, y)
        guarded(t.touch_down)
        self.pump(hold)  # longer than the button's min_state_time (0.035 s)
        guarded(t.touch_up)
        self.pump(settle)

    def tap_at(self, x: float, y: float) -> None:
        t = UnitTestTouch(x, y)
        guarded(t.touch_down)
        self.pump(0.02)
        guarded(t.touch_up)
        self.pump(0.02)

    def type_keys(self, keys: Iterable[str]) -> None:
        """Keys of an on-screen keyboard that is already laid out: no settling between presses."""
        self.pump(0.03)
        for k in keys:
            self.tap_widget(self.find(f"key-{k}"), settle=0.0, hold=0.04)
        self.pump(0.03)

    # ------------------------------------------------------------------ pictures
    def screenshot(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.pump(0.05)
        self.app.root.export_to_png(str(path))
        return path


def start_app(service: Kiosk, **kw: Any) -> tuple[Any, Driver]:
    """Build the KioskApp without entering its main loop: the caller advances frames."""
    from screens.app import KioskApp  # noqa: PLC0415 - opens the window: only after configure_kivy

    app = KioskApp(service, **kw)
    app._run_prepare()
    drv = Driver(app)
    drv.pump(0.1)
    return app, drv


def stop_app(app: Any) -> None:
    """Undo start_app: stop callbacks, detach the root, free the running-app slot."""
    from kivy.app import App  # noqa: PLC0415 - Kivy's app module, only when a test stops its app

    app.dispatch("on_stop")
    win = EventLoop.window
    if win is not None and app.root is not None and app.root.parent is win:
        win.remove_widget(app.root)
    App._running_app = None
    Clock.tick()
