"""Start-up and shut-down: the catalog first, then the platform, the outbox and the devices; the status monitor.

The application never builds a concrete adapter: a `Wiring` from the composition
root (kiosk.bootstrap.app) opens the platform client, the outbox and its drainer
and creates each device; the lifecycle decides when, in the same order as always,
and on its background thread when asked.

When start-up fails (the outbox cannot open, say), the kiosk does not pretend:
`ctx.startup_error` says why, a `startup_failed` event sends the screens to the
out-of-service page, and `healthy()` turns false so the systemd watchdog pings
stop and systemd restarts the kiosk.
"""
from __future__ import annotations

import logging
import threading
from typing import Protocol

from kiosk.app.context import AppContext
from kiosk.app.errors import logged_entry_points, mark_logged
from kiosk.app.status import StatusService
from kiosk.domain.catalog import Catalog, load_catalog
from kiosk.ports.devices import DeviceListener, DevicePort
from kiosk.ports.outbox import DrainerPort, OutboxPort
from kiosk.ports.platform import PlatformPort

log = logging.getLogger(__name__)


class Wiring(Protocol):
    """What the composition root hands the lifecycle: factories for the concrete things."""

    def open_platform(self) -> PlatformPort:
        """The platform client (starting the embedded simulator first when configured)."""
        ...

    def open_outbox(self) -> OutboxPort: ...

    def open_drainer(self, outbox: OutboxPort, platform: PlatformPort) -> DrainerPort:
        """An unstarted drainer; the lifecycle starts it."""
        ...

    def create_device(self, kind: str) -> DevicePort:
        """An unopened adapter for `kind` as configured; raises when its driver is unknown or missing."""
        ...

    def polls(self, device: DevicePort) -> bool:
        """Whether the driver watches for input on a poll thread (start_polling after open)."""
        ...

    def close(self) -> None:
        """Stop whatever the wiring started itself (the embedded platform simulator)."""
        ...


def load_configured_catalog(ctx: AppContext) -> Catalog:
    cfg = ctx.config
    path = cfg.resolve_path(cfg.catalog.path) if cfg.catalog.path else None
    return load_catalog(path)


@logged_entry_points
class Lifecycle:
    def __init__(self, ctx: AppContext, wiring: Wiring, status: StatusService,
                 on_device_event: DeviceListener) -> None:
        self.ctx = ctx
        self.wiring = wiring
        self._status = status
        self._on_device_event = on_device_event
        self._started = False
        self._monitor: threading.Thread | None = None
        self._drainer_thread: threading.Thread | None = None

    def start(self, background: bool = False) -> None:
        """Load the catalog, then platform, outbox and devices (on a thread when `background`).

        In the background mode the home screen can appear while the devices are still
        opening; anything that needs them waits for `ready` (a second or two at most).
        """
        if self._started:
            return
        self._started = True
        self.ctx.state_dir.mkdir(parents=True, exist_ok=True)
        if background:
            threading.Thread(target=self._start_rest, args=(True,), name="kiosk-start", daemon=True).start()
        else:
            self._start_rest(False)

    def _start_rest(self, background: bool) -> None:
        """Start everything; a failure puts the kiosk out of service (re-raised when started in the foreground)."""
        ctx = self.ctx
        try:
            self._start_all(background)
        except Exception as e:  # noqa: BLE001 - out of service, watchdog stops; logged with its traceback
            log.exception("start-up failed: the kiosk is out of service until it is restarted")
            mark_logged(e)
            ctx.startup_error = e.__class__.__name__
            ctx.ready.set()
            ctx.events.post("startup_failed", reason=ctx.startup_error)
            if not background:
                raise
            return
        ctx.events.post("status")
        self._monitor = threading.Thread(target=self._monitor_loop, name="kiosk-status", daemon=True)
        self._monitor.start()

    @property
    def startup_error(self) -> str | None:
        """Why start-up failed (an exception class name), or None."""
        return self.ctx.startup_error

    def healthy(self) -> bool:
        """The core works: start-up has not failed, the drainer and the status monitor run (the watchdog asks)."""
        ctx = self.ctx
        if ctx.startup_error is not None or ctx.stopping.is_set():
            return False
        threads = (self._drainer_thread, self._monitor)
        return all(t is None or t.is_alive() for t in threads)

    def _start_all(self, background: bool) -> None:
        ctx = self.ctx
        if ctx.catalog is None:
            ctx.catalog = load_configured_catalog(ctx)
        ctx.events.post("catalog")
        if background:  # let the UI draw the items before the devices compete for the CPU
            ctx.catalog_shown.wait(3.0)
        self._start_platform()
        self._start_outbox()
        self._start_devices()
        self._status.refresh_status()
        ctx.catalog.warm_search()  # pinyin index last: the home screen does not need it
        ctx.ready.set()

    def _start_platform(self) -> None:
        self.ctx.platform = self.wiring.open_platform()

    def _start_outbox(self) -> None:
        ctx = self.ctx
        ctx.outbox = self.wiring.open_outbox()
        ctx.drainer = self.wiring.open_drainer(ctx.outbox, ctx.require_platform())
        self._drainer_thread = ctx.drainer.start(poll_s=2.0)

    def _start_devices(self) -> None:
        ctx = self.ctx
        for kind, settings in ctx.config.devices.items():
            if not settings.enabled:
                continue
            try:
                dev = self.wiring.create_device(kind)
            except Exception as e:  # noqa: BLE001 - an unknown/missing driver is a device that is down
                log.warning("device %s unavailable: %s", kind, e.__class__.__name__, exc_info=True)
                ctx.status.devices[kind] = "missing"
                continue
            dev.add_listener(self._on_device_event)
            try:
                dev.open()
                # drivers that watch for input; the camera's preview runs only while a screen shows it
                if kind != "camera" and self.wiring.polls(dev):
                    dev.start_polling()
            except Exception as e:  # noqa: BLE001 - it reconnects by itself; the status shows it is down
                log.warning("device %s failed to open: %s", kind, e.__class__.__name__, exc_info=True)
            ctx.devices[kind] = dev

    def _monitor_loop(self) -> None:
        ctx = self.ctx
        while not ctx.stopping.wait(ctx.timings.status_interval_s):
            try:
                self._status.refresh_status()
                ctx.events.post("status")
            except Exception:  # noqa: BLE001
                log.exception("status refresh failed")

    def wait_ready(self, timeout: float = 60.0) -> bool:
        return self.ctx.ready.wait(timeout)

    def stop(self) -> None:
        ctx = self.ctx
        if self._started:
            ctx.ready.wait(30)  # let a background start finish before tearing it down
        ctx.stopping.set()
        ctx.speech.stop()
        try:
            ctx.session.end("shutdown")
        except Exception:  # noqa: BLE001
            log.exception("session end at shutdown failed")
        if ctx.drainer is not None:
            ctx.drainer.stop(timeout=5)
        for dev in ctx.devices.values():
            try:
                dev.close()
            except Exception:  # noqa: BLE001
                log.exception("closing a device failed")
        if ctx.platform is not None:
            ctx.platform.close()
        if ctx.outbox is not None:
            ctx.outbox.close()
        self.wiring.close()
        ctx.pool.shutdown(wait=False, cancel_futures=True)
        self._started = False
