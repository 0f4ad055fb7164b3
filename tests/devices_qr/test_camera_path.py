"""The camera path: images and video files through VideoCapture, both backends, dedupe, downscale."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from qr_helpers import Events, qr_frame, write_video  # type: ignore

from devices.base import DeviceState, EventKind
from devices.qr.common import Deduper
from devices.qr.decoders import QrImageDecoder
from kiosk.bootstrap import drivers


@pytest.mark.parametrize("backend", ["zxing", "pyzbar"])
def test_both_backends_decode_an_image_and_agree(backend):
    frame = qr_frame("QHB1:TEST", size=(1920, 1080), box=10, at=(900, 300))
    d = QrImageDecoder(backend)
    got = d.decode(frame)
    assert [g.text for g in got] == ["QHB1:TEST"] and got[0].format == "QR_CODE" and got[0].ms > 0
    x, y, w, h = got[0].rect
    assert 850 < x < 1100 and 250 < y < 450  # rect mapped back to full-frame coordinates


def test_small_code_found_by_full_frame_fallback_and_then_roi():
    frame = qr_frame("tiny", size=(1920, 1080), box=2, at=(1500, 800))
    d = QrImageDecoder("zxing", max_side=480)
    assert [g.text for g in d.decode(frame)] == ["tiny"]
    assert d._last_rect is not None
    assert [g.text for g in d.decode(frame)] == ["tiny"]


def test_blank_frame_finds_nothing():
    assert QrImageDecoder("zxing").decode(np.full((720, 1280, 3), 128, np.uint8)) == []
    with pytest.raises(ValueError):
        QrImageDecoder("opencv")


def test_dedupe_window():
    d = Deduper(2.0)
    assert d.is_new("a", 0.0) and not d.is_new("a", 1.0) and not d.is_new("a", 2.9)
    assert d.is_new("b", 3.0) and d.is_new("a", 5.0)


def test_rearm_reports_a_held_code_once_more_after_the_window():
    d = Deduper(2.0)
    assert d.is_new("held", 0.0) and d.is_new("other", 0.5)
    d.rearm(1.0)
    seen = [d.is_new("held", t / 10) for t in range(11, 60)]  # still in view, seen every 0.1 s
    assert seen.count(True) == 1 and seen.index(True) == 30 - 11  # at 3.0 s: the window after the re-arm
    assert d.is_new("other", 7.0)  # gone out of view meanwhile: new anyway
    assert not d.is_new("other", 7.5)  # re-armed once, not for good


def test_rearm_forgets_codes_that_left_view():
    d = Deduper(2.0)
    d.is_new("a", 0.0)
    d.rearm(0.5)
    assert d.is_new("b", 5.0)  # expires "a" and its re-arm
    assert d.is_new("a", 5.1) and not d.is_new("a", 5.2)


def test_video_file_reports_each_code_once(tmp_path):
    blank = np.full((480, 640, 3), 200, np.uint8)
    frames = [blank] * 3 + [qr_frame("QHB1:CODE-A")] * 5 + [blank] * 2 + [qr_frame("other code")] * 4
    path = write_video(str(tmp_path / "scan.avi"), frames)
    dev = drivers.create("qr", {"driver": "camera", "source": path, "dedupe_window_s": 60})
    ev = Events(dev)
    with dev:
        assert dev.status.state == DeviceState.READY
        found = dev.scan_until(100)
        assert dev.health("external").ok is False  # end of the file: no frame
    assert [f["text"] for f in found] == ["QHB1:CODE-A", "other code"]
    assert found[0]["frame"] == 4
    dev.flush_events()
    scanned = ev.of(EventKind.CODE_SCANNED)
    assert [e.payload["text"] for e in scanned] == ["QHB1:CODE-A", "other code"]
    assert scanned[0].payload["refused"]["reason"] == "bad_tracking"  # QHB1: prefix with no valid number
    assert scanned[1].payload["kind"] == "unrecognised"


def looping_camera(tmp_path, text: str, dedupe_window_s: float):
    """A camera scanner on a looping video of one code: a code held in view. (scanner, its event recorder)"""
    path = write_video(str(tmp_path / "loop.avi"), [qr_frame(text)] * 3)
    dev = drivers.create("qr", {"driver": "camera", "source": path, "loop": True,
                                "dedupe_window_s": dedupe_window_s, "decoder": "pyzbar"})
    return dev, Events(dev)


def test_polling_camera_on_looping_file(tmp_path):
    dev, ev = looping_camera(tmp_path, "https://example.com/x", 60)
    with dev:
        dev.start_polling()
        assert ev.wait(EventKind.CODE_SCANNED)
    scanned = ev.of(EventKind.CODE_SCANNED)
    assert len(scanned) == 1  # looping video, same code: reported once in the window
    assert scanned[0].payload["refused"]["reason"] == "url_not_allowed"
    assert dev.frames >= 1


def test_a_code_held_to_a_polling_camera_counts_again_after_rearm(tmp_path):
    """The looping file is a receipt held in view: one report, then one more after `rearm()` (a failed look-up)."""
    dev, ev = looping_camera(tmp_path, "QHB1:HELD", 0.3)
    with dev:
        dev.start_polling()
        assert ev.wait(EventKind.CODE_SCANNED)
        dev.rearm()
        assert ev.wait(EventKind.CODE_SCANNED, n=2)
        frames_then, guard = dev.frames, time.monotonic() + 30
        while dev.frames < frames_then + 20 and time.monotonic() < guard:  # 20 more frames in view: nothing new
            time.sleep(0.02)
        assert dev.frames >= frames_then + 20
    assert ev.count(EventKind.CODE_SCANNED) == 2


def test_missing_camera_is_offline_then_back(tmp_path):
    path = str(tmp_path / "later.avi")
    dev = drivers.create("qr", {"driver": "camera", "source": path, "reconnect_initial_s": 0.05,
                                "reconnect_max_s": 0.1})
    ev = Events(dev)
    with dev:
        assert dev.status.state == DeviceState.OFFLINE and dev.status.code == "camera_missing"
        write_video(path, [qr_frame("back")] * 2)
        assert ev.wait(EventKind.DEVICE_BACK)
        assert [f["text"] for f in dev.scan_until(10)] == ["back"]


def test_image_file_through_videocapture(tmp_path):
    path = str(tmp_path / "code.png")
    cv2.imwrite(path, qr_frame("QHB1:IMG", size=(800, 600)))
    dev = drivers.create("qr", {"driver": "camera", "source": path})
    with dev:
        assert [f["text"] for f in dev.scan_until(5)] == ["QHB1:IMG"]
