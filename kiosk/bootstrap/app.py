"""Building the kiosk: the concrete platform client, outbox, drainer and device drivers behind the app's ports.

`build_kiosk` is what `kiosk run`, the demo, the benchmarks and the tests call.
`BootWiring` is handed to the application's lifecycle, which calls it on its
start-up thread in the usual order (platform, outbox, drainer, devices).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from devices.base import DeviceAdapter
from kiosk.app.context import Timings
from kiosk.app.services import Kiosk
from kiosk.bootstrap import drivers
from kiosk.config import KioskConfig
from kiosk.domain.catalog import Catalog
from kiosk.infra.allocator import tune_allocator
from kiosk.infra.speech import make_speech
from kiosk.platform.client import PlatformClient
from kiosk.ports.clock import Clock
from kiosk.ports.devices import DevicePort
from kiosk.ports.outbox import DrainerPort, OutboxPort
from kiosk.ports.platform import PlatformPort
from kiosk.ports.speech import SpeechBackend
from offline_cache.drainer import Drainer
from offline_cache.outbox import Outbox, open_outbox_at
from standins.platform_sim import SimHandle, start_in_thread

__all__ = ["BootWiring", "build_kiosk"]


class BootWiring:
    """The concrete things behind the ports, built when the lifecycle asks for them."""

    def __init__(self, config: KioskConfig, *, simulate: bool = False, state_dir: str | Path | None = None,
                 platform_url: str | None = None, device_overrides: dict[str, dict[str, Any]] | None = None,
                 clock: Clock = time.monotonic) -> None:
        self.config = config
        self.clock = clock  # the client notes its contacts on the app's clock (the status compares them)
        self.simulate = simulate
        self.state_dir = Path(state_dir) if state_dir else config.data_dir
        self.platform_url = platform_url
        self.device_overrides = device_overrides or {}
        self.simulator: SimHandle | None = None  # the embedded platform simulator (--simulate, tests, demo)

    def open_platform(self) -> PlatformPort:
        """The client; with `platform_url` (`kiosk run --platform URL`) that platform and no embedded simulator."""
        url = self.platform_url
        if url is None and (self.simulate or self.config.platform.embedded_simulator):
            self.simulator = start_in_thread(self.state_dir / "platform-sim", port=0, pay_after_s=8.0,
                                             progress_step_s=20.0)
            url = self.simulator.url
        client: PlatformPort = PlatformClient.from_config(self.config, base_url=url or self.config.platform.base_url,
                                                          clock=self.clock)
        return client

    def open_outbox(self) -> OutboxPort:
        key_file = self.config.resolve_path(self.config.storage.key_file)
        if self.simulate or self.platform_url is not None:
            key_file = self.state_dir / "kiosk.key"
        # first start creates the key (never over an existing queue); a corrupt queue is moved aside
        return open_outbox_at(self.state_dir / "outbox.db", key_file, create_key=True, recover=True)

    def open_drainer(self, outbox: OutboxPort, platform: PlatformPort) -> DrainerPort:
        if not isinstance(outbox, Outbox):
            raise TypeError("the drainer needs the SQLite outbox it was built for")
        return Drainer(outbox, platform, base_backoff_s=0.5, max_backoff_s=30.0,
                       retention_s=self.config.storage.retention_days * 86400)

    def device_settings(self, kind: str) -> dict[str, Any]:
        """The configured settings of `kind`, with --simulate and the overrides applied."""
        settings = self.config.devices[kind]
        d = settings.model_dump()
        d.update(settings.model_extra or {})
        if self.simulate:
            d["driver"] = "simulated"
        d.update(self.device_overrides.get(kind, {}))
        if kind == "printer" and d.get("driver") == "simulated" and "out_dir" not in d:
            d["out_dir"] = str(self.state_dir / "receipts")
        return d

    def create_device(self, kind: str) -> DevicePort:
        dev: DevicePort = drivers.create(kind, self.device_settings(kind))
        return dev

    def polls(self, device: DevicePort) -> bool:
        return isinstance(device, DeviceAdapter) and type(device)._poll_once is not DeviceAdapter._poll_once

    def close(self) -> None:
        if self.simulator is not None:
            self.simulator.stop()


def build_kiosk(config: KioskConfig, *, simulate: bool = False, state_dir: str | Path | None = None,
                speech: SpeechBackend | None = None, clock: Clock = time.monotonic, catalog: Catalog | None = None,
                platform_url: str | None = None, device_overrides: dict[str, dict[str, Any]] | None = None,
                submit_wait_s: float = 4.0, payment_timeout_s: float = 180.0, status_interval_s: float = 3.0,
                thanks_s: float = 2.0, payment_poll_s: float = 1.0) -> Kiosk:
    """The kiosk's services over the configured (or, with `simulate`, simulated) devices and platform; unstarted."""
    tune_allocator()  # before the devices and workers start their threads (kiosk.infra.allocator says why)
    wiring = BootWiring(config, simulate=simulate, state_dir=state_dir, platform_url=platform_url,
                        device_overrides=device_overrides, clock=clock)
    speech = speech or make_speech(config.ui.voice_backend, config.ui.voice, volume=config.ui.voice_volume,
                                   rate_wpm=config.ui.voice_rate_wpm)
    return Kiosk(config, wiring, speech=speech,
                 clock=clock, state_dir=state_dir, catalog=catalog,
                 timings=Timings(submit_wait_s=submit_wait_s, payment_timeout_s=payment_timeout_s,
                                 status_interval_s=status_interval_s, thanks_s=thanks_s,
                                 payment_poll_s=payment_poll_s))
