"""The quality gate for captured materials: problems a citizen can fix before the page is sent.

Checked on a small warp of the detected document (640 px on its long side, taken from the
search copy when that has the pixels), so the gate costs a few milliseconds even on
8-megapixel stills. Thresholds come from the
camera's DeviceSettings extras (``quality_*`` keys) with the defaults below.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

__all__ = ["Problem", "QualityThresholds", "MESSAGES", "problem", "check_exposure", "check_sharpness",
           "frame_too_dark"]

MESSAGES: dict[str, str] = {
    "no_document": "没有找到材料，请把材料平放在拍摄区内后重新拍摄",
    "cut_off": "材料没有拍全，请把整页材料放在拍摄区中间后重新拍摄",
    "too_small": "材料在画面中太小，请把材料放在拍摄区中间、铺平后重新拍摄",
    "blurred": "照片模糊，请把材料放平、拍摄时不要移动，然后重新拍摄",
    "glare": "材料反光或过亮，请调整材料角度避开灯光反射，然后重新拍摄",
    "too_dark": "光线太暗，请打开补光灯或把材料移到亮处后重新拍摄",
}


@dataclass(frozen=True)
class Problem:
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def problem(code: str) -> Problem:
    return Problem(code, MESSAGES[code])


@dataclass(frozen=True)
class QualityThresholds:
    #: variance of the Laplacian of the document at 640 px on its long side (pipeline.CHECK_LONG_SIDE)
    blur_min: float = 1000.0
    #: share of the document that is blown out (>= 250 after a small blur)
    glare_max_frac: float = 0.015
    #: mean brightness of the document (0-255)
    dark_min_mean: float = 70.0
    #: the whole frame's bright end (99th percentile, 0-255): below it nothing can be judged, not even
    #: whether a page is there (paper under the kiosk's light is > 180, an empty desk > 80)
    dark_frame_p99: float = 48.0
    #: document area / frame area
    min_area_frac: float = 0.12
    #: a corner closer than this share of the frame to an edge counts as touching it
    edge_margin_frac: float = 0.004

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> QualityThresholds:
        s = dict(settings or {})
        kw = {}
        for name, key in (("blur_min", "quality_blur_min"), ("glare_max_frac", "quality_glare_max_frac"),
                          ("dark_min_mean", "quality_dark_min_mean"), ("dark_frame_p99", "quality_dark_frame_p99"),
                          ("min_area_frac", "quality_min_area_frac"),
                          ("edge_margin_frac", "quality_edge_margin_frac")):
            if s.get(key) is not None:
                kw[name] = float(s[key])
        return cls(**kw)


def frame_too_dark(gray: np.ndarray, t: QualityThresholds) -> bool:
    """A frame too dark to judge: decided before the page search, so the citizen is told to turn the
    light on (too_dark) rather than that there is no paper (no_document), which the search would say."""
    return float(np.percentile(gray, 99)) < t.dark_frame_p99


def check_exposure(doc_gray: np.ndarray, t: QualityThresholds) -> list[Problem]:
    """too_dark / glare on the (warped, small) grayscale document."""
    out: list[Problem] = []
    if float(doc_gray.mean()) < t.dark_min_mean:
        out.append(problem("too_dark"))
    smooth = cv2.blur(doc_gray, (5, 5))
    if float((smooth >= 250).mean()) > t.glare_max_frac:
        out.append(problem("glare"))
    return out


def sharpness(doc_gray: np.ndarray) -> float:
    """Laplacian variance, taken over the sharpest tiles so a mostly blank page is not 'blurred'."""
    lap = cv2.Laplacian(doc_gray, cv2.CV_32F, ksize=3)
    h, w = lap.shape
    th, tw = max(8, h // 6), max(8, w // 4)
    tiles = [float(cv2.meanStdDev(lap[y:y + th, x:x + tw])[1][0, 0]) ** 2  # (cheaper than ndarray.var)
             for y in range(0, h - th + 1, th) for x in range(0, w - tw + 1, tw)]
    tiles.sort(reverse=True)
    top = tiles[: max(1, len(tiles) // 4)]
    return float(np.mean(top)) if top else 0.0


def check_sharpness(doc_gray: np.ndarray, t: QualityThresholds) -> tuple[list[Problem], float]:
    v = sharpness(doc_gray)
    return ([problem("blurred")] if v < t.blur_min else []), v
