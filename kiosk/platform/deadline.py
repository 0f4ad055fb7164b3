"""An overall deadline for one platform call, which requests does not have.

requests' ``timeout`` bounds each socket read, so a server that answers one byte
per second (in its headers or its body) holds a call for as long as it likes. Here
a watchdog timer shuts the call's connection down when the deadline passes: the
blocked read then ends at once, and the client reports the call as timed out.

The connection is found through the pool classes mounted on the client's adapter:
each connection a pool hands out is attached to the deadline of the call running
on that thread. Nothing else changes in how requests and urllib3 work.

Shutting a socket down cannot end a TLS handshake: while it runs, the socket the
connection holds has handed its descriptor to the TLS socket being built. So a new
connection's timeout is also clamped to the time the deadline has left; the TCP
connect uses it, and CPython bounds a whole handshake (not each read) by the
socket's timeout. A connection asked for after the deadline is refused at once.
Name resolution (getaddrinfo) stays outside any deadline: it cannot be interrupted.
"""
from __future__ import annotations

import socket
import threading
import time
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError

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
        self._end = time.monotonic() + seconds

    def __enter__(self) -> Deadline:
        _current.deadline = self
        self._end = time.monotonic() + self.seconds
        self._arm(self.seconds)
        return self

    def remaining(self) -> float:
        """Seconds left (0 once passed)."""
        return max(0.0, self._end - time.monotonic())

    def reached(self) -> bool:
        """The watchdog fired, or the deadline is (within the watchdog's period) here: a timeout that ends
        now is the deadline's, also when a clamped connect or handshake timeout beat the watchdog to it."""
        return self.expired or self._end - time.monotonic() <= _RECHECK_S

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


def _clamp(conn: Any) -> None:
    """Before a new connection is made: its connect (and TLS handshake) timeout is at most what is left."""
    deadline = getattr(_current, "deadline", None)
    if deadline is None:
        return
    left = deadline.remaining()
    if left <= 0:
        deadline.expired = True
        raise ConnectTimeoutError(conn, "the call's overall deadline passed before connecting")
    current = conn.timeout
    if not isinstance(current, (int, float)) or current > left:
        conn.timeout = left


class _WatchedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        _clamp(self)
        return super()._new_conn()


class _WatchedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        _clamp(self)
        return super()._new_conn()


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        _attach(conn)
        return conn


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        _attach(conn)
        return conn


def watch_adapter(adapter: HTTPAdapter) -> HTTPAdapter:
    """Make the adapter's pools attach their connections to the running Deadline."""
    adapter.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
    return adapter
