"""The devices as the application sees them: one Protocol per kind, over a common adapter surface.

The concrete drivers (devices.*, standins.*) implement these structurally; the
application holds only these types, so it never imports a driver and can be
driven in tests by anything with the same surface.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from kiosk.domain.identity_card import IdentityCard

__all__ = [
    "StateLike", "DeviceStatusLike", "HealthResultLike", "DeviceEventLike", "DeviceListener", "DevicePort",
    "IdCardReaderPort", "SocialSecurityReaderPort", "QrScannerPort", "ProblemLike", "ScanResultLike",
    "FaceResultLike", "DocumentCameraPort", "ReceiptPrinterPort", "DeviceFactory",
]


class StateLike(Protocol):
    """An enum member whose value is the state's name (ready/busy/offline/error)."""

    @property
    def value(self) -> str: ...


class DeviceStatusLike(Protocol):
    @property
    def state(self) -> StateLike: ...

    @property
    def code(self) -> str: ...

    @property
    def message(self) -> str: ...

    def as_dict(self) -> dict[str, str]: ...


class HealthResultLike(Protocol):
    @property
    def ok(self) -> bool: ...

    @property
    def level(self) -> StateLike: ...

    @property
    def message(self) -> str: ...

    def as_dict(self) -> dict[str, Any]: ...


class DeviceEventLike(Protocol):
    """``kind`` is an enum member (card_inserted, code_scanned, status_changed, ...)."""

    @property
    def kind(self) -> StateLike: ...

    @property
    def device_kind(self) -> str: ...

    @property
    def payload(self) -> dict[str, Any]: ...


DeviceListener = Callable[[Any], None]  # receives a DeviceEventLike (Any: listeners are contravariant)


class DevicePort(Protocol):
    """What every adapter has: open/close, status, health, statistics, event listeners."""

    @property
    def driver(self) -> str: ...

    @property
    def status(self) -> DeviceStatusLike: ...

    @property
    def last_health(self) -> HealthResultLike | None: ...

    @property
    def statistics(self) -> dict[str, Any]: ...

    def open(self) -> None: ...

    def close(self) -> None: ...

    def health(self, level: Any = ..., *, timeout: float = ..., prompt: Any = ...) -> HealthResultLike: ...

    def add_listener(self, cb: DeviceListener) -> None: ...

    def start_polling(self, interval_s: float | None = None) -> None: ...


class IdCardReaderPort(DevicePort, Protocol):
    """ID-card reader: the card lying on it right now (None when none, or a refused one)."""

    current_card: IdentityCard | None


class SocialSecurityReaderPort(DevicePort, Protocol):
    """Social security card reader (PC/SC): reports cards through events only."""


class QrScannerPort(DevicePort, Protocol):
    """QR scanner: reports scanned codes through ``code_scanned`` events only."""

    def rearm(self) -> None:
        """A code still in view counts once more (after the dedupe window): another try without lowering it."""
        ...


class ProblemLike(Protocol):
    @property
    def code(self) -> str: ...

    @property
    def message(self) -> str: ...


class ScanResultLike(Protocol):
    """A document scan: the cropped page as JPEG plus the processed image (an array)."""

    ok: bool
    problems: Sequence[ProblemLike]
    jpeg: bytes | None
    image: Any  # numpy array (gray or BGR) or None


class FaceResultLike(Protocol):
    ok: bool
    problems: Sequence[ProblemLike]
    crop: Any  # numpy array or None
    crop_jpeg: bytes | None


class DocumentCameraPort(DevicePort, Protocol):
    """Document camera (高拍仪): preview frames, document scans, face captures."""

    @property
    def latest_preview(self) -> Any: ...  # numpy BGR array or None

    def preview_frame(self) -> Any: ...

    def scan(self, settings: Any = None) -> ScanResultLike: ...

    def capture_face(self) -> FaceResultLike: ...


class ReceiptPrinterPort(DevicePort, Protocol):
    """Receipt printer (ESC/POS): composed blocks in, paper out."""

    paper_mm: int

    def print_blocks(self, blocks: Sequence[Any], title: str = "receipt") -> Any: ...

    def test_page(self) -> Any: ...


#: builds an unopened adapter for (kind, settings); the composition root supplies it
DeviceFactory = Callable[[str, Any], DevicePort]
