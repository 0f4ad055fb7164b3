"""The one contract every device adapter follows (modelled on UnifiedPOS).

Why one contract: the app, the technician tools and the fleet health report treat
an ID-card reader, a QR scanner, a camera and a printer the same way: open/close,
a status with a code and a Chinese message, three health-check levels,
statistics, events to listeners, and automatic reconnection when a cheap
USB-serial device vanishes and comes back.

Drivers subclass :class:`DeviceAdapter` and implement the transport hooks
``_open_transport`` / ``_close_transport`` (and optionally ``_health_external``,
``_health_interactive``, ``_poll_once``). When an I/O call finds the device gone
they raise :class:`DeviceLost` (or call :meth:`DeviceAdapter._lost`): the base
then reports ``offline``, emits ``device_lost`` and retries with backoff until
the transport opens again, then reports ``ready`` and emits ``device_back``.
"""
from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from kiosk.infra.backoff import Backoff

log = logging.getLogger(__name__)

__all__ = [
    "DeviceState",
    "DeviceStatus",
    "HealthLevel",
    "HealthResult",
    "EventKind",
    "DeviceEvent",
    "DeviceError",
    "DeviceLost",
    "DeviceStatistics",
    "DeviceAdapter",
    "settings_to_dict",
]


class DeviceState(str, enum.Enum):  # noqa: UP042 - StrEnum would change str(member)
    READY = "ready"
    BUSY = "busy"
    OFFLINE = "offline"
    ERROR = "error"


@dataclass(frozen=True)
class DeviceStatus:
    """State plus a machine code (for dashboards) and a Chinese message (for people)."""

    state: DeviceState
    code: str = "ok"
    message: str = "设备正常"

    def as_dict(self) -> dict[str, str]:
        return {"state": self.state.value, "code": self.code, "message": self.message}


class HealthLevel(str, enum.Enum):  # noqa: UP042 - StrEnum would change str(member)
    INTERNAL = "internal"  # self-check without the outside world
    EXTERNAL = "external"  # talks to the hardware
    INTERACTIVE = "interactive"  # asks the technician to act (insert a card, show a code)


@dataclass(frozen=True)
class HealthResult:
    ok: bool
    level: HealthLevel
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "level": self.level.value, "message": self.message,
                "details": dict(self.details), "at": self.at}


class EventKind(str, enum.Enum):  # noqa: UP042 - StrEnum would change str(member)
    CARD_INSERTED = "card_inserted"
    CARD_REMOVED = "card_removed"
    CODE_SCANNED = "code_scanned"
    DEVICE_LOST = "device_lost"
    DEVICE_BACK = "device_back"
    STATUS_CHANGED = "status_changed"
    READ_FAILED = "read_failed"


@dataclass(frozen=True)
class DeviceEvent:
    kind: EventKind
    device_kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)


class DeviceError(Exception):
    """A classified device failure.

    ``code`` is stable (for logs and dashboards), ``message`` is plain Chinese for
    the citizen or technician. Never put personal data into either.
    """

    code: str = "device_error"
    message: str = "设备故障，请联系工作人员"

    def __init__(self, code: str | None = None, message: str | None = None, *, detail: str = ""):
        self.code = code or type(self).code
        self.message = message or type(self).message
        self.detail = detail  # technician-facing, still no personal data
        super().__init__(f"{self.code}: {self.message}" + (f" ({detail})" if detail else ""))


class DeviceLost(DeviceError):
    """The transport vanished (port unplugged, reader removed): go offline and reconnect."""

    code = "device_lost"
    message = "设备已断开，正在重新连接"


class UnknownDriver(DeviceError):
    code = "unknown_driver"
    message = "配置中的设备驱动不存在"


def settings_to_dict(settings: Any) -> dict[str, Any]:
    """DeviceSettings (pydantic, extras allowed), a Mapping or None -> plain dict."""
    if settings is None:
        return {}
    if isinstance(settings, Mapping):
        return dict(settings)
    dump = getattr(settings, "model_dump", None)
    if dump is not None:
        d = dict(dump())
        d.update(getattr(settings, "model_extra", None) or {})
        return d
    raise TypeError("device settings must be DeviceSettings or a mapping")


class DeviceStatistics:
    """Thread-safe counters: operations, failures, last error, uptime, driver metrics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self.operations = 0
        self.failures = 0
        self.last_error: str | None = None
        self._metrics: dict[str, float] = {}
        self._sums: dict[str, tuple[float, int]] = {}

    def success(self, **metrics: float) -> None:
        with self._lock:
            self.operations += 1
            self._observe(metrics)

    def failure(self, code: str, **metrics: float) -> None:
        with self._lock:
            self.operations += 1
            self.failures += 1
            self.last_error = code
            self._observe(metrics)

    def _observe(self, metrics: Mapping[str, float]) -> None:
        for k, v in metrics.items():
            self._metrics[k] = float(v)
            s, n = self._sums.get(k, (0.0, 0))
            self._sums[k] = (s + float(v), n + 1)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = {
                "operations": self.operations,
                "failures": self.failures,
                "last_error": self.last_error,
                "uptime_s": round(time.monotonic() - self._started, 3),
            }
            for k, v in self._metrics.items():
                out[k] = round(v, 3)
                s, n = self._sums[k]
                out[f"{k}_avg"] = round(s / n, 3)
            return out


Listener = Callable[[DeviceEvent], None]
PromptCallback = Callable[[str], None]


class _Dispatcher:
    """Delivers events in order on one thread, so a slow listener never blocks a device."""

    def __init__(self, name: str):
        self._q: queue.Queue[DeviceEvent | None] = queue.Queue()
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._name = name

    def add(self, cb: Listener) -> None:
        with self._lock:
            if cb not in self._listeners:
                self._listeners.append(cb)

    def remove(self, cb: Listener) -> None:
        with self._lock:
            if cb in self._listeners:
                self._listeners.remove(cb)

    def put(self, ev: DeviceEvent) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=f"events-{self._name}", daemon=True)
                self._thread.start()
        self._q.put(ev)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event has been delivered (tests, shutdown)."""
        end = time.monotonic() + timeout
        while self._q.unfinished_tasks:
            if time.monotonic() > end:
                return False
            time.sleep(0.005)
        return True

    def _run(self) -> None:
        while True:
            ev = self._q.get()
            try:
                if ev is None:
                    return
                with self._lock:
                    listeners = list(self._listeners)
                for cb in listeners:
                    try:
                        cb(ev)
                    except Exception:  # a broken listener must not stop the device
                        log.exception("device event listener failed (%s)", ev.kind.value)
            finally:
                self._q.task_done()


class DeviceAdapter:
    """Base class of every driver. Subclasses set ``kind`` and ``driver``.

    Thread model: ``open``/``close``/``health`` are called by the app; a driver
    may run a poll worker (``start_polling``); reconnection runs on its own
    thread; events are delivered on the dispatcher thread.
    """

    kind: ClassVar[str] = "device"
    #: The configured driver name: a class attribute, or per instance where one class serves several.
    driver: str = "base"
    #: Polling interval for drivers that implement ``_poll_once``.
    default_poll_interval_s: ClassVar[float] = 0.3

    def __init__(self, settings: Any = None):
        self.settings: dict[str, Any] = settings_to_dict(settings)
        self._lock = threading.RLock()
        self._status = DeviceStatus(DeviceState.OFFLINE, "closed", "设备未打开")
        self._stats = DeviceStatistics()
        self._events = _Dispatcher(f"{self.kind}-{self.driver}")
        self._last_health: HealthResult | None = None
        self._opened = False
        self._stop = threading.Event()
        self._reconnect_thread: threading.Thread | None = None
        self._poll_thread: threading.Thread | None = None
        self.backoff = Backoff(float(self.param("reconnect_initial_s", 0.2)),
                               float(self.param("reconnect_max_s", 10.0)))

    # -- configuration ---------------------------------------------------
    def param(self, name: str, default: Any = None) -> Any:
        v = self.settings.get(name)
        return default if v is None else v

    # -- transport hooks (drivers override) ------------------------------
    def _open_transport(self) -> None:
        """Open the port/reader/capture; raise DeviceLost/OSError when it is not there."""

    def _close_transport(self) -> None:
        """Release the transport; must not raise."""

    def _poll_once(self) -> None:
        """One poll cycle (find a card, read a line, grab a frame). Optional."""
        raise NotImplementedError

    def _health_external(self) -> HealthResult:
        ok = self.status.state in (DeviceState.READY, DeviceState.BUSY)
        return HealthResult(ok, HealthLevel.EXTERNAL, self.status.message, {"status": self.status.as_dict()})

    def _health_interactive(self, timeout: float, prompt: PromptCallback | None) -> HealthResult:
        return HealthResult(False, HealthLevel.INTERACTIVE, "此设备不支持交互检测", {})

    # -- lifecycle ---------------------------------------------------------
    def open(self) -> None:
        """Open the device. A missing device does not raise: it goes ``offline`` and reconnects."""
        with self._lock:
            if self._opened:
                return
            self._opened = True
            self._stop.clear()
            try:
                self._open_transport()
            except DeviceLost as e:
                self._lost(e)
                return
            except OSError as e:
                self._lost(DeviceLost(detail=type(e).__name__))
                return
            except DeviceError as e:  # configuration problem: retrying will not help
                self._opened = False
                self._set_status(DeviceStatus(DeviceState.ERROR, e.code, e.message))
                raise
            self._set_status(DeviceStatus(DeviceState.READY))

    def close(self) -> None:
        with self._lock:
            self._stop.set()
            self._opened = False
        for t in (self._poll_thread, self._reconnect_thread):
            if t is not None and t is not threading.current_thread():
                t.join(timeout=5)
        self._poll_thread = self._reconnect_thread = None
        with self._lock:
            self._close_quietly()
            self._set_status(DeviceStatus(DeviceState.OFFLINE, "closed", "设备未打开"))
        self._events.flush(timeout=2)

    def __enter__(self) -> DeviceAdapter:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self._opened

    # -- status ------------------------------------------------------------
    @property
    def status(self) -> DeviceStatus:
        return self._status

    def _set_status(self, st: DeviceStatus) -> None:
        with self._lock:
            old, self._status = self._status, st
        if old != st:
            self._emit(EventKind.STATUS_CHANGED, old=old.as_dict(), new=st.as_dict())

    def wait_for_state(self, state: DeviceState, timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._status.state == state:
                return True
            time.sleep(0.01)
        return self._status.state == state

    def _close_quietly(self) -> None:
        """Release the transport on the way to offline/closed: a failing close is logged, never raised."""
        try:
            self._close_transport()
        except Exception:
            log.exception("%s/%s close failed", self.kind, self.driver)

    # -- reconnection --------------------------------------------------------
    def _lost(self, err: DeviceError | None = None) -> None:
        """Called by drivers when the device vanished: offline, event, reconnect loop."""
        err = err or DeviceLost()
        with self._lock:
            was_offline = self._status.state == DeviceState.OFFLINE and self._status.code == err.code
            self._close_quietly()
            self._set_status(DeviceStatus(DeviceState.OFFLINE, err.code, err.message))
            self._stats.failure(err.code)
            if not was_offline:
                self._emit(EventKind.DEVICE_LOST, code=err.code, message=err.message)
            if self._opened and (self._reconnect_thread is None or not self._reconnect_thread.is_alive()):
                self._reconnect_thread = threading.Thread(
                    target=self._reconnect_loop, name=f"reconnect-{self.kind}", daemon=True)
                self._reconnect_thread.start()

    def _reconnect_loop(self) -> None:
        self.backoff.reset()
        for delay in self.backoff:
            if self._stop.wait(delay):
                return
            with self._lock:
                if not self._opened:
                    return
                try:
                    self._open_transport()
                except Exception as e:  # still gone (any driver's error type): keep trying
                    log.debug("%s reconnect failed: %s", self.kind, type(e).__name__, exc_info=True)
                    self._close_quietly()
                    continue
                self._set_status(DeviceStatus(DeviceState.READY))
                self._emit(EventKind.DEVICE_BACK, attempts=self.backoff.attempt)
                self.backoff.reset()
                return

    # -- polling -------------------------------------------------------------
    def start_polling(self, interval_s: float | None = None) -> None:
        """Run ``_poll_once`` on a worker thread while the device is ready."""
        interval = float(interval_s if interval_s is not None else self.param("poll_interval_s",
                                                                              self.default_poll_interval_s))
        if self._poll_thread is not None and self._poll_thread.is_alive():
            return
        self._poll_thread = threading.Thread(target=self._poll_loop, args=(interval,),
                                             name=f"poll-{self.kind}", daemon=True)
        self._poll_thread.start()

    def _poll_loop(self, interval: float) -> None:
        while not self._stop.is_set():
            if self._status.state not in (DeviceState.READY, DeviceState.BUSY):
                # offline or in error: the reconnect thread works on it; do not spin
                if self._stop.wait(max(interval, 0.1)):
                    return
                continue
            try:
                self._poll_once()
            except DeviceLost as e:
                self._lost(e)
            except OSError as e:
                self._lost(DeviceLost(detail=type(e).__name__))
            except DeviceError as e:
                self._stats.failure(e.code)
                self._emit(EventKind.READ_FAILED, code=e.code, message=e.message)
            except Exception:
                log.exception("%s poll failed", self.kind)
                self._stats.failure("internal")
                self._stop.wait(0.5)  # a bug must not turn into a busy loop
            if self._stop.wait(interval):
                return

    # -- health ----------------------------------------------------------------
    def health(self, level: HealthLevel | str = HealthLevel.INTERNAL, *, timeout: float = 30.0,
               prompt: PromptCallback | None = None) -> HealthResult:
        lvl = HealthLevel(level)
        try:
            if lvl is HealthLevel.INTERNAL:
                res = self._health_internal()
            elif lvl is HealthLevel.EXTERNAL:
                res = self._health_external()
            else:
                res = self._health_interactive(timeout, prompt)
        except DeviceLost as e:
            self._lost(e)
            res = HealthResult(False, lvl, e.message, {"code": e.code})
        except DeviceError as e:
            res = HealthResult(False, lvl, e.message, {"code": e.code})
        except Exception as e:  # a health check must answer, not raise
            log.exception("%s health check failed", self.kind)
            res = HealthResult(False, lvl, "检测过程出错，请联系工作人员",
                               {"code": "internal", "error": type(e).__name__})
        self._last_health = res
        return res

    def _health_internal(self) -> HealthResult:
        st = self.status
        ok = st.state != DeviceState.ERROR
        return HealthResult(ok, HealthLevel.INTERNAL, "自检通过" if ok else st.message,
                            {"status": st.as_dict(), "driver": self.driver})

    @property
    def last_health(self) -> HealthResult | None:
        return self._last_health

    # -- statistics --------------------------------------------------------------
    @property
    def statistics(self) -> dict[str, Any]:
        return self._stats.snapshot()

    # -- events --------------------------------------------------------------------
    def add_listener(self, cb: Listener) -> None:
        self._events.add(cb)

    def remove_listener(self, cb: Listener) -> None:
        self._events.remove(cb)

    def _emit(self, event_kind: EventKind, /, **payload: Any) -> None:
        self._events.put(DeviceEvent(event_kind, self.kind, payload))

    def flush_events(self, timeout: float = 5.0) -> bool:
        return self._events.flush(timeout)
