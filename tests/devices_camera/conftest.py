"""Camera test peers: synthetic pages with known corners, and video files written for cv2.VideoCapture."""
from __future__ import annotations

import pytest

from standins.camera_scenes import make_frame

SIZE = (1024, 768)


@pytest.fixture(scope="session")
def frames():
    """make_frame with a per-session cache (frames are deterministic by variant and seed)."""
    cache: dict = {}

    def get(variant: str, seed: int = 0, size: tuple[int, int] = SIZE):
        key = (variant, seed, size)
        if key not in cache:
            cache[key] = make_frame(variant, size=size, seed=seed)
        return cache[key]

    return get


@pytest.fixture
def seeds(full_counts) -> list[int]:
    return list(range(24 if full_counts else 4))
