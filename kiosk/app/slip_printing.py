"""Printing a slip the citizen takes home (the 一次性告知单, the real-estate query slip) off the UI thread.

The receipt has its own path (kiosk.app.receipts: a QR instead when the printer fails); a slip only
tells the citizen whether it came out, in its own words.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from kiosk.app.common import is_paper_out
from kiosk.app.context import AppContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlipTexts:
    """What the citizen reads: printed, failed, failed for want of paper."""

    printed: str
    failed: str
    paper_out: str


def print_slip(ctx: AppContext, token: int, blocks: list[Any], *, what: str, event: str, texts: SlipTexts) -> None:
    """Worker: print `blocks`, then post `event` (ok, message) for the visit `token`."""
    prn = ctx.printer()
    try:
        if prn is None:
            raise RuntimeError("no printer")
        prn.print_blocks(blocks, what)
    except Exception as e:  # noqa: BLE001 - the citizen is told on screen; logged for the technician
        log.exception("printing the %s slip failed", what)
        ctx.post_for(token, event, ok=False, message=texts.paper_out if is_paper_out(e) else texts.failed)
        return
    ctx.post_for(token, event, ok=True, message=texts.printed)
