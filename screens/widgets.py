"""The few widget kinds every screen is built from: big labels, big buttons, tiles, keypads, pagers.

Every text widget gets the CJK font through the kv rules in kv/theme.kv; every
button is at least `theme.target` high. Buttons carry a `key` so tests and the
demo can find and press them without reading Chinese labels.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kivy.metrics import dp
from kivy.properties import (
    BooleanProperty,
    ListProperty,
    NumericProperty,
    ObjectProperty,
    OptionProperty,
    StringProperty,
)
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.label import Label
from kivy.uix.scrollview import ScrollView

from screens.shown_text import ShownText, stale_text
from screens.theme import MINIMUMS, theme


class KLabel(ShownText, Label):
    """Body text: wraps to the width, grows in height. Re-rendered where it is seen (screens.shown_text)."""


class Headline(KLabel):
    """Screen title (>= 30 dp)."""


class Muted(KLabel):
    """Secondary text, same minimum size as body."""


class KButton(ShownText, ButtonBehavior, Label):
    """A big rounded button. `style` picks the colour pair from the theme.

    Text that wraps taller than the button is set a little smaller, never below the mode's body
    minimum (a long item name on a tile, a two-line action in elderly mode): cut-off text is worse
    than slightly smaller text. The layout walk (tests/ui/test_accessibility.py) refuses what still
    does not fit.
    """

    key = StringProperty("")
    style = OptionProperty("primary", options=["primary", "secondary", "danger", "ok", "bar"])
    payload = ObjectProperty(None, allownone=True)
    font_size: Any  # Label's NumericProperty (Kivy is untyped)

    def on_texture_size(self, *_: Any) -> None:
        floor = dp(MINIMUMS[theme.mode].body_dp)
        if self.texture_size[1] > self.height - dp(4) and self.font_size > floor and self.height > 1:
            self.font_size = max(floor, self.font_size - dp(2))

    def on_size(self, *_: Any) -> None:
        self._full_font()

    def on_text(self, *_: Any) -> None:
        self._full_font()

    def _full_font(self) -> None:
        if self.font_size != theme.button:
            self.font_size = theme.button

    def on_touch_down(self, touch: Any) -> bool:
        if self.opacity == 0:
            return False  # an invisible button neither works nor blocks what lies beneath
        return super().on_touch_down(touch)


class KScrollView(ScrollView):
    """Kivy's ScrollView without its binding leak (every scrolling part of a screen uses this one).

    Kivy binds `_change_bar_color` to `bar_color` on every scroll update and unbinds it once when the bar
    fades, so a view updated twice before its bar fades keeps one binding more, for good: about 7 a visit in
    the soak, millions in a year of visits, each called whenever the bar's colour changes.
    """

    def update_from_scroll(self, *largs: Any) -> None:
        self.funbind("bar_color", self._change_bar_color)  # Kivy binds it again just below: one is enough
        super().update_from_scroll(*largs)

    def _bind_inactive_bar_color(self, *largs: Any) -> None:
        self.funbind("bar_inactive_color", self._change_bar_color)
        super()._bind_inactive_bar_color(*largs)


class HiddenGuard:
    """Invisible (opacity 0) means inert: no touches taken, none swallowed.

    A merely disabled Kivy widget swallows touches that land on it, and a collapsed
    layout may overflow onto its neighbours, so hidden parts must step aside.
    """

    def on_touch_down(self, touch: Any) -> bool:
        return False if self.opacity == 0 else super().on_touch_down(touch)  # type: ignore[misc,attr-defined]

    def on_touch_move(self, touch: Any) -> bool:
        return False if self.opacity == 0 else super().on_touch_move(touch)  # type: ignore[misc,attr-defined]

    def on_touch_up(self, touch: Any) -> bool:
        return False if self.opacity == 0 else super().on_touch_up(touch)  # type: ignore[misc,attr-defined]


class Hideable(HiddenGuard, BoxLayout):
    """A part of a screen shown only in some stages."""

    shown = BooleanProperty(True)


class HideableGrid(HiddenGuard, GridLayout):
    pass


class Tile(KButton):
    """A large tile for an item or a domain: title plus an optional second line."""

    subtitle = StringProperty("")


def fill_widgets(box: Any, specs: Sequence[tuple[type, dict[str, Any], Callable[[Any], Any] | None]]) -> list[Any]:
    """Make `specs` ((widget class, properties, on_release handler or None)) the children of `box`, in order,
    re-using the widgets it had and those it set aside before (`box.spare_widgets`), class by class.

    A screen's content rebuilt for every visit (a guide's sections, a form's choices, rating tiles) changes
    texts, not widgets: a Kivy widget built with its kv rules costs a few milliseconds, and dropped ones are
    cyclic garbage that only a full collection frees, 5-10 ms a widget (screens.quiet_gc).
    """
    spare: dict[type, list[Any]] = box.__dict__.setdefault("spare_widgets", {})
    for w in box.children[::-1]:
        spare.setdefault(type(w), []).append(w)
    box.clear_widgets()
    shown = []
    for cls, props, on_release in specs:
        pool = spare.get(cls)
        w = pool.pop(0) if pool else cls()
        bound = w.__dict__.get("bound_release")
        if bound != on_release:
            if bound is not None:
                w.unbind(on_release=bound)
            if on_release is not None:
                w.bind(on_release=on_release)
            w.__dict__["bound_release"] = on_release
        for name, value in props.items():
            setattr(w, name, value)
        box.add_widget(w)
        if w in stale_text:  # drawn while set aside, before a mode switch
            w.texture_update()
        shown.append(w)
    return shown


def fill_tiles(grid: Any, entries: Sequence[dict[str, Any]], height: float,
               on_release: Callable[[Tile], Any]) -> None:
    """Show `entries` ({text, subtitle?, key, payload?, style?}) as tiles in `grid` (fill_widgets)."""
    fill_widgets(grid, [(Tile, {"text": e["text"], "subtitle": e.get("subtitle", ""), "key": e.get("key", ""),
                                "payload": e.get("payload"), "style": e.get("style", "secondary"),
                                "height": height}, on_release) for e in entries])


class Key(KButton):
    """A keyboard key: a little smaller than a button, still above the touch minimum."""


class Card(BoxLayout):
    """A white panel with padding."""


class Pager(HiddenGuard, BoxLayout):
    """Shows `entries` a page at a time in a grid, with 上一页/下一页.

    entries: list of dicts {text, subtitle?, key, payload?}; `on_choose(payload)` is called on a press.
    """

    entries = ListProperty([])
    page = NumericProperty(0)
    per_page = NumericProperty(6)
    cols = NumericProperty(2)
    #: as many rows of tiles as the pager's height holds (the page buttons kept below): the room a
    #: 1080x1920 kiosk has is used; `per_page` then only applies until the pager has been laid out
    fit = BooleanProperty(True)
    tile_h = NumericProperty(0)  # 0: theme.tile_h
    on_choose: Callable[[Any], None] | None = None
    grid = ObjectProperty(None)
    pages = NumericProperty(1)
    _shown_per = 0

    def on_entries(self, *_: Any) -> None:
        self.page = 0
        self.refresh()

    def on_per_page(self, *_: Any) -> None:
        self.page = 0
        self.refresh()

    def on_size(self, *_: Any) -> None:
        if self.fit and self.fitted_per_page() != self._shown_per:
            self.page = 0
            self.refresh()

    def on_cols(self, *_: Any) -> None:
        self.on_size()

    def row_height(self) -> float:
        return float(self.tile_h or theme.tile_h)

    def fitted_per_page(self) -> int:
        """Rows that fit above the page buttons, times the columns."""
        sp = theme.spacing
        room = self.height - theme.target - 2 * sp
        rows = max(1, int((room + sp) // (self.row_height() + sp)))
        return rows * max(1, int(self.cols))

    def refresh(self, *_: Any) -> None:
        if self.grid is None:
            return
        per = max(1, self.fitted_per_page() if self.fit and self.height > 1 else int(self.per_page))
        self._shown_per = per
        self.pages = max(1, (len(self.entries) + per - 1) // per)
        self.page = min(self.page, self.pages - 1)
        self.grid.cols = max(1, int(self.cols))
        fill_tiles(self.grid, self.entries[self.page * per:(self.page + 1) * per], self.row_height(), self._pressed)

    def _pressed(self, tile: Tile) -> None:
        if self.on_choose:
            self.on_choose(tile.payload)

    def next_page(self) -> None:
        if self.page < self.pages - 1:
            self.page += 1
            self.refresh()

    def prev_page(self) -> None:
        if self.page > 0:
            self.page -= 1
            self.refresh()


class KeyGrid(HiddenGuard, GridLayout):
    """A grid of big keys; `on_key(value)` is called with the key's value."""

    keys = ListProperty([])
    on_key: Callable[[str], None] | None = None

    def on_keys(self, *_: Any) -> None:
        self.clear_widgets()
        for label, value in self.keys:
            b = Key(text=label, key=f"key-{value}", payload=value,
                        style="danger" if value in ("DEL", "CLR") else "secondary")
            b.bind(on_release=lambda btn: self.on_key and self.on_key(btn.payload))
            self.add_widget(b)


LETTERS = [(c, c.lower()) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"] + [("删除", "DEL"), ("清空", "CLR")]
DIGITS = [(d, d) for d in "123456789"] + [("X", "X"), ("0", "0"), ("删除", "DEL")]
#: phone, bank and other numbers: no X key to puzzle over, a 清空 key instead
NUMBER_KEYS = [(d, d) for d in "123456789"] + [("清空", "CLR"), ("0", "0"), ("删除", "DEL")]


def apply_key(value: str, key: str, max_len: int = 32) -> str:
    """Edit a string with one keypad key."""
    if key == "DEL":
        return value[:-1]
    if key == "CLR":
        return ""
    return (value + key)[:max_len]


def walk(widget: Any) -> Sequence[Any]:
    """All widgets under `widget` (inclusive), depth first."""
    out = [widget]
    for c in widget.children:
        out.extend(walk(c))
    return out


__all__ = ["KLabel", "Headline", "Muted", "KButton", "Tile", "Key", "Card", "Hideable", "HideableGrid",
           "HiddenGuard", "Pager", "KeyGrid", "LETTERS", "DIGITS", "NUMBER_KEYS", "apply_key", "walk", "theme", "dp",
           "BooleanProperty"]
