"""Form: one field per page, pre-filled from the card; numeric keypad or choice buttons, never free Chinese text."""
from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty, DictProperty, ListProperty, NumericProperty, ObjectProperty, StringProperty

from screens.base import KioskScreen
from screens.widgets import DIGITS, NUMBER_KEYS, KButton, apply_key, fill_widgets

KEYPAD_TYPES = {"phone": 11, "bank_account": 19, "number": 12, "id_number": 18, "date": 8}


class FormScreen(KioskScreen):
    prompt = "请填写信息，按屏幕右边的数字键。"
    personal = True
    fields = ListProperty([])
    values = DictProperty({})
    index = NumericProperty(0)
    error = StringProperty("")
    field = DictProperty({})
    field_label = StringProperty("")
    field_type = StringProperty("")
    shown = StringProperty("")
    keypad = ObjectProperty(None)
    choices_box = ObjectProperty(None)
    uses_keypad = BooleanProperty(False)
    needs_helper = BooleanProperty(False)
    choice_page = NumericProperty(0)

    def on_kv_post(self, base_widget: Any) -> None:
        self.keypad.keys = DIGITS
        self.keypad.on_key = self.press

    def enter(self, **params: Any) -> None:
        self.fields = self.service.visit.form_fields()
        self.values = self.service.visit.prefill()
        self.index = 0
        self.error = ""
        self.show()

    def show(self) -> None:
        if not self.fields:
            return
        f = self.fields[self.index]
        self.field = f
        self.field_label = f["label"] + ("（必填）" if f.get("required") else "（可不填）")
        self.field_type = f["type"]
        self.uses_keypad = f["type"] in KEYPAD_TYPES
        keys = DIGITS if f["type"] == "id_number" else NUMBER_KEYS
        if self.keypad.keys != keys:
            self.keypad.keys = keys
        self.needs_helper = f["type"] == "text" and not self.values.get(f["name"])
        self.choice_page = 0
        self._show_choices()
        self._render()

    def _show_choices(self) -> None:
        """One page of choice buttons: the screen never scrolls, so a long list gets a 「更多选项」 button."""
        f = self.field
        if f.get("type") != "choice":
            fill_widgets(self.choices_box, [])
            return
        choices = list(f.get("choices") or [])
        slots = 4 if self.service.mode.elderly else 6  # two columns; what fits above the navigation buttons
        per_page = len(choices) if len(choices) <= slots else slots - 1
        pages = max(1, -(-len(choices) // per_page))
        start = (self.choice_page % pages) * per_page
        specs: list[tuple[type, dict[str, Any], Any]] = [
            (KButton, {"text": c, "key": f"choice-{i}", "payload": c,
                       "style": "primary" if self.values.get(f["name"]) == c else "secondary"}, self._choose)
            for i, c in enumerate(choices[start:start + per_page], start)]
        if pages > 1:
            specs.append((KButton, {"text": f"更多选项（第 {self.choice_page % pages + 1}/{pages} 页）",
                                    "key": "choice-more", "payload": None, "style": "secondary"},
                          self._more_choices))
        fill_widgets(self.choices_box, specs)

    def _more_choices(self, _btn: KButton) -> None:
        self.choice_page += 1
        self._show_choices()

    def _render(self) -> None:
        f = self.field
        v = str(self.values.get(f.get("name", ""), "") or "")
        if f.get("type") == "date" and v and "-" not in v:
            v = "-".join(p for p in (v[:4], v[4:6], v[6:8]) if p)
        self.shown = v

    def _choose(self, btn: KButton) -> None:
        self.values[self.field["name"]] = btn.payload
        self.error = ""
        for b in self.choices_box.children:
            if b.payload is not None:
                b.style = "primary" if b.payload == btn.payload else "secondary"

    def press(self, key: str) -> None:
        f = self.field
        cur = str(self.values.get(f["name"], "") or "").replace("-", "")
        if key == "X" and f["type"] != "id_number":
            return
        self.values[f["name"]] = apply_key(cur, key, KEYPAD_TYPES.get(f["type"], 20))
        self.error = ""
        self._render()

    def _value_for_check(self) -> dict[str, Any]:
        out = dict(self.values)
        for f in self.fields:
            v = out.get(f["name"])
            if f["type"] == "date" and v and len(str(v)) == 8 and "-" not in str(v):
                out[f["name"]] = f"{v[:4]}-{v[4:6]}-{v[6:]}"
        return out

    def next(self) -> None:
        errors = self.service.visit.validate_form(self._value_for_check())
        msg = errors.get(self.field["name"])
        if msg:
            self.error = msg
            self.service.mode.say(msg, key="form_error")
            return
        if self.index < len(self.fields) - 1:
            self.index += 1
            self.error = ""
            self.show()
            return
        if errors:  # an earlier field went bad: show it
            for i, f in enumerate(self.fields):
                if f["name"] in errors:
                    self.index, self.error = i, errors[f["name"]]
                    self.show()
                    return
        self.service.visit.set_form(self._value_for_check())
        self.app.go(self.service.visit.next_screen("form"))

    def prev(self) -> None:
        if self.index > 0:
            self.index -= 1
            self.error = ""
            self.show()
        else:
            self.app.back()

    def wipe(self) -> None:
        self.values = {}
        self.shown = ""
        self.error = ""
        if self.choices_box is not None:
            self.choices_box.clear_widgets()
