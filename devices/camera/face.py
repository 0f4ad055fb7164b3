"""Face capture for ``certify`` items (pension qualification and similar): one frontal face,
centred, sharp, lit. Matching the face to the card is the platform's job; the kiosk only makes
sure the photo it sends is usable, and tells the citizen what to change when it is not.

Detection is OpenCV's own ``cv2.CascadeClassifier`` with the frontal-face Haar cascade
the opencv-python wheel ships under ``cv2.data.haarcascades`` (OpenCV 4.x: the 5.x
wheels carry neither, hence the ``<5`` pin).
"""
from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from cv2.data import haarcascades

from devices.base import DeviceError
from devices.camera.quality import Problem

__all__ = ["FACE_MESSAGES", "FaceSettings", "FaceResult", "FaceUnavailable", "check_face", "face_detector"]

FACE_MESSAGES: dict[str, str] = {
    "no_face": "没有检测到人脸，请正对摄像头，摘下帽子、口罩和墨镜",
    "multiple_faces": "画面中有多张人脸，请只让办事人本人对着摄像头",
    "not_centred": "请把脸移到画面中间的框内",
    "too_far": "离摄像头太远，请再靠近一些",
    "blurred": "画面模糊，请保持不动，稍等后重新拍摄",
    "too_dark": "脸部太暗，请打开补光灯或面向光源",
}


def _problem(code: str) -> Problem:
    return Problem(code, FACE_MESSAGES[code])


class FaceUnavailable(DeviceError):
    code = "face_model_missing"
    message = "人脸检测组件缺失，请联系技术人员重新安装 OpenCV（opencv-python-headless 4.x）"


@dataclass(frozen=True)
class FaceSettings:
    work_width: int = 320  # detection runs on a copy this wide (kiosk faces are large)
    min_face_frac: float = 0.22  # face height / frame height
    max_offset_frac: float = 0.15  # face centre from frame centre, share of the frame size
    blur_min: float = 45.0  # Laplacian variance of the face at 160 px
    dark_min_mean: float = 60.0
    min_neighbors: int = 4
    scale_factor: float = 1.15
    crop_margin: float = 0.35
    cascade: str = "haarcascade_frontalface_default.xml"

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> FaceSettings:
        s = dict(settings or {})
        kw: dict[str, Any] = {}
        for f in ("work_width", "min_neighbors"):
            if s.get(f"face_{f}") is not None:
                kw[f] = int(s[f"face_{f}"])
        for f in ("min_face_frac", "max_offset_frac", "blur_min", "dark_min_mean", "scale_factor", "crop_margin"):
            if s.get(f"face_{f}") is not None:
                kw[f] = float(s[f"face_{f}"])
        if s.get("face_cascade"):
            kw["cascade"] = str(s["face_cascade"])
        return cls(**kw)


@dataclass
class FaceResult:
    ok: bool
    problems: list[Problem]
    box: tuple[int, int, int, int] | None = None  # x, y, w, h in frame pixels
    faces: int = 0
    crop: np.ndarray | None = None
    crop_jpeg: bytes | None = None
    sharpness: float | None = None
    ms: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": [p.as_dict() for p in self.problems],
                "box": list(self.box) if self.box else None, "faces": self.faces,
                "sharpness": None if self.sharpness is None else round(self.sharpness, 1), "ms": round(self.ms, 1)}


def cascade_path(cascade: str = "haarcascade_frontalface_default.xml") -> Path:
    """A cascade file: a path as given, a bare name from the wheel's ``cv2.data.haarcascades``."""
    return Path(cascade) if "/" in cascade else Path(haarcascades) / cascade


Detector = Callable[[np.ndarray, float, int, tuple[int, int]], np.ndarray]


@functools.lru_cache(maxsize=4)
def face_detector(cascade: str = "haarcascade_frontalface_default.xml") -> Detector:
    """A detectMultiScale callable (x, y, w, h rows); FaceUnavailable when the cascade is not there."""
    path = cascade_path(cascade)
    if not path.is_file():
        raise FaceUnavailable(detail=cascade)
    clf = cv2.CascadeClassifier(str(path))
    if clf.empty():
        raise FaceUnavailable(detail="cascade did not load")

    def detect(gray: np.ndarray, scale_factor: float, min_neighbors: int, min_size: tuple[int, int]) -> np.ndarray:
        r = clf.detectMultiScale(gray, scaleFactor=scale_factor, minNeighbors=min_neighbors, minSize=min_size)
        return np.asarray(r, np.int32).reshape(-1, 4)
    return detect


def check_face(frame: np.ndarray, settings: FaceSettings | None = None) -> FaceResult:
    """Exactly one frontal face, centred, big enough, sharp and lit; problems say what to change."""
    s = settings or FaceSettings()
    t0 = time.perf_counter()
    detect = face_detector(s.cascade)
    h, w = frame.shape[:2]

    def find(work_width: int, min_frac: float, scale_factor: float) -> tuple[np.ndarray, float]:
        scale = min(1.0, work_width / w)
        small = (cv2.resize(frame, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
                 if scale < 1 else frame)
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        gray = cv2.equalizeHist(gray)
        min_side = max(24, int(gray.shape[0] * min_frac))
        return detect(gray, scale_factor, s.min_neighbors, (min_side, min_side)), scale

    # faces smaller than half the required size are ignored (people in the background)
    rects, scale = find(s.work_width, s.min_face_frac * 0.5, s.scale_factor)
    if len(rects) == 0 and s.work_width < w:
        # nobody at the usual distance: look again, finer, for someone standing too far away
        rects, scale = find(min(w, s.work_width * 2), s.min_face_frac * 0.25, min(s.scale_factor, 1.05))
    ms_detect = (time.perf_counter() - t0) * 1000
    faces = len(rects)
    if faces == 0:
        return FaceResult(False, [_problem("no_face")], ms=ms_detect)
    if faces > 1:
        return FaceResult(False, [_problem("multiple_faces")], faces=faces, ms=ms_detect)
    x, y, fw, fh = (np.asarray(rects[0], np.float64) / scale).round().astype(int)
    box = (int(x), int(y), int(fw), int(fh))
    problems: list[Problem] = []
    if fh < s.min_face_frac * h:
        problems.append(_problem("too_far"))
    cx, cy = x + fw / 2, y + fh / 2
    if abs(cx - w / 2) > s.max_offset_frac * w or abs(cy - h / 2) > s.max_offset_frac * h * 1.5:
        problems.append(_problem("not_centred"))
    face_gray = cv2.cvtColor(frame[max(0, y):y + fh, max(0, x):x + fw], cv2.COLOR_BGR2GRAY) \
        if frame.ndim == 3 else frame[max(0, y):y + fh, max(0, x):x + fw]
    face_std = cv2.resize(face_gray, (160, 160), interpolation=cv2.INTER_AREA)
    sharp = float(cv2.Laplacian(face_std, cv2.CV_32F).var())
    if float(face_std.mean()) < s.dark_min_mean:
        problems.append(_problem("too_dark"))
    elif sharp < s.blur_min:
        problems.append(_problem("blurred"))
    m = s.crop_margin
    x0, y0 = max(0, int(x - m * fw)), max(0, int(y - m * fh))
    x1, y1 = min(w, int(x + fw * (1 + m))), min(h, int(y + fh * (1 + m)))
    crop = frame[y0:y1, x0:x1].copy()
    ok_enc, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
    ms = (time.perf_counter() - t0) * 1000
    return FaceResult(not problems, problems, box, 1, crop, buf.tobytes() if ok_enc else None, sharp, ms,
                      {"detect": round(ms_detect, 2)})
