"""The document pipeline on generated pages: corners vs truth, problems vs the defect, output budget."""
from __future__ import annotations

import re

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.camera.pipeline import PipelineSettings, order_corners, pages_to_pdf, process
from devices.camera.quality import MESSAGES
from standins.camera_scenes import make_frame, quad_iou

BAD = ["blurred", "glare", "too_dark", "cut_off", "too_small", "no_document"]


@pytest.mark.parametrize("variant", ["good", "colour"])
def test_good_pages_are_found_and_accepted(frames, seeds, variant):
    for seed in seeds:
        f = frames(variant, seed)
        r = process(f.image)
        assert r.ok, (seed, [p.code for p in r.problems])
        assert quad_iou(r.corners, f.corners) >= 0.9, seed
        assert len(r.jpeg) <= 500_000
        assert r.colour is (variant == "colour")
        assert (r.image.ndim == 3) is (variant == "colour")
        h, w = r.image.shape[:2]
        assert 1.15 < h / w < 1.65  # an upright page came out (the true aspect is hidden by perspective)


@pytest.mark.parametrize("variant", BAD)
def test_bad_images_are_rejected_with_the_right_problem(frames, seeds, variant):
    for seed in seeds:
        r = process(frames(variant, seed).image)
        codes = [p.code for p in r.problems]
        assert not r.ok and variant in codes, (seed, codes)
        assert all(p.message == MESSAGES[p.code] for p in r.problems)


def test_messages_are_plain_chinese_with_an_action():
    for code, msg in MESSAGES.items():
        assert re.search(r"[\u4e00-\u9fff]", msg) and ("请" in msg), code


def test_page_filling_the_frame_uses_the_full_frame(frames):
    f = frames("good", 1)
    crop = order_corners(f.corners)
    M = cv2.getPerspectiveTransform(crop, np.float32([[0, 0], [799, 0], [799, 1131], [0, 1131]]))
    page_only = cv2.warpPerspective(f.image, M, (800, 1132))
    inner = page_only[40:-40, 40:-40]
    r = process(inner)
    assert r.ok and r.method == "full_frame"
    assert quad_iou(r.corners, np.float32([[0, 0], [inner.shape[1] - 1, 0],
                                           [inner.shape[1] - 1, inner.shape[0] - 1], [0, inner.shape[0] - 1]])) > 0.99


def test_text_page_is_cleaned(frames):
    r = process(frames("good", 2).image)
    paper = np.percentile(r.image, 75)
    assert r.image.ndim == 2 and paper >= 235  # shadow gone: the paper is white everywhere
    h, w = r.image.shape
    quarters = [r.image[:h // 2, :w // 2], r.image[:h // 2, w // 2:], r.image[h // 2:, :w // 2], r.image[h // 2:, w // 2:]]
    assert max(np.percentile(q, 75) for q in quarters) - min(np.percentile(q, 75) for q in quarters) < 12


def test_jpeg_budget_is_met_by_lowering_quality_then_size(frames):
    f = frames("good", 0)
    small_budget = process(f.image, PipelineSettings(jpeg_max_bytes=40_000))
    assert len(small_budget.jpeg) <= 40_000
    decoded = cv2.imdecode(np.frombuffer(small_budget.jpeg, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded is not None and decoded.shape[:2] == small_budget.image.shape[:2]


def test_thresholds_come_from_device_settings(frames):
    f = frames("good", 0)
    strict = PipelineSettings.from_settings({"driver": "opencv", "quality_blur_min": 1e9, "jpeg_max_kb": 300})
    r = process(f.image, strict)
    assert [p.code for p in r.problems] == ["blurred"] and len(r.jpeg) <= 300_000
    with pytest.raises(ValueError):
        PipelineSettings.from_settings({"mode": "sepia"})


def test_pages_to_one_pdf(frames):
    pages = [process(frames("good", s).image).jpeg for s in (0, 1)] + [process(frames("colour", 0).image).jpeg]
    pdf = pages_to_pdf(pages)
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == 3


def test_garbage_input_is_a_problem_not_a_crash():
    assert process(np.zeros((8, 8, 3), np.uint8)).problems[0].code == "no_document"
    assert process(np.zeros((480, 640, 3), np.uint8)).problems[0].code in ("no_document", "too_dark")


@settings(deadline=None)
@given(perm=st.permutations(range(4)), dx=st.floats(-300, 300), dy=st.floats(-300, 300),
       angle=st.floats(-0.6, 0.6))
def test_order_corners_is_independent_of_input_order(perm, dx, dy, angle):
    rect = np.array([[0, 0], [200, 0], [200, 280], [0, 280]], np.float32)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], np.float32)
    quad = rect @ rot.T + np.float32([dx, dy])
    assert np.allclose(order_corners(quad[list(perm)]), order_corners(quad))
    assert np.allclose(order_corners(quad), quad)


def test_full_resolution_frame(full_counts):
    f = make_frame("good", size=(3264, 2448), seed=7)
    r = process(f.image)
    assert r.ok and quad_iou(r.corners, f.corners) >= 0.95 and len(r.jpeg) <= 500_000


def test_blurred_full_resolution_frame_is_still_rejected():
    """At 8 MP the gate's check warp comes from the search copy: blur must still trip it."""
    r = process(make_frame("blurred", size=(3264, 2448), seed=7).image)
    assert not r.ok and "blurred" in [p.code for p in r.problems]


def test_given_corners_skip_the_search(frames):
    f = frames("good", 3)
    found = process(f.image)
    given = process(f.image, corners=f.corners[[2, 3, 0, 1]])  # any order
    assert given.method == "given" and given.ok and "detect" not in given.timings
    assert given.image.shape == found.image.shape and len(given.jpeg) <= 500_000


@pytest.mark.parametrize("angle", [-2.4, -0.9, 0.6, 1.7])
def test_skew_angle_recovers_a_known_rotation(angle):
    from devices.camera.pipeline import skew_angle
    from standins.camera_scenes import render_page

    page = render_page(840, seed=4)
    gray = cv2.cvtColor(page, cv2.COLOR_BGR2GRAY) if page.ndim == 3 else page
    gray = cv2.resize(gray, (640, int(640 * gray.shape[0] / gray.shape[1])), interpolation=cv2.INTER_AREA)
    h, w = gray.shape
    rotated = cv2.warpAffine(gray, cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0), (w, h),
                             borderMode=cv2.BORDER_REPLICATE)
    assert abs(skew_angle(rotated) + angle) <= 0.2


def test_page_warp_reads_only_its_part_of_the_frame_with_the_same_result(frames):
    from devices.camera.pipeline import _source_roi, page_transform

    f = frames("good", 1)
    size, M = page_transform(f.corners)
    R = np.vstack([cv2.getRotationMatrix2D((size[0] / 2, size[1] / 2), 2.5, 1.0), [0.0, 0.0, 1.0]])
    M = R @ M  # a folded-in deskew makes the output corners sample outside the page
    src, M_src = _source_roi(f.image, M, size)
    assert src.shape[0] * src.shape[1] < 0.6 * f.image.shape[0] * f.image.shape[1]
    whole = cv2.warpPerspective(f.image, M, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    part = cv2.warpPerspective(src, M_src, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    assert np.abs(whole.astype(int) - part.astype(int)).max() <= 1
