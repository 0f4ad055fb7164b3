"""Pages a clerk can read at a price a village line can pay (issue 14 item 6), on photographed A4 pages.

The full measurement (three documents, 9-14 pt, the raw frame and the naive pipeline beside ours) is
bench/legibility.py; these are its two promises on one photograph each."""
from __future__ import annotations

import shutil

import pytest

from bench.legibility import MAX_BYTES, cer, levenshtein, ocr, render_document, tesseract_available
from devices.camera.pipeline import process
from standins.camera_scenes import photograph


def test_character_error_rate_is_edit_distance_over_reference_length():
    assert levenshtein("淄博市周村区", "淄博市周村区") == 0
    assert levenshtein("淄博市周村区", "淄博巿周村") == 2  # one substitution, one deletion
    assert levenshtein("", "王秀兰") == 3
    assert cer("申请人：王秀兰", "申 请 人:王秀兰") == 0.0  # spacing and full-width forms do not count
    assert cer("申请人王秀兰", "申请人王秀") == pytest.approx(1 / 6)


@pytest.mark.parametrize("name", ["form", "certificate"])
def test_a4_page_fits_a_village_line(name):
    """The densest page (14 pt fills an A4 form with the most ink) stays within 250 KB, text or colour."""
    doc = render_document(name, 14.0)
    r = process(photograph(doc.image, seed=202).image)
    assert r.ok, [p.code for p in r.problems]
    assert r.colour is (name == "certificate")  # the red seal keeps the certificate in colour
    h, w = r.image.shape[:2]
    assert 1.35 < h / w < 1.48  # a whole A4 page came out
    assert len(r.jpeg) <= MAX_BYTES


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr not installed (scripts/setup.sh)")
def test_a_12_pt_page_stays_legible_by_ocr():
    assert tesseract_available(), "tesseract-ocr-chi-sim is missing (scripts/setup.sh installs it)"
    doc = render_document("form", 12.0)
    r = process(photograph(doc.image, seed=203).image)
    assert r.ok and len(r.jpeg) <= MAX_BYTES
    text = ocr(r.jpeg)
    assert cer(doc.text, text) <= 0.06, text  # a clerk reads it: a few characters of 220 at most
    assert "王秀兰" in text.replace(" ", "")  # the applicant's name reads back
