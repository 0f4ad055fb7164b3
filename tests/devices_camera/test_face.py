"""Face capture: exactly one frontal face, centred, near enough, sharp and lit (Haar cascade as OpenCV ships it)."""
from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from devices.camera.face import FACE_MESSAGES, FaceSettings, check_face, face_detector
from kiosk.bootstrap import drivers
from standins.camera_scenes import make_face_frame

CASES = {
    "no_face": dict(faces=[]),
    "multiple_faces": dict(faces=[(0.3, 0.5, 0.25), (0.7, 0.5, 0.25)]),
    "not_centred": dict(faces=[(0.2, 0.35, 0.25)]),
    "too_far": dict(faces=[(0.5, 0.5, 0.1)]),
    "blurred": dict(faces=[(0.5, 0.5, 0.28)], blur=2.5),
    "too_dark": dict(faces=[(0.5, 0.5, 0.28)], brightness=0.25),
}


@pytest.fixture
def face_seeds(full_counts):
    return range(6 if full_counts else 2)


def test_one_centred_sharp_face_passes(face_seeds):
    for seed in face_seeds:
        frame = make_face_frame([(0.5, 0.5, 0.28)], size=(640, 480), seed=seed)
        r = check_face(frame)
        assert r.ok, (seed, [p.code for p in r.problems])
        x, y, w, h = r.box
        assert abs(x + w / 2 - 320) < 30 and abs(y + h / 2 - 240) < 40
        assert 0.8 * 0.28 * 640 < w < 1.8 * 0.28 * 640
        assert r.crop is not None and r.crop_jpeg.startswith(b"\xff\xd8")


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_defect_gets_its_message(code, face_seeds):
    for seed in face_seeds:
        r = check_face(make_face_frame(size=(640, 480), seed=seed, **CASES[code]))
        codes = [p.code for p in r.problems]
        assert not r.ok and code in codes, (seed, codes)
        assert all(p.message == FACE_MESSAGES[p.code] for p in r.problems)


def test_messages_are_chinese_and_actionable():
    for code, msg in FACE_MESSAGES.items():
        assert re.search(r"[\u4e00-\u9fff]", msg) and "请" in msg, code


def test_settings_from_device_extras():
    s = FaceSettings.from_settings({"driver": "opencv", "face_min_face_frac": 0.9, "face_blur_min": "10"})
    assert s.min_face_frac == 0.9 and s.blur_min == 10.0
    r = check_face(make_face_frame([(0.5, 0.5, 0.28)], size=(640, 480)), s)
    assert [p.code for p in r.problems] == ["too_far"]


def test_cascade_finds_the_face_at_several_scales():
    detect = face_detector()  # cv2.CascadeClassifier with the wheel's haarcascade_frontalface_default.xml
    for width in (0.2, 0.35):
        frame = make_face_frame([(0.5, 0.5, width)], size=(320, 240))
        rects = detect(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), 1.1, 3, (30, 30))
        assert len(rects) == 1
        x, y, w, h = rects[0]
        assert abs(x + w / 2 - 160) < 15 and abs(y + h / 2 - 120) < 20


def group_rectangles(rects, min_neighbors):
    """OpenCV's grouping of raw detections, the step behind detectMultiScale's minNeighbors."""
    grouped, _weights = cv2.groupRectangles(list(rects), min_neighbors, 0.2)
    return [tuple(r) for r in grouped]


def test_grouping_keeps_dense_clusters_only():
    rects = [(100, 100, 50, 50), (102, 101, 50, 50), (99, 98, 52, 52), (101, 100, 49, 49), (10, 10, 30, 30)]
    out = group_rectangles(rects, 3)
    assert len(out) == 1 and abs(out[0][0] - 100) <= 2
    assert len(group_rectangles(rects, 4)) == 0


def test_camera_capture_face_with_image_files(tmp_path):
    good = tmp_path / "face.png"
    cv2.imwrite(str(good), make_face_frame([(0.5, 0.5, 0.28)], size=(640, 480)))
    cam = drivers.create("camera", {"driver": "simulated", "images": [str(good)]})
    cam.open()
    try:
        r = cam.capture_face()
        assert r.ok and isinstance(r.crop, np.ndarray)
        assert cam.statistics["operations"] == 1
    finally:
        cam.close()


@pytest.mark.parametrize("scene,code", [("one", None), ("none", "no_face"), ("two", "multiple_faces")])
def test_simulated_camera_puts_a_person_in_front_for_face_capture(scene, code):
    """`kiosk run --simulate` can do the certify flow: the simulated camera shows a face for face captures."""
    cam = drivers.create("camera", {"driver": "simulated", "width": 800, "height": 600, "face": scene})
    cam.open()
    try:
        r = cam.capture_face()
        assert r.ok is (code is None)
        if code:
            assert r.problems[0].code == code
        assert cam.scan().corners is not None  # document scans still see a page afterwards
    finally:
        cam.close()


def test_simulated_camera_refuses_an_unknown_face_scene():
    with pytest.raises(Exception, match="face"):
        drivers.create("camera", {"driver": "simulated", "face": "crowd"})
