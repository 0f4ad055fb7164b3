"""Browse by domain: the items of one domain, a page at a time."""
from __future__ import annotations

from typing import Any

from kivy.properties import ObjectProperty, StringProperty

from screens.base import KioskScreen


def item_entry(it: Any) -> dict[str, Any]:
    title = it.sub_name if it.sub_name and it.sub_name != it.main_name else it.main_name
    return {"text": title, "key": f"item-{it.code}", "payload": it.code, "style": "secondary"}


class BrowseScreen(KioskScreen):
    prompt = "请点选要办理的事项。"
    domain = StringProperty("")
    pager = ObjectProperty(None)

    def enter(self, domain: str = "", **params: Any) -> None:
        if domain:
            self.domain = domain
        self.refresh_mode()

    def refresh_mode(self) -> None:
        svc = self.service
        self.pager.per_page = svc.mode.items_per_page
        self.pager.cols = 1 if svc.mode.elderly else 2
        self.pager.entries = [item_entry(it) for it in svc.browse.items_in(self.domain)] if self.domain else []
        self.pager.on_choose = lambda code: self.app.go("guide", code=code)
