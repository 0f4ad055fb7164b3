"""A document camera stand-in: synthetic pages (standins.camera_scenes) or image files behind the camera contract."""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from devices.base import DeviceError, DeviceLost
from devices.camera.capture import DocumentCamera
from standins.camera_scenes import make_face_frame, make_frame

__all__ = ["SimulatedCamera"]


class SimulatedCamera(DocumentCamera):
    """Synthetic document frames (standins.camera_scenes) or image files, behind the camera contract.

    Settings: ``width``/``height`` (default 1632x1224), ``variant`` (good, blurred, glare...),
    ``images`` (a list of image files to cycle through instead), ``face`` (who stands in front
    during a face capture: ``one`` by default, ``none`` or ``two``).
    """

    FACE_SCENES = {"one": [(0.5, 0.45, 0.3)], "none": [], "two": [(0.3, 0.45, 0.22), (0.7, 0.45, 0.22)]}

    driver = "simulated"

    def __init__(self, settings: Any = None):
        s = dict(settings.model_dump() if hasattr(settings, "model_dump") else (settings or {}))
        if hasattr(settings, "model_extra"):
            s.update(settings.model_extra or {})
        s.setdefault("width", 1632)
        s.setdefault("height", 1224)
        super().__init__(s)
        self.variant = str(self.param("variant", "good"))
        self.images = [str(p) for p in (self.param("images", []) or [])]
        self._n = 0
        self._cache: dict[tuple[str, int], np.ndarray] = {}
        self.present = True  # tests unplug it
        self.face_scene = str(self.param("face", "one"))
        if self.face_scene not in self.FACE_SCENES:
            raise DeviceError("bad_settings", f"模拟摄像头的 face 设置只能是 {', '.join(self.FACE_SCENES)}")
        self._face_capture = False

    def capture_face(self) -> Any:
        """The face check runs on a synthetic person in front of the camera (unless image files are set)."""
        self._face_capture = not self.images
        try:
            return super().capture_face()
        finally:
            self._face_capture = False

    def _open_transport(self) -> None:
        if not self.present:
            raise DeviceLost("camera_missing", "未检测到高拍仪，正在重新连接")

    def _grab(self) -> np.ndarray:
        if not self.present:
            raise DeviceLost("camera_missing", "未检测到高拍仪，正在重新连接")
        self._n += 1
        if self._face_capture:
            key = ("face:" + self.face_scene, 0)
            if key not in self._cache:
                self._cache[key] = make_face_frame(self.FACE_SCENES[self.face_scene], size=(self.width, self.height))
            return self._cache[key].copy()
        if self.images:
            img = cv2.imread(self.images[(self._n - 1) % len(self.images)], cv2.IMREAD_COLOR)
            if img is None:
                raise DeviceError("bad_image", "模拟图片无法读取")
            return img
        key = (self.variant, self._n % 4)  # four frames per variant: a fluid preview
        if key not in self._cache:  # all four at the variant's first use, so the stand-in's memory stops growing
            for seed in range(4):  # there (a soak's warm-up), not one 8 MP frame at a time over the rare variants
                self._cache[(self.variant, seed)] = make_frame(self.variant, size=(self.width, self.height),
                                                               seed=seed).image
        return self._cache[key].copy()
