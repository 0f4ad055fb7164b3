"""The document camera (高拍仪) behind the device contract: preview stream, full-resolution stills, scans.

The camera runs at its still resolution (e.g. 3264x2448); the UI preview is a
reduced copy (``preview_width``, INTER_AREA) so the screen stays fluid, and a
still is the full frame handed to the pipeline. ``OpenCvCamera`` reads any
cv2.VideoCapture source (a V4L2 index or device path, a video file or stream
URL); the simulated camera (standins.camera) sits behind the same contract.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from devices.base import DeviceAdapter, DeviceError, DeviceLost, DeviceState, HealthLevel, HealthResult, PromptCallback
from devices.camera.face import FaceSettings, check_face
from devices.camera.pipeline import PipelineSettings, process

log = logging.getLogger(__name__)

__all__ = ["DocumentCamera", "OpenCvCamera"]


class DocumentCamera(DeviceAdapter):
    """Common camera behaviour; drivers implement ``_grab()`` (one full-resolution BGR frame)."""

    kind: ClassVar[str] = "camera"
    driver = "camera"
    default_poll_interval_s: ClassVar[float] = 0.1

    def __init__(self, settings: Any = None):
        super().__init__(settings)
        self.width = int(self.param("width", 3264))
        self.height = int(self.param("height", 2448))
        self.preview_width = int(self.param("preview_width", 640))
        self._latest_preview: np.ndarray | None = None
        self._preview_lock = threading.Lock()
        self.frames = 0

    # -- drivers ------------------------------------------------------------------
    def _grab(self) -> np.ndarray:
        raise NotImplementedError

    # -- frames --------------------------------------------------------------------
    def read_frame(self) -> np.ndarray:
        """One full-resolution frame; DeviceLost (and offline + reconnect) when the camera is gone."""
        with self._lock:
            if not self.is_open:
                raise DeviceError("closed", "摄像头未打开")
            if self.status.state == DeviceState.OFFLINE:
                raise DeviceLost()
            try:
                frame = self._grab()
            except DeviceLost as e:
                self._lost(e)
                raise
            except OSError as e:
                err = DeviceLost(detail=type(e).__name__)
                self._lost(err)
                raise err from None
            self.frames += 1
            return frame

    def to_preview(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        if w <= self.preview_width:
            return frame
        ph = max(1, int(round(h * self.preview_width / w)))
        return cv2.resize(frame, (self.preview_width, ph), interpolation=cv2.INTER_AREA)

    def preview_frame(self) -> np.ndarray:
        """A fresh frame at preview size (for the UI's live view)."""
        p = self.to_preview(self.read_frame())
        with self._preview_lock:
            self._latest_preview = p
        return p

    @property
    def latest_preview(self) -> np.ndarray | None:
        """The last preview the background poll produced (``start_polling``)."""
        with self._preview_lock:
            return self._latest_preview

    def _poll_once(self) -> None:
        self.preview_frame()

    def capture_still(self) -> np.ndarray:
        """A full-resolution still (stale buffered frames are dropped first)."""
        with self._lock:
            for _ in range(int(self.param("flush_frames", 0))):
                self.read_frame()
            return self.read_frame()

    # -- document and face -----------------------------------------------------------
    def scan(self, settings: Any = None) -> Any:
        """Capture a still and run the document pipeline; returns a pipeline.ScanResult."""
        ps = settings if isinstance(settings, PipelineSettings) else PipelineSettings.from_settings(
            {**self.settings, **(settings or {})})
        frame = self.capture_still()
        res = process(frame, ps)
        if res.ok:
            self._stats.success(scan_ms=res.ms)
        else:
            self._stats.failure(res.problems[0].code, scan_ms=res.ms)
        return res

    def capture_face(self) -> Any:
        """Capture a still and check it for exactly one frontal, centred, sharp face (face.FaceResult)."""
        res = check_face(self.capture_still(), FaceSettings.from_settings(self.settings))
        if res.ok:
            self._stats.success(face_ms=res.ms)
        else:
            self._stats.failure(res.problems[0].code, face_ms=res.ms)
        return res

    # -- health -------------------------------------------------------------------------
    def _health_external(self) -> HealthResult:
        try:
            frame = self.read_frame()
        except DeviceError as e:
            return HealthResult(False, HealthLevel.EXTERNAL, e.message, {"code": e.code})
        h, w = frame.shape[:2]
        mean = float(frame.mean())
        ok = mean > 5
        return HealthResult(ok, HealthLevel.EXTERNAL, "摄像头画面正常" if ok else "摄像头画面全黑，请检查镜头和补光灯",
                            {"resolution": [w, h], "mean": round(mean, 1), "driver": self.driver})

    def _health_interactive(self, timeout: float, prompt: PromptCallback | None) -> HealthResult:
        if prompt:
            prompt("请在拍摄区平放一页文字材料")
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            try:
                last = self.scan()
            except DeviceError as e:
                return HealthResult(False, HealthLevel.INTERACTIVE, e.message, {"code": e.code})
            if last.ok:
                return HealthResult(True, HealthLevel.INTERACTIVE, "拍摄检测通过", last.summary())
            time.sleep(0.5)
        msg = last.problems[0].message if last and last.problems else "检测超时"
        return HealthResult(False, HealthLevel.INTERACTIVE, msg, last.summary() if last else {})


def _source(value: Any) -> int | str:
    if isinstance(value, int):
        return value
    s = str(value)
    return int(s) if s.isdigit() else s


class OpenCvCamera(DocumentCamera):
    """cv2.VideoCapture: UVC cameras (V4L2), video files, streams."""

    driver = "opencv"

    def __init__(self, settings: Any = None):
        super().__init__(settings)
        self.source = _source(self.param("device", 0))
        self.loop = bool(self.param("loop", False))  # rewind files at their end (demo, tests)
        self._cap: Any = None

    def _open_transport(self) -> None:
        api = {"any": cv2.CAP_ANY, "v4l2": cv2.CAP_V4L2, "ffmpeg": cv2.CAP_FFMPEG}[str(self.param("backend", "any"))]
        if isinstance(self.source, str) and "://" not in self.source and not Path(self.source).exists():
            raise DeviceLost("camera_missing", "未检测到高拍仪，正在重新连接", detail="source not found")
        cap = cv2.VideoCapture(self.source, api)
        if not cap.isOpened():
            cap.release()
            raise DeviceLost("camera_missing", "未检测到高拍仪，正在重新连接")
        if isinstance(self.source, int):
            fourcc = str(self.param("fourcc", "MJPG"))
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*fourcc[:4]))
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        ok, frame = cap.read()
        if not ok or frame is None:
            cap.release()
            raise DeviceLost("no_frame", "高拍仪没有画面，正在重新连接")
        self._cap = cap
        self.actual_size = (int(frame.shape[1]), int(frame.shape[0]))

    def _close_transport(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()

    def _grab(self) -> np.ndarray:
        if self._cap is None:
            raise DeviceLost()
        ok, frame = self._cap.read()
        if (not ok or frame is None) and self.loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
        if not ok or frame is None:
            raise DeviceLost("no_frame", "高拍仪没有画面，正在重新连接")
        return np.asarray(frame)
