"""The technician PIN gate: a salted hash from the site file, and a lockout that survives a restart.

The site file holds ``[ui] technician_pin_hash`` (``kiosk-admin pin-hash``,
checked by ``kiosk.infra.pin_hash.verify_pin``); the development profile may
still give a plain ``technician_pin`` (the production check refuses it).

After ``attempts`` wrong PINs in a row the gate stays shut for ``lockout_s``
seconds whatever is typed, so a passer-by cannot guess the PIN at night. The
count and the lockout's end are kept in a small JSON file in the kiosk's state
directory, written atomically, so a power cycle does not reset them. Each
attempt is counted on disk *before* the PIN is checked: cutting the power
while the hash is computed does not give a free guess.

Times on disk are wall-clock; in memory the gate runs on its ``clock``
(monotonic in the app). A lockout read back from disk never lasts longer than
``lockout_s`` from the moment it is read, whatever the wall clock did meanwhile.
"""
from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kiosk.config import UISection
from kiosk.infra.atomic_file import atomic_write_json
from kiosk.infra.pin_hash import verify_pin

log = logging.getLogger(__name__)

__all__ = ["PinGate", "PinResult", "STATE_FILE"]

PinResult = Literal["ok", "wrong", "locked", "disabled"]

#: The gate's file in the kiosk's state directory.
STATE_FILE = "technician-pin.json"


@dataclass
class PinGate:
    pin: str = ""  # plain PIN: development profile only
    attempts: int = 5
    lockout_s: float = 600.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    locked_until: float = 0.0
    pin_hash: str = ""  # `kiosk-admin pin-hash` output; wins over `pin` when both are set
    state_path: Path | None = None  # where the count and the lockout survive a restart (None: memory only)
    wall_clock: Callable[[], float] = field(default=time.time, repr=False)

    def __post_init__(self) -> None:
        if self.state_path is not None:
            self._load()

    @classmethod
    def from_config(cls, ui: UISection, state_dir: Path | str | None,
                    clock: Callable[[], float] = time.monotonic,
                    wall_clock: Callable[[], float] = time.time) -> PinGate:
        """The gate of ``[ui]`` (technician_pin_hash / technician_pin, lockout), persisted in `state_dir`."""
        return cls(pin=ui.technician_pin, pin_hash=ui.technician_pin_hash,
                   attempts=int(ui.technician_lockout_attempts), lockout_s=float(ui.technician_lockout_s),
                   clock=clock, wall_clock=wall_clock,
                   state_path=Path(state_dir) / STATE_FILE if state_dir is not None else None)

    @property
    def enabled(self) -> bool:
        return bool(self.pin_hash or self.pin)

    def locked(self) -> bool:
        return self.clock() < self.locked_until

    def lockout_remaining(self) -> float:
        return max(0.0, self.locked_until - self.clock())

    def attempts_left(self) -> int:
        return max(0, self.attempts - self.failures)

    def check(self, entered: str) -> PinResult:
        if not self.enabled:
            return "disabled"  # no PIN configured: technician mode is off
        if self.locked():
            return "locked"
        # Count the attempt on disk first; a correct PIN takes it back.
        self.failures += 1
        self._save()
        if self._matches(entered):
            self.failures = 0
            self._save()
            return "ok"
        if self.failures >= self.attempts:
            self.failures = 0
            self.locked_until = self.clock() + self.lockout_s
            self._save()
            return "locked"
        return "wrong"

    def _matches(self, entered: str) -> bool:
        if self.pin_hash:
            return verify_pin(entered, self.pin_hash)
        return hmac.compare_digest(entered.encode("utf-8"), self.pin.encode("utf-8"))

    # ------------------------------------------------------------------ persistence
    def _load(self) -> None:
        path = self.state_path
        assert path is not None
        try:
            raw = path.read_text("utf-8")
        except FileNotFoundError:
            return
        except OSError:
            log.exception("technician PIN state unreadable; locking the gate for one lockout period")
            self.locked_until = self.clock() + self.lockout_s
            return
        try:
            doc = json.loads(raw)
            failures = int(doc["failures"])
            locked_until_wall = float(doc["locked_until_wall"])
        except (ValueError, KeyError, TypeError):
            # Written atomically, so this is tampering or a broken disk: fail closed.
            log.warning("technician PIN state malformed; locking the gate for one lockout period")
            self.locked_until = self.clock() + self.lockout_s
            return
        remaining = min(self.lockout_s, max(0.0, locked_until_wall - self.wall_clock()))
        self.locked_until = self.clock() + remaining if remaining > 0 else 0.0
        self.failures = max(0, failures)
        if self.failures >= self.attempts:  # the power went while the last allowed attempt was checked
            self.failures = 0
            self.locked_until = self.clock() + self.lockout_s
            self._save()

    def _save(self) -> None:
        path = self.state_path
        if path is None:
            return
        remaining = self.lockout_remaining()
        doc = {"failures": self.failures,
               "locked_until_wall": self.wall_clock() + remaining if remaining > 0 else 0.0}
        try:
            atomic_write_json(path, doc)
        except OSError:
            # The gate still works in memory; the technician report shows the log line.
            log.exception("technician PIN state could not be saved")
