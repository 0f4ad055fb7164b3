"""AppContext: the one typed bag the application services share (config, catalog, session, ports).

Every service gets the same context; the lifecycle fills in the platform, the
outbox, the drainer and the devices once they are up (until then those are None
or empty, and anything that needs them waits for `ready`).
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from kiosk.app.common import StationStatus
from kiosk.app.errors import already_logged, mark_logged
from kiosk.app.events import UiEventQueue
from kiosk.app.worker_pool import started_pool
from kiosk.config import KioskConfig
from kiosk.domain.catalog import Catalog, Item
from kiosk.domain.session import Session, VisitEnded
from kiosk.ports.clock import Clock
from kiosk.ports.devices import (
    DevicePort,
    DocumentCameraPort,
    IdCardReaderPort,
    QrScannerPort,
    ReceiptPrinterPort,
)
from kiosk.ports.outbox import DrainerPort, OutboxPort
from kiosk.ports.platform import PlatformPort
from kiosk.ports.speech import SpeechBackend

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Timings:
    """How long the services wait; tests shorten them."""

    submit_wait_s: float = 4.0  # for the platform's number after a submit, before showing the local one
    payment_timeout_s: float = 180.0
    payment_poll_s: float = 1.0  # between asks whether the citizen has paid
    status_interval_s: float = 3.0
    thanks_s: float = 2.0  # how long the rating's thank-you stays before the visit ends
    platform_idle_close_s: float = 90.0  # kept-alive platform connections unused this long are closed (the
    # health probe comes every reachability.QUIET_S = 45 s while all is quiet, so an idle kiosk keeps its one)


@dataclass
class AppContext:
    """Shared state of one kiosk process. Never imports Kivy or a concrete adapter."""

    config: KioskConfig
    session: Session
    speech: SpeechBackend
    clock: Clock
    state_dir: Path
    timings: Timings = field(default_factory=Timings)
    catalog: Catalog | None = None
    events: UiEventQueue = field(default_factory=UiEventQueue)
    status: StationStatus = field(default_factory=StationStatus)
    devices: dict[str, DevicePort] = field(default_factory=dict)
    platform: PlatformPort | None = None
    outbox: OutboxPort | None = None
    drainer: DrainerPort | None = None
    pool: cf.ThreadPoolExecutor = field(
        # six: a payment poll holds one for minutes, a slow capture or print must not queue behind it
        default_factory=lambda: started_pool(6, "kiosk-svc"))
    stopping: threading.Event = field(default_factory=threading.Event)
    ready: threading.Event = field(default_factory=threading.Event)  # platform, outbox and devices are up
    catalog_shown: threading.Event = field(default_factory=threading.Event)  # set by a UI once it drew the catalog
    #: non-personal per-visit scratch (payment id, identity token, local number, document blocks)
    scratch: dict[str, Any] = field(default_factory=dict)
    #: what device events the current screen wants: identify, progress
    listening: set[str] = field(default_factory=set)
    elderly: bool = False
    log_path: Path | None = None  # set by whoever installed the JSON log (kiosk run)
    restart_pending: list[str] = field(default_factory=list)  # pushed keys that need a restart
    last_platform_contact: str | None = None  # ISO time of the last answer from the platform
    last_receipt: list[Any] | None = None  # blocks of the last receipt (tests, demo)
    startup_error: str | None = None  # why start-up failed (the kiosk is out of service until restarted)

    @classmethod
    def create(cls, config: KioskConfig, *, speech: SpeechBackend, clock: Clock = time.monotonic,
               state_dir: str | Path | None = None, catalog: Catalog | None = None,
               timings: Timings | None = None) -> AppContext:
        """A context with a fresh session whose idle timeout follows the configured mode."""
        elderly = config.ui.elderly_mode
        timeout = config.ui.elderly_idle_timeout_s if elderly else config.ui.idle_timeout_s
        ctx = cls(config=config, session=Session(timeout, config.ui.idle_warning_s, clock=clock), speech=speech,
                  clock=clock, state_dir=Path(state_dir) if state_dir else config.data_dir,
                  timings=timings or Timings(), catalog=catalog, elderly=elderly)
        for kind, settings in config.devices.items():
            if settings.enabled:
                ctx.status.devices[kind] = "starting"
        return ctx

    # ------------------------------------------------------------------ background work, tied to its visit
    def in_background(self, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
        """Run `fn(token, *args)` on the pool, `token` being the visit it was started under.

        A result for an ended visit (VisitEnded) is dropped and logged at debug; any
        other exception is logged with its traceback (a bare future would keep it).
        """
        token = self.session.token
        name = getattr(fn, "__qualname__", type(fn).__name__)

        def run() -> Any:
            try:
                return fn(token, *args)
            except VisitEnded:
                log.debug("%s: its visit has ended, result dropped", name)
            except Exception as e:  # noqa: BLE001 - nobody reads the future: log it here, with its traceback
                if not already_logged(e):
                    log.exception("background task %s failed", name)
                    mark_logged(e)
            return None

        return self.pool.submit(run)

    def post_for(self, token: int | None, kind: str, **data: Any) -> bool:
        """Post a UI event only while `token`'s visit is current; a late one is dropped (logged at debug)."""
        if self.session.run_if_current(token, lambda: self.events.post(kind, **data)):
            return True
        log.debug("dropped a %s event of an ended visit", kind)
        return False

    def keep_for(self, token: int | None, key: str, value: Any) -> None:
        """Keep a per-visit scratch value, only for the visit it belongs to (else VisitEnded)."""
        self.session.with_visit(token, lambda: self.scratch.__setitem__(key, value))

    def for_visit(self, token: int | None, fn: Callable[[], T]) -> T:
        """`fn()` (a read of the session or the scratch) only while `token`'s visit is current; else VisitEnded."""
        return self.session.with_visit(token, fn)

    # ------------------------------------------------------------------ small shared reads
    def wait_ready(self, timeout: float = 60.0) -> bool:
        return self.ready.wait(timeout)

    def timeout_for(self, elderly: bool) -> float:
        ui = self.config.ui
        return ui.elderly_idle_timeout_s if elderly else ui.idle_timeout_s

    @property
    def current_item(self) -> Item | None:
        code = self.session.data.item_code
        return self.require_catalog().get(code) if code else None

    def require_item(self) -> Item:
        """The item of the visit; a screen that needs one is only reachable after choosing it."""
        it = self.current_item
        if it is None:
            raise RuntimeError("no item chosen")
        return it

    def require_catalog(self) -> Catalog:
        if self.catalog is None:
            raise RuntimeError("catalog not loaded yet")
        return self.catalog

    def require_platform(self) -> PlatformPort:
        if self.platform is None:
            raise RuntimeError("platform not connected yet")
        return self.platform

    def require_outbox(self) -> OutboxPort:
        if self.outbox is None:
            raise RuntimeError("outbox not open yet")
        return self.outbox

    def enqueue(self, kind: str, body: dict[str, Any], key_prefix: str) -> str:
        """Queue a record for the platform (once the outbox is up) and wake the drainer."""
        self.wait_ready()
        local_no = self.require_outbox().enqueue(kind, body, idempotency_key=f"{key_prefix}-{uuid.uuid4().hex}")
        if self.drainer is not None:
            self.drainer.notify()
        return local_no

    # ------------------------------------------------------------------ devices by kind
    def idcard(self) -> IdCardReaderPort | None:
        return cast("IdCardReaderPort | None", self.devices.get("idcard"))

    def camera(self) -> DocumentCameraPort | None:
        return cast("DocumentCameraPort | None", self.devices.get("camera"))

    def printer(self) -> ReceiptPrinterPort | None:
        return cast("ReceiptPrinterPort | None", self.devices.get("printer"))

    def qr(self) -> QrScannerPort | None:
        return cast("QrScannerPort | None", self.devices.get("qr"))
