"""A mode switch re-renders the shown screen's text at once and the hidden screens' text later, and
pagers re-use their tiles: the 长辈版 button answers in one short frame, nothing is left drawn at the old size."""
from __future__ import annotations

import pytest
from kivy.clock import Clock
from kivy.uix.gridlayout import GridLayout

from screens.shown_text import StaleText, stale_text
from screens.widgets import KLabel, Tile, fill_tiles, walk

pytestmark = pytest.mark.ui


def labels_of(screen):
    return [w for w in walk(screen) if isinstance(w, KLabel) and w.text]


def test_hidden_text_waits_for_its_screen_and_is_never_left_stale(ui):
    app, drv, svc = ui
    app.go("guide", code="QHB-RS-018")
    drv.pump(0.3)
    app.home()
    drv.pump(0.3)
    hidden = app.screen("guide")
    assert app.current == "home" and hidden.get_root_window() is None
    in_body = set(walk(hidden.body))  # the body is rebuilt on every entry: its labels are new ones
    label = next(w for w in labels_of(hidden) if w not in in_body)  # the title, there for good
    size_before = tuple(label.texture_size)
    catch_up = stale_text.per_frame
    stale_text.per_frame = 0  # hold the background catch-up: only entering the screen renders
    try:
        app.toggle_elderly()
        Clock.tick()
        assert label in stale_text and tuple(label.texture_size) == size_before  # not rendered while hidden
        assert not any(w in stale_text for w in labels_of(app.screen("home")))  # the shown screen's: at once
        app.go("guide", code="QHB-RS-018")
        assert label not in stale_text  # rendered as the screen is entered, before its first frame
        assert tuple(label.texture_size) != size_before  # in the elderly size
        app.home()
        app.toggle_elderly()
        Clock.tick()
        assert label in stale_text
    finally:
        stale_text.per_frame = catch_up
    drv.wait_until(lambda: len(stale_text) == 0, timeout=30, what="the hidden screens' text caught up")
    caught_up = tuple(label.texture_size)
    label.render_now()
    assert tuple(label.texture_size) == caught_up  # already drawn with the current font size


def test_catch_up_renders_a_few_per_frame_and_stops():
    rendered = []

    class FakeLabel:
        def render_now(self):
            rendered.append(self)
            stale_text_local.discard(self)

    stale_text_local = StaleText(per_frame=2)
    labels = [FakeLabel() for _ in range(5)]
    for lb in labels:
        stale_text_local.add(lb)
    for expected in (2, 4, 5):
        Clock.tick()
        assert len(rendered) == expected
    assert stale_text_local._event is None  # nothing left: no callback every frame


def test_fill_tiles_reuses_tiles_across_pages_and_refits():
    grid = GridLayout(cols=2)
    pressed = []
    entries = [{"text": f"事项{i}", "key": f"item-{i}", "payload": i} for i in range(7)]
    fill_tiles(grid, entries[:4], 80, pressed.append)
    first = list(grid.children)
    fill_tiles(grid, entries[4:7], 80, pressed.append)  # the last page has three
    assert set(grid.children) <= set(first) and len(grid.children) == 3
    assert [t.key for t in grid.children[::-1]] == ["item-4", "item-5", "item-6"]
    fill_tiles(grid, entries[:4], 96, pressed.append)  # back to four, taller: the set-aside tile comes back
    assert set(grid.children) == set(first) and all(t.height == 96 for t in grid.children)
    assert [t.payload for t in grid.children[::-1]] == [0, 1, 2, 3]
    tile = grid.children[-1]
    tile.dispatch("on_release")
    assert pressed == [tile] and isinstance(tile, Tile)  # bound once, however often re-used


def test_fill_widgets_reuses_by_class_and_rebinds_a_changed_handler():
    """A rating box shows level tiles, then reason tiles with another handler: the same widgets, each press
    reaching only the handler of what it shows now."""
    from kivy.uix.boxlayout import BoxLayout

    from screens.widgets import KLabel, Muted, fill_widgets

    box = BoxLayout()
    levels, reasons = [], []
    first = fill_widgets(box, [(Tile, {"text": t, "payload": t}, levels.append) for t in ("非常满意", "满意")])
    second = fill_widgets(box, [(Tile, {"text": "办事慢", "payload": "slow"}, reasons.append),
                                (KLabel, {"text": "请选原因"}, None)])
    assert second[0] is first[0] and box.children[::-1] == second
    second[0].dispatch("on_release")
    assert reasons == [second[0]] and levels == []  # rebound: the level handler no longer fires
    third = fill_widgets(box, [(KLabel, {"text": "办理条件"}, None), (Muted, {"text": "•本人身份证"}, None),
                               (Tile, {"text": "满意", "payload": "ok"}, levels.append)])
    assert third[0] is second[1] and third[2] in first  # the set-aside tile came back
    third[2].dispatch("on_release")
    assert levels == [third[2]] and reasons == [second[0]]
    assert [w.text for w in box.children[::-1]] == ["办理条件", "•本人身份证", "满意"]
