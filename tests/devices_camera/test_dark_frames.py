"""Darkness is judged before the page search: a frame too dark to judge is `too_dark` (补光), not `no_document`."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from devices.camera.pipeline import process
from devices.camera.quality import MESSAGES, QualityThresholds, frame_too_dark
from kiosk.app.common import CaptureProblem
from kiosk.app.imaging import camera_document
from standins.camera import SimulatedCamera


def _dimmed(frame: np.ndarray, brightness: float) -> np.ndarray:
    return np.clip(frame.astype(np.float32) * brightness, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("brightness", [0.04, 0.08, 0.1])
def test_a_page_in_the_dark_is_too_dark_not_missing(frames, seeds, brightness):
    for seed in seeds:
        r = process(_dimmed(frames("good", seed).image, brightness), encode=False)
        assert [p.code for p in r.problems] == ["too_dark"], (seed, brightness)
        assert "补光" in r.problems[0].message


def test_an_empty_desk_in_normal_light_is_still_no_document(frames, seeds):
    for seed in seeds:
        r = process(frames("no_document", seed).image, encode=False)
        assert [p.code for p in r.problems] == ["no_document"], seed


def test_the_dark_limit_comes_from_device_settings(frames):
    dark = _dimmed(frames("good", 0).image, 0.08)
    gray = cv2.cvtColor(dark, cv2.COLOR_BGR2GRAY)
    assert frame_too_dark(gray, QualityThresholds())
    assert not frame_too_dark(gray, QualityThresholds.from_settings({"quality_dark_frame_p99": 5}))


def test_a_dark_frame_through_the_camera_tells_the_citizen_to_turn_the_light_on(frames, tmp_path):
    """The whole path a capture takes: camera device → pipeline → the message the materials screen shows."""
    path = tmp_path / "dark.png"
    cv2.imwrite(str(path), _dimmed(frames("good", 1, size=(1632, 1224)).image, 0.08))
    cam = SimulatedCamera({"images": [str(path)]})
    cam.open()
    try:
        res = cam.scan()
        assert not res.ok and res.problems[0].code == "too_dark"
        with pytest.raises(CaptureProblem) as err:
            camera_document(cam)
        assert str(err.value) == MESSAGES["too_dark"] and "补光" in str(err.value)
    finally:
        cam.close()
