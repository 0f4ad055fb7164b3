"""The screens' scrolling views keep one bar-colour binding however often they scroll (widgets.KScrollView)."""
from __future__ import annotations

import pytest
from kivy.clock import Clock
from kivy.uix.label import Label

from screens.widgets import KScrollView, walk

pytestmark = pytest.mark.ui


def bar_bindings(view) -> int:
    return len(view.get_property_observers("bar_color")) + len(view.get_property_observers("bar_inactive_color"))


def test_updates_faster_than_the_bar_fades_add_no_bindings():
    view = KScrollView()
    view.add_widget(Label(size_hint_y=None, height=2000))
    for _ in range(50):
        view.update_from_scroll()
        view.update_from_scroll()  # again before the bar fades: Kivy's own ScrollView keeps one more binding
        Clock.tick()
    assert bar_bindings(view) <= 1
    view._bind_inactive_bar_color()
    view._bind_inactive_bar_color()
    assert bar_bindings(view) <= 1


def test_a_guide_shown_many_times_keeps_one_binding(ui):
    app, drv, svc = ui
    for code in ["QHB-RS-018", "QHB-RS-027", "QHB-RS-005"] * 4:
        app.go("guide", code=code)
        drv.pump(0.1)
        app.home()
        drv.pump(0.05)
    views = [w for w in walk(app.screen("guide")) if isinstance(w, KScrollView)]
    assert views and all(bar_bindings(v) <= 1 for v in views)
