"""OpenCV Haar cascades (the XML files OpenCV ships) evaluated with numpy.

Why this exists: OpenCV 5 removed ``cv2.CascadeClassifier`` and its wheels no
longer carry ``cv2.data.haarcascades``; the XML cascades themselves are still
distributed (``opencv-data`` on Debian: /usr/share/opencv4/haarcascades). When
the running cv2 has CascadeClassifier, face.py uses it; otherwise this
evaluator runs the same stump-based BOOST/HAAR cascade the way OpenCV does:
an image pyramid, 24x24 windows, variance-normalised features, stage by stage
rejection (vectorised over all windows), and OpenCV's rectangle grouping.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["HaarCascade", "find_cascade", "group_rectangles", "CASCADE_DIRS"]

CASCADE_DIRS = [
    os.environ.get("KIOSK_HAAR_DIR", ""),
    "/usr/share/opencv4/haarcascades",
    "/usr/share/opencv/haarcascades",
    "/usr/local/share/opencv4/haarcascades",
]


def find_cascade(name: str = "haarcascade_frontalface_default.xml", extra_dirs: list[str] | None = None) -> Path | None:
    """The cascade file from cv2.data (OpenCV 4 wheels), opencv-data, or `extra_dirs`."""
    dirs = list(extra_dirs or [])
    try:
        import cv2

        d = getattr(getattr(cv2, "data", None), "haarcascades", "")
        if d:
            dirs.append(d)
    except ImportError:
        pass
    dirs += CASCADE_DIRS
    for d in dirs:
        if d and (Path(d) / name).is_file():
            return Path(d) / name
    return None


@dataclass
class _Stage:
    threshold: float
    feat: np.ndarray  # (n,) feature index per weak classifier
    thr: np.ndarray  # (n,) node thresholds
    left: np.ndarray  # (n,) leaf values
    right: np.ndarray


class HaarCascade:
    """A stump-based HAAR cascade in OpenCV's XML format (no tilted features)."""

    def __init__(self, path: str | os.PathLike[str]):
        root = ET.parse(str(path)).getroot()
        c = root.find("cascade")
        if c is None or (c.findtext("featureType") or "").strip() != "HAAR":
            raise ValueError("not an OpenCV HAAR cascade")
        self.win_w = int(c.findtext("width"))
        self.win_h = int(c.findtext("height"))
        self.stages: list[_Stage] = []
        for st in c.find("stages"):
            feats, thrs, lefts, rights = [], [], [], []
            for wc in st.find("weakClassifiers"):
                nodes = wc.findtext("internalNodes").split()
                leaves = wc.findtext("leafValues").split()
                if len(nodes) != 4:
                    raise ValueError("only stump cascades are supported")
                feats.append(int(nodes[2]))
                thrs.append(float(nodes[3]))
                lefts.append(float(leaves[0]))
                rights.append(float(leaves[1]))
            self.stages.append(_Stage(float(st.findtext("stageThreshold")), np.array(feats), np.array(thrs),
                                      np.array(lefts), np.array(rights)))
        self.features: list[list[tuple[int, int, int, int, float]]] = []
        for f in c.find("features"):
            if (f.findtext("tilted") or "0").strip() not in ("0", ""):
                raise ValueError("tilted features are not supported")
            rects = []
            for r in f.find("rects"):
                x, y, w, h, wt = r.text.split()
                rects.append((int(x), int(y), int(w), int(h), float(wt)))
            self.features.append(rects)
        # per stage, the rectangles of its features as arrays (vectorised evaluation)
        self._geometry = []
        for st in self.stages:
            n = len(st.feat)
            geo = np.zeros((5, n, 3))
            for k, fi in enumerate(st.feat):
                for r, (x, y, w, h, wt) in enumerate(self.features[fi][:3]):
                    geo[:, k, r] = (x, y, w, h, wt)
            ints = geo[:4].astype(np.int64)
            self._geometry.append((ints[0], ints[1], ints[2], ints[3], geo[4]))

    # ------------------------------------------------------------------ evaluation
    def _detect_at_scale(self, gray: np.ndarray, step: int) -> np.ndarray:
        h, w = gray.shape
        ww, wh = self.win_w, self.win_h
        if h < wh or w < ww:
            return np.zeros((0, 2), np.int32)
        g = gray.astype(np.float64)
        ii = np.zeros((h + 1, w + 1))
        ii[1:, 1:] = g.cumsum(0).cumsum(1)
        sq = np.zeros((h + 1, w + 1))
        sq[1:, 1:] = (g * g).cumsum(0).cumsum(1)
        ys, xs = np.mgrid[0:h - wh + 1:step, 0:w - ww + 1:step]
        ys, xs = ys.ravel(), xs.ravel()
        W1 = w + 1
        flat, sqflat = ii.ravel(), sq.ravel()
        base = ys * W1 + xs

        def rsum(arr: np.ndarray, b: np.ndarray, x: int, y: int, rw: int, rh: int) -> np.ndarray:
            o = b + y * W1 + x
            return arr[o + rh * W1 + rw] - arr[o + rw] - arr[o + rh * W1] + arr[o]

        # OpenCV normalises by the window minus a one-pixel border
        nw, nh = ww - 2, wh - 2
        area = nw * nh
        s1 = rsum(flat, base, 1, 1, nw, nh)
        s2 = rsum(sqflat, base, 1, 1, nw, nh)
        nf = area * s2 - s1 * s1
        nf = np.where(nf > 0, np.sqrt(np.maximum(nf, 0)), 1.0)
        alive = np.arange(len(base))
        for st, geo in zip(self.stages, self._geometry):
            if alive.size == 0:
                break
            rx, ry, rw, rh, wt = geo  # (n, 3) each; unused third rects have weight 0
            o1 = ry * W1 + rx
            o2 = o1 + rw
            o3 = o1 + rh * W1
            o4 = o3 + rw
            b = base[alive][:, None, None]
            sums = flat[b + o4] - flat[b + o2] - flat[b + o3] + flat[b + o1]  # (N, n, 3)
            val = (sums * wt).sum(axis=2)
            total = np.where(val < st.thr[None, :] * nf[alive][:, None], st.left, st.right).sum(axis=1)
            alive = alive[total >= st.threshold - 1e-9]
        return np.stack([xs[alive], ys[alive]], axis=1) if alive.size else np.zeros((0, 2), np.int32)

    def detect(self, gray: np.ndarray, scale_factor: float = 1.1, min_neighbors: int = 3,
               min_size: tuple[int, int] = (30, 30), max_size: tuple[int, int] | None = None) -> np.ndarray:
        """Like cv2.CascadeClassifier.detectMultiScale: (n, 4) x, y, w, h in `gray` pixels."""
        import cv2

        h, w = gray.shape[:2]
        max_size = max_size or (w, h)
        rects: list[tuple[int, int, int, int]] = []
        factor = 1.0
        while True:
            ww, wh = int(round(self.win_w * factor)), int(round(self.win_h * factor))
            if ww > max_size[0] or wh > max_size[1] or ww > w or wh > h:
                break
            if ww >= min_size[0] and wh >= min_size[1]:
                sw, sh = int(round(w / factor)), int(round(h / factor))
                small = gray if factor == 1.0 else cv2.resize(gray, (sw, sh), interpolation=cv2.INTER_LINEAR)
                step = 1 if factor > 2 else 2
                for x, y in self._detect_at_scale(small, step):
                    rects.append((int(round(x * factor)), int(round(y * factor)), ww, wh))
            factor *= scale_factor
        return group_rectangles(rects, min_neighbors)


def group_rectangles(rects: list[tuple[int, int, int, int]], min_neighbors: int, eps: float = 0.2) -> np.ndarray:
    """OpenCV's grouping: cluster similar rectangles, keep clusters with more than `min_neighbors`
    members, average them, and drop a small cluster that lies inside a stronger one."""
    n = len(rects)
    if n == 0:
        return np.zeros((0, 4), np.int32)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        xi, yi, wi, hi = rects[i]
        for j in range(i + 1, n):
            xj, yj, wj, hj = rects[j]
            delta = eps * (min(wi, wj) + min(hi, hj)) * 0.5
            if (abs(xi - xj) <= delta and abs(yi - yj) <= delta and abs(xi + wi - xj - wj) <= delta
                    and abs(yi + hi - yj - hj) <= delta):
                parent[find(i)] = find(j)
    clusters: dict[int, list[int]] = {}
    for i in range(n):
        clusters.setdefault(find(i), []).append(i)
    groups = []
    for members in clusters.values():
        if len(members) <= min_neighbors:
            continue
        arr = np.array([rects[m] for m in members], np.float64)
        groups.append((arr.mean(axis=0), len(members)))
    out = []
    for i, (r, cnt) in enumerate(groups):
        inside = False
        for j, (r2, cnt2) in enumerate(groups):
            if i == j or cnt2 < cnt:
                continue
            dx, dy = r2[2] * eps, r2[3] * eps
            if (r[0] >= r2[0] - dx and r[1] >= r2[1] - dy and r[0] + r[2] <= r2[0] + r2[2] + dx
                    and r[1] + r[3] <= r2[1] + r2[3] + dy and (cnt2 > cnt or (cnt2 == cnt and j < i))):
                inside = True
                break
        if not inside:
            out.append(np.round(r).astype(np.int32))
    return np.array(out, np.int32).reshape(-1, 4)
