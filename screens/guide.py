"""Item guide (一次性告知): everything the citizen needs to know, before they start."""
from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty, DictProperty, ListProperty, ObjectProperty, StringProperty

from kiosk.app.events import UiEvent
from screens.base import KioskScreen
from screens.widgets import KLabel, Muted, fill_widgets


class GuideScreen(KioskScreen):
    prompt = "这是办理须知，请看一下需要什么材料。看好了请点开始办理。"
    view = DictProperty({})
    title = StringProperty("")
    subtitle = StringProperty("")
    body = ObjectProperty(None)
    missing = ListProperty([])  # materials the visit stopped for (from the materials screen)
    print_message = StringProperty("")
    printing = BooleanProperty(False)

    def enter(self, code: str = "", missing: list[str] | tuple[str, ...] = (), **params: Any) -> None:
        if code:
            self.service.visit.choose_item(code)
        self.missing = list(missing)
        self.printing = False
        self.print_message = ("您缺少「%s」，今天办不完。请点「打印告知单」带回家，备齐后再来。"
                              % "、".join(self.missing) if self.missing else "")
        self.view = self.service.browse.item_view()
        self.title = self.view.get("title", "")
        self.subtitle = "　·　".join(x for x in (self.view.get("domain"), self.view.get("item_type"),
                                              self.view.get("fee")) if x)
        self.fill()

    def fill(self) -> None:
        v = self.view
        specs: list[tuple[type, dict[str, Any], None]] = []

        def section(title: str, lines: list[str]) -> None:
            specs.append((KLabel, {"text": title, "bold": True}, None))
            specs.extend((Muted, {"text": "•" + line if line else ""}, None) for line in lines)

        section("办理条件", v.get("conditions") or ["无特别条件"])
        section("需要的材料", v.get("materials") or ["只需本人身份证"])
        section("办理时限", [f"承诺 {v.get('promised', '')}", f"法定 {v.get('legal', '')}"])
        section("收费", [v.get("fee", "不收费")])
        section("怎么办", v.get("steps") or [])
        fill_widgets(self.body, specs)

    def start(self) -> None:
        if self.missing:  # the visit stopped for a missing material: nothing more to do today
            self.app.home(end_visit=True)
            return
        self.app.go(self.service.visit.next_screen("guide"))

    def print_guide(self) -> None:
        """「打印告知单」: the guide on paper (off the UI thread; the outcome comes back as an event)."""
        self.printing = True
        self.print_message = "正在打印告知单……"
        self.service.guides.print_guide(self.view.get("code") or None, self.missing)

    def on_service_event(self, ev: UiEvent) -> None:
        if ev.kind != "guide_printed":
            return
        self.printing = False
        self.print_message = ev.data.get("message", "")
        self.service.mode.say(self.print_message, key="guide_printed")
