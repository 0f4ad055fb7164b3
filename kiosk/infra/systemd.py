"""sd_notify without a dependency: one datagram to $NOTIFY_SOCKET (READY=1, WATCHDOG=1, ...).

A no-op when not started by systemd with Type=notify.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable


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
