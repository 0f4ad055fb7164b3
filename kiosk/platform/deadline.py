"""An overall deadline for one platform call, which requests does not have.

requests' ``timeout`` bounds each socket read, so a server that answers one byte
per second (in its headers or its body) holds a call for as long as it likes. Here
a watchdog timer shuts the call's connection down when the deadline passes: the
blocked read then ends at once, and the client reports the call as timed out.

The connection is found through the pool classes mounted on the client's adapter:
each connection a pool hands out is attached to the deadline of the call running
on that thread. Nothing else changes in how requests and urllib3 work.
"""
from __future__ import annotations

import socket
import threading
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

#: When the connection has no socket yet at the deadline, look again this often until the call ends.
_RECHECK_S = 0.1

_current = threading.local()


class Deadline:
    """A running deadline; use as a context manager around one call (request and body read)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._lock = threading.Lock()
        self._done = False
        self._conns: list[Any] = []
        self._timer: threading.Timer | None = None

    def __enter__(self) -> Deadline:
        _current.deadline = self
        self._arm(self.seconds)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
            if self._timer is not None:
                self._timer.cancel()
        if getattr(_current, "deadline", None) is self:
            _current.deadline = None

    def attach(self, conn: Any) -> None:
        with self._lock:
            self._conns.append(conn)
            if self.expired:
                _shutdown(conn)

    def _arm(self, delay: float) -> None:
        t = threading.Timer(delay, self._expire)
        t.daemon = True
        self._timer = t
        t.start()

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for conn in self._conns:
                _shutdown(conn)
            self._arm(_RECHECK_S)  # a connection still connecting gets its socket later


def _shutdown(conn: Any) -> None:
    """Shut the socket down (not close: another thread is blocked in it); the plain-socket call, also for TLS."""
    sock = getattr(conn, "sock", None)
    if sock is None:
        return
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed or never connected: nothing to cut


def _attach(conn: Any) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.attach(conn)


class _WatchedHTTPPool(HTTPConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        _attach(conn)
        return conn


class _WatchedHTTPSPool(HTTPSConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        _attach(conn)
        return conn


def watch_adapter(adapter: HTTPAdapter) -> HTTPAdapter:
    """Make the adapter's pools attach their connections to the running Deadline."""
    adapter.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
    return adapter
