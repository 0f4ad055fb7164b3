"""The technician's PIN gate: a hidden gesture opens it, a PIN from config passes it.

After `attempts` wrong PINs in a row the gate stays shut for `lockout_s`
seconds whatever is typed, so a passer-by cannot guess the PIN at night.
"""
from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Callable, Literal

PinResult = Literal["ok", "wrong", "locked", "disabled"]


@dataclass
class PinGate:
    pin: str
    attempts: int = 5
    lockout_s: float = 600.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    locked_until: float = 0.0

    def locked(self) -> bool:
        return self.clock() < self.locked_until

    def lockout_remaining(self) -> float:
        return max(0.0, self.locked_until - self.clock())

    def attempts_left(self) -> int:
        return max(0, self.attempts - self.failures)

    def check(self, entered: str) -> PinResult:
        if not self.pin:
            return "disabled"  # no PIN configured: technician mode is off
        if self.locked():
            return "locked"
        if hmac.compare_digest(entered.encode(), self.pin.encode()):
            self.failures = 0
            return "ok"
        self.failures += 1
        if self.failures >= self.attempts:
            self.failures = 0
            self.locked_until = self.clock() + self.lockout_s
            return "locked"
        return "wrong"
