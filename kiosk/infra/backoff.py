"""One backoff for the whole kiosk: exponential delays with a cap, optionally with full jitter.

Devices reconnecting and the outbox drainer retrying a delivery both wait
``initial_s * factor ** (n - 1)`` seconds after the n-th failure, never more
than ``max_s``. The arithmetic is tenacity's own (``wait_exponential``, and
``wait_random_exponential`` for full jitter: uniform between 0 and that), called
the way tenacity calls it, through a real ``RetryCallState``.

Two ways to use it:

* stateless, for a caller that counts attempts itself (the drainer keeps the count
  in the outbox record): ``Backoff(1, 300, jitter=True).delay(attempts)``;
* stateful, for a reconnect loop: ``next_delay()`` (or iterate) after each failure,
  ``reset()`` after a success; ``attempt`` is how many delays were handed out.
"""
from __future__ import annotations

from collections.abc import Iterator

from tenacity import RetryCallState, Retrying, wait_exponential, wait_random_exponential

__all__ = ["Backoff"]


class Backoff:
    """Exponential backoff delays with a cap: ``initial_s, initial_s*factor, ... max_s``, forever.

    Deterministic by default (tests can reason about it); ``jitter=True`` draws
    each delay uniformly between 0 and the deterministic one (full jitter, so
    many kiosks coming back online do not retry in step).
    """

    def __init__(self, initial_s: float = 0.2, max_s: float = 10.0, factor: float = 2.0, *, jitter: bool = False):
        if initial_s <= 0 or max_s < initial_s or factor < 1:
            raise ValueError("backoff needs 0 < initial_s <= max_s and factor >= 1")
        self.initial_s, self.max_s, self.factor, self.jitter = initial_s, max_s, factor, jitter
        strategy = wait_random_exponential if jitter else wait_exponential
        self._wait = strategy(multiplier=initial_s, max=max_s, exp_base=factor)
        self._retrying = Retrying(wait=self._wait)
        self.attempt = 0

    def delay(self, attempt: int) -> float:
        """The delay after the ``attempt``-th failure (1-based; values below 1 count as 1)."""
        state = RetryCallState(self._retrying, None, (), {})
        state.attempt_number = max(1, int(attempt))
        return float(self._wait(state))

    def next_delay(self) -> float:
        """The next delay of a running sequence (the first is ``initial_s``, or up to it with jitter)."""
        self.attempt += 1
        return self.delay(self.attempt)

    def reset(self) -> None:
        """After a success: the next failure starts again from ``initial_s``."""
        self.attempt = 0

    def __iter__(self) -> Iterator[float]:
        while True:
            yield self.next_delay()

    def __repr__(self) -> str:
        return (f"Backoff(initial_s={self.initial_s}, max_s={self.max_s}, factor={self.factor}, "
                f"jitter={self.jitter}, attempt={self.attempt})")
