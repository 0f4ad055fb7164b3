"""What every QR scanner driver shares: reporting a code once, classified, with statistics."""
from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

from devices.base import DeviceAdapter, EventKind
from kiosk.qr_payload import PayloadRefused, QrClassifier

__all__ = ["Deduper", "QrScannerBase"]


class Deduper:
    """The same code is reported once while it keeps being seen within `window_s` of its last sighting."""

    def __init__(self, window_s: float = 2.0):
        self.window_s = float(window_s)
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def is_new(self, text: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            for k in [k for k, t in self._last.items() if now - t > self.window_s]:
                del self._last[k]
            new = text not in self._last
            self._last[text] = now
            return new


class QrScannerBase(DeviceAdapter):
    kind: ClassVar[str] = "qr"

    def __init__(self, settings: Any = None):
        super().__init__(settings)
        self.deduper = Deduper(float(self.param("dedupe_window_s", 2.0)))
        self.classifier = QrClassifier.from_settings(self.settings)

    def _report(self, text: str, fmt: str = "QR_CODE", ms: float | None = None, **extra: Any) -> bool:
        """Emit ``code_scanned`` (once per window) with the core's classification; True if emitted."""
        if not self.deduper.is_new(text):
            return False
        try:
            payload = self.classifier.classify(text)
            cls: dict[str, Any] = {"kind": payload.kind.value, "value": payload.value, "refused": None}
        except PayloadRefused as e:
            cls = {"kind": None, "value": None, "refused": {"reason": e.reason, "message": e.message}}
        metrics = {"decode_ms": ms} if ms is not None else {}
        if cls["refused"]:
            self._stats.failure(cls["refused"]["reason"], **metrics)
        else:
            self._stats.success(**metrics)
        self._emit(EventKind.CODE_SCANNED, text=text, format=fmt, ms=ms, **cls, **extra)
        return True
