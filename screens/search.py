"""Search with an on-screen letter keyboard: pinyin initials, results update with each key."""
from __future__ import annotations

from typing import Any

from kivy.properties import ObjectProperty, StringProperty

from screens.base import KioskScreen
from screens.browse import item_entry
from screens.widgets import LETTERS, apply_key


class SearchScreen(KioskScreen):
    prompt = "请按拼音首字母查找，比如养老保险，就按 Y L B X。"
    query = StringProperty("")
    pager = ObjectProperty(None)
    keyboard = ObjectProperty(None)
    hint = StringProperty("")

    def on_kv_post(self, base_widget: Any) -> None:
        self.keyboard.keys = LETTERS
        self.keyboard.on_key = self.press

    def enter(self, **params: Any) -> None:
        self.query = ""
        self.update()

    def press(self, key: str) -> None:
        self.query = apply_key(self.query, key, max_len=12)
        self.update()

    def update(self) -> None:
        svc = self.service
        self.pager.per_page = 2 if svc.mode.elderly else 4  # beside the keyboard, under the query box
        self.pager.cols = 1 if svc.mode.elderly else 2
        results = svc.browse.search(self.query, limit=12) if self.query else []
        self.pager.entries = [item_entry(it) for it in results]
        self.pager.on_choose = lambda code: self.app.go("guide", code=code)
        if not self.query:
            self.hint = "请按拼音首字母，例如 养老保险 = YLBX"
        elif not results:
            self.hint = "没有找到，可以少按一个字母，或者点「帮办代办」找工作人员"
        else:
            self.hint = f"找到 {len(results)} 项，请点选"

    def refresh_mode(self) -> None:
        if self.pager is not None and self.manager is not None and self.manager.current == self.name:
            self.update()
