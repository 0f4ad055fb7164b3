"""The station's state: device states, queue counts, platform reachability, pushed configuration."""
from __future__ import annotations

import logging

from kiosk.app.common import DOWN_STATES, FLOW_NAMES, FLOW_NEEDS, StationStatus, now_iso
from kiosk.app.context import AppContext
from kiosk.app.errors import logged_entry_points
from kiosk.app.reachability import Reachability
from kiosk.config import KioskConfig

log = logging.getLogger(__name__)


@logged_entry_points
class StatusService:
    """What is up and what is down; which flows still work; live configuration from the fleet."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        # "online" from the platform calls themselves; the health probe only after a quiet spell
        self.reachability = Reachability(lambda: ctx.platform, ctx.clock)
        self._seen_contact: float | None = None

    @property
    def station(self) -> StationStatus:
        return self.ctx.status

    def refresh_status(self) -> StationStatus:
        """Device states, queue counts, platform reachability (called off the UI thread)."""
        ctx = self.ctx
        for kind, dev in list(ctx.devices.items()):
            ctx.status.devices[kind] = dev.status.state.value
        if ctx.outbox is not None:
            st = ctx.outbox.stats()
            ctx.status.queued = st["pending"] + st["inflight"]
            ctx.status.failed = st["failed"]
        if ctx.platform is not None:  # before a probe, so a probe after a quiet spell goes out on a fresh connection
            ctx.platform.close_idle_connections(ctx.timings.platform_idle_close_s)
        ctx.status.online = self.platform_reachable()
        return ctx.status

    def platform_reachable(self) -> bool:
        """From the last answer of any platform call; a tiny health probe only when there was none for a while."""
        online = self.reachability.check()
        contact = self.ctx.platform.last_contact if self.ctx.platform is not None else None
        if contact is not None and contact != self._seen_contact:
            self._seen_contact = contact
            self.ctx.last_platform_contact = now_iso()  # wall time for the fleet's health message
        return online

    # ------------------------------------------------------------------ pushed configuration
    def apply_live_config(self, config: KioskConfig, keys: list[str]) -> None:
        """A confirmed fleet bundle changed keys that may change while running (called off the UI thread)."""
        ctx = self.ctx
        ctx.config = config
        ctx.session.set_timeouts(ctx.timeout_for(ctx.elderly), config.ui.idle_warning_s)
        log.info("pushed configuration applied live: %s", ", ".join(sorted(keys)))
        ctx.events.post("catalog")  # screens rebuild their item lists and announcements

    def request_restart_at_idle(self, keys: list[str]) -> None:
        """Keys such as device drivers or the platform address take effect at the next restart."""
        ctx = self.ctx
        ctx.restart_pending = sorted(set(ctx.restart_pending) | set(keys))
        log.info("pushed configuration needs a restart for: %s", ", ".join(ctx.restart_pending))
        ctx.events.post("status")

    @property
    def restart_pending(self) -> list[str]:
        return self.ctx.restart_pending

    # ------------------------------------------------------------------ out of service
    def missing_devices(self, kinds: tuple[str, ...] | list[str]) -> list[str]:
        """Those of `kinds` that cannot be used now (a screen that needs them cannot work)."""
        return [k for k in kinds if self.ctx.status.devices.get(k, "missing") in DOWN_STATES]

    def everything_down(self) -> bool:
        """Every device is down: nothing can be done here, show the calm out-of-service page."""
        states = self.ctx.status.devices.values()
        return bool(self.ctx.status.devices) and all(s in DOWN_STATES for s in states)

    def working_flows_text(self) -> str:
        ok = [name for flow, name in FLOW_NAMES.items() if not self.missing_devices(FLOW_NEEDS[flow])]
        if not self.missing_devices(["qr"]):
            ok.append("办件查询（扫回执二维码）")
        ok.append("帮办代办")
        if self.missing_devices(["printer"]):
            ok.append("（打印机不能用时，回执会显示成二维码，请用手机拍下）")
        return "、".join(ok)
