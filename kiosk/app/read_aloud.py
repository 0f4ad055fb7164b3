"""「朗读」 (issue 14 item 5): the current screen read aloud in elderly mode, through the speech backend.

The screen layer says what a screen shows (title, main text, choices: screens.read_aloud); this
service turns it into one spoken text and hands it to the speech backend, whose voice volume and
rate are configuration ([ui] voice_volume, voice_rate_wpm). Reading stops when the screen changes.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

from kiosk.app.context import AppContext
from kiosk.app.errors import logged_entry_points

log = logging.getLogger(__name__)

__all__ = ["READ_ALOUD_KEY", "ReadAloudService", "reading_text"]

#: the prompt key of a reading (a recorded-clips backend has no clip for it: it falls back to the voice)
READ_ALOUD_KEY = "read-aloud"


def reading_text(title: str, text: Sequence[str], choices: Sequence[str]) -> str:
    """What is spoken: the title, the main text, then the choices, as sentences."""
    parts: list[str] = []
    if title.strip():
        parts.append(title.strip().rstrip("。") + "。")
    for line in text:
        line = line.strip().lstrip("•").strip()
        if line:
            parts.append(line if line[-1] in "。！？；：，" else line + "。")
    if choices:
        parts.append("您可以选：" + "、".join(c.strip() for c in choices if c.strip()) + "。")
    return "".join(parts)


@logged_entry_points
class ReadAloudService:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._reading = False
        self.last_text = ""  # what was read last (the technician's log, tests)

    @property
    def available(self) -> bool:
        """The 「朗读」 button is offered in elderly mode only."""
        return bool(self.ctx.elderly)

    def read(self, title: str, text: Sequence[str], choices: Sequence[str]) -> str:
        """Read a screen aloud (elderly mode); returns what was spoken ('' when not offered)."""
        if not self.available:
            return ""
        spoken = reading_text(title, text, choices)
        self.ctx.speech.stop()  # a prompt still playing gives way
        self.ctx.speech.say(spoken, READ_ALOUD_KEY)
        self._reading = True
        self.last_text = spoken
        return spoken

    def stop(self) -> None:
        """The screen changed: a reading still going stops (a screen's own prompt is not cut)."""
        if self._reading:
            self._reading = False
            self.ctx.speech.stop()
