"""One rule for the agent's work queues: a full queue drops its oldest message to make room."""
from __future__ import annotations

import queue
from typing import TypeVar

T = TypeVar("T")

__all__ = ["put_dropping_oldest"]


def put_dropping_oldest(q: queue.Queue[T], item: T) -> int:
    """Put `item`; returns how many old messages were dropped for it (a flood never blocks the network thread)."""
    dropped = 0
    while True:
        try:
            q.put_nowait(item)
            return dropped
        except queue.Full:
            try:
                q.get_nowait()
            except queue.Empty:
                continue
            dropped += 1
