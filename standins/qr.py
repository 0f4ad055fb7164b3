"""Simulated QR scanner: ``scan(text)`` stands in for a citizen holding up a code."""
from __future__ import annotations

from devices.qr.common import QrScannerBase

__all__ = ["SimulatedQrScanner"]


class SimulatedQrScanner(QrScannerBase):
    driver = "simulated"

    def scan(self, text: str) -> bool:
        """Report `text` as if scanned (same dedupe and classification as real drivers)."""
        return self._report(text, "QR_CODE", 0.0)
