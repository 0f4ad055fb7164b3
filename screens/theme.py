"""Sizes and colours of the kiosk, in one place, with the 适老化 minimums they must meet.

Two modes: normal and elderly (长辈版). kv rules read `theme.*`, so switching
mode resizes every text and button at once. The MIIT 2021 minimums are data
(`MINIMUMS`) so a test can hold every screen against them.
"""
from __future__ import annotations

from dataclasses import dataclass

from kivy.event import EventDispatcher
from kivy.metrics import dp
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty

FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"


@dataclass(frozen=True)
class Minimums:
    body_dp: float
    headline_dp: float
    target_dp: float
    line_height: float = 1.3
    contrast: float = 4.5


MINIMUMS = {
    "normal": Minimums(body_dp=18, headline_dp=30, target_dp=44),
    # Elderly mode: body larger than normal's minimum, targets at least 60x60.
    "elderly": Minimums(body_dp=24, headline_dp=30, target_dp=60),
}

# Sizes actually used (dp), per mode; each is at or above the minimum.
SIZES = {
    "normal": dict(body=22, small=20, head=34, brand=40, button=26, target=72, tile_h=96, key=64, spacing=16),
    "elderly": dict(body=28, small=26, head=42, brand=44, button=32, target=80, tile_h=96, key=80, spacing=20),
}


def _hex(h: str) -> list[float]:
    h = h.lstrip("#")
    return [int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)] + [1.0]


# Calm, high-contrast palette: dark text on near-white, white text on deep colours.
PALETTE = {
    "bg": "#F4F6F8",
    "surface": "#FFFFFF",
    "text": "#1A1F24",
    "muted": "#3D4852",  # secondary text, still >= 7:1 on bg
    "primary": "#0B4F9C",  # 齐好办 blue; buttons
    "on_primary": "#FFFFFF",
    "secondary": "#DCE6F2",
    "on_secondary": "#0A2F5C",
    "bar": "#0A3D7A",
    "on_bar": "#FFFFFF",
    "warn": "#FFF1D6",
    "on_warn": "#6B3A00",
    "danger": "#A4161A",
    "on_danger": "#FFFFFF",
    "ok": "#1E6B35",
    "on_ok": "#FFFFFF",
}

# Pairs (foreground, background) the kv files actually use; each must reach 4.5:1.
COLOUR_PAIRS = [
    ("text", "bg"), ("text", "surface"), ("muted", "bg"), ("muted", "surface"),
    ("on_primary", "primary"), ("on_secondary", "secondary"), ("on_bar", "bar"),
    ("on_warn", "warn"), ("on_danger", "danger"), ("on_ok", "ok"), ("primary", "surface"), ("primary", "bg"),
]


def relative_luminance(rgb: list[float]) -> float:
    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(fg: list[float], bg: list[float]) -> float:
    """WCAG 2 contrast ratio between two RGB(A) colours in 0..1."""
    a, b = relative_luminance(fg), relative_luminance(bg)
    hi, lo = max(a, b), min(a, b)
    return (hi + 0.05) / (lo + 0.05)


class Theme(EventDispatcher):
    """Live theme: kv binds to these properties."""

    elderly = BooleanProperty(False)
    font = StringProperty(FONT)
    body = NumericProperty(dp(SIZES["normal"]["body"]))
    small = NumericProperty(dp(SIZES["normal"]["small"]))
    head = NumericProperty(dp(SIZES["normal"]["head"]))
    brand = NumericProperty(dp(SIZES["normal"]["brand"]))
    button = NumericProperty(dp(SIZES["normal"]["button"]))
    target = NumericProperty(dp(SIZES["normal"]["target"]))
    tile_h = NumericProperty(dp(SIZES["normal"]["tile_h"]))
    key = NumericProperty(dp(SIZES["normal"]["key"]))
    spacing = NumericProperty(dp(SIZES["normal"]["spacing"]))
    line_height = NumericProperty(1.35)

    bg = ListProperty(_hex(PALETTE["bg"]))
    surface = ListProperty(_hex(PALETTE["surface"]))
    text = ListProperty(_hex(PALETTE["text"]))
    muted = ListProperty(_hex(PALETTE["muted"]))
    primary = ListProperty(_hex(PALETTE["primary"]))
    on_primary = ListProperty(_hex(PALETTE["on_primary"]))
    secondary = ListProperty(_hex(PALETTE["secondary"]))
    on_secondary = ListProperty(_hex(PALETTE["on_secondary"]))
    bar = ListProperty(_hex(PALETTE["bar"]))
    on_bar = ListProperty(_hex(PALETTE["on_bar"]))
    warn = ListProperty(_hex(PALETTE["warn"]))
    on_warn = ListProperty(_hex(PALETTE["on_warn"]))
    danger = ListProperty(_hex(PALETTE["danger"]))
    on_danger = ListProperty(_hex(PALETTE["on_danger"]))
    ok = ListProperty(_hex(PALETTE["ok"]))
    on_ok = ListProperty(_hex(PALETTE["on_ok"]))

    @property
    def mode(self) -> str:
        return "elderly" if self.elderly else "normal"

    @property
    def minimums(self) -> Minimums:
        return MINIMUMS[self.mode]

    def on_elderly(self, _inst: object, value: bool) -> None:
        sizes = SIZES["elderly" if value else "normal"]
        for name, v in sizes.items():
            setattr(self, name, dp(v))


def colour(name: str) -> list[float]:
    return _hex(PALETTE[name])


theme = Theme()
