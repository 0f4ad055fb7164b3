"""Home: brand, status, the big actions, the most-used items and the domains.

The layout follows the window: side by side on a landscape screen, stacked on the upright
1080x1920 政务一体机; as many item tiles and domain tiles as the room holds, and taller tiles
where there is height to spare (`fit_layout`).
"""
from __future__ import annotations

from typing import Any

from kivy.metrics import dp
from kivy.properties import BooleanProperty, NumericProperty, ObjectProperty, StringProperty

from kiosk.app.events import UiEvent
from screens.base import KioskScreen
from screens.browse import item_entry
from screens.theme import theme
from screens.widgets import fill_tiles

#: the home screen's own padding (kv/home.kv) and the gap under a section headline
_PAD_X, _PAD_Y, _HEAD_GAP = 24, 12, 8


class HomeScreen(KioskScreen):
    prompt = "您好，请点选要办理的事情。字太小可以点右下角的长辈版。"
    items_grid = ObjectProperty(None)
    domains_pager = ObjectProperty(None)
    announcement = StringProperty("")
    portrait = BooleanProperty(False)
    action_cols = NumericProperty(4)
    action_h = NumericProperty(dp(96))
    tile_h = NumericProperty(dp(96))
    item_cols = NumericProperty(2)
    item_rows = NumericProperty(3)
    domain_cols = NumericProperty(2)

    _built_for: tuple | None = None

    def enter(self, **params: Any) -> None:
        self.service.progress.listen_for_receipts()  # a receipt's QR code scanned here opens its case
        self.announcement = "　".join(self.service.browse.announcements())
        if self._built_for != self._state():
            self.refresh_mode()
        if self.domains_pager.page:
            self.domains_pager.page = 0
            self.domains_pager.refresh()

    def leave(self) -> None:
        self.service.progress.stop_listening_for_receipts()

    def on_service_event(self, ev: UiEvent) -> None:
        if ev.kind == "receipt_scanned":  # its progress, and its evaluation once finished (rating later)
            self.app.go("progress", tracking_no=ev.data.get("tracking_no", ""))

    def on_kv_post(self, base_widget: Any) -> None:
        self.ids.body.bind(height=self._body_resized)

    def on_size(self, *_: Any) -> None:
        if self.app is not None and self._built_for is not None and self._built_for != self._state():
            self.refresh_mode()

    def _body_resized(self, *_: Any) -> None:
        """The room under the actions is known after a layout pass: refit when it holds another row."""
        if self.app is None or self._built_for is None:
            return
        if self._rows_for(self.ids.body.height) != self.item_rows:
            self.refresh_mode()

    def _state(self) -> tuple:
        svc = self.service
        return (svc.mode.elderly, id(svc.ctx.catalog), len(svc.browse.items()), tuple(self.size))

    def fit_layout(self) -> None:
        """Rows, columns and heights for this window and mode (the kv rules read them)."""
        elderly = theme.elderly
        self.portrait = self.height > self.width * 1.2
        self.action_cols = 4
        if self.portrait:
            self.action_h = dp(150) if elderly else dp(140)
            self.tile_h = theme.tile_h * 1.25
            self.item_cols = 2
            self.domain_cols = 2 if elderly else 3
        else:
            self.action_h = dp(120) if elderly else theme.tile_h  # two lines of elderly text need 120
            self.tile_h = theme.tile_h
            self.item_cols = 1 if elderly else 2
            self.domain_cols = 2  # short names: two big domain tiles side by side even in elderly mode
        body = self.ids.body.height
        if body <= 1:  # not laid out yet: the estimate; refitted once the layout has run
            notice = 0 if elderly else theme.small * 1.6 + dp(8) + theme.spacing
            body = self.height - 2 * dp(_PAD_Y) - self.action_h - theme.spacing - notice
        self.item_rows = self._rows_for(body)

    def _section_head(self) -> float:
        """A section's headline, the gap under it and the gap before the filler below the tiles."""
        return theme.head * 1.5 + 2 * dp(_HEAD_GAP)

    def _rows_for(self, body: float) -> int:
        sp, row, head = theme.spacing, self.tile_h + theme.spacing, self._section_head()
        if self.portrait:
            # items above, domains below with their page buttons: the rows shared, items get the odd one
            rows_total = int((body - 2 * head - sp - (theme.target + 2 * sp) + 2 * sp) // row)
            return max(1, (rows_total + 1) // 2)
        return max(1, int((body - head + sp) // row))

    def refresh_mode(self) -> None:
        svc = self.service
        self._built_for = self._state()
        self.fit_layout()
        self.announcement = "　".join(svc.browse.announcements())
        most_used = svc.browse.most_used(int(self.item_rows * self.item_cols))
        fill_tiles(self.items_grid, [item_entry(it) for it in most_used], self.tile_h,
                   lambda tile: self.app.go("guide", code=tile.payload))
        self.domains_pager.per_page = int(self.domain_cols) * 2
        self.domains_pager.entries = [
            {"text": d, "key": f"domain-{i}", "payload": d, "style": "primary"}
            for i, d in enumerate(svc.browse.domains())
        ]
        self.domains_pager.on_choose = lambda d: self.app.go("browse", domain=d)
