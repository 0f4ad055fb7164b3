"""A social security card reader stand-in: the real card logic against an in-process virtual card (no pcscd)."""
from __future__ import annotations

from typing import Any

from devices.base import DeviceError, EventKind, HealthLevel, HealthResult
from devices.idcard.pcsc import PcscCardReader
from devices.idcard.sscard import read_sscard
from standins.vpcd_card import SocialSecurityCardApp

__all__ = ["SimulatedSocialSecurityReader"]


class SimulatedSocialSecurityReader(PcscCardReader):
    """The same application logic against an in-process virtual card (no pcscd)."""

    kind = "sscard"
    driver = "simulated"

    def __init__(self, settings: Any = None):
        super().__init__(settings)
        self.card_app = SocialSecurityCardApp(psam_required=bool(self.param("psam_required", False)))
        self.reader_name = "Simulated PC/SC reader"

    def _open_transport(self) -> None:
        pass

    def _close_transport(self) -> None:
        pass

    def _poll_once(self) -> None:
        pass

    def _transmit(self, apdu: list[int]) -> tuple[list[int], int, int]:
        r = self.card_app.apdu(bytes(apdu))
        return list(r[:-2]), r[-2], r[-1]

    def insert_card(self) -> dict[str, Any]:
        self.card_app.reset()
        payload: dict[str, Any] = {"atr": self.card_app.atr.hex(" ").upper(), "reader": self.reader_name}
        try:
            payload["card"] = read_sscard(self._transmit)
            self._stats.success()
        except DeviceError as e:
            self._stats.failure(e.code)
            payload["error"] = {"code": e.code, "message": e.message}
        self._emit(EventKind.CARD_INSERTED, **payload)
        return payload

    def remove_card(self) -> None:
        self._emit(EventKind.CARD_REMOVED, reader=self.reader_name)

    def _health_external(self) -> HealthResult:
        return HealthResult(True, HealthLevel.EXTERNAL, "模拟读卡器正常", {})
