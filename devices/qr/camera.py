"""QR scanner on a camera: OpenCV VideoCapture (device index, file or stream URI) + QrImageDecoder.

Settings: ``source`` (int index, path or URI; default 0), ``decoder`` (zxing|pyzbar),
``max_side`` (downscale target, 0 = off), ``dedupe_window_s``, ``loop`` (replay a file).
A camera that stops delivering frames is reported lost and reopened with backoff.
"""
from __future__ import annotations

import time
from typing import Any

import cv2
import numpy as np

from devices.base import DeviceLost, HealthLevel, HealthResult, PromptCallback
from devices.qr.common import QrScannerBase
from devices.qr.decoders import QrImageDecoder

__all__ = ["CameraQrScanner"]


def _source(v: Any) -> int | str:
    if isinstance(v, int):
        return v
    s = str(v)
    return int(s) if s.isdigit() else s


class CameraQrScanner(QrScannerBase):
    driver = "camera"
    default_poll_interval_s = 0.0  # frame rate is set by the capture itself

    def __init__(self, settings: Any = None):
        super().__init__(settings)
        self.source = _source(self.param("source", 0))
        self.decoder = QrImageDecoder(str(self.param("decoder", "zxing")), int(self.param("max_side", 960)))
        self._cap: cv2.VideoCapture | None = None
        self.frames = 0
        self.eof = False

    @property
    def is_file(self) -> bool:
        return isinstance(self.source, str) and "://" not in self.source

    def _open_transport(self) -> None:
        cap = cv2.VideoCapture(self.source)
        if not cap.isOpened():
            cap.release()
            raise DeviceLost("camera_missing", "摄像头未连接，正在重试", detail=f"source {self.source!r}")
        self._cap = cap
        self.eof = False

    def _close_transport(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()

    def grab(self) -> np.ndarray | None:
        """One frame, or None at the end of a file; DeviceLost when a live source stops."""
        cap = self._cap
        if cap is None:
            raise DeviceLost("camera_missing", "摄像头未连接，正在重试")
        ok, frame = cap.read()
        if ok:
            self.frames += 1
            return frame
        if self.is_file:
            if self.param("loop", False):
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            else:
                self.eof = True
            return None
        raise DeviceLost("camera_lost", "摄像头画面中断，正在重新连接")

    def _poll_once(self) -> None:
        if self.eof:
            self._stop.wait(0.1)
            return
        frame = self.grab()
        if frame is None:
            return
        for d in self.decoder.decode(frame):
            self._report(d.text, d.format, d.ms, frame=self.frames)

    def scan_until(self, max_frames: int = 1000) -> list[dict[str, Any]]:
        """Synchronous scan of up to `max_frames` (CLI, tests): every code reported."""
        found = []
        for _ in range(max_frames):
            frame = self.grab()
            if frame is None:
                break
            for d in self.decoder.decode(frame):
                if self._report(d.text, d.format, d.ms, frame=self.frames):
                    found.append({**d.as_dict(), "frame": self.frames})
        return found

    def _health_external(self) -> HealthResult:
        frame = self.grab()
        ok = frame is not None
        details: dict[str, Any] = {"source": str(self.source), "frames": self.frames}
        if frame is not None:
            details["shape"] = list(frame.shape)
        return HealthResult(ok, HealthLevel.EXTERNAL, "摄像头画面正常" if ok else "摄像头没有画面", details)

    def _health_interactive(self, timeout: float, prompt: PromptCallback | None) -> HealthResult:
        if prompt:
            prompt("请把任意二维码对准摄像头")
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            frame = self.grab()
            if frame is None:
                break
            found = self.decoder.decode(frame)
            if found:
                return HealthResult(True, HealthLevel.INTERACTIVE, "扫码成功",
                                    {"format": found[0].format, "ms": round(found[0].ms, 1)})
        return HealthResult(False, HealthLevel.INTERACTIVE, "未识别到二维码", {})
