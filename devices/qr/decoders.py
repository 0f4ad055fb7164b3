"""Decoding QR codes in a frame: zxing-cpp and pyzbar behind one function, plus the speed strategy.

The default backend is zxing-cpp, picked by measurement (bench/qr_decode.py: it
decodes more of the noisy, rotated frames than zbar at a fraction of the time);
pyzbar (the design card's library) stays switchable. :class:`QrImageDecoder`
adds the strategy: decode a downscaled copy first (most codes held up to a
kiosk camera are large), then the region around the last hit, then the full
frame, so the common case is cheap and small codes are still found.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

__all__ = ["Decoded", "BACKENDS", "decode_zxing", "decode_pyzbar", "QrImageDecoder", "to_gray"]


@dataclass(frozen=True)
class Decoded:
    text: str
    format: str
    rect: tuple[int, int, int, int] | None = None  # x, y, w, h in the frame given
    ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "format": self.format, "ms": round(self.ms, 2)}


def to_gray(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return frame
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY if frame.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)


def decode_zxing(gray: np.ndarray) -> list[Decoded]:
    """QR codes in a grayscale frame through zxing-cpp (the default backend)."""
    import zxingcpp  # noqa: PLC0415 - only the configured backend is loaded (native library)

    out = []
    # one BarcodeFormat is accepted at runtime (zxing-cpp >= 2.2); the 3.x stubs only name BarcodeFormats
    for r in zxingcpp.read_barcodes(gray, formats=zxingcpp.BarcodeFormat.QRCode):  # type: ignore[arg-type]
        if not r.valid:
            continue
        p = r.position
        xs = [p.top_left.x, p.top_right.x, p.bottom_left.x, p.bottom_right.x]
        ys = [p.top_left.y, p.top_right.y, p.bottom_left.y, p.bottom_right.y]
        out.append(Decoded(r.text, "QR_CODE", (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))))
    return out


def decode_pyzbar(gray: np.ndarray) -> list[Decoded]:
    """QR codes in a grayscale frame through pyzbar (needs libzbar)."""
    from pyzbar import pyzbar  # noqa: PLC0415 - only the configured backend is loaded (loads libzbar)

    out = []
    for r in pyzbar.decode(gray, symbols=[pyzbar.ZBarSymbol.QRCODE]):
        try:
            text = r.data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        out.append(Decoded(text, "QR_CODE", (r.rect.left, r.rect.top, r.rect.width, r.rect.height)))
    return out


BACKENDS: dict[str, Callable[[np.ndarray], list[Decoded]]] = {"zxing": decode_zxing, "pyzbar": decode_pyzbar}


class QrImageDecoder:
    """Backend + downscale/ROI strategy. Not thread-safe (remembers the last hit)."""

    def __init__(self, backend: str = "zxing", max_side: int = 960, roi: bool = True, full_fallback: bool = True):
        if backend not in BACKENDS:
            raise ValueError(f"unknown QR backend {backend!r}; choose one of {sorted(BACKENDS)}")
        self.backend = backend
        self._decode = BACKENDS[backend]
        self.max_side = int(max_side)
        self.roi = roi
        self.full_fallback = full_fallback
        self._last_rect: tuple[int, int, int, int] | None = None

    def decode(self, frame: np.ndarray) -> list[Decoded]:
        """All QR codes found, with ``ms`` the time this frame took."""
        t0 = time.perf_counter()
        gray = to_gray(frame)
        h, w = gray.shape[:2]
        found: list[Decoded] = []
        scale = min(1.0, self.max_side / max(h, w)) if self.max_side > 0 else 1.0
        if scale < 1.0:
            small = cv2.resize(gray, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
            found = [_scaled(d, 1 / scale) for d in self._decode(small)]
        if not found and self.roi and self._last_rect is not None:
            x, y, rw, rh = self._last_rect
            pad = max(rw, rh)
            x0, y0 = max(0, x - pad), max(0, y - pad)
            x1, y1 = min(w, x + rw + pad), min(h, y + rh + pad)
            if (x1 - x0) * (y1 - y0) < 0.6 * w * h:
                found = [_offset(d, x0, y0) for d in self._decode(np.ascontiguousarray(gray[y0:y1, x0:x1]))]
        if not found and (scale == 1.0 or self.full_fallback):
            found = self._decode(gray)
        if found:
            self._last_rect = found[0].rect
        ms = (time.perf_counter() - t0) * 1000
        return [Decoded(d.text, d.format, d.rect, ms) for d in found]


def _scaled(d: Decoded, k: float) -> Decoded:
    if d.rect is None:
        return d
    x, y, w, h = d.rect
    return Decoded(d.text, d.format, (int(x * k), int(y * k), int(w * k), int(h * k)))


def _offset(d: Decoded, dx: int, dy: int) -> Decoded:
    if d.rect is None:
        return d
    x, y, w, h = d.rect
    return Decoded(d.text, d.format, (x + dx, y + dy, w, h))
