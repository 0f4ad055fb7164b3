"""Device and background events handed to the UI thread.

Device callbacks and the outbox drainer run on their own threads; the screens
must only be touched from the Kivy main loop. Everything that happens off the
UI thread is posted here as a small typed event, and the UI polls the queue
on its clock (`drain()`), so no widget is ever touched from a device thread.
A waker (the UI's clock trigger) is called after each post, so an answer is on
screen at the next frame instead of at the next poll.

The queue is bounded so a stuck UI cannot eat the memory, but a `clear` (the
visit ended: wipe every screen) is never dropped, and every dropped event is
logged.
"""
from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: kinds that are delivered even when the queue is full (dropping one would leave a citizen's data on screen)
NEVER_DROPPED = frozenset({"clear"})


@dataclass(frozen=True)
class UiEvent:
    """`kind` names what happened (e.g. ``card_read``, ``qr_scanned``, ``status``, ``clear``)."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


class UiEventQueue:
    """Thread-safe FIFO from any thread to the UI thread; never blocks the poster."""

    def __init__(self, maxsize: int = 1000) -> None:
        self.maxsize = maxsize
        self._q: collections.deque[UiEvent] = collections.deque()
        self._lock = threading.Lock()
        self._ui_thread: int | None = None
        self._waker: Callable[[], Any] | None = None
        self.dropped = 0  # events dropped because the UI did not drain (a stuck UI thread)

    def post(self, kind: str, **data: Any) -> bool:
        """Queue an event; False (and a log line) when the queue was full and it was dropped."""
        ev = UiEvent(kind, dict(data))
        with self._lock:
            queued = len(self._q) < self.maxsize or kind in NEVER_DROPPED
            if queued:
                self._q.append(ev)
            else:
                self.dropped += 1
                dropped = self.dropped
        if queued:
            self._wake()
            return True
        # a stuck UI must not block a device thread; say so, without flooding the log
        if dropped == 1 or dropped % 100 == 0:
            log.warning("UI event queue full (%d pending): dropped %s event (%d dropped so far)",
                        self.maxsize, kind, dropped)
        return False

    def set_waker(self, waker: Callable[[], Any] | None) -> None:
        """Called (from the posting thread) after each queued event; it must be thread-safe and quick."""
        self._waker = waker

    def _wake(self) -> None:
        waker = self._waker
        if waker is None:
            return
        try:
            waker()
        except Exception:  # the event is queued: the UI's regular poll still delivers it
            log.exception("waking the UI thread failed")

    def drain(self, handler: Callable[[UiEvent], None], limit: int = 100) -> int:
        """Deliver up to `limit` pending events to `handler` on the calling (UI) thread."""
        self._ui_thread = threading.get_ident()
        n = 0
        while n < limit:
            with self._lock:
                if not self._q:
                    break
                ev = self._q.popleft()
            handler(ev)
            n += 1
        return n

    def clear(self) -> None:
        """Drop pending events (a wiped session must not receive a late card read)."""
        with self._lock:
            self._q.clear()

    def pending(self) -> int:
        with self._lock:
            return len(self._q)
