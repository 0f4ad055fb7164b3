"""Printing the 一次性告知单 (issue 14 item 4): the item's guide on paper, off the UI thread.

The slip is composed on the caller's thread from the catalog and the configuration (cheap, and
nothing personal), then printed by a worker; the outcome comes back as a ``guide_printed`` event.
A visit that ends meanwhile still gets its slip (it holds no personal data), only the event is
dropped.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from kiosk.app.context import AppContext
from kiosk.app.errors import logged_entry_points
from kiosk.app.slip_printing import SlipTexts, print_slip
from kiosk.domain.guide_slip import compose_guide, guide_for_item

log = logging.getLogger(__name__)

GUIDE_TEXTS = SlipTexts(printed="告知单已打印，请取走",
                        failed="告知单没有打印出来，请联系工作人员",  # the printer's own words speak of receipts
                        paper_out="打印机缺纸，告知单没有打印出来，请联系工作人员")

__all__ = ["GuidePrintService"]


@logged_entry_points
class GuidePrintService:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def blocks(self, code: str | None = None, missing: Sequence[str] = (), paper_mm: int | None = None) -> list[Any]:
        """The slip's blocks for `code` (default: the visit's item), e.g. for a preview."""
        ctx = self.ctx
        item = ctx.require_catalog().get(code) if code else ctx.require_item()
        if item is None:
            raise LookupError(f"no item {code}")
        prn = ctx.printer()
        mm = paper_mm or (prn.paper_mm if prn is not None else 58)
        return compose_guide(guide_for_item(item, ctx.config, missing=missing), mm)

    def print_guide(self, code: str | None = None, missing: Sequence[str] = ()) -> None:
        """Print the item's guide; ``missing``: the materials the visit stopped for (printed in bold)."""
        blocks = self.blocks(code, tuple(missing))
        self.ctx.in_background(self._print, blocks)

    def _print(self, token: int, blocks: list[Any]) -> None:
        print_slip(self.ctx, token, blocks, what="guide", event="guide_printed", texts=GUIDE_TEXTS)
