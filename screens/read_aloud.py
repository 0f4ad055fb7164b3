"""What a screen would read aloud (issue 14 item 5): its title, its main text, its choices.

Read from the widgets the citizen sees, in layout order, so every screen (and any screen added
later) is covered without a text of its own: the Headline is the title, the other labels the
main text, the enabled buttons the choices. The nav bar (返回, 回首页, …) is not the screen's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.label import Label

from screens.widgets import Headline

__all__ = ["ScreenReading", "screen_reading", "read_aloud"]


@dataclass
class ScreenReading:
    title: str = ""
    text: list[str] = field(default_factory=list)
    choices: list[str] = field(default_factory=list)


def _shown(w: Any) -> bool:
    return not (getattr(w, "opacity", 1) == 0 or getattr(w, "disabled", False)
                or w.width <= 1 or w.height <= 1)


def _label_texts(w: Any) -> list[str]:
    if isinstance(w, Label):
        return [str(w.text).strip()] if str(w.text).strip() else []
    out: list[str] = []
    for c in reversed(w.children):
        if _shown(c):
            out += _label_texts(c)
    return out


def _collect(w: Any, r: ScreenReading) -> None:
    if not _shown(w):
        return
    if isinstance(w, ButtonBehavior):
        text = " ".join(_label_texts(w))
        if text and text not in r.choices:
            r.choices.append(text)
        return
    if isinstance(w, Label):
        text = str(w.text).strip()
        if text:
            if isinstance(w, Headline) and not r.title:
                r.title = text
            else:
                r.text.append(text)
        return
    for c in reversed(w.children):  # kv order: top to bottom, left to right
        _collect(c, r)


def screen_reading(screen: Any) -> ScreenReading:
    """The title, main text and choices `screen` shows now."""
    r = ScreenReading()
    _collect(screen, r)
    return r


def read_aloud(app: Any) -> str:
    """「朗读」: read the current screen; stop reading when the screen changes. Returns what was said."""
    sm = app.root.sm
    service = app.service
    if not getattr(sm, "_stops_reading", False):
        sm.bind(current=lambda *_: service.reading.stop())
        sm._stops_reading = True
    r = screen_reading(sm.current_screen)
    app.keep_alive()
    spoken: str = service.reading.read(r.title, r.text, r.choices)
    return spoken
