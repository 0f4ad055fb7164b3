"""The fleet agent inside the kiosk process: live device and queue figures out, live configuration in.

When `[fleet] enabled`, `kiosk run` starts this instead of relying on a separate
agent service, so the health the administrators see is the adapters' real state
(not "unknown") and a confirmed bundle's live keys (item enablement,
announcements, opening hours, timeouts) reach the screens without a restart.
Keys that need a restart are held until the terminal is idle.
"""
from __future__ import annotations

import logging
from typing import Any

from kiosk.app.remote_commands import RemoteCommands
from kiosk.app.services import Kiosk
from kiosk.fleet.agent import KioskAgent
from kiosk.fleet.health import HealthProviders, adapter_devices

log = logging.getLogger(__name__)


class FleetLink:
    def __init__(self, service: Kiosk, site_file: str | None = None, env: dict[str, str] | None = None):
        self.service = service
        self.site_file = site_file
        self.env = env
        self.agent: KioskAgent | None = None
        self.commands = RemoteCommands(service, site_file=site_file)  # signed remote commands' executor

    def start(self) -> FleetLink:
        ctx = self.service.ctx
        station = self.service.station
        providers = HealthProviders(
            devices=lambda: adapter_devices(list(ctx.devices.values()))(),
            queue=self._queue,
            last_platform_contact=lambda: ctx.last_platform_contact,
        )
        self.agent = KioskAgent(self.site_file, env=self.env, providers=providers,
                                on_live_change=station.apply_live_config,
                                on_restart_needed=station.request_restart_at_idle,
                                command_executor=self.commands)
        self.agent.start()
        return self

    def _queue(self) -> dict[str, Any]:
        outbox = self.service.ctx.outbox
        if outbox is None:
            return {"available": False, "note": "outbox not open yet"}
        s = outbox.stats()
        return {"available": True, "depth": s["pending"] + s["inflight"], "oldest_age_s": s["oldest_pending_age_s"],
                "failed": s["failed"]}

    def stop(self) -> None:
        if self.agent is not None:
            try:
                self.agent.stop()
            except Exception:  # noqa: BLE001 - shutting down
                log.exception("fleet agent stop failed")
            self.agent = None
