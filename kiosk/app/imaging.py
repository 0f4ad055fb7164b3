"""Camera results turned into what the services keep (JPEG bytes) and the screens show (RGB arrays).

OpenCV is imported on first use: the CLI and the tests of the other services never need it.
"""
from __future__ import annotations

from typing import Any

from kiosk.app.common import CaptureProblem
from kiosk.ports.devices import DocumentCameraPort


def bgr_to_rgb(img: Any, max_w: int = 800) -> Any:
    """An RGB copy no wider than `max_w` (the preview and captured pages as the UI draws them)."""
    if img is None:
        return None
    import cv2  # noqa: PLC0415 - OpenCV only when there is a picture to convert

    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    h, w = img.shape[:2]
    if w > max_w:
        img = cv2.resize(img, (max_w, max(1, int(h * max_w / w))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def camera_face(cam: DocumentCameraPort) -> bytes:
    """JPEG of the citizen's face; CaptureProblem with the quality message."""
    res = cam.capture_face()
    if not res.ok:
        raise CaptureProblem(res.problems[0].message if res.problems else "没有拍清楚，请正对摄像头再拍一次")
    if res.crop_jpeg:
        return bytes(res.crop_jpeg)
    import cv2  # noqa: PLC0415 - OpenCV only when a driver hands back a raw crop

    _ok, buf = cv2.imencode(".jpg", res.crop)
    return bytes(buf.tobytes())


def camera_document(cam: DocumentCameraPort) -> tuple[bytes, Any]:
    """(JPEG of the cropped page, RGB preview of it); CaptureProblem with the quality message."""
    res = cam.scan()
    if not res.ok or not res.jpeg:
        raise CaptureProblem(res.problems[0].message if res.problems else "没有拍清楚，请重拍")
    return res.jpeg, bgr_to_rgb(res.image)
