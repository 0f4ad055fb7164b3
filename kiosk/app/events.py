"""Device and background events handed to the UI thread.

Device callbacks and the outbox drainer run on their own threads; the screens
must only be touched from the Kivy main loop. Everything that happens off the
UI thread is posted here as a small typed event, and the UI polls the queue
on its clock (`drain()`), so no widget is ever touched from a device thread.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class UiEvent:
    """`kind` names what happened (e.g. ``card_read``, ``qr_scanned``, ``status``, ``clear``)."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


class UiEventQueue:
    """Thread-safe FIFO from any thread to the UI thread."""

    def __init__(self, maxsize: int = 1000) -> None:
        self._q: queue.Queue[UiEvent] = queue.Queue(maxsize=maxsize)
        self._ui_thread: int | None = None

    def post(self, kind: str, **data: Any) -> None:
        try:
            self._q.put_nowait(UiEvent(kind, dict(data)))
        except queue.Full:  # a stuck UI must not block a device thread
            pass

    def drain(self, handler: Callable[[UiEvent], None], limit: int = 100) -> int:
        """Deliver up to `limit` pending events to `handler` on the calling (UI) thread."""
        self._ui_thread = threading.get_ident()
        n = 0
        while n < limit:
            try:
                ev = self._q.get_nowait()
            except queue.Empty:
                break
            handler(ev)
            n += 1
        return n

    def clear(self) -> None:
        """Drop pending events (a wiped session must not receive a late card read)."""
        while True:
            try:
                self._q.get_nowait()
            except queue.Empty:
                return

    def pending(self) -> int:
        return self._q.qsize()
