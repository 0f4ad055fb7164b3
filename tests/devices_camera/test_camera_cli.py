"""`kiosk device camera scan|pdf|face` on files."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from standins.camera_scenes import make_face_frame, quad_iou

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def kiosk(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kiosk.cli.main", *args], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)


def test_scan_good_page(tmp_path, frames):
    f = frames("good", 3)
    src = tmp_path / "page.png"
    cv2.imwrite(str(src), f.image)
    out = tmp_path / "out" / "page.jpg"
    r = kiosk("device", "camera", "scan", str(src), "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert {"ok", "problems", "corners", "ms"} <= set(res)
    assert res["ok"] is True and res["problems"] == [] and isinstance(res["ms"], float)
    assert quad_iou(np.array(res["corners"], np.float32), f.corners) >= 0.9
    assert out.exists() and out.stat().st_size <= 500_000
    assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).ndim == 2  # a text page comes out grey

    pdf = tmp_path / "material.pdf"
    r = kiosk("device", "camera", "pdf", str(out), str(out), "--out", str(pdf))
    assert r.returncode == 0 and pdf.read_bytes().startswith(b"%PDF")


def test_scan_bad_page_exits_1_with_the_problem(tmp_path, frames):
    src = tmp_path / "page.png"
    cv2.imwrite(str(src), frames("glare", 0).image)
    r = kiosk("device", "camera", "scan", str(src), "--out", str(tmp_path / "o.jpg"), "--json")
    assert r.returncode == 1
    res = json.loads(r.stdout)
    assert res["ok"] is False and "glare" in [p["code"] for p in res["problems"]]


def test_scan_unreadable_input_exits_2(tmp_path):
    src = tmp_path / "notanimage.jpg"
    src.write_bytes(b"hello")
    r = kiosk("device", "camera", "scan", str(src), "--out", str(tmp_path / "o.jpg"))
    assert r.returncode == 2 and "not an image" in r.stderr


def test_face_command(tmp_path):
    src = tmp_path / "face.png"
    cv2.imwrite(str(src), make_face_frame([(0.5, 0.5, 0.28)], size=(640, 480)))
    r = kiosk("device", "camera", "face", str(src), "--json", "--out", str(tmp_path / "crop.jpg"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ok"] and (tmp_path / "crop.jpg").exists()
