"""Home: brand, status, the big actions, the most-used items and the domains."""
from __future__ import annotations

from typing import Any

from kivy.properties import ObjectProperty, StringProperty

from screens.base import KioskScreen


class HomeScreen(KioskScreen):
    prompt = "您好，请点选要办理的事情。字太小可以点右下角的长辈版。"
    items_pager = ObjectProperty(None)
    domains_pager = ObjectProperty(None)
    announcement = StringProperty("")

    def enter(self, **params: Any) -> None:
        self.refresh_mode()
        self.announcement = "　".join(self.service.announcements())

    def refresh_mode(self) -> None:
        svc = self.service
        elderly = svc.elderly
        n_items = 4 if elderly else 6
        self.items_pager.per_page = n_items
        self.items_pager.cols = 2 if elderly else 3
        self.items_pager.entries = [
            {"text": it.main_name if not it.sub_name or it.sub_name == it.main_name else it.sub_name,
             "key": f"item-{it.code}", "payload": it.code, "style": "secondary"}
            for it in svc.most_used(n_items)
        ]
        self.items_pager.on_choose = lambda code: self.app.go("guide", code=code)
        self.domains_pager.per_page = 4 if elderly else 8
        self.domains_pager.cols = 2 if elderly else 4
        self.domains_pager.entries = [
            {"text": d, "key": f"domain-{i}", "payload": d, "style": "primary"} for i, d in enumerate(svc.domains())
        ]
        self.domains_pager.on_choose = lambda d: self.app.go("browse", domain=d)
