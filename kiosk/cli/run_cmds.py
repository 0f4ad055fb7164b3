"""`kiosk run [--simulate] [--config FILE]`: open the kiosk window.

With --simulate the development profile (config/development.toml) is loaded
under the site file, every device uses its simulated driver and the platform
simulator runs inside the process. Without --simulate, a configuration with
``[ui] production = true`` that fails the production check (kiosk.infra.production)
exits 78 (EX_CONFIG) listing every offending key, before Kivy is even imported;
so does a configuration the schema refuses (with --simulate too).
Without a display the window renders
offscreen (SDL's EGL driver) and we say so. SIGTERM closes the app cleanly.
"""
from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import click

from kiosk.cli._groups import config_option
from kiosk.config import DEVELOPMENT_PROFILE, PROFILE_ENV, ConfigError
from kiosk.domain.session import State
from kiosk.infra.logs import setup_logging
from kiosk.infra.production import EX_CONFIG, check_site, format_problems, production_problems
from kiosk.infra.systemd import Watchdog, notify, start_watchdog
from screens.boot import configure_kivy


def register(cli: click.Group) -> None:
    @cli.command("run")
    @click.option("--simulate", is_flag=True, help="Simulated devices and the embedded platform simulator.")
    @click.option("--platform", "platform_url", metavar="URL", default=None,
                  help="Use the platform at URL (with --simulate: instead of the embedded simulator).")
    @config_option
    @click.option("--exit-after", type=float, default=None, help="Close after N seconds (smoke tests).")
    @click.option("--screenshot", type=click.Path(dir_okay=False), default=None,
                  help="Save the first home frame as PNG (with --exit-after).")
    def run_cmd(simulate: bool, platform_url: str | None, config_file: str | None, exit_after: float | None,
                screenshot: str | None) -> None:
        """Open the kiosk UI."""
        if simulate:
            os.environ[PROFILE_ENV] = DEVELOPMENT_PROFILE  # every loader in this process (fleet, drainer) sees it
        from kiosk.fleet.apply import boot_ready, boot_started, load_effective  # noqa: PLC0415 - requests, bundle crypto

        boot_started(config_file)  # boot counter: two starts without READY under pushed restart keys -> last good

        try:
            loaded = load_effective(config_file)  # site file + the last confirmed fleet bundle
        except ConfigError as e:
            # the schema's problems, and (production on) every development value among the keys it accepted
            named = {key for key, _src, _msg in e.problems}
            also = [] if simulate else [p for p in check_site(config_file).production if p.key not in named]
            click.echo("kiosk run: refusing to start. " + str(e) + ("\n" + format_problems(also) if also else ""),
                       err=True)
            sys.exit(EX_CONFIG)
        cfg = loaded.config
        refused = production_problems(loaded)
        if refused and simulate:  # simulated devices and platform: never a real kiosk, whatever the file says
            click.echo(f"kiosk run --simulate: production check not enforced ({len(refused)} development values)",
                       err=True)
        elif refused:
            click.echo("kiosk run: refusing to start. " + format_problems(refused), err=True)
            sys.exit(EX_CONFIG)
        mode = configure_kivy(cfg.ui.width, cfg.ui.height, production=cfg.ui.production)
        if mode == "offscreen":
            click.echo("kiosk run: no display found; rendering offscreen (SDL offscreen/EGL). "
                       "Use `kiosk demo --out DIR` for screenshots, or run under Xvfb.", err=True)
        from kiosk.bootstrap.app import build_kiosk  # noqa: PLC0415 - drivers, outbox, requests: not for --help

        service = build_kiosk(cfg, simulate=simulate, platform_url=platform_url)
        log_dir = service.ctx.state_dir / "log" if simulate else cfg.resolve_path(cfg.logging.dir)
        service.ctx.log_path = setup_logging(log_dir, cfg.logging.level, cfg.logging.max_bytes, cfg.logging.backups)
        from kivy.clock import Clock  # noqa: PLC0415 - Kivy only once the window opens

        from screens.app import KioskApp  # noqa: PLC0415 - Kivy only once the window opens

        app = KioskApp(service)

        def _term(_sig: int, _frame: object) -> None:
            Clock.schedule_once(lambda _dt: app.stop(), 0)

        def _ready(_dt: float) -> None:
            click.echo(f"kiosk run: home screen shown ({mode})", err=True)
            if app.production:
                from kivy.core.window import Window  # noqa: PLC0415 - Kivy only once the window opens

                click.echo(f"kiosk run: production mode: fullscreen={Window.fullscreen} "
                           f"borderless={Window.borderless} cursor_shown={Window.show_cursor} exit_keys=disabled",
                           err=True)
            service.start(background=True)  # catalog, platform, outbox, devices: after the first frame
            _arm_watchdog(Clock, cfg.kiosk.station_name, service.lifecycle.healthy)
            boot_ready(config_file)  # READY: the configuration this start runs with has booted
            if cfg.fleet.enabled:
                from kiosk.app.fleet_link import FleetLink  # noqa: PLC0415 - paho only with the fleet on

                fleet.append(FleetLink(service, config_file).start())
                Clock.schedule_interval(_restart_when_idle, 5.0)

        fleet: list[Any] = []
        exit_code = [0]

        def _restart_when_idle(_dt: float) -> None:
            pending = service.station.restart_pending
            if pending and service.ctx.session.state is State.IDLE:
                click.echo("kiosk run: restarting for pushed configuration: " + ", ".join(pending), err=True)
                exit_code[0] = RESTART_EXIT_CODE
                app.stop()

        app.bind(on_start=lambda *_: Clock.schedule_once(_ready, 0))
        signal.signal(signal.SIGTERM, _term)
        signal.signal(signal.SIGINT, _term)
        if exit_after is not None:
            def _finish(_dt: float) -> None:
                if screenshot:
                    app.root.export_to_png(screenshot)
                app.stop()

            Clock.schedule_once(_finish, exit_after)
        click.echo(f"kiosk run: {cfg.kiosk.station_name} ({'simulated devices' if simulate else 'configured devices'})",
                   err=True)
        try:
            app.run()
        finally:
            notify("STOPPING=1")
            for link in fleet:
                link.stop()
            service.stop()
        click.echo("kiosk run: stopped", err=True)
        if exit_code[0]:
            sys.exit(exit_code[0])  # systemd (Restart=on-failure) starts us again with the new configuration


#: `kiosk run` exits with this (EX_TEMPFAIL) to be restarted by systemd at an idle moment.
RESTART_EXIT_CODE = 75


def _arm_watchdog(clock: object, station: str, healthy: Callable[[], bool] | None = None) -> Watchdog:
    """Tell systemd (Type=notify) we are up, and keep its watchdog fed while the UI loop turns AND the core is healthy.

    The heartbeat is a Kivy clock callback, so a frozen UI stops the pings; a failed
    start-up (or a dead drainer) makes `healthy` false and stops them too; either
    way systemd restarts the kiosk after WatchdogSec.
    """
    dog = Watchdog(healthy, stale_after_s=10.0)
    clock.schedule_interval(lambda _dt: dog.beat(), 1.0)  # type: ignore[attr-defined]
    start_watchdog(dog.alive, status=f"serving {station}")
    return dog
