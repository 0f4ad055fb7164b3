"""`kiosk device printer render` and `test-page` on files; the QR read back with pyzbar."""
from __future__ import annotations

import json
import subprocess
import sys

from PIL import Image
from pyzbar import pyzbar

from kiosk.domain.tracking import new_tracking_no, parse_qr_payload

from .conftest import FULL_ID, PROJECT_ROOT


def kiosk(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kiosk.cli.main", *args], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)


def test_render_receipt_json(tmp_path):
    tn = new_tracking_no()
    src = tmp_path / "receipt.json"
    src.write_text(json.dumps({
        "station": "周村区城北路街道便民服务站", "item": "居民医保参保登记", "applicant_name": "王小明",
        "applicant_id": FULL_ID, "tracking_no": tn, "submitted_at": "2026-11-27T09:05:00+08:00",
        "promised_date": "2026-12-01", "queued": False}, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "r.png"
    r = kiosk("device", "printer", "render", str(src), "--png", str(out))
    assert r.returncode == 0, r.stderr
    img = Image.open(out).convert("L")
    codes = pyzbar.decode(img)
    assert [parse_qr_payload(c.data.decode()) for c in codes] == [tn]


def test_render_bad_json_names_the_field_not_the_data(tmp_path):
    src = tmp_path / "receipt.json"
    src.write_text(json.dumps({"station": "站", "item": "事项", "applicant_id": FULL_ID,
                               "tracking_no": "LQ1", "queued": False}), encoding="utf-8")
    r = kiosk("device", "printer", "render", str(src), "--png", str(tmp_path / "x.png"))
    assert r.returncode == 1 and "submitted_at" in r.stderr and FULL_ID not in r.stderr
    assert not (tmp_path / "x.png").exists()


def test_test_page_on_the_simulated_printer(tmp_path):
    r = kiosk("device", "printer", "test-page", "--out", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["ok"] and res["driver"] == "simulated"
    codes = pyzbar.decode(Image.open(res["png"]).convert("L"))
    assert [c.data for c in codes] == [b"QHB1:TEST-PAGE"]
