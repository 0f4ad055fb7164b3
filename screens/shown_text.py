"""Text drawn where it is seen: a hidden screen's labels re-render when shown, or a few per frame meanwhile.

Switching to 长辈版 changes the theme's font sizes, and every label on every screen (400-odd)
would re-render its text in the next frame: one frame of 150-300 ms on this machine, right
after the citizen pressed the button. A label that has been drawn once and is not on the window
now (its screen is not the current one) marks itself stale instead. The screen renders its stale
labels as it is entered (`render_stale_in`, before its first frame), and `StaleText` catches up
with the rest a few per frame, so none stays stale for long, including a label that is shown
again some other way.
"""
from __future__ import annotations

import weakref
from typing import Any

from kivy.clock import Clock

__all__ = ["ShownText", "StaleText", "render_stale_in", "stale_text"]

PER_FRAME = 24  # about 5 ms of text a frame in the background


class StaleText:
    """The labels waiting for a re-render, caught up with `per_frame` at a time on the Kivy clock."""

    def __init__(self, per_frame: int = PER_FRAME) -> None:
        self.per_frame = per_frame
        self._waiting: weakref.WeakSet[Any] = weakref.WeakSet()
        self._event: Any = None

    def __len__(self) -> int:
        return len(self._waiting)

    def __contains__(self, label: object) -> bool:
        return label in self._waiting

    def add(self, label: Any) -> None:
        self._waiting.add(label)
        if self._event is None:
            self._event = Clock.schedule_interval(self._catch_up, 0)

    def discard(self, label: Any) -> None:
        self._waiting.discard(label)

    def _catch_up(self, _dt: float) -> bool:
        for _ in range(self.per_frame):
            try:
                label = self._waiting.pop()
            except KeyError:
                break
            label.render_now()
        if not self._waiting:
            self._event = None
            return False  # unscheduled until the next stale label
        return True


stale_text = StaleText()


class ShownText:
    """Mixin for a Label: re-render only while on the window (or when asked); see the module's docstring."""

    _drawn_once = False

    def texture_update(self, *largs: Any) -> None:
        if self._drawn_once and self.get_root_window() is None:  # type: ignore[attr-defined]
            stale_text.add(self)
            return
        self.render_now()

    def render_now(self) -> None:
        """Render the text with the label's current properties, shown or not."""
        stale_text.discard(self)
        super().texture_update()  # type: ignore[misc]
        self._drawn_once = True


def render_stale_in(widget: Any) -> int:
    """Render the stale labels under `widget` now (a screen being entered); how many there were."""
    if not len(stale_text):
        return 0
    n = 0
    for w in widget.walk(restrict=True):
        if w in stale_text:
            w.render_now()
            n += 1
    return n
