"""What every QR scanner driver shares: reporting a code once, classified, with statistics."""
from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

from devices.base import DeviceAdapter, DeviceEvent, EventKind, HealthLevel, HealthResult, PromptCallback
from kiosk.domain.qr_payload import PayloadRefused, QrClassifier

__all__ = ["Deduper", "QrScannerBase"]


class Deduper:
    """The same code is reported once while it keeps being seen within `window_s` of its last sighting.

    After `rearm()` a code still in view counts once more, `window_s` later: a citizen told that a
    look-up failed gets another try while still holding the receipt, without a burst of retries.
    """

    def __init__(self, window_s: float = 2.0):
        self.window_s = float(window_s)
        self._last: dict[str, float] = {}
        self._again_at: dict[str, float] = {}  # re-armed codes: reported again when seen from this time on
        self._lock = threading.Lock()

    def is_new(self, text: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            for k in [k for k, t in self._last.items() if now - t > self.window_s]:
                del self._last[k]
                self._again_at.pop(k, None)
            again = self._again_at.get(text)
            if again is not None:
                if now < again:
                    self._last[text] = now
                    return False
                del self._again_at[text]
                self._last[text] = now
                return True
            new = text not in self._last
            self._last[text] = now
            return new

    def rearm(self, now: float | None = None) -> None:
        """Every code seen so far is reported again when seen `window_s` from now, even if never out of view."""
        now = time.monotonic() if now is None else now
        with self._lock:
            for k in self._last:
                self._again_at[k] = now + self.window_s


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

    def rearm(self) -> None:
        """A code in view now is reported once more after the dedupe window (e.g. after a failed look-up)."""
        self.deduper.rearm()

    def _health_interactive(self, timeout: float, prompt: PromptCallback | None) -> HealthResult:
        """Ask the technician to scan any code; pass when one arrives within `timeout`."""
        got: list[DeviceEvent] = []
        seen = threading.Event()

        def on_event(ev: DeviceEvent) -> None:
            if ev.kind == EventKind.CODE_SCANNED:
                got.append(ev)
                seen.set()

        self.deduper = Deduper(self.deduper.window_s)  # a code scanned just before must count again
        self.add_listener(on_event)
        try:
            if prompt:
                prompt("请扫描任意二维码")
            end = time.monotonic() + timeout
            polling = self._poll_thread is not None and self._poll_thread.is_alive()
            while not seen.is_set() and time.monotonic() < end:
                if polling:
                    seen.wait(0.05)
                else:
                    self._poll_once()
                    self.flush_events(1.0)
        finally:
            self.remove_listener(on_event)
        if not got:
            return HealthResult(False, HealthLevel.INTERACTIVE, "未收到扫码结果，请检查扫码器", {})
        p = got[0].payload
        return HealthResult(True, HealthLevel.INTERACTIVE, "扫码成功",
                            {"format": p.get("format"), "kind": p.get("kind"), "length": len(p.get("text") or "")})
