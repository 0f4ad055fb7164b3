"""KioskApp: one ScreenManager, the top bar, the idle banner, event polling and recovery.

The app owns no business logic: it routes touches to screens, screens to the
Kiosk services (kiosk.app.services), and the service's events (posted from device threads) back to the
current screen on the Kivy clock.
"""
from __future__ import annotations

import datetime as _dt
import importlib
import logging
import time
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.base import EventLoop, ExceptionHandler, ExceptionManager
from kivy.clock import Clock
from kivy.config import Config
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.properties import BooleanProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.label import Label
from kivy.uix.screenmanager import NoTransition, ScreenManager

from kiosk.app.events import UiEvent
from kiosk.app.services import Kiosk
from screens import widgets  # noqa: F401 - registers the widget classes the kv files use
from screens.quiet_gc import QuietCollector
from screens.theme import theme
from screens.widgets import HiddenGuard

log = logging.getLogger(__name__)
KV_DIR = Path(__file__).parent / "kv"
#: Keys the lockdown names in the log when it ignores them (Kivy key codes); no other key is ever logged.
_NAMED_KEYS = {27: "Escape", 282: "F1", 285: "F4"}

# name -> "module:Class"; each module has kv/<name>.kv next to it.
SCREENS = {
    "home": "screens.home:HomeScreen",
    "search": "screens.search:SearchScreen",
    "browse": "screens.browse:BrowseScreen",
    "guide": "screens.guide:GuideScreen",
    "identify": "screens.identify:IdentifyScreen",
    "form": "screens.form:FormScreen",
    "materials": "screens.materials:MaterialsScreen",
    "review": "screens.review:ReviewScreen",
    "receipt": "screens.receipt:ReceiptScreen",
    "progress": "screens.progress:ProgressScreen",
    "certificate": "screens.certificate:CertificateScreen",
    "property": "screens.property:PropertyScreen",
    "payment": "screens.payment:PaymentScreen",
    "help": "screens.help:HelpScreen",
    "rating": "screens.rating:RatingScreen",
    "out_of_service": "screens.out_of_service:OutOfServiceScreen",
    "technician": "screens.technician:TechnicianScreen",
}


def load_kv(*names: str) -> None:
    """Load kv/<name>.kv once each; theme.kv always first (later rules win over base-class rules)."""
    for name in ("theme", "root") + names:
        kv = KV_DIR / f"{name}.kv"
        if kv.exists() and str(kv) not in Builder.files:
            Builder.load_file(str(kv))


class KioskScreenManager(ScreenManager):
    pass


class StatusPill(Label):
    online = BooleanProperty(True)


class IdleBanner(HiddenGuard, BoxLayout):
    active = BooleanProperty(False)
    remaining = NumericProperty(0)


class BrandLabel(Label):
    """The brand in the corner; five quick taps open the technician PIN pad (the hidden gesture)."""

    taps_needed = 5
    window_s = 4.0

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._taps: list[float] = []

    def on_touch_down(self, touch: Any) -> bool:
        if not self.collide_point(*touch.pos):
            return super().on_touch_down(touch)
        now = time.monotonic()
        self._taps = [t for t in self._taps if now - t < self.window_s] + [now]
        if len(self._taps) >= self.taps_needed:
            self._taps = []
            App.get_running_app().go("technician")
        return True


class KioskRoot(BoxLayout):
    sm = ObjectProperty(None)
    status = ObjectProperty(None)
    clock_label = ObjectProperty(None)
    brand_label = ObjectProperty(None)
    idle_banner = ObjectProperty(None)
    brand = StringProperty("齐好办")
    station = StringProperty("")
    can_go_back = BooleanProperty(False)


class _Recover(ExceptionHandler):
    """An unexpected exception in a screen: log it, end the visit, rebuild the screens, go home."""

    def __init__(self, app: KioskApp) -> None:
        self.app = app

    def handle_exception(self, inst: BaseException) -> int:
        if isinstance(inst, (KeyboardInterrupt, SystemExit)):
            return ExceptionManager.RAISE
        log.error("screen error, restarting screens: %s", inst.__class__.__name__, exc_info=inst)
        self.app.recover()
        return ExceptionManager.PASS


class KioskApp(App):
    title = "齐好办 自助服务"
    #: Kivy's settings panel has fullscreen and cursor switches a passer-by could use: never in a kiosk.
    use_kivy_settings = False

    def __init__(self, service: Kiosk, *, production: bool | None = None, poll_s: float = 0.1, **kw: Any) -> None:
        super().__init__(**kw)
        self.service = service
        self.theme = theme
        self.production = service.ctx.config.ui.production if production is None else production
        self.poll_s = poll_s
        self.screen_log: list[str] = []  # screen names in order (tests, demo)
        self.history: list[str] = []
        self.recoveries = 0
        self._handler = _Recover(self)
        self.collector = QuietCollector()  # no 200 ms garbage-collector pause in the middle of a visit
        self._wake: Any = None  # the clock trigger the event queue calls (set in build)

    # ------------------------------------------------------------------ building
    def build(self) -> KioskRoot:
        load_kv()
        theme.elderly = bool(self.service.mode.elderly)
        cfg = self.service.ctx.config
        root = KioskRoot(brand=cfg.kiosk.brand, station=cfg.kiosk.station_name)
        root.sm.transition = NoTransition()
        self.root = root
        self._make_screens()
        self._apply_production()
        ExceptionManager.add_handler(self._handler)
        Window.bind(on_touch_down=self._on_any_touch)
        self._clock_events = [Clock.schedule_interval(self._poll, self.poll_s),
                               Clock.schedule_interval(self._tick, 1.0)]
        # an event from a device or worker thread is handled at the next frame, not at the next poll
        self._wake = Clock.create_trigger(self._poll, 0)
        self.service.ctx.events.set_waker(self._wake)
        self._tick(0)
        self.service.visit.add_clear_listener(lambda reason: self.service.ctx.events.post("clear", reason=reason))
        self.go("home")
        return root

    def _make_screens(self) -> None:
        """Home now; the other screens one per frame after the first frame (or on first use)."""
        sm = self.root.sm
        sm.clear_widgets()
        self._make_screen("home")
        pending = [n for n in SCREENS if n != "home"]

        def warm(_dt: float) -> None:
            if not self.service.ctx.ready.is_set():  # the catalog and devices first, then the spare screens
                Clock.schedule_once(warm, 0.2)
                return
            while pending:
                name = pending.pop(0)
                if not sm.has_screen(name):
                    self._make_screen(name)
                    Clock.schedule_once(warm, 0)
                    return
            self.collector.after_startup()  # every screen is built: what lives now lives all day

        Clock.schedule_once(warm, 0.5)

    def _make_screen(self, name: str) -> bool:
        load_kv(name)
        mod_name, cls_name = SCREENS[name].split(":")
        mod = importlib.import_module(mod_name)
        self.root.sm.add_widget(getattr(mod, cls_name)(name=name))
        return True

    def _apply_production(self) -> None:
        """The lockdown. Every mode: Escape never ends the kiosk, no settings panel, no multitouch emulation.

        Escape is ignored even in development: a clean exit (status 0) by one key press ends a
        citizen's visit, and under a unit without Restart=always it leaves the kiosk dead.
        Production also: fullscreen, borderless, no cursor, every key and window close ignored.
        """
        if Config.has_section("input"):
            Config.set("input", "mouse", "mouse,disable_multitouch")  # read when the loop starts its inputs
        for provider in EventLoop.input_providers:  # inputs already running (the UI driver, a rebuilt app)
            if hasattr(provider, "disable_multitouch"):
                provider.disable_multitouch = True
        Window.bind(on_keyboard=self._filter_keys)
        if not self.production:
            return
        Window.borderless = True
        Window.fullscreen = "auto"
        Window.show_cursor = False
        Window.bind(on_request_close=self._refuse_close)

    def _filter_keys(self, _win: Any, key: int, *args: Any) -> bool:
        """Production: every key does nothing (Escape, Alt+F4, F1...). Development: only Escape is dropped."""
        if self.production or key == 27:
            if key in _NAMED_KEYS:
                log.info("lockdown: key %s ignored", _NAMED_KEYS[key])
            return True
        return False

    def _refuse_close(self, *_args: Any, **_kw: Any) -> bool:
        log.info("lockdown: window close refused")
        return True  # handled: Kivy does not close the window

    def open_settings(self, *_args: Any) -> bool:
        """Never opens Kivy's settings panel (F1 or any caller)."""
        return False

    def _install_settings_keys(self, window: Any) -> None:
        """Kivy binds its F1 settings handler here, after build(): bind the kiosk's key filter instead, last.

        Kivy calls the most recently bound handler first, so the filter re-bound here runs before
        anything bound earlier; F1 never reaches a settings handler (and open_settings is a no-op).
        """
        window.unbind(on_keyboard=self._filter_keys)
        window.bind(on_keyboard=self._filter_keys)

    def on_stop(self) -> None:
        for ev in getattr(self, "_clock_events", []):
            ev.cancel()
        self.service.ctx.events.set_waker(None)
        if self._wake is not None:
            self._wake.cancel()  # a wake-up already asked for before the stop
        self.collector.stop()
        Window.unbind(on_touch_down=self._on_any_touch)
        Window.unbind(on_keyboard=self._filter_keys, on_request_close=self._refuse_close)
        ExceptionManager.handlers[:] = [h for h in ExceptionManager.handlers if h is not self._handler]

    # ------------------------------------------------------------------ navigation
    def screen(self, name: str) -> Any:
        if not self.root.sm.has_screen(name):
            self._make_screen(name)
        return self.root.sm.get_screen(name)

    @property
    def current(self) -> str:
        return self.root.sm.current

    def go(self, name: str, *, remember: bool = True, **params: Any) -> None:
        sm = self.root.sm
        if name == "certificate_fetch":  # the service's flow step: the certificate screen, fetching
            name, params = "certificate", {**params, "stage": "fetch"}
        if not sm.has_screen(name):
            if name not in SCREENS:
                log.warning("no screen %s", name)
                return
            self._make_screen(name)
        if self.service.lifecycle.startup_error and name not in ("out_of_service", "technician"):
            params, name = {"startup_failed": True}, "out_of_service"  # nothing works: never a normal-looking home
            if not sm.has_screen(name):
                self._make_screen(name)
        missing = self.service.station.missing_devices(getattr(sm.get_screen(name), "needs", ()))
        if missing and name != "out_of_service":
            params = {"missing": missing, "wanted": name}
            name = "out_of_service"
            if not sm.has_screen(name):
                self._make_screen(name)
        old = sm.current_screen
        if old is not None and old.name != name:
            old.leave()
            if remember and old.name not in ("out_of_service",):
                self.history.append(old.name)
        scr = sm.get_screen(name)
        scr.enter(**params)
        sm.current = name
        self.screen_log.append(name)
        self.root.can_go_back = name != "home" and bool(self.history)
        if scr.prompt:
            self.service.mode.say(scr.prompt, key=f"screen-{name}")

    def back(self) -> None:
        while self.history:
            name = self.history.pop()
            if name != self.current:
                self.go(name, remember=False)
                return
        self.home()

    def home(self, end_visit: bool = False) -> None:
        if end_visit:
            self.service.visit.end_visit("home")
            return  # the clear event brings us home
        self.history.clear()
        self.go("home", remember=False)

    def toggle_elderly(self) -> None:
        self.service.mode.set_elderly(not self.service.mode.elderly)
        theme.elderly = self.service.mode.elderly
        for s in self.root.sm.screens:
            s.refresh_mode()

    def keep_alive(self) -> None:
        self.service.visit.touch()
        self.root.idle_banner.active = False

    # ------------------------------------------------------------------ clock work
    def _on_any_touch(self, *_: Any) -> None:
        self.service.visit.touch()
        self.collector.touched()
        if self.root.idle_banner.active:
            self.root.idle_banner.active = False

    def _tick(self, _elapsed: float) -> None:
        self.root.clock_label.text = _dt.datetime.now().strftime("%m月%d日 %H:%M")
        self.service.visit.tick(away_from_home=self.root.sm.current != "home")
        self.collector.tick(on_home=self.root.sm.current == "home")
        left = self.service.visit.seconds_left()
        if self.root.idle_banner.active and left is not None:
            self.root.idle_banner.remaining = int(left)
        st = self.service.ctx.status
        self.root.status.online = st.online
        self.root.status.text = st.message

    def _poll(self, _elapsed: float) -> None:
        self.service.ctx.events.drain(self.handle_event)

    def handle_event(self, ev: UiEvent) -> None:
        if ev.kind == "clear":
            self.wipe_all()
            self.root.idle_banner.active = False
            self.history.clear()
            self.go("home", remember=False)
            Clock.schedule_once(lambda _dt: self.collector.after_visit(), 0)  # once home is drawn
        elif ev.kind == "idle_warning":
            self.root.idle_banner.remaining = int(ev.data.get("remaining", 0))
            if not self.root.idle_banner.active:
                self.root.idle_banner.active = True
                self.service.mode.say("没有操作，即将退出。需要继续请点继续办理。", key="idle_warning")
        elif ev.kind == "status":
            self._tick(0)
            self._follow_outage()
        elif ev.kind == "startup_failed":  # the watchdog pings stop too: systemd restarts the kiosk
            self.history.clear()
            self.go("out_of_service", remember=False, startup_failed=True)
        elif ev.kind == "catalog":
            for scr in self.root.sm.screens:
                scr.refresh_mode()
            Clock.schedule_once(lambda _dt: self.service.ctx.catalog_shown.set(), 0)  # after the next frame
        else:
            cur = self.root.sm.current_screen
            if cur is not None:
                cur.on_service_event(ev)

    def _follow_outage(self) -> None:
        """Everything down and nobody mid-visit: the calm out-of-service page; back home when a device returns."""
        if self.service.lifecycle.startup_error:
            return  # out of service until restarted
        cur = self.root.sm.current
        down = self.service.station.everything_down()
        if down and cur == "home":
            self.go("out_of_service", remember=False)
        elif not down and cur == "out_of_service" and self.screen("out_of_service").everything_down:
            self.go("home", remember=False)

    def wipe_all(self) -> None:
        for s in self.root.sm.screens:
            s.wipe()

    def recover(self) -> None:
        """Rebuild every screen from scratch after an unexpected error and return home."""
        self.recoveries += 1
        try:
            self.service.visit.end_visit("error")
        except Exception:  # noqa: BLE001 - recovery must not fail
            log.exception("end_visit failed during recovery")
        self.service.ctx.events.clear()
        self._make_screens()
        self.history.clear()
        self.root.idle_banner.active = False
        self.go("home", remember=False)
