"""Home: brand, status, the big actions, the most-used items and the domains."""
from __future__ import annotations

from typing import Any

from kivy.properties import ObjectProperty, StringProperty

from screens.base import KioskScreen
from screens.browse import item_entry
from screens.widgets import Tile


class HomeScreen(KioskScreen):
    prompt = "您好，请点选要办理的事情。字太小可以点右下角的长辈版。"
    items_grid = ObjectProperty(None)
    domains_pager = ObjectProperty(None)
    announcement = StringProperty("")

    _built_for: tuple | None = None

    def enter(self, **params: Any) -> None:
        self.announcement = "　".join(self.service.browse.announcements())
        if self._built_for != self._state():
            self.refresh_mode()
        if self.domains_pager.page:
            self.domains_pager.page = 0
            self.domains_pager.refresh()

    def _state(self) -> tuple:
        svc = self.service
        return (svc.mode.elderly, id(svc.ctx.catalog), len(svc.browse.items()))

    def refresh_mode(self) -> None:
        svc = self.service
        self._built_for = self._state()
        self.announcement = "　".join(svc.browse.announcements())
        elderly = svc.mode.elderly
        self.items_grid.clear_widgets()
        for e in (item_entry(it) for it in svc.browse.most_used(2 if elderly else 6)):
            t = Tile(text=e["text"], key=e["key"], payload=e["payload"], style="secondary")
            t.bind(on_release=lambda tile: self.app.go("guide", code=tile.payload))
            self.items_grid.add_widget(t)
        self.domains_pager.per_page = 2 if elderly else 4
        self.domains_pager.cols = 1 if elderly else 2
        self.domains_pager.entries = [
            {"text": d, "key": f"domain-{i}", "payload": d, "style": "primary"}
            for i, d in enumerate(svc.browse.domains())
        ]
        self.domains_pager.on_choose = lambda d: self.app.go("browse", domain=d)
