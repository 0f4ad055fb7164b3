"""The clock the application reads: seconds from an arbitrary origin (time.monotonic by default).

Tests and the demo pass a fake one to make idle timeouts and PIN lockouts happen at once.
"""
from __future__ import annotations

from collections.abc import Callable

__all__ = ["Clock"]

Clock = Callable[[], float]
