"""Synthetic document-camera frames with known truth: tests, the benchmark and the simulated camera.

A page (Chinese text rendered with the CJK font, a table, optionally a red seal
for a certificate) is warped by a random homography onto a desk background, then
lit unevenly (shadow), blurred and given sensor noise. The true page corners come
back with the frame so detection can be scored (quadrilateral IoU). Variants make
the bad frames the quality gate must reject: blurred, glare, too dark, cut off,
too small, no document.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["SyntheticFrame", "render_page", "make_frame", "photograph", "VARIANTS", "quad_iou"]

FONT_PATH = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
VARIANTS = ("good", "colour", "blurred", "glare", "too_dark", "cut_off", "too_small", "no_document")

_TEXT = ("根据《淄博市人民政府关于印发淄博市优化营商环境创新突破行动实施方案的通知》要求，"
         "推进政务服务事项全程网办，实现群众办事只进一门、只对一窗、一次办好。"
         "便民服务站设置二十四小时自助服务区，提供社保、医保、不动产等高频事项查询与办理。"
         "申请人应当如实填写申请材料，并对材料的真实性负责。")


@dataclass
class SyntheticFrame:
    image: np.ndarray  # BGR uint8
    corners: np.ndarray | None  # 4x2 float32, TL TR BR BL, in frame pixels (may lie outside when cut off)
    variant: str


@functools.lru_cache(maxsize=8)
def render_page(width: int = 840, seal: bool = False, seed: int = 0) -> np.ndarray:
    """An A4-proportioned page (BGR) with a title, paragraphs, a table and optionally a red seal."""
    height = int(round(width * 297 / 210))
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (width, height), (246, 244, 238))
    d = ImageDraw.Draw(img)
    s = width / 840
    title = ImageFont.truetype(FONT_PATH, int(38 * s))
    body = ImageFont.truetype(FONT_PATH, int(21 * s))
    margin = int(70 * s)
    d.text((width // 2, int(80 * s)), "社会保险个人参保证明", font=title, fill=(20, 20, 20), anchor="mm")
    y = int(140 * s)
    chars_per_line = int((width - 2 * margin) / (21 * s))
    text = _TEXT * 2
    start = int(rng.integers(0, 20))
    text = text[start:] + text[:start]
    for i in range(0, min(len(text), chars_per_line * 12), chars_per_line):
        d.text((margin, y), text[i:i + chars_per_line], font=body, fill=(25, 25, 25))
        y += int(34 * s)
    y += int(20 * s)
    rows, cols = 8, 4
    cw = (width - 2 * margin) // cols
    rh = int(38 * s)
    for r in range(rows + 1):
        d.line([(margin, y + r * rh), (margin + cols * cw, y + r * rh)], fill=(40, 40, 40), width=max(1, int(2 * s)))
    for c in range(cols + 1):
        d.line([(margin + c * cw, y), (margin + c * cw, y + rows * rh)], fill=(40, 40, 40), width=max(1, int(2 * s)))
    heads = ["缴费年月", "险种", "缴费基数", "个人缴费"]
    for r in range(rows):
        for c in range(cols):
            t = heads[c] if r == 0 else ["2026-%02d" % r, "养老", "4500.00", "360.00"][c]
            d.text((margin + c * cw + int(10 * s), y + r * rh + int(8 * s)), t, font=body, fill=(30, 30, 30))
    y += rows * rh + int(40 * s)
    d.text((margin, y), "经办机构：周村区社会保险事业中心", font=body, fill=(25, 25, 25))
    d.text((margin, y + int(40 * s)), "打印日期：2026年11月27日", font=body, fill=(25, 25, 25))
    if seal:
        cx, cy, r = width - margin - int(110 * s), y + int(10 * s), int(95 * s)
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=(200, 30, 30), width=max(2, int(7 * s)))
        d.text((cx, cy), "★", font=title, fill=(200, 30, 30), anchor="mm")
        d.text((cx, cy + int(50 * s)), "业务专用章", font=body, fill=(200, 30, 30), anchor="mm")
    return np.ascontiguousarray(np.asarray(img)[:, :, ::-1])


def _background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A darker desk: a colour, a gradient and low-frequency grain."""
    base = rng.uniform(50, 120) + rng.uniform(-20, 20, size=3)
    small = rng.normal(0, 12, size=(max(2, h // 64), max(2, w // 64), 1)).astype(np.float32)
    small = small + rng.normal(0, 3, size=(small.shape[0], small.shape[1], 3)).astype(np.float32)
    grain = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    gx = np.linspace(-1, 1, w, dtype=np.float32)[None, :, None] * np.float32(rng.uniform(-15, 15))
    bg = base.astype(np.float32)[None, None, :] + grain + gx
    return np.clip(bg, 0, 255).astype(np.float32)


def _target_corners(w: int, h: int, page_aspect: float, cover: float, rng: np.random.Generator,
                    centre: tuple[float, float] | None = None, max_tilt: float = 0.06,
                    max_angle: float = 0.25) -> np.ndarray:
    """A perspective-distorted quadrilateral covering about `cover` of the frame area."""
    area = cover * w * h
    ph = np.sqrt(area * page_aspect)
    pw = area / ph
    angle = rng.uniform(-max_angle, max_angle)
    cx, cy = centre if centre is not None else (w / 2 + rng.uniform(-0.08, 0.08) * w,
                                                h / 2 + rng.uniform(-0.06, 0.06) * h)
    rect = np.array([[-pw / 2, -ph / 2], [pw / 2, -ph / 2], [pw / 2, ph / 2], [-pw / 2, ph / 2]])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = rect @ rot.T
    pts += rng.uniform(-max_tilt, max_tilt, size=(4, 2)) * np.array([pw, ph])  # perspective
    pts += np.array([cx, cy])
    out: np.ndarray = pts.astype(np.float32)
    return out


def _place_page(frame: np.ndarray, page: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """The page (float32 BGR) warped onto the desk (float32) at ``corners``."""
    h, w = frame.shape[:2]
    ph, pw = page.shape[:2]
    src = np.array([[0, 0], [pw - 1, 0], [pw - 1, ph - 1], [0, ph - 1]], np.float32)
    H = cv2.getPerspectiveTransform(src, corners)
    warped = cv2.warpPerspective(page, H, (w, h), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones((ph, pw), np.float32), H, (w, h), flags=cv2.INTER_LINEAR)[:, :, None]
    out: np.ndarray = frame * (1 - mask) + warped * mask
    return out


def _light_and_sensor(frame: np.ndarray, rng: np.random.Generator, variant: str,
                      corners: np.ndarray | None) -> np.ndarray:
    """A soft shadow, the variant's light defect, lens blur and sensor noise (float32 in, uint8 out)."""
    h, w = frame.shape[:2]
    a = rng.uniform(0, 2 * np.pi)
    xs = (np.arange(w, dtype=np.float32) / w - 0.5)[None, :] * np.float32(np.cos(a))
    ys = (np.arange(h, dtype=np.float32) / h - 0.5)[:, None] * np.float32(np.sin(a))
    shade = 1.0 - np.float32(rng.uniform(0.1, 0.3)) * np.clip(xs + ys + 0.5, 0, 1)
    frame = frame * shade[:, :, None]
    if variant == "glare" and corners is not None:
        c = corners.mean(axis=0) + rng.uniform(-0.1, 0.1, 2) * np.array([w, h]) * 0.3
        ax = (int(w * rng.uniform(0.08, 0.12)), int(h * rng.uniform(0.06, 0.1)))
        spot: np.ndarray = np.zeros((h, w), np.float32)
        cv2.ellipse(spot, (int(c[0]), int(c[1])), ax, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        spot = cv2.GaussianBlur(spot, (0, 0), max(ax) / 6)
        frame = frame + spot[:, :, None] * 400
    if variant == "too_dark":
        frame = frame * rng.uniform(0.12, 0.18)
    sigma = rng.uniform(0.6, 1.1) * w / 1632
    if variant == "blurred":
        sigma = rng.uniform(5.0, 7.0) * w / 1632
    frame = cv2.GaussianBlur(frame, (0, 0), sigma)
    frame = frame + rng.standard_normal(size=frame.shape, dtype=np.float32) * np.float32(rng.uniform(2, 5))
    img: np.ndarray = np.clip(frame, 0, 255).astype(np.uint8)
    return img


def make_frame(variant: str = "good", size: tuple[int, int] = (1632, 1224), seed: int = 0,
               page_width: int = 840) -> SyntheticFrame:
    """A frame of `size` (w, h) for one of VARIANTS, reproducible from `seed`."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")
    rng = np.random.default_rng(seed)
    w, h = size
    frame = _background(h, w, rng)
    corners: np.ndarray | None = None
    if variant != "no_document":
        page = render_page(page_width, seal=(variant == "colour"), seed=int(seed % 5)).astype(np.float32)
        ph, pw = page.shape[:2]
        cover = {"too_small": rng.uniform(0.03, 0.06)}.get(variant, rng.uniform(0.18, 0.3))
        centre = None
        if variant == "cut_off":  # a third of the page hangs over one edge
            side = int(rng.integers(0, 4))
            centre = [(w * 0.5, h * 0.02), (w * 0.98, h * 0.5), (w * 0.5, h * 0.98), (w * 0.02, h * 0.5)][side]
            cover = rng.uniform(0.2, 0.3)
        corners = _target_corners(w, h, ph / pw, cover, rng, centre)
        frame = _place_page(frame, page, corners)
    return SyntheticFrame(_light_and_sensor(frame, rng, variant, corners), corners, variant)


def photograph(page: np.ndarray, size: tuple[int, int] = (3264, 2448), seed: int = 0,
               cover: tuple[float, float] = (0.30, 0.34), max_angle: float = 0.05, max_tilt: float = 0.03,
               jpeg_quality: int | None = 90) -> SyntheticFrame:
    """A given page (BGR uint8) photographed like :func:`make_frame`'s good frames: perspective, a
    shadow, lens blur, sensor noise, and (``jpeg_quality``) the sensor's own JPEG, as a phone-class
    camera module delivers its stills. ``cover`` is the page's share of the frame (a document camera
    frames an A4 page large; make_frame's pages are smaller)."""
    rng = np.random.default_rng(seed)
    w, h = size
    frame = _background(h, w, rng)
    ph, pw = page.shape[:2]
    corners = _target_corners(w, h, ph / pw, float(rng.uniform(*cover)), rng, max_tilt=max_tilt,
                               max_angle=max_angle)
    frame = _place_page(frame, page.astype(np.float32), corners)
    img = _light_and_sensor(frame, rng, "good", corners)
    if jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
        if decoded is None:
            raise ValueError("JPEG round trip failed")
        img = np.ascontiguousarray(decoded, dtype=np.uint8)
    return SyntheticFrame(img, corners, "good")


def quad_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two convex quadrilaterals (4x2)."""
    pa = np.asarray(a, np.float32).reshape(-1, 2)
    pb = np.asarray(b, np.float32).reshape(-1, 2)
    inter, _ = cv2.intersectConvexConvex(pa, pb)
    ua = abs(cv2.contourArea(pa)) + abs(cv2.contourArea(pb)) - inter
    return float(inter / ua) if ua > 0 else 0.0


# ----------------------------------------------------------------------------- faces
def _draw_face(img: np.ndarray, cx: float, cy: float, size: float) -> None:
    """A shaded frontal face (head about `size` px wide) drawn into a float32 gray image in place.

    Dark eye sockets and brows, a bright nose bridge, a darker mouth and hair: the
    contrasts a Haar frontal-face cascade keys on.
    """
    h, w = img.shape
    s = size / 160.0
    x0, x1 = int(max(0, cx - 130 * s)), int(min(w, cx + 130 * s))
    y0, y1 = int(max(0, cy - 150 * s)), int(min(h, cy + 150 * s))
    if x1 <= x0 or y1 <= y0:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    roi = img[y0:y1, x0:x1]
    e = ((xx - cx) / (80 * s)) ** 2 + ((yy - cy) / (105 * s)) ** 2
    head = (e <= 1).astype(np.float32)
    roi[:] = roi * (1 - head) + head * (200 * np.clip(1.0 - 0.35 * e, 0, 1) + 20)
    hair = (((xx - cx) / (88 * s)) ** 2 + ((yy - cy + 60 * s) / (70 * s)) ** 2 <= 1) & (yy < cy - 55 * s)
    roi[hair] = 40

    def blob(x: float, y: float, rx: float, ry: float, soft: float) -> np.ndarray:
        out: np.ndarray = np.exp(-(((xx - x) / rx) ** 2 + ((yy - y) / ry) ** 2) / (2 * soft ** 2))
        return out

    for dx in (-32, 32):
        ex, ey = cx + dx * s, cy - 18 * s
        roi *= 1 - 0.65 * blob(ex, ey, 22 * s, 12 * s, 0.6)
        roi *= 1 - 0.6 * blob(ex, ey - 20 * s, 24 * s, 5 * s, 0.6)
    roi += 40 * blob(cx, cy + 5 * s, 8 * s, 28 * s, 0.7)
    roi *= 1 - 0.35 * blob(cx, cy + 32 * s, 16 * s, 6 * s, 0.6)
    roi *= 1 - 0.55 * blob(cx, cy + 58 * s, 26 * s, 7 * s, 0.6)


def make_face_frame(faces: list[tuple[float, float, float]], size: tuple[int, int] = (640, 480), seed: int = 0,
                    blur: float = 0.0, brightness: float = 1.0) -> np.ndarray:
    """A BGR frame with faces at (cx, cy, width) given as fractions of the frame width/height/width."""
    rng = np.random.default_rng(seed)
    w, h = size
    img: np.ndarray = np.full((h, w), float(rng.uniform(105, 140)), np.float32)
    img += np.linspace(-10, 10, w, dtype=np.float32)[None, :]
    for fx, fy, fw in faces:
        _draw_face(img, fx * w, fy * h, fw * w)
    img = cv2.GaussianBlur(np.clip(img, 0, 255), (0, 0), 0.8 + blur)
    img = img * brightness + rng.standard_normal(img.shape, dtype=np.float32) * 2.0
    gray = np.clip(img, 0, 255).astype(np.uint8)
    tint = np.array([0.92, 1.0, 1.08], np.float32)  # warm skin-ish tint
    frame: np.ndarray = np.clip(gray[:, :, None].astype(np.float32) * tint[None, None, :], 0, 255).astype(np.uint8)
    return frame
