"""The camera adapter over cv2.VideoCapture reading video files the test writes; the simulated driver."""
from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from devices.base import DeviceLost, DeviceState, EventKind
from kiosk.bootstrap import drivers
from standins.camera_scenes import quad_iou

from .conftest import SIZE


@pytest.fixture
def video(tmp_path, frames):
    """An MJPG .avi of document frames, as a UVC 高拍仪 would deliver them."""
    path = tmp_path / "camera.avi"
    w, h = SIZE
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    assert out.isOpened()
    shots = [frames("good", 0), frames("good", 1), frames("blurred", 0)]
    for f in shots:
        out.write(f.image)
    out.release()
    return path, shots


def camera(path, **extra):
    s = {"driver": "opencv", "device": str(path), "width": SIZE[0], "height": SIZE[1], "preview_width": 320,
         "reconnect_initial_s": 0.05, "reconnect_max_s": 0.2}
    s.update(extra)
    return drivers.create("camera", s)


def test_preview_is_reduced_and_stills_are_full_size(video):
    path, shots = video
    cam = camera(path, loop=True)
    cam.open()
    try:
        assert cam.status.state is DeviceState.READY
        assert cam.actual_size == SIZE
        prev = cam.preview_frame()
        assert prev.shape[1] == 320 and abs(prev.shape[0] - 240) <= 1
        still = cam.capture_still()
        assert still.shape[:2] == (SIZE[1], SIZE[0])
        for _ in range(5):  # past the end of the file: it rewinds
            cam.read_frame()
        assert cam.frames >= 7
    finally:
        cam.close()


def test_scan_through_the_camera(video):
    path, shots = video
    cam = camera(path)
    cam.open()  # open() reads the first frame
    try:
        r = cam.scan()  # second frame: good page, seed 1
        assert r.ok and quad_iou(r.corners, shots[1].corners) >= 0.9
        r = cam.scan()  # third frame: blurred
        assert not r.ok and "blurred" in [p.code for p in r.problems]
        st = cam.statistics
        assert st["operations"] == 2 and st["failures"] == 1 and st["last_error"] == "blurred"
    finally:
        cam.close()


def test_camera_missing_then_plugged_in(video, tmp_path):
    path, _ = video
    later = tmp_path / "later.avi"
    cam = camera(later)
    events = []
    cam.add_listener(events.append)
    cam.open()
    try:
        assert cam.status.state is DeviceState.OFFLINE
        shutil.copy(path, later)  # the camera appears
        assert cam.wait_for_state(DeviceState.READY, timeout=10)
        cam.flush_events()
        assert EventKind.DEVICE_BACK in [e.kind for e in events]
    finally:
        cam.close()


def test_stream_ends_means_lost_then_back(video):
    path, _ = video
    cam = camera(path)  # no loop: the end of the file is a camera that stopped delivering
    events = []
    cam.add_listener(events.append)
    cam.open()
    try:
        with pytest.raises(DeviceLost):
            for _ in range(5):
                cam.read_frame()
        assert cam.wait_for_state(DeviceState.READY, timeout=10)  # reopened from the start
        cam.flush_events()
        kinds = [e.kind for e in events]
        assert EventKind.DEVICE_LOST in kinds and EventKind.DEVICE_BACK in kinds
        assert cam.health("external").ok
    finally:
        cam.close()


def test_simulated_camera_has_the_same_contract():
    cam = drivers.create("camera", {"driver": "simulated", "width": 1024, "height": 768, "variant": "glare"})
    cam.open()
    try:
        assert cam.preview_frame().shape[1] == 640
        r = cam.scan()
        assert not r.ok and "glare" in [p.code for p in r.problems]
        cam.variant = "good"
        assert cam.scan().ok
        cam.present = False
        with pytest.raises(DeviceLost):
            cam.read_frame()
        assert cam.status.state is DeviceState.OFFLINE
        cam.present = True
        assert cam.wait_for_state(DeviceState.READY, timeout=10)
        assert isinstance(cam.capture_still(), np.ndarray)
    finally:
        cam.close()


def test_simulated_camera_renders_a_variants_frames_at_its_first_use():
    """The stand-in's frames are made when a variant is first shown (a soak's warm-up), not one at a time later:
    its memory must not pass for the kiosk's growth in a long soak."""
    cam = drivers.create("camera", {"driver": "simulated", "width": 320, "height": 240, "variant": "too_dark"})
    cam.open()
    try:
        first = cam.read_frame()
        assert sorted(cam._cache) == [("too_dark", s) for s in range(4)]
        frames = [cam.read_frame() for _ in range(8)]
        assert len(cam._cache) == 4
        assert first.shape == (240, 320, 3) and any((f != frames[0]).any() for f in frames[1:4])  # a fluid preview
    finally:
        cam.close()
