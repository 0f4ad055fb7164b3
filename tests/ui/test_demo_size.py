"""`kiosk demo --size WxH`: the walk-through rendered at the size a kiosk ships with."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    return subprocess.run([sys.executable, "-m", "kiosk.cli.main", "demo", "--out", str(tmp_path), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("bad", ["1080", "10x10"])
def test_a_bad_size_is_a_plain_usage_error(tmp_path, bad):
    r = _demo(tmp_path, "--size", bad)
    assert r.returncode == 2 and "--size" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "walkthrough.json").exists()


@pytest.mark.slow
def test_the_walkthrough_renders_upright(tmp_path, full_counts):
    if not full_counts:
        pytest.skip("the whole walk-through: KIOSK_TEST_FULL=1")
    import cv2

    r = _demo(tmp_path, "--size", "1080x1920")
    assert r.returncode == 0, r.stderr[-2000:]
    walk = json.loads((tmp_path / "walkthrough.json").read_text(encoding="utf-8"))
    assert walk["window"] == [1080, 1920]
    first = cv2.imread(str(tmp_path / walk["steps"][0]["png"]))
    assert first.shape[:2] == (1920, 1080)
