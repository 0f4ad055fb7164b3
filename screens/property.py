"""不动产登记信息查询: search by 坐落, 不动产权证书号 or 不动产单元号; natural state and restrictions, never the owner.

Three on-screen keyboards: 坐落 by pinyin (initials or full pinyin, then a tap on the place word,
like the search screen) plus digits and 号/楼/单元/室; the certificate number as its year and
serial on a digit pad (the rest of 鲁(2021)淄博市周村区不动产权第0001234号 is fixed, the district
chosen by a button); the 28-character unit number on digits and the letters unit numbers use. A
wrong unit number is explained by the domain's reason, and its wrong part is marked.
"""
from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty, ListProperty, ObjectProperty, StringProperty
from kivy.uix.gridlayout import GridLayout
from kivy.utils import escape_markup

from kiosk.app.events import UiEvent
from screens.base import KioskScreen
from screens.theme import theme
from screens.widgets import LETTERS, Card, KButton, KLabel, Muted, apply_key

#: the letters a unit number uses (宗地特征码 and 定着物特征码), then the digits
UNIT_KEYS = [(d, d) for d in "1234567890"] + [(c, c) for c in "GJZABSXCDEFHWYLQ"] + [("删除", "DEL"), ("清空", "CLR")]
CERT_KEYS = [(d, d) for d in "123456789"] + [("清空", "CLR"), ("0", "0"), ("删除", "DEL")]
ADDRESS_LETTERS = [x for x in LETTERS if x[1] not in ("DEL", "CLR")] + [("删除", "DEL"), ("数字", "NUM")]
ADDRESS_DIGITS = [(d, d) for d in "1234567890"] + [(w, w) for w in ("号", "号楼", "单元", "室", "层", "村")] + [
    ("删除", "DEL"), ("清空", "CLR"), ("拼音", "ABC")]
#: 淄博市's districts and counties for the certificate number's place (the station's own first)
CERT_PLACES = ("淄博市周村区", "淄博市张店区", "淄博市淄川区", "淄博市博山区", "淄博市临淄区", "淄博市桓台县",
               "淄博市高青县", "淄博市沂源县")
CERT_PROVINCE = "鲁"
TABS = {"address": "按坐落", "certificate_number": "按证书号", "unit_number": "按单元号"}
HINTS = {
    "address": "按拼音首字母找路名，如 丝绸路 = SCL，点选后再按「数字」输门牌号",
    "certificate_number": "先输4位年份，再输「第」后面的7位数字",
    "unit_number": "输入房产证上的28位不动产单元号",
}


class PropertyScreen(KioskScreen):
    prompt = "这是不动产登记信息查询，可以按坐落地址、证书号或单元号查。查不到权利人姓名。"
    by = StringProperty("address")
    stage = StringProperty("input")  # input | searching | results
    shown = StringProperty("")  # the query as typed, markup (a wrong unit-number part in red)
    message = StringProperty("")
    error = BooleanProperty(False)
    print_message = StringProperty("")
    printing = BooleanProperty(False)
    candidates = ListProperty([])
    place = StringProperty(CERT_PLACES[0])
    keyboard = ObjectProperty(None)
    words_box = ObjectProperty(None)
    results_box = ObjectProperty(None)

    def on_kv_post(self, base_widget: Any) -> None:
        self.keyboard.on_key = self.press
        self._reset()

    # ------------------------------------------------------------------ state
    def _reset(self) -> None:
        self.address = ""
        self.composing = ""  # pinyin letters not yet turned into a place word
        self.digits_pad = False
        self.year = ""
        self.serial = ""
        self.unit = ""
        self.bad_span: tuple[int, int] | None = None
        self.stage = "input"
        self.message = ""
        self.error = False
        self.print_message = ""
        self.printing = False
        self.candidates = []
        if self.results_box is not None:
            self.results_box.clear_widgets()

    def enter(self, by: str = "", **params: Any) -> None:
        self._reset()
        self.choose_by(by or "address")

    def wipe(self) -> None:
        self._reset()
        self.shown = ""

    def refresh_mode(self) -> None:
        if self.keyboard is not None:
            self._set_keys()

    # ------------------------------------------------------------------ typing
    def choose_by(self, by: str) -> None:
        self.by = by
        self.stage = "input"
        self.error = False
        self.message = HINTS[by]
        self.bad_span = None
        self.digits_pad = False
        self._set_keys()
        self._render()

    def _set_keys(self) -> None:
        if self.by == "unit_number":
            keys, cols = UNIT_KEYS, 7
        elif self.by == "certificate_number":
            keys, cols = CERT_KEYS, 3
        else:
            keys = ADDRESS_DIGITS if self.digits_pad else ADDRESS_LETTERS
            cols = 5 if self.digits_pad else 7
        if self.keyboard.keys != keys:
            self.keyboard.keys = keys
        self.keyboard.cols = cols

    def press(self, key: str) -> None:
        self.error = False
        self.bad_span = None
        if self.by == "unit_number":
            self.unit = apply_key(self.unit, key, max_len=28)
        elif self.by == "certificate_number":
            typed = apply_key(self.year + self.serial, key, max_len=11)
            self.year, self.serial = typed[:4], typed[4:]
        elif key in ("NUM", "ABC"):
            self.digits_pad = key == "NUM"
            self.composing = ""
            self._set_keys()
        elif key == "DEL" and self.composing:
            self.composing = self.composing[:-1]
        elif key == "DEL":
            self.address = self.address[:-1]
        elif key == "CLR":
            self.address, self.composing = "", ""
        elif self.digits_pad:
            self.address = (self.address + key)[:60]
        else:
            self.composing = (self.composing + key)[:12]
        self.message = HINTS[self.by]
        self._render()

    def choose_word(self, word: str) -> None:
        self.address = (self.address + word)[:60]
        self.composing = ""
        self._render()

    def next_place(self) -> None:
        self.place = CERT_PLACES[(CERT_PLACES.index(self.place) + 1) % len(CERT_PLACES)]
        self._render()

    def query_text(self) -> str:
        if self.by == "unit_number":
            return self.unit
        if self.by == "certificate_number":
            return f"{CERT_PROVINCE}({self.year}){self.place}不动产权第{self.serial}号"
        return self.address

    def _render(self) -> None:
        if self.by == "unit_number":
            self.shown = self._unit_markup() if self.unit else "[color=#3D4852]（请输入28位单元号）[/color]"
        elif self.by == "certificate_number":
            year = self.year.ljust(4, "_")
            serial = self.serial.ljust(7, "_")
            self.shown = escape_markup(f"{CERT_PROVINCE}({year}){self.place}不动产权第{serial}号")
        else:
            text = escape_markup(self.address)
            if self.composing:
                text += f" [u]{self.composing.upper()}[/u]"
            self.shown = text or "[color=#3D4852]（请输入坐落地址）[/color]"
        self._fill_words()

    def _unit_markup(self) -> str:
        """The unit number in its printed groups (6 6 7 9), the wrong part in red and bold."""
        out = []
        for i, ch in enumerate(self.unit):
            if i in (6, 12, 19):
                out.append(" ")
            bad = self.bad_span is not None and self.bad_span[0] <= i < self.bad_span[1]
            out.append(f"[color=#A4161A][b]{ch}[/b][/color]" if bad else ch)
        return "".join(out) + f"  [color=#3D4852]{len(self.unit)}/28[/color]"

    def _fill_words(self) -> None:
        box = self.words_box
        if box is None:
            return
        box.clear_widgets()
        box.cols = 1 if self.by == "certificate_number" else 2
        if self.by == "certificate_number":
            b = KButton(text=f"换地区：{self.place}", key="property-place", style="secondary")
            b.bind(on_release=lambda *_: self.next_place())
            box.add_widget(b)
            self.candidates = []
            return
        if self.by != "address" or not self.composing:
            self.candidates = []
            return
        words = self.service.property.address_words(self.composing, limit=2 if theme.elderly else 4)
        self.candidates = words
        for i, w in enumerate(words):
            b = KButton(text=w, key=f"word-{i}", payload=w, style="primary")
            b.bind(on_release=lambda btn: self.choose_word(btn.payload))
            box.add_widget(b)
        if not words:
            box.add_widget(Muted(text="没有这个拼音的路名，可以少按一个字母"))

    # ------------------------------------------------------------------ searching
    def search(self) -> None:
        problem = self.service.property.search(self.by, self.query_text())
        if problem is not None:
            self.error = True
            self.message = problem.message  # names the wrong part; the part is marked in red too
            if self.by == "unit_number":
                self.bad_span = self.service.property.unit_part_span(problem.reason)
            self._render()
            self.service.mode.say(problem.message, key="property_invalid")
            return
        self.stage = "searching"
        self.error = False
        self.message = "正在查询，请稍候……"

    def on_service_event(self, ev: UiEvent) -> None:
        if ev.kind == "property_results":
            self.stage = "results"
            self.error = not ev.data.get("count")
            self.message = ev.data.get("message", "")
            self._show_results(ev.data.get("units") or [])
            self.service.mode.say(self.message, key="property_results")
        elif ev.kind == "property_error":
            self.stage = "input"
            self.error = True
            self.message = ev.data.get("message", "")
            self.service.mode.say(self.message, key="property_error")
        elif ev.kind == "property_printed":
            self.printing = False
            self.print_message = ev.data.get("message", "")
            self.service.mode.say(self.print_message, key="property_printed")

    def _show_results(self, units: list[dict[str, Any]]) -> None:
        box = self.results_box
        box.clear_widgets()
        for i, u in enumerate(units, 1):
            card = Card()
            head = f"{i}. {u['title']}" if len(units) > 1 else u["title"]
            card.add_widget(KLabel(text=head, bold=True))
            # the restrictions first (what a buyer or lender comes for), then the natural state
            status = "限制信息：" + u["restriction_summary"]
            mark = KLabel(text=status, bold=True)
            mark.color = theme.danger if u["restricted"] else theme.ok  # after the kv rule's theme.text
            card.add_widget(mark)
            if u["restricted"]:
                for r in u["restrictions"]:
                    card.add_widget(KLabel(text="• " + r))
            grid = GridLayout(cols=1 if theme.elderly else 2, size_hint_y=None, spacing=(theme.spacing, 0))
            grid.bind(minimum_height=grid.setter("height"))
            for line in u["lines"]:
                grid.add_widget(KLabel(text=line))
            card.add_widget(grid)
            box.add_widget(card)

    def again(self) -> None:
        """「重新查询」: back to the keyboard with what was typed."""
        self.stage = "input"
        self.error = False
        self.print_message = ""
        self.message = HINTS[self.by]
        self.results_box.clear_widgets()
        self._render()

    def print_slip(self) -> None:
        self.printing = True
        self.print_message = "正在打印查询单……"
        self.service.property.print_slip()

    def finish(self) -> None:
        self.app.home(end_visit=True)
