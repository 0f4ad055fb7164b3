"""适老化: every screen, in both modes, held against the MIIT 2021 minimums (sizes, targets, spacing, contrast)."""
from __future__ import annotations

import pytest
from kivy.metrics import dp
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.label import Label

from screens.theme import COLOUR_PAIRS, MINIMUMS, PALETTE, colour, contrast_ratio, theme
from screens.widgets import Headline, walk
from standins.ui_driver import visible

pytestmark = pytest.mark.ui

APPLY_ITEM = "QHB-RS-027"


def prepare(app, drv, svc, name):
    """Bring the session into the state the screen expects, then open it."""
    if name in ("form", "materials", "review", "identify"):
        svc.visit.end_visit("prepare")
        svc.ctx.devices["idcard"].remove_card()
        drv.pump(0.5)
        svc.visit.choose_item(APPLY_ITEM)
        svc.ctx.devices["idcard"].insert_card()
        svc.identify.start_identify()
        drv.wait_until(lambda: svc.ctx.session.data.identity is not None, what="card read")
        svc.identify.stop_identify()
    params = {"guide": {"code": APPLY_ITEM}, "browse": {"domain": svc.browse.domains()[0]},
              "out_of_service": {"missing": ["printer"], "wanted": "receipt"}}.get(name, {})
    if name == "review":
        svc.visit.set_form({"phone": "13912345678"})
    app.go(name, **params)
    if name == "search":
        drv.type_keys("yl")
    drv.pump(0.3)


SCREENS = ["home", "search", "browse", "guide", "identify", "form", "materials", "review", "progress",
           "certificate", "help", "rating", "out_of_service", "technician"]


def violations(root, mode: str) -> list[str]:
    m = MINIMUMS[mode]
    out = []
    for w in walk(root):
        if not visible(w):
            continue
        if isinstance(w, Label) and str(w.text).strip():
            where = f"{type(w).__name__}({str(w.text)[:12]!r})"
            need = dp(m.headline_dp) if isinstance(w, Headline) else dp(m.body_dp)
            if w.font_size + 1e-6 < need:
                out.append(f"{where} font {w.font_size:.1f} < {need:.1f}")
            if w.line_height + 1e-6 < m.line_height:
                out.append(f"{where} line height {w.line_height} < {m.line_height}")
        out += overflowing_box(w)
        if isinstance(w, ButtonBehavior):
            need = dp(m.target_dp)
            if w.width + 1e-6 < need or w.height + 1e-6 < need:
                out.append(f"{type(w).__name__}[{getattr(w, 'key', '')}] {w.width:.0f}x{w.height:.0f} < {need:.0f}")
            out += off_screen(w)
    return out


def overflowing_box(w) -> list[str]:
    """A vertical box whose fixed-height children need more room than it has: they get drawn over each other."""
    from kivy.uix.boxlayout import BoxLayout

    if not isinstance(w, BoxLayout) or w.orientation != "vertical" or _in_scroll(w):
        return []
    kids = [c for c in w.children if visible(c)]
    if not kids:
        return []
    fixed = sum(c.height for c in kids if c.size_hint_y is None)
    pad = w.padding[1] + w.padding[3] if len(w.padding) == 4 else (w.padding[1] * 2 if len(w.padding) == 2 else w.padding[0] * 2)
    need = fixed + w.spacing * (len(kids) - 1) + pad
    if need > w.height + 2:
        return [f"{type(w).__name__} in {type(w.parent).__name__} needs {need:.0f} px, has {w.height:.0f}"]
    return []


def off_screen(w) -> list[str]:
    """A button pushed out of the window by an overflowing layout cannot be tapped (the screen never scrolls)."""
    from kivy.core.window import Window

    if w.parent is None or type(w.parent).__name__ in ("ScrollView",) or _in_scroll(w):
        return []
    x, y = w.to_window(w.x, w.y)
    if y < -1 or y + w.height > Window.height + 1 or x < -1 or x + w.width > Window.width + 1:
        return [f"{type(w).__name__}[{getattr(w, 'key', '')}] outside the window at ({x:.0f}, {y:.0f})"]
    return []


def _in_scroll(w) -> bool:
    p = w.parent
    while p is not None and p is not p.parent:
        if type(p).__name__ == "ScrollView" or hasattr(p, "scroll_y"):
            return True
        p = p.parent
    return False


@pytest.mark.parametrize("mode", ["normal", "elderly"])
def test_every_screen_meets_the_minimums(kiosk, mode):
    app, drv, svc = kiosk
    if (mode == "elderly") != svc.mode.elderly:
        app.toggle_elderly()
    assert theme.elderly == (mode == "elderly")
    problems = {}
    for name in SCREENS:
        prepare(app, drv, svc, name)
        assert app.current == name
        drv.screenshot(drv.artifacts / f"{mode}-{name}.png")
        bad = violations(app.root, mode)
        if bad:
            problems[name] = bad
    svc.visit.end_visit("done")
    svc.ctx.devices["idcard"].remove_card()
    drv.pump(0.3)
    assert problems == {}


def test_elderly_sizes_are_larger_than_normal():
    from screens.theme import SIZES

    n, e = SIZES["normal"], SIZES["elderly"]
    assert e["body"] > n["body"] >= MINIMUMS["normal"].body_dp
    assert e["body"] >= MINIMUMS["elderly"].body_dp and e["head"] >= MINIMUMS["elderly"].headline_dp
    assert e["target"] >= 60 and n["target"] >= 44 and e["key"] >= 60 and n["key"] >= 44


def test_theme_colours_reach_contrast_4_5():
    low = {(f, b): round(contrast_ratio(colour(f), colour(b)), 2) for f, b in COLOUR_PAIRS
           if contrast_ratio(colour(f), colour(b)) < 4.5}
    assert low == {}
    assert contrast_ratio(colour("text"), colour("bg")) > 12  # calm dark-on-light body text
    assert set(PALETTE) >= {f for f, _ in COLOUR_PAIRS} | {b for _, b in COLOUR_PAIRS}


def test_contrast_ratio_formula():
    assert contrast_ratio([0, 0, 0], [1, 1, 1]) == pytest.approx(21.0)
    assert contrast_ratio([1, 1, 1], [1, 1, 1]) == pytest.approx(1.0)


def test_elderly_mode_pages_fewer_items_waits_longer_and_speaks(kiosk):
    app, drv, svc = kiosk
    if svc.mode.elderly:
        app.toggle_elderly()
    app.go("browse", domain="人社")
    drv.pump(0.2)
    normal_tiles = len(app.screen("browse").pager.grid.children)
    normal_timeout = svc.ctx.session.idle_timeout_s
    app.toggle_elderly()
    app.go("browse", domain="人社")
    drv.pump(0.2)
    elderly_tiles = len(app.screen("browse").pager.grid.children)
    assert elderly_tiles < normal_tiles
    assert svc.ctx.session.idle_timeout_s > normal_timeout
    svc.ctx.speech.spoken.clear()
    app.go("search")
    drv.pump(0.1)
    assert any(key == "screen-search" for key, _ in svc.ctx.speech.spoken)
    app.toggle_elderly()
    svc.visit.end_visit("done")
    drv.pump(0.2)


def test_the_check_catches_small_text_and_small_buttons(kiosk):
    from kivy.uix.boxlayout import BoxLayout

    from screens.widgets import KButton, KLabel

    box = BoxLayout(size=(800, 200))
    small = KLabel(text="小字")
    small.font_size = dp(14)
    b = KButton(text="小", key="tiny", size_hint=(None, None))
    b.size = (dp(40), dp(40))
    box.add_widget(small)
    box.add_widget(b)
    found = violations(box, "normal")
    assert any("font" in v for v in found) and any("tiny" in v for v in found)


@pytest.mark.parametrize("mode", ["normal", "elderly"])
def test_a_long_choice_list_pages_instead_of_overflowing(kiosk, mode):
    """QHB-RS-018's 缴费档次 has ten choices: every one reachable, none pushed off the screen."""
    app, drv, svc = kiosk
    if (mode == "elderly") != svc.mode.elderly:
        app.toggle_elderly()
    prepare(app, drv, svc, "form")
    svc.visit.choose_item("QHB-RS-018")
    app.go("form")
    drv.pump(0.3)
    form = app.screen("form")
    idx = next(i for i, f in enumerate(form.fields) if f["type"] == "choice" and len(f["choices"]) >= 8)
    form.index = idx
    form.show()
    drv.pump(0.2)
    choices = form.fields[idx]["choices"]
    seen: set[str] = set()
    for _ in range(len(choices)):
        assert violations(app.root, mode) == []
        seen |= {b.payload for b in form.choices_box.children if b.payload}
        if len(seen) == len(choices):
            break
        drv.tap("choice-more")
    assert seen == set(choices)
    last = f"choice-{len(choices) - 1}"
    drv.tap(last)
    assert form.values[form.fields[idx]["name"]] == choices[-1]
    svc.visit.end_visit("done")
    svc.ctx.devices["idcard"].remove_card()
    drv.pump(0.3)
