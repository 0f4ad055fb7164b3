"""Simulated ID-card reader: the real GA 467 codec and reader logic against an in-process SAM emulator.

What `kiosk run --simulate` and the demo use. ``insert_card`` / ``remove_card``
stand in for a citizen's hand; every byte still goes through frame encoding,
the emulator and the decoder.
"""
from __future__ import annotations

from typing import Any

from devices.base import DeviceLost
from devices.idcard.ga467 import FrameDecoder, GA467Frame
from devices.idcard.ga467_serial import SamTimeout
from devices.idcard.known_answer import sample_card
from devices.idcard.reader import GA467Reader
from kiosk.domain.identity_card import IdentityCard
from standins.sam_emulator import SamEmulator

__all__ = ["SimulatedIdCardReader"]


class SimulatedIdCardReader(GA467Reader):
    driver = "simulated"
    default_poll_interval_s = 0.2

    def __init__(self, settings: Any = None):
        super().__init__(settings)
        self.emulator = SamEmulator()
        self.plugged_in = True
        if self.param("card_present", False):
            self.emulator.put_card(sample_card())

    def insert_card(self, card: IdentityCard | None = None) -> None:
        self.emulator.put_card(card or sample_card())

    def remove_card(self) -> None:
        self.emulator.remove_card()

    def _open_transport(self) -> None:
        if not self.plugged_in:
            raise DeviceLost(detail="simulated unplug")

    def _exchange(self, request: GA467Frame, timeout: float) -> GA467Frame:
        if not self.plugged_in:
            raise DeviceLost(detail="simulated unplug")
        frames = FrameDecoder().feed(self.emulator.handle(request.encode()))
        if not frames:
            raise SamTimeout()
        return frames[0]
