"""`kiosk device qr decode IMAGE`."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from qr_helpers import qr_frame, write_video  # type: ignore

from kiosk.cli.main import cli


@pytest.mark.parametrize("decoder", ["zxing", "pyzbar"])
def test_decode_image_json(tmp_path, decoder):
    path = str(tmp_path / "c.png")
    cv2.imwrite(path, qr_frame("QHB1:CLI", size=(1280, 720), box=8, at=(500, 100)))
    r = CliRunner().invoke(cli, ["device", "qr", "decode", path, "--json", "--decoder", decoder])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["text"] == "QHB1:CLI" and out["format"] == "QR_CODE" and out["ms"] >= 0
    r = CliRunner().invoke(cli, ["device", "qr", "decode", path])
    assert r.exit_code == 0 and "QHB1:CLI" in r.output


def test_decode_video_file(tmp_path):
    blank = np.full((480, 640, 3), 200, np.uint8)
    path = write_video(str(tmp_path / "v.avi"), [blank, blank, qr_frame("in video")])
    r = CliRunner().invoke(cli, ["device", "qr", "decode", path, "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["text"] == "in video"


def test_no_code_exit_1_and_unreadable_exit_2(tmp_path):
    path = str(tmp_path / "blank.png")
    cv2.imwrite(path, np.full((100, 100, 3), 255, np.uint8))
    r = CliRunner().invoke(cli, ["device", "qr", "decode", path, "--json"])
    assert r.exit_code == 1 and json.loads(r.output)["text"] is None
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    assert CliRunner().invoke(cli, ["device", "qr", "decode", str(junk)]).exit_code == 2


def test_classify_cli():
    r = CliRunner().invoke(cli, ["device", "qr", "classify", "https://evil.example.com", "--json"])
    assert r.exit_code == 2 and json.loads(r.output)["reason"] == "url_not_allowed"
    r = CliRunner().invoke(cli, ["device", "qr", "classify", "https://zwfw.sd.gov.cn/a", "--allow-url",
                                 "zwfw.sd.gov.cn", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["kind"] == "url"
