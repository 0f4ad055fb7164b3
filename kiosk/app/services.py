"""Kiosk: the small typed services of one kiosk process, grouped for the screens (`svc.visit`, `svc.payments`, ...).

Screens call the services on the UI thread and get answers either at once
(catalog, display models) or later as UiEvents on `ctx.events` (anything that
waits for a device or the network). Build one with kiosk.bootstrap.app.build_kiosk.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kiosk.app.catalog_views import CatalogViews
from kiosk.app.certificates import CertificateService
from kiosk.app.context import AppContext, Timings
from kiosk.app.evaluations import EvaluationService
from kiosk.app.guide_print import GuidePrintService
from kiosk.app.help import HelpService
from kiosk.app.identify import IdentifyService
from kiosk.app.licences import LicenceService
from kiosk.app.lifecycle import Lifecycle, Wiring
from kiosk.app.materials import MaterialsService
from kiosk.app.mode import ModeService
from kiosk.app.payments import PaymentService
from kiosk.app.progress import ProgressService
from kiosk.app.property_query import PropertyQueryService
from kiosk.app.read_aloud import ReadAloudService
from kiosk.app.receipts import ReceiptService
from kiosk.app.status import StatusService
from kiosk.app.technician import TechnicianTools
from kiosk.app.visit import VisitService
from kiosk.config import KioskConfig
from kiosk.domain.catalog import Catalog
from kiosk.ports.clock import Clock
from kiosk.ports.speech import SpeechBackend

__all__ = ["Kiosk"]


class Kiosk:
    """One per kiosk process. Never imports Kivy. Holds the services; each does one concern."""

    def __init__(self, config: KioskConfig, wiring: Wiring, *, speech: SpeechBackend,
                 clock: Clock = time.monotonic, state_dir: str | Path | None = None, catalog: Catalog | None = None,
                 timings: Timings | None = None) -> None:
        self.ctx = ctx = AppContext.create(config, speech=speech, clock=clock, state_dir=state_dir,
                                           catalog=catalog, timings=timings)
        self.wiring = wiring
        self.station = StatusService(ctx)
        self.browse = CatalogViews(ctx)
        self.mode = ModeService(ctx)
        self.reading = ReadAloudService(ctx)  # 「朗读」 in elderly mode
        self.materials = MaterialsService(ctx)
        self.visit = VisitService(ctx, self.materials, self.station)
        self.evaluations = EvaluationService(ctx)  # 好差评 by the configured indicator set, now or later
        self.progress = ProgressService(ctx, is_rated=self.evaluations.is_rated)
        self.licences = LicenceService(ctx)  # e-licences fetched instead of photos
        self.identify = IdentifyService(ctx, lookup_tracking=self.progress.query_progress_by_tracking,
                                        on_licence_code=self.licences.on_code)
        self.receipts = ReceiptService(ctx)
        self.guides = GuidePrintService(ctx)  # the 一次性告知单 on paper
        self.property = PropertyQueryService(ctx)  # 不动产登记信息查询 (public, no identification)
        self.certificates = CertificateService(ctx, self.receipts)
        self.payments = PaymentService(ctx)
        self.help = HelpService(ctx)
        self.technician = TechnicianTools(ctx, self.station, self.receipts)
        self.lifecycle = Lifecycle(ctx, wiring, self.station, self._on_device_event)

    def _on_device_event(self, ev: Any) -> None:
        """Device thread: identification and codes (IdentifyService), a receipt scanned on the home screen."""
        self.identify.on_device_event(ev)
        self.progress.on_device_event(ev)

    def start(self, background: bool = False) -> Kiosk:
        """Load the catalog, then platform, outbox and devices (see Lifecycle.start)."""
        self.lifecycle.start(background)
        return self

    def wait_ready(self, timeout: float = 60.0) -> bool:
        return self.lifecycle.wait_ready(timeout)

    def stop(self) -> None:
        self.lifecycle.stop()
