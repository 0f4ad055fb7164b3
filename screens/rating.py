"""好差评 by the configured indicator set: five levels; the levels that ask why offer the set's reasons and a note.

Right after a case (the receipt or certificate screen) it rates the visit's case; opened from the
progress screen with ``later=True`` it rates the case found by its receipt's QR code and waits for
the platform's answer (a second evaluation is refused plainly). Levels, reasons and the note's
length come from ``[evaluation]`` through kiosk.app.evaluations, read each time the screen opens.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kivy.clock import Clock
from kivy.properties import BooleanProperty, ListProperty, ObjectProperty, StringProperty
from kivy.uix.textinput import TextInput

from kiosk.app.events import UiEvent
from screens.base import KioskScreen
from screens.theme import theme
from screens.widgets import KButton, Tile, fill_widgets

#: tile colours by the level's place in the set (best first), whatever its label
LEVEL_STYLES = ("ok", "ok", "primary", "danger", "danger")


class NoteInput(TextInput):
    """The optional note: one short line (typed through the terminal's input method)."""

    key = StringProperty("")


class RatingScreen(KioskScreen):
    prompt = "请为这次办理打个分。"
    personal = True  # the note may hold anything the citizen typed
    level = StringProperty("")
    asking_reason = BooleanProperty(False)
    thanks = BooleanProperty(False)
    sending = BooleanProperty(False)
    refused = BooleanProperty(False)
    later = BooleanProperty(False)
    error = BooleanProperty(False)
    note_allowed = BooleanProperty(True)
    message = StringProperty("")
    case_line = StringProperty("")
    chosen = ListProperty([])
    box = ObjectProperty(None)
    note = ObjectProperty(None)

    _view: dict[str, Any] = {}
    _case: dict[str, Any] = {}
    _ending: Any = None

    def enter(self, tracking_no: str = "", item_code: str = "", later: bool = False, item: str = "",
              aliases: Iterable[str] = (), **params: Any) -> None:
        self._view = self.service.evaluations.indicator_view()
        self.later = bool(later and tracking_no)
        self._case = {"tracking_no": tracking_no, "item_code": item_code or None, "aliases": list(aliases)}
        self.case_line = f"{item}　办件编号 {tracking_no}".strip() if self.later else ""
        self.level = ""
        self.thanks = self.sending = self.refused = self.asking_reason = self.error = False
        self.message = ""
        self.chosen = []
        self.note_allowed = self._view["note_max_chars"] > 0
        self.note.text = ""
        self._fill_levels()

    def leave(self) -> None:
        if self._ending is not None:
            self._ending.cancel()
            self._ending = None
        self.note.focus = False

    def refresh_mode(self) -> None:
        """Elderly mode switched: the tiles again at the mode's sizes (the set as the screen opened with it)."""
        if self.box is None or not self._view:
            return
        if self.asking_reason:
            self._fill_reasons()
        elif not (self.thanks or self.sending or self.refused):
            self._fill_levels()

    # ------------------------------------------------------------------ choices
    def _fill_levels(self) -> None:
        levels = self._view["levels"]
        self.box.cols = len(levels)
        fill_widgets(self.box, [(Tile, {"text": text, "key": f"rate-{i}", "payload": text,
                                        "style": LEVEL_STYLES[min(i, len(LEVEL_STYLES) - 1)],
                                        "height": theme.tile_h}, self._pick_level)
                                for i, text in enumerate(levels)])

    def _fill_reasons(self) -> None:
        reasons = self._view["reasons"]
        self.box.cols = 1 if len(reasons) <= 3 else (2 if len(reasons) <= 8 else 3)
        specs: list[tuple[type, dict[str, Any], Any]] = []
        for i, r in enumerate(reasons):
            picked = r["code"] in self.chosen
            text = ("√ " if picked else "") + r["text"]
            if r["hint"] and len(reasons) <= 3:  # one line each: the indicator, then our plain words
                text += f"　{r['hint']}"
            specs.append((Tile, {"text": text, "key": f"reason-{i}", "payload": r["code"],
                                 "style": "primary" if picked else "secondary", "height": theme.target},
                          self._toggle_reason))
        fill_widgets(self.box, specs)

    def _pick_level(self, btn: KButton) -> None:
        self.level = btn.payload
        self.message, self.error = "", False
        if self.service.evaluations.asks_reasons(self.level):
            self.asking_reason = True
            self._fill_reasons()
            self.service.mode.say("请告诉我们哪里不满意，可以选几个，选好了点提交评价。", key="rating_reason")
        else:
            self.send()

    def _toggle_reason(self, btn: KButton) -> None:
        code = btn.payload
        self.chosen = [c for c in self.chosen if c != code] if code in self.chosen else [*self.chosen, code]
        self.message, self.error = "", False
        self._fill_reasons()

    def on_note_text(self, text: str) -> None:
        """kv: the note is cut to the set's length as it is typed."""
        limit = int(self._view.get("note_max_chars", 0))
        if len(text) > limit:
            self.note.text = text[:limit]

    # ------------------------------------------------------------------ sending
    def send(self) -> None:
        ev = self.service.evaluations
        note = self.note.text if self.asking_reason else ""
        if self.later:
            problem = ev.rate_later(self._case["tracking_no"], self.level, list(self.chosen), note,
                                    item_code=self._case["item_code"], aliases=self._case["aliases"])
        else:
            problem = ev.rate_case(self.level, list(self.chosen), note)
        if problem:  # told plainly; nothing was queued
            self.message, self.error = problem, True
            self.service.mode.say(self.message, key="rating_error")
            return
        self.note.focus = False
        if self.later:  # the platform's answer (or the queue) comes back as an event
            self.sending = True
            self.box.clear_widgets()
            self.message, self.error = "正在提交评价……", False
        else:
            self._thank("")

    def on_service_event(self, ev: UiEvent) -> None:
        if ev.kind == "evaluation_sent" and self.sending:
            self._thank("网络恢复后会自动送达。" if ev.data.get("queued") else "")
        elif ev.kind == "evaluation_refused" and self.sending:
            self.sending = False
            self.refused = True
            self.asking_reason = False
            self.box.clear_widgets()
            self.message, self.error = ev.data.get("message", ""), True
            self.service.mode.say(self.message, key="rating_refused")

    def _thank(self, extra: str) -> None:
        self.sending = False
        self.thanks = True
        self.asking_reason = False
        self.message, self.error = "您的信息已经清除，祝您生活愉快。" + extra, False
        self.box.clear_widgets()
        self.service.mode.say("谢谢您的评价，再见。", key="thanks")
        self._ending = Clock.schedule_once(lambda _dt: self.service.visit.end_visit("finished"),
                                           self.service.visit.thanks_s)

    def skip(self) -> None:
        self.service.visit.end_visit("finished")

    def wipe(self) -> None:
        if self.note is not None:
            self.note.text = ""
        self.chosen = []
        self.case_line = ""
