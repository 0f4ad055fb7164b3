"""Remote commands carried out by the running kiosk (the executor behind kiosk.fleet.commands).

The fleet agent has already verified the signatures, expiry, target and at-most-once rule;
this module only does the action through the application's services and says what
happened. Nothing here ever captures a citizen: a screenshot (and a test page) is refused
with ``visit_in_progress`` while a visit is open, checked before and after the capture.
A restart or a reboot waits for an idle moment (the restart through the same
restart-at-idle path as pushed configuration).
"""
from __future__ import annotations

import base64
import io
import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from kiosk.app.diagnostics import run_diagnostics, write_support_bundle
from kiosk.app.services import Kiosk
from kiosk.domain.session import State
from kiosk.fleet.commands import Command, CommandResult

log = logging.getLogger(__name__)

ScreenshotSource = Callable[[], bytes]  # PNG bytes of what the kiosk's screen shows now
DiagnosticsSource = Callable[[], tuple[bytes, dict[str, object]]]  # (support bundle .tar.gz, summary)


def x_display_screenshot(display: str | None = None) -> bytes:
    """PNG of the X display the kiosk renders on (default $DISPLAY), through Pillow's XCB grab."""
    from PIL import ImageGrab  # noqa: PLC0415 - Pillow's grabber only when a screenshot is asked for

    display = display or os.environ.get("DISPLAY")
    if not display:
        raise RuntimeError("no X display to capture ($DISPLAY is not set)")
    img = ImageGrab.grab(xdisplay=display)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def systemd_reboot() -> None:
    """Reboot the machine through systemd (the kiosk user is allowed to by its polkit rule)."""
    subprocess.run(["systemctl", "reboot"], check=True, timeout=30)


class RemoteCommands:
    """A CommandExecutor over one Kiosk's services."""

    def __init__(self, service: Kiosk, *, site_file: str | None = None, screenshot: ScreenshotSource | None = None,
                 diagnostics: DiagnosticsSource | None = None, reboot: Callable[[], None] | None = None,
                 idle_poll_s: float = 1.0) -> None:
        self.service = service
        self.site_file = site_file
        self.screenshot_source: ScreenshotSource = screenshot or x_display_screenshot
        self.diagnostics_source: DiagnosticsSource = diagnostics or self._support_bundle
        self.reboot: Callable[[], None] = reboot or systemd_reboot
        self.idle_poll_s = idle_poll_s

    # ------------------------------------------------------------------ helpers
    def idle(self) -> bool:
        return self.service.ctx.session.state is State.IDLE

    def _wait_idle(self, cmd: Command) -> bool:
        """Block (on the agent's command thread) until no visit is open; False when the command expires first."""
        while not self.idle():
            if datetime.now(UTC) >= cmd.expires:
                return False
            time.sleep(self.idle_poll_s)
        return True

    def _support_bundle(self) -> tuple[bytes, dict[str, object]]:
        """The redacted `kiosk diagnose --bundle` content (devices stay with the app: not re-opened)."""
        report = run_diagnostics(self.site_file, devices=False)
        with tempfile.TemporaryDirectory(prefix="qhb-diag-") as d:
            out = Path(d) / "qhb-diagnose.tar.gz"
            names = write_support_bundle(out, report, self.site_file)
            return out.read_bytes(), {"files": names, "needs_technician": report.needs_technician}

    # ------------------------------------------------------------------ the executor
    def execute(self, cmd: Command) -> CommandResult:
        handler = {
            "screenshot": self._screenshot, "diagnostics": self._diagnostics, "test-page": self._test_page,
            "drain": self._drain, "restart": self._restart, "reboot": self._reboot,
        }.get(cmd.action)
        if handler is None:
            return CommandResult("refused", "not_supported")
        return handler(cmd)

    def _screenshot(self, cmd: Command) -> CommandResult:
        if not self.idle():
            return CommandResult("refused", "visit_in_progress")
        png = self.screenshot_source()
        if not self.idle():  # a visit began while capturing: the picture may show it, drop it
            return CommandResult("refused", "visit_in_progress")
        if not png.startswith(b"\x89PNG\r\n\x1a\n"):
            return CommandResult("failed", error="the screen capture is not a PNG")
        return CommandResult("done", data={"png_b64": base64.b64encode(png).decode("ascii"), "bytes": len(png)})

    def _diagnostics(self, cmd: Command) -> CommandResult:
        raw, summary = self.diagnostics_source()
        return CommandResult("done", data={"bundle_b64": base64.b64encode(raw).decode("ascii"),
                                           "name": "qhb-diagnose.tar.gz", "bytes": len(raw), **summary})

    def _test_page(self, cmd: Command) -> CommandResult:
        if not self.idle():  # the printer belongs to the citizen's receipt during a visit
            return CommandResult("refused", "visit_in_progress")
        printer = self.service.ctx.printer()
        if printer is None:
            return CommandResult("failed", error="no printer is open")
        printer.test_page()
        return CommandResult("done", data={"printed": True})

    def _drain(self, cmd: Command) -> CommandResult:
        drainer = self.service.ctx.drainer
        if drainer is None:
            return CommandResult("failed", error="the outbox drainer is not running")
        rep = drainer.drain_once(ignore_backoff=True)
        self.service.station.refresh_status()
        return CommandResult("done", data={"delivered": rep.delivered, "failed": rep.failed, "retried": rep.retried,
                                           "remaining": rep.remaining})

    def _restart(self, cmd: Command) -> CommandResult:
        idle_now = self.idle()
        self.service.station.request_restart_at_idle([f"command:{cmd.id}"])
        return CommandResult("done", data={"restart": "at_idle", "idle_now": idle_now})

    def _reboot(self, cmd: Command) -> CommandResult:
        if not self._wait_idle(cmd):
            return CommandResult("expired", "expired", data={"detail": "no idle moment before the command expired"})
        return CommandResult("done", data={"reboot": "now"}, then=self.reboot)
