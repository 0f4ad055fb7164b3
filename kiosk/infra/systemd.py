"""sd_notify without a dependency: one datagram to $NOTIFY_SOCKET (READY=1, WATCHDOG=1, ...).

A no-op when not started by systemd with Type=notify. `Watchdog` decides whether
to feed systemd's watchdog: only while the UI thread is responsive (its clock
beats) AND the core is healthy (start-up did not fail, its threads run); when
either stops, the pings stop and systemd restarts the kiosk after WatchdogSec.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


def notify(message: str) -> bool:
    """Send one sd_notify message; True when a socket was there to take it."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):  # abstract namespace
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(addr)
            s.sendall(message.encode("utf-8"))
        return True
    except OSError:
        return False


def watchdog_interval_s() -> float | None:
    """Half of WatchdogSec, as systemd recommends; None when no watchdog is armed for us."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2_000_000
    except ValueError:
        return None


def start_watchdog(is_alive: Callable[[], bool], status: str | None = None) -> threading.Thread | None:
    """For the kiosk app: READY=1 now, then WATCHDOG=1 every half period while `is_alive()` holds.

    When `is_alive` stops returning True (a frozen UI loop), the pings stop and
    systemd restarts the service after WatchdogSec.
    """
    notify("READY=1" + (f"\nSTATUS={status}" if status else ""))
    interval = watchdog_interval_s()
    if interval is None:
        return None

    def loop() -> None:
        while True:
            time.sleep(interval)
            if is_alive():
                notify("WATCHDOG=1")

    t = threading.Thread(target=loop, name="sd-watchdog", daemon=True)
    t.start()
    return t


class Watchdog:
    """Feed the watchdog only while the UI beats and the core is healthy.

    The UI calls `beat()` from its own clock (so a frozen UI thread stops beating);
    `healthy` is the application core's own verdict (kiosk.app.lifecycle.Lifecycle.healthy).
    """

    def __init__(self, healthy: Callable[[], bool] | None = None, stale_after_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._healthy = healthy or (lambda: True)
        self.stale_after_s = stale_after_s
        self._clock = clock
        self._last_beat = clock()
        self._stopped_reason: str | None = None
        self.pings = 0

    def beat(self) -> None:
        """The UI thread turned (called from its clock)."""
        self._last_beat = self._clock()

    def ui_responsive(self) -> bool:
        return self._clock() - self._last_beat < self.stale_after_s

    def core_healthy(self) -> bool:
        try:
            return bool(self._healthy())
        except Exception:  # noqa: BLE001 - a health check that raises is an unhealthy core; logged with its traceback
            log.exception("core health check failed")
            return False

    def alive(self) -> bool:
        """Both conditions hold; the first time they do not, say which (once per outage)."""
        ui, core = self.ui_responsive(), self.core_healthy()
        if ui and core:
            if self._stopped_reason is not None:
                log.warning("watchdog pings resume")
            self._stopped_reason = None
            return True
        reason = ("UI thread unresponsive" if not ui else "") + (" and " if not ui and not core else "") \
            + ("core unhealthy" if not core else "")
        if reason != self._stopped_reason:
            log.error("watchdog pings stopped (%s): systemd will restart the kiosk", reason)
            self._stopped_reason = reason
        return False

    def ping(self) -> bool:
        """Send WATCHDOG=1 when alive; True when a ping went out (or would have, without systemd)."""
        if not self.alive():
            return False
        notify("WATCHDOG=1")
        self.pings += 1
        return True
