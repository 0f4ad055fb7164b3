"""From a document-camera still to an upload-ready page: find, flatten, clean, compress.

Why this shape: an 8-megapixel still is expensive to search but cheap to warp.
The document is found on a downscaled copy (the largest plausible quadrilateral,
by edges and by brightness; the full frame when the page fills it), only the four
corners are scaled back, and one perspective warp of the full-resolution frame
gives the flat page. Text pages are deskewed and their illumination normalised
to clean grayscale (shadows and the lamp's falloff removed, small files);
certificates and photos keep their colour. The JPEG is fitted into a size budget
(<= 250 KB for an A4 page at about 200 dpi: legible by OCR at 9 pt, see
docs/benchmarks.md, "Legibility"). The quality gate
(:mod:`devices.camera.quality`) says what the citizen should fix.
"""
from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image

from devices.camera.quality import (
    Problem,
    QualityThresholds,
    check_exposure,
    check_sharpness,
    frame_too_dark,
    problem,
)

__all__ = ["PipelineSettings", "Detection", "ScanResult", "detect_document", "order_corners", "warp_document",
           "page_transform", "deskew", "normalise_illumination", "refine_corners", "is_colour_document",
           "encode_jpeg_within", "process", "pages_to_pdf"]


_SQRT2 = float(np.sqrt(2))  # ISO A-series paper: long side / short side


@dataclass(frozen=True)
class PipelineSettings:
    detect_size: int = 640  # long side of the copy the document is searched on
    target_dpi: int = 200
    jpeg_max_bytes: int = 250_000  # a village line's price per A4 page (bench/legibility.py)
    #: text pages come out this much larger than the frame holds them (at most TEXT_MAX_DPI): 9 pt
    #: Chinese at the camera's ~165 dpi reads better, to OCR and to a clerk, at ~250 (bench/legibility.py)
    text_zoom: float = 1.5
    mode: str = "auto"  # auto | text | colour
    deskew: bool = True
    refine: bool = True  # sub-pixel corners on the full frame
    quality: QualityThresholds = field(default_factory=QualityThresholds)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> PipelineSettings:
        """From camera DeviceSettings extras (``jpeg_max_kb``, ``target_dpi``, ``mode``, ``quality_*``...)."""
        s = dict(settings or {})
        kw: dict[str, Any] = {"quality": QualityThresholds.from_settings(s)}
        if s.get("detect_size") is not None:
            kw["detect_size"] = int(s["detect_size"])
        if s.get("target_dpi") is not None:
            kw["target_dpi"] = int(s["target_dpi"])
        if s.get("jpeg_max_kb") is not None:
            kw["jpeg_max_bytes"] = int(float(s["jpeg_max_kb"]) * 1000)
        if s.get("mode") is not None:
            if s["mode"] not in ("auto", "text", "colour"):
                raise ValueError("camera mode must be auto, text or colour")
            kw["mode"] = str(s["mode"])
        if s.get("deskew") is not None:
            kw["deskew"] = bool(s["deskew"])
        if s.get("text_zoom") is not None:
            kw["text_zoom"] = float(s["text_zoom"])
        return cls(**kw)


@dataclass
class Detection:
    corners: np.ndarray | None  # 4x2 float32 TL TR BR BL in the coordinates of the searched image
    method: str  # edges | brightness | full_frame | none | given
    problems: list[Problem]
    area_frac: float = 0.0


@dataclass
class ScanResult:
    ok: bool
    problems: list[Problem]
    corners: np.ndarray | None  # in full-frame pixels
    method: str
    image: np.ndarray | None = None  # the processed page (gray or BGR)
    jpeg: bytes | None = None
    colour: bool = False
    jpeg_quality: int | None = None
    sharpness: float | None = None
    ms: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The JSON the CLI prints: {"ok", "problems", "corners", "ms"} plus a few extras."""
        return {
            "ok": self.ok,
            "problems": [p.as_dict() for p in self.problems],
            "corners": None if self.corners is None else [[round(float(x), 1), round(float(y), 1)]
                                                           for x, y in self.corners],
            "ms": round(self.ms, 1),
            "method": self.method,
            "colour": self.colour,
            "size": None if self.image is None else [int(self.image.shape[1]), int(self.image.shape[0])],
            "jpeg_bytes": None if self.jpeg is None else len(self.jpeg),
            "jpeg_quality": self.jpeg_quality,
        }


# ------------------------------------------------------------------------- detection
def order_corners(pts: np.ndarray) -> np.ndarray:
    """TL, TR, BR, BL (by angle around the centre, starting at the top-left)."""
    pts = np.asarray(pts, np.float32).reshape(4, 2)
    c = pts.mean(axis=0)
    ang = np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0])
    pts = pts[np.argsort(ang)]  # clockwise in image coordinates, starting near -pi (left)
    start = int(np.argmin(pts.sum(axis=1)))
    return np.roll(pts, -start, axis=0)


def _quad_from_contour(cnt: np.ndarray) -> np.ndarray | None:
    hull = cv2.convexHull(cnt)
    peri = cv2.arcLength(hull, True)
    for eps in (0.01, 0.02, 0.03, 0.045, 0.06):
        approx = cv2.approxPolyDP(hull, eps * peri, True)
        if len(approx) == 4:
            return approx.reshape(4, 2).astype(np.float32)
        if len(approx) < 4:
            return None
    return None


def _plausible(quad: np.ndarray, frame_area: float) -> bool:
    q = order_corners(quad)
    if not cv2.isContourConvex(q.astype(np.float32)):
        return False
    if abs(cv2.contourArea(q)) < 0.01 * frame_area:
        return False
    for i in range(4):  # interior angles between 45 and 135 degrees
        a, b, c = q[i - 1], q[i], q[(i + 1) % 4]
        v1, v2 = a - b, c - b
        cos = float(np.dot(v1, v2) / (np.linalg.norm(v1) * np.linalg.norm(v2) + 1e-6))
        if abs(cos) > 0.71:
            return False
    return True


def _hist_u8(img: np.ndarray) -> np.ndarray:
    """256-bin histogram of a uint8 image (cv2.calcHist: several times faster than np.bincount)."""
    return cv2.calcHist([img], [0], None, [256], [0, 256]).ravel().astype(np.int64)


def _median_u8(img: np.ndarray) -> float:
    """np.median of a uint8 image, exactly (mean of the two middle values), from its histogram."""
    cdf = np.cumsum(_hist_u8(img))
    n = int(cdf[-1])
    lo = int(np.searchsorted(cdf, (n - 1) // 2, side="right"))
    hi = int(np.searchsorted(cdf, n // 2, side="right"))
    return (lo + hi) / 2.0


def _edge_candidates(gray: np.ndarray) -> list[np.ndarray]:
    v = _median_u8(gray)
    lo, hi = max(10.0, 0.5 * v), max(30.0, 1.2 * v)
    edges = cv2.Canny(gray, lo * 0.5, hi * 0.5)
    edges = cv2.dilate(edges, np.ones((3, 3), np.uint8))
    cnts, _ = cv2.findContours(edges, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for c in sorted(cnts, key=cv2.contourArea, reverse=True)[:5]:
        q = _quad_from_contour(c)
        if q is not None:
            out.append(q)
    return out


def _bright_region(gray: np.ndarray) -> tuple[np.ndarray | None, float, bool, float]:
    """Largest bright component: (contour, area fraction, touches border, contrast ratio)."""
    _, mask = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    k = np.ones((7, 7), np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, k)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, k)
    cnts, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not cnts:
        return None, 0.0, False, 0.0
    c = max(cnts, key=cv2.contourArea)
    h, w = gray.shape
    frac = float(cv2.contourArea(c)) / (h * w)
    x, y, bw, bh = cv2.boundingRect(c)
    touches = x <= 2 or y <= 2 or x + bw >= w - 2 or y + bh >= h - 2
    region = np.zeros_like(mask)
    cv2.drawContours(region, [c], -1, 255, -1)
    n_in = cv2.countNonZero(region)
    mi = float(cv2.mean(gray, region)[0]) if n_in else 0.0
    mo = float(cv2.mean(gray, cv2.bitwise_not(region))[0]) if n_in < h * w else 0.0
    contrast = (mi - mo) / (mi + 1.0)
    return c, frac, touches, contrast


def _edge_support_map(gray: np.ndarray) -> np.ndarray:
    """Where the image has a clear edge (dilated a little so a side may be off by a pixel)."""
    gx = cv2.Sobel(gray, cv2.CV_16S, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_16S, 0, 1, ksize=3)
    mag = cv2.addWeighted(cv2.convertScaleAbs(gx), 0.5, cv2.convertScaleAbs(gy), 0.5, 0)
    cdf = np.cumsum(_hist_u8(mag))
    p90 = int(np.searchsorted(cdf, 0.9 * cdf[-1]))
    thr = max(8.0, p90 * 0.5)
    return cv2.dilate((mag >= thr).astype(np.uint8), np.ones((5, 5), np.uint8))


def _edge_support(edge_map: np.ndarray, quad: np.ndarray, samples: int = 48) -> float:
    """Share of points along the quad's sides that lie on an edge (the weakest side counts double)."""
    h, w = edge_map.shape
    q = order_corners(quad)
    per_side = []
    for i in range(4):
        a, b = q[i], q[(i + 1) % 4]
        ts = np.linspace(0.05, 0.95, samples)[:, None]
        pts = np.round(a + ts * (b - a)).astype(int)
        xs = np.clip(pts[:, 0], 0, w - 1)
        ys = np.clip(pts[:, 1], 0, h - 1)
        per_side.append(float(edge_map[ys, xs].mean()))
    return (sum(per_side) + min(per_side)) / 5.0


def _side_contrast(gray: np.ndarray, quad: np.ndarray, samples: int = 24) -> float:
    """The weakest side's median brightness step from just outside to just inside the quad."""
    h, w = gray.shape
    q = order_corners(quad)
    centre = q.mean(axis=0)
    d = max(3.0, 0.012 * max(h, w))
    worst = np.inf
    for i in range(4):
        a, b = q[i], q[(i + 1) % 4]
        side = b - a
        n = np.array([-side[1], side[0]], np.float32) / (np.linalg.norm(side) + 1e-6)
        if np.dot(centre - (a + b) / 2, n) < 0:
            n = -n  # point inwards
        ts = np.linspace(0.1, 0.9, samples)[:, None]
        pts = a + ts * side
        pin = np.round(pts + d * n).astype(int)
        pout = np.round(pts - d * n).astype(int)
        ok = ((pout[:, 0] >= 0) & (pout[:, 0] < w) & (pout[:, 1] >= 0) & (pout[:, 1] < h) &
              (pin[:, 0] >= 0) & (pin[:, 0] < w) & (pin[:, 1] >= 0) & (pin[:, 1] < h))
        if ok.sum() < samples // 4:
            continue  # this side runs along the frame's edge: nothing outside to compare with
        diff = gray[pin[ok, 1], pin[ok, 0]].astype(np.float32) - gray[pout[ok, 1], pout[ok, 0]]
        worst = min(worst, float(np.median(diff)))
    return worst if np.isfinite(worst) else 0.0


def _outline_sharpness(edge_map: np.ndarray, contour: np.ndarray) -> float:
    """Share of a region's outline (away from the frame's edge) that runs along a clear edge:
    high for paper, low for a bright patch of desk texture."""
    h, w = edge_map.shape
    pts = contour.reshape(-1, 2)
    if len(pts) < 4:
        return 0.0
    # walk the outline at one-pixel steps (CHAIN_APPROX_SIMPLE keeps only the vertices)
    a = pts.astype(np.float32)
    b = np.roll(a, -1, axis=0)
    n = np.maximum(1, np.ceil(np.abs(b - a).max(axis=1)).astype(int))
    walk = np.concatenate([a[i] + (b[i] - a[i]) * (np.arange(n[i])[:, None] / n[i]) for i in range(len(a))])
    xs, ys = np.round(walk[:, 0]).astype(int), np.round(walk[:, 1]).astype(int)
    inner = (xs > 3) & (xs < w - 4) & (ys > 3) & (ys < h - 4)
    if inner.sum() < 20:
        return 0.0
    return float(edge_map[ys[inner], xs[inner]].mean())


def detect_document(small_bgr: np.ndarray, thresholds: QualityThresholds | None = None) -> Detection:
    """Find the page on a small image; geometry problems (no_document, cut_off, too_small) included."""
    t = thresholds or QualityThresholds()
    gray = cv2.cvtColor(small_bgr, cv2.COLOR_BGR2GRAY) if small_bgr.ndim == 3 else small_bgr
    gray = cv2.GaussianBlur(gray, (5, 5), 0)
    h, w = gray.shape
    area = float(h * w)
    region, rfrac, touches, contrast = _bright_region(gray)
    cands: list[tuple[np.ndarray, str]] = [(q, "edges") for q in _edge_candidates(gray)]
    if region is not None and contrast > 0.3:
        q = _quad_from_contour(region)
        if q is not None:
            cands.append((q, "brightness"))
    good = [(order_corners(q), m) for q, m in cands if _plausible(q, area)]
    # paper is brighter than what lies around it; a table or a photo printed on the page is not
    good = [(q, m) for q, m in good if _side_contrast(gray, q) > 10.0]
    margin = max(2.0, t.edge_margin_frac * max(h, w))
    if good:
        # the page outline has a strong edge all along its four sides; a quad that leaked into the
        # background (or cut through the page) does not. Among well-supported quads, the largest.
        support = _edge_support_map(gray)
        scored = [(_edge_support(support, q), abs(cv2.contourArea(q)), q, m) for q, m in good]
        top = max(sc for sc, _, _, _ in scored)
        _, _, quad, method = max((x for x in scored if x[0] >= top - 0.05), key=lambda x: x[1])
        frac = abs(float(cv2.contourArea(quad))) / area
        problems: list[Problem] = []
        near_edge = bool(((quad[:, 0] <= margin) | (quad[:, 0] >= w - 1 - margin) |
                          (quad[:, 1] <= margin) | (quad[:, 1] >= h - 1 - margin)).any())
        if frac > 0.85:  # the page fills the view: use it all
            return Detection(_full(w, h), "full_frame", [], 1.0)
        if near_edge or (touches and contrast > 0.3 and rfrac > frac * 1.15):
            problems.append(problem("cut_off"))
        elif frac < t.min_area_frac:
            problems.append(problem("too_small"))
        return Detection(quad, method, problems, frac)
    if region is not None and contrast > 0.3:
        if rfrac > 0.85:
            return Detection(_full(w, h), "full_frame", [], rfrac)
        if touches and rfrac > 0.02 and _outline_sharpness(_edge_support_map(gray), region) > 0.5:
            # a sharp-edged bright region running off the frame: a page that is partly outside
            return Detection(None, "none", [problem("cut_off")], rfrac)
    # Nothing page-like. A frame full of detail is a page filling the view; a featureless one is empty.
    edges = cv2.Canny(gray, 50, 150)
    if float((edges > 0).mean()) > 0.04 and contrast <= 0.3:
        return Detection(_full(w, h), "full_frame", [], 1.0)
    return Detection(None, "none", [problem("no_document")], 0.0)


def _full(w: int, h: int) -> np.ndarray:
    return np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)


def refine_corners(channel: np.ndarray, quad: np.ndarray, radius: float, samples: int = 32) -> np.ndarray:
    """Sharpen corners found on the small copy: edge points along each side, measured on the
    full-resolution channel across the side, a robust line per side, corners at the intersections."""
    q = order_corners(quad)
    h, w = channel.shape[:2]
    r = max(2, int(round(radius)))
    offs = np.arange(-r, r + 1, dtype=np.float32)
    lines = []
    for i in range(4):
        a, b = q[i], q[(i + 1) % 4]
        d = b - a
        length = float(np.linalg.norm(d))
        if length < 4 * r:
            return q
        d /= length
        n = np.array([-d[1], d[0]], np.float32)
        ts = np.linspace(0.12, 0.88, samples, dtype=np.float32)
        base = a[None, :] + ts[:, None] * (b - a)[None, :]
        pts = base[:, None, :] + offs[None, :, None] * n[None, None, :]
        mapx = np.ascontiguousarray(pts[:, :, 0])
        mapy = np.ascontiguousarray(pts[:, :, 1])
        prof = cv2.remap(channel, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        prof = (prof[:, :, 1] if prof.ndim == 3 else prof).astype(np.float32)  # green of a BGR frame
        prof = cv2.GaussianBlur(prof, (1, 5), 0) if prof.shape[1] >= 5 else prof
        grad = np.abs(np.diff(prof, axis=1))
        k = np.argmax(grad, axis=1)
        strong = grad[np.arange(len(k)), k] > 4.0
        inside = (k > 0) & (k < grad.shape[1] - 1)
        sel = strong & inside
        if sel.sum() < samples // 3:
            return q
        kk = k[sel]
        g0, g1, g2 = (grad[sel, kk - 1], grad[sel, kk], grad[sel, kk + 1])
        den = g0 - 2 * g1 + g2
        sub = np.where(np.abs(den) > 1e-6, 0.5 * (g0 - g2) / np.where(np.abs(den) > 1e-6, den, 1), 0.0)
        off = offs[kk] + 0.5 + np.clip(sub, -0.5, 0.5)
        edge_pts = base[sel] + off[:, None] * n[None, :]
        vx, vy, x0, y0 = cv2.fitLine(edge_pts.astype(np.float32), cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
        lines.append((np.array([x0, y0]), np.array([vx, vy])))
    out = []
    for i in range(4):
        (p1, v1), (p2, v2) = lines[i - 1], lines[i]
        A = np.array([v1, -v2]).T
        if abs(np.linalg.det(A)) < 1e-6:
            return q
        t = np.linalg.solve(A, p2 - p1)
        out.append(p1 + t[0] * v1)
    refined = np.array(out, np.float32)
    if np.abs(refined - q).max() > 2 * r:  # a wild fit: keep the coarse corners
        return q
    return refined


# ---------------------------------------------------------------------------- flatten
def warp_document(frame: np.ndarray, corners: np.ndarray, max_long_side: int | None = None) -> np.ndarray:
    """Perspective-correct the quadrilateral of the full frame into an upright rectangle."""
    size, M = page_transform(corners, max_long_side)
    return cv2.warpPerspective(frame, M, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def page_transform(corners: np.ndarray, max_long_side: int | None = None) -> tuple[tuple[int, int], np.ndarray]:
    """Output size (w, h) and the homography that maps the quadrilateral onto it (no upscaling)."""
    q = order_corners(corners)
    wt = float(np.linalg.norm(q[1] - q[0]))
    wb = float(np.linalg.norm(q[2] - q[3]))
    hl = float(np.linalg.norm(q[3] - q[0]))
    hr = float(np.linalg.norm(q[2] - q[1]))
    out_w, out_h = max(wt, wb), max(hl, hr)
    # Perspective hides the true aspect; ISO A-series paper (A4, A5: sqrt 2) is by far the most
    # common material, so a page measured within 10 % of it is given exactly that shape.
    long_, short = max(out_w, out_h), max(1.0, min(out_w, out_h))
    if abs(long_ / short / _SQRT2 - 1) < 0.1:
        long_ = short * _SQRT2
        out_w, out_h = (long_, short) if out_w >= out_h else (short, long_)
    if max_long_side and max(out_w, out_h) > max_long_side:
        s = max_long_side / max(out_w, out_h)
        out_w, out_h = out_w * s, out_h * s
    w_px, h_px = max(8, int(round(out_w))), max(8, int(round(out_h)))
    dst = np.array([[0, 0], [w_px - 1, 0], [w_px - 1, h_px - 1], [0, h_px - 1]], np.float32)
    M = cv2.getPerspectiveTransform(q.astype(np.float32), dst)
    return (w_px, h_px), M


def _small(img: np.ndarray, long_side: int, interpolation: int | None = None) -> tuple[np.ndarray, float]:
    h, w = img.shape[:2]
    s = min(1.0, long_side / max(h, w))
    if s >= 1.0:
        return img, 1.0
    inter = cv2.INTER_AREA if interpolation is None else interpolation
    return cv2.resize(img, (max(1, int(w * s)), max(1, int(h * s))), interpolation=inter), s


def skew_angle(gray: np.ndarray, limit: float = 3.0, step: float = 0.5) -> float:
    """Residual text skew in degrees (projection profiles on a small binarised copy, coarse then fine).

    Why this cost: the coarse pass needs ``step`` no wider than about a text line's height over its
    length (wider steps miss the peak); that ratio does not change with scale, so the coarse pass
    runs on a half-size copy of the ink, and two halvings of the step on the full copy reach step / 4."""
    big = max(gray.shape[:2]) > 1000  # bilinear is enough (and cheap) for a mild reduction, not a strong one
    small, _ = _small(gray, 500, None if big else cv2.INTER_LINEAR)
    ink = cv2.adaptiveThreshold(small, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, 25, 15)
    coarse = cv2.resize(ink, (max(1, ink.shape[1] // 2), max(1, ink.shape[0] // 2)), interpolation=cv2.INTER_AREA)

    def scorer(img: np.ndarray) -> Callable[[float], float]:
        h, w = img.shape
        scores: dict[float, float] = {}

        def score(a: float) -> float:
            a = round(float(a), 4)
            if a not in scores:
                M = cv2.getRotationMatrix2D((w / 2, h / 2), a, 1.0)
                rot = cv2.warpAffine(img, M, (w, h), flags=cv2.INTER_NEAREST)
                scores[a] = float(np.var(cv2.reduce(rot, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32F)))
            return scores[a]
        return score

    best = float(max(np.arange(-limit, limit + 1e-6, step), key=scorer(coarse)))
    fine_score = scorer(ink)
    for fine in (step / 2, step / 4):
        best = max((best - fine, best, best + fine), key=fine_score)
    return float(round(best, 4))


def deskew(img: np.ndarray, angle: float | None = None) -> tuple[np.ndarray, float]:
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
    a = skew_angle(gray) if angle is None else angle
    if abs(a) < 0.2:
        return img, 0.0
    h, w = img.shape[:2]
    M = cv2.getRotationMatrix2D((w / 2, h / 2), a, 1.0)
    return cv2.warpAffine(img, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), a


def _background(gray: np.ndarray) -> np.ndarray:
    """The paper's brightness without the ink, at full size (estimated at 1/8 scale)."""
    h, w = gray.shape
    # an exact 8x8 area average (a fractional INTER_AREA factor takes the slow general path, ~5x slower);
    # the up to 7 rows and columns left over stretch the smooth background by under half a percent
    sw, sh = max(1, w // 8), max(1, h // 8)
    small = cv2.resize(gray[:sh * 8, :sw * 8], (sw, sh), interpolation=cv2.INTER_AREA) if w >= 64 and h >= 64 \
        else cv2.resize(gray, (max(8, w // 8), max(8, h // 8)), interpolation=cv2.INTER_AREA)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    bg = cv2.morphologyEx(small, cv2.MORPH_CLOSE, k)  # ink is dark and thin: closing removes it
    bg = cv2.medianBlur(bg, 5)
    return cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR)


def normalise_illumination(img: np.ndarray, colour: bool) -> np.ndarray:
    """Flat-field the lighting. Text: clean grayscale; colour: the same on L, chroma kept."""
    if not colour:
        gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
        bg = np.maximum(_background(gray), 1)  # no zero divisors (uint8 kept)
        norm = cv2.divide(gray, bg, scale=245.0)  # saturating uint8 arithmetic
        # deepen the ink a little: values below ~60% of paper go towards black; and paper is paper:
        # sensor noise left on it (within PAPER_SNAP of the paper level) becomes plain white. The ink's
        # grey edges are kept as they were; the noise was most of the JPEG's bytes (375 -> ~100 KB).
        return cv2.LUT(norm, _TEXT_LUT)
    # one gain per pixel for all three channels: the lamp's falloff goes, hues stay
    bg = np.maximum(_background(cv2.extractChannel(img, 1)), 1)
    out = cv2.divide(img, cv2.merge([bg, bg, bg]), scale=240.0)
    # the same for colour: where every channel is near the paper level, plain white (seals and photos,
    # saturated or dark, keep their pixels)
    paper = cv2.threshold(cv2.min(cv2.min(cv2.extractChannel(out, 0), cv2.extractChannel(out, 1)),
                                  cv2.extractChannel(out, 2)), 240 - PAPER_SNAP - 1, 255, cv2.THRESH_BINARY)[1]
    out[paper > 0] = 255
    return out


#: how far below the paper level (245 text, 240 colour, of 255) a pixel still counts as bare paper:
#: about 3.5 sigma of a phone-class sensor's noise after the flat-field (bench/legibility.py)
PAPER_SNAP = 13


def _text_lut() -> np.ndarray:
    v = np.arange(256, dtype=np.float32)
    lut = np.clip((v - 70) * (255.0 / (245 - 70)), 0, 255)
    lut[v >= 245 - PAPER_SNAP] = 255
    out: np.ndarray = lut.astype(np.uint8)
    return out


_TEXT_LUT = _text_lut()


def is_colour_document(img: np.ndarray) -> bool:
    """Seals, photos, coloured certificates: enough saturated pixels to matter."""
    if img.ndim == 2:
        return False
    small, _ = _small(img, 400, cv2.INTER_NEAREST)  # a share of pixels: subsampling keeps it, cheaply
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    sat = (hsv[:, :, 1] > 90) & (hsv[:, :, 2] > 60)
    return float(sat.mean()) > 0.004


def encode_jpeg_within(img: np.ndarray, max_bytes: int, q_max: int = 88,
                       q_min: int = 35) -> tuple[bytes, int, np.ndarray]:
    """The best JPEG quality that fits the budget; shrinks the image when even q_min does not."""
    def enc(im: np.ndarray, q: int) -> bytes:
        ok, buf = cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, q])
        if not ok:
            raise ValueError("JPEG encoding failed")
        return buf.tobytes()

    cur = img
    for _ in range(6):
        data = enc(cur, q_max)
        if len(data) <= max_bytes:
            return data, q_max, cur
        lo, hi, best = q_min, q_max - 1, None
        while lo <= hi:
            mid = (lo + hi) // 2
            d = enc(cur, mid)
            if len(d) <= max_bytes:
                best, lo = (d, mid), mid + 1
            else:
                hi = mid - 1
        if best is not None:
            return best[0], best[1], cur
        h, w = cur.shape[:2]
        cur = cv2.resize(cur, (int(w * 0.8), int(h * 0.8)), interpolation=cv2.INTER_AREA)
    data = enc(cur, q_min)
    return data, q_min, cur


# --------------------------------------------------------------------------- pipeline
#: long side of the warp the quality gate and the skew estimate look at (blur_min is calibrated on it)
CHECK_LONG_SIDE = 640
#: a text page is never enlarged past A4 at this resolution (PipelineSettings.text_zoom)
TEXT_MAX_DPI = 300


def _a4_long_side(dpi: int) -> int:
    return int(round(297 / 25.4 * dpi))


def _source_roi(frame: np.ndarray, M: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The frame's bounding box of everything the output samples (a view, no copy), and the homography
    onto the output from it. Where the page reaches past the frame the border is replicated as before."""
    fh, fw = frame.shape[:2]
    ow, oh = size
    out_corners = np.array([[[0, 0], [ow - 1, 0], [ow - 1, oh - 1], [0, oh - 1]]], np.float64)
    src = cv2.perspectiveTransform(out_corners, np.linalg.inv(M)).reshape(4, 2)
    x0 = int(np.clip(np.floor(src[:, 0].min()) - 2, 0, fw - 1))
    y0 = int(np.clip(np.floor(src[:, 1].min()) - 2, 0, fh - 1))
    x1 = int(np.clip(np.ceil(src[:, 0].max()) + 3, x0 + 1, fw))
    y1 = int(np.clip(np.ceil(src[:, 1].max()) + 3, y0 + 1, fh))
    if x0 == 0 and y0 == 0 and x1 == fw and y1 == fh:
        return frame, M
    T = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0], [0.0, 0.0, 1.0]])
    return frame[y0:y1, x0:x1], M @ T


def process(frame: np.ndarray, settings: PipelineSettings | None = None, *, encode: bool = True,
            corners: np.ndarray | None = None) -> ScanResult:
    """Run the whole pipeline on one BGR still; never raises for a bad picture (problems say why).

    ``corners`` (4x2, full-frame pixels), when given, skip the search: the page is taken from there
    (e.g. corners an operator adjusted, or another detector's result in the benchmark)."""
    s = settings or PipelineSettings()
    t0 = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round((now - since) * 1000, 2)
        return now

    if frame is None or frame.ndim not in (2, 3) or min(frame.shape[:2]) < 16:
        return ScanResult(False, [problem("no_document")], None, "none", ms=0.0)
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    fh, fw = frame.shape[:2]
    if corners is not None:
        given = np.asarray(corners, np.float32).reshape(4, 2)
        det = Detection(given, "given", [], 0.0)
        corners, half, t = order_corners(given), frame, t0
        return _finish(frame, half, corners, det, s, encode, t0, t, timings, lap)
    # One cheap pass over the 8 MP frame: bilinear samples at twice the search size, then 2x2 averages
    # (enough low-pass for finding a page; the corners are refined on the full frame afterwards).
    k = max(1, -(-max(fh, fw) // s.detect_size))
    if k > 1:
        sw, sh = fw // k, fh // k
        half = cv2.resize(frame, (sw * 2, sh * 2), interpolation=cv2.INTER_LINEAR)
        small = cv2.cvtColor(cv2.resize(half, (sw, sh), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    else:
        half = frame
        small = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    scale = small.shape[1] / fw
    t = lap("downscale", t0)
    if frame_too_dark(small, s.quality):  # darkness first: in the dark no page can be found
        return ScanResult(False, [problem("too_dark")], None, "none", ms=(time.perf_counter() - t0) * 1000,
                          timings=timings)
    det = detect_document(small, s.quality)
    t = lap("detect", t)
    if det.corners is None:
        return ScanResult(False, det.problems, None, det.method, ms=(time.perf_counter() - t0) * 1000,
                          timings=timings)
    def up(c: np.ndarray) -> np.ndarray:  # small-image pixel centres -> full-frame pixel centres
        return ((c + 0.5) / scale - 0.5).astype(np.float32) if scale != 1.0 else c.copy()

    corners = up(det.corners)
    if det.method == "full_frame":
        corners = _full(fw, fh)
    elif s.refine:  # first across a wide band on the small copy, then finely on the full frame
        coarse = refine_corners(small, det.corners, radius=max(6.0, 0.02 * max(small.shape[:2])))
        corners = up(coarse)
        if scale < 1.0:
            corners = refine_corners(frame, corners, radius=1.5 / scale + 2)
        t = lap("refine", t)
    return _finish(frame, half, corners, det, s, encode, t0, t, timings, lap)


def _finish(frame: np.ndarray, half: np.ndarray, corners: np.ndarray, det: Detection, s: PipelineSettings,
            encode: bool, t0: float, t: float, timings: dict[str, float],
            lap: Callable[[str, float], float]) -> ScanResult:
    """Everything after the corners: the gate, the skew, the one full-resolution warp, cleaning, JPEG."""
    fh, fw = frame.shape[:2]
    problems = list(det.problems)
    # The gate looks at a small check warp (warping cost follows the output size), taken from the
    # search copy at twice the search size when that still has the pixels (it is in cache, the
    # 8 MP frame is not); the page itself is warped once at full resolution, one plane for text.
    size, M = page_transform(corners, max_long_side=_a4_long_side(s.target_dpi))
    cs = min(1.0, CHECK_LONG_SIDE / max(size))
    check_size = (max(8, int(size[0] * cs)), max(8, int(size[1] * cs)))
    M_check = np.diag([cs, cs, 1.0]) @ M
    hh, hw = half.shape[:2]
    if half is not frame and max(size) * hw / fw >= max(check_size):
        sx, sy = fw / hw, fh / hh  # half-copy pixel centres -> full-frame pixel centres
        A = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
        src_check, M_check = half, M_check @ A
    else:
        src_check = frame
    check = cv2.warpPerspective(src_check, M_check, check_size, flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
    check_gray = cv2.cvtColor(check, cv2.COLOR_BGR2GRAY)
    problems += check_exposure(check_gray, s.quality)
    blur_problems, sharp = check_sharpness(check_gray, s.quality)
    if not any(p.code in ("too_dark", "no_document") for p in problems):
        problems += blur_problems
    colour = s.mode == "colour" or (s.mode == "auto" and is_colour_document(check))
    t = lap("quality", t)
    zoom = 1.0 if colour else min(s.text_zoom, _a4_long_side(TEXT_MAX_DPI) / max(size))
    if zoom > 1.0:  # the enlargement is part of the one warp (cubic, below), not a second resize
        size = (int(round(size[0] * zoom)), int(round(size[1] * zoom)))
        M = np.diag([zoom, zoom, 1.0]) @ M
    if s.deskew and not colour:
        # The residual text skew, measured on the small check warp, is folded into the one
        # full-resolution warp instead of rotating the page a second time.
        angle = skew_angle(check_gray)
        if abs(angle) >= 0.2:
            R = np.vstack([cv2.getRotationMatrix2D((size[0] / 2, size[1] / 2), angle, 1.0), [0.0, 0.0, 1.0]])
            M = R @ M
        t = lap("deskew", t)
    # A text page becomes grayscale anyway: warp one plane (green carries most of the luminance).
    # Only the part of the frame the page maps from is read (and, for text, copied out as one plane).
    src, M_src = _source_roi(frame, M, size)
    if not colour:
        src = cv2.extractChannel(src, 1)
    page = cv2.warpPerspective(src, M_src, size, flags=cv2.INTER_CUBIC if zoom > 1.0 else cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
    t = lap("warp", t)
    out = normalise_illumination(page, colour)
    t = lap("normalise", t)
    jpeg, q = None, None
    if encode:
        jpeg, q, out = encode_jpeg_within(out, s.jpeg_max_bytes)
        t = lap("jpeg", t)
    ms = (time.perf_counter() - t0) * 1000
    return ScanResult(not problems, problems, corners, det.method, out, jpeg, colour, q, sharp, ms, timings)


def pages_to_pdf(pages: Sequence[bytes | np.ndarray], dpi: int = 200) -> bytes:
    """Several pages of one material as one PDF (JPEG bytes or arrays, in order)."""
    if not pages:
        raise ValueError("no pages")
    images = []
    im: Image.Image
    for p in pages:
        if isinstance(p, (bytes, bytearray)):
            im = Image.open(io.BytesIO(p))
            im.load()
        else:
            arr = np.asarray(p)
            im = Image.fromarray(arr[:, :, ::-1] if arr.ndim == 3 else arr)
        images.append(im.convert("RGB") if im.mode not in ("L", "RGB") else im)
    buf = io.BytesIO()
    images[0].save(buf, format="PDF", save_all=True, append_images=images[1:], resolution=float(dpi))
    return buf.getvalue()
