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
    svc.visit.touch()  # a citizen at work: the walk is slower than the idle timeout
    needs_card = name in ("form", "materials", "review", "identify")
    d = svc.ctx.session.data
    fresh = name in ("identify", "review")  # the form and materials screens reuse the identify screen's visit
    if needs_card and (fresh or d.identity is None or d.item_code != APPLY_ITEM):
        svc.visit.end_visit("prepare")
        svc.ctx.devices["idcard"].remove_card()
        drv.pump(0.3)
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
    if name == "property":  # with the place words the pinyin offers
        drv.type_keys("scl")
    drv.pump(0.3)


#: the screens kiosks ship with: the upright 政务一体机 first, 1280x800 (the tests' window) last
WINDOW_SIZES = [(1080, 1920), (1920, 1080), (1366, 768), (1280, 800)]

SCREENS = ["home", "search", "browse", "guide", "identify", "form", "materials", "review", "progress",
           "certificate", "property", "help", "rating", "out_of_service", "technician"]


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
            out += clipped_text(w)
        out += overflowing_box(w)
        if isinstance(w, ButtonBehavior):
            need = dp(m.target_dp)
            if w.width + 1e-6 < need or w.height + 1e-6 < need:
                out.append(f"{type(w).__name__}[{getattr(w, 'key', '')}] {w.width:.0f}x{w.height:.0f} < {need:.0f}")
            out += off_screen(w)
    return out


def clipped_text(w) -> list[str]:
    """A label whose rendered text is larger than its widget: cut at the edges or drawn over its
    neighbours. Where text_size fixes the height too (the text is laid out into a box), the text
    is laid out again without that height to see whether lines fell off; a shortened label must
    not have elided anything."""
    where = f"{type(w).__name__}[{getattr(w, 'key', '')}]({str(w.text)[:14]!r})"
    tw, th = w.texture_size
    if tw > w.width + 1 or th > w.height + 1:
        return [f"{where} text {tw:.0f}x{th:.0f} > widget {w.width:.0f}x{w.height:.0f}"]
    box_w, box_h = w.text_size
    if box_h is not None or w.shorten or w.max_lines:
        core = w._label
        opts = {**core.options, "text_size": (box_w, None), "shorten": False, "max_lines": 0}
        free = type(core)(text=w.text, **{k: v for k, v in opts.items() if k != "text"})
        free.refresh()
        fw, fh = free.texture.size if free.texture is not None else (0, 0)
        limit_w = box_w if box_w is not None else w.width
        limit_h = box_h if box_h is not None else w.height
        if (w.shorten and fw > limit_w + 1) or fh > limit_h + 1:
            return [f"{where} text needs {fw:.0f}x{fh:.0f}, laid out in {limit_w:.0f}x{limit_h:.0f}"]
    return []


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


def set_window(drv, size) -> None:
    from kivy.core.window import Window

    if tuple(Window.size) != tuple(size):
        Window.size = size
        drv.pump(0.3)
    assert tuple(Window.size) == tuple(size)


@pytest.mark.parametrize("size", WINDOW_SIZES, ids=[f"{w}x{h}" for w, h in WINDOW_SIZES])
def test_every_screen_meets_the_minimums(kiosk, size):
    """Every screen, both modes, at this window size: one app, resized between the passes."""
    app, drv, svc = kiosk
    problems = {}
    try:
        set_window(drv, size)
        for mode in ("normal", "elderly"):
            svc.visit.end_visit("next pass")  # the last pass left a case under review
            drv.wait_until(lambda: svc.ctx.events.pending() == 0, what="clear event handled")
            drv.pump(0.2)
            if (mode == "elderly") != svc.mode.elderly:
                app.toggle_elderly()
            assert theme.elderly == (mode == "elderly")
            for name in SCREENS:
                prepare(app, drv, svc, name)
                assert app.current == name, (app.screen_log[-4:], app.recoveries)
                bad = violations(app.root, mode)
                if bad or tuple(size) == (1280, 800):  # pictures of what failed, and of the tests' window
                    drv.screenshot(drv.artifacts / f"{size[0]}x{size[1]}" / f"{mode}-{name}.png")
                if bad:
                    problems[f"{mode}/{name}"] = bad
    finally:
        if svc.mode.elderly:
            app.toggle_elderly()
        svc.visit.end_visit("done")
        svc.ctx.devices["idcard"].remove_card()
        set_window(drv, (1280, 800))
    assert not problems, "\n".join(f"{k}: {v}" for k, v in problems.items())


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


def test_the_check_catches_clipped_text(kiosk):
    """Three ways text gets cut: wrapped taller than its button, laid out into a box too small, elided."""
    from kivy.uix.label import Label as PlainLabel

    from screens.widgets import KButton

    app, drv, svc = kiosk
    tall = KButton(text="帮办代办\n上门服务\n第三行\n第四行", key="tall", size_hint=(None, None))
    tall.size = (dp(200), dp(80))
    boxed = PlainLabel(text="一行\n两行\n三行\n四行", size_hint=(None, None), size=(dp(300), dp(40)))
    boxed.text_size = boxed.size
    elided = PlainLabel(text="周村区城北路街道便民服务站" * 3, size_hint=(None, None), size=(dp(200), dp(40)),
                        shorten=True)
    elided.text_size = elided.size
    fits = KButton(text="回首页", key="fits", size_hint=(None, None))
    fits.size = (dp(200), dp(80))
    for w in (tall, boxed, elided, fits):
        w.texture_update()
    assert clipped_text(tall) and clipped_text(boxed) and clipped_text(elided)
    assert clipped_text(fits) == []


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
