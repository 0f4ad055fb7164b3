"""pcscd with vsmartcard's vpcd reader, started and stopped by the tests themselves."""
from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time

COMM = "/run/pcscd/pcscd.comm"
VPCD_READER = "Virtual PCD 00 00"
VPCD_PORT = 35963


def _wait_port_free(port: int, timeout: float) -> None:
    """Wait until nothing (not even a TIME_WAIT socket) holds the port, like vpcd's bind needs."""
    import socket
    end = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("0.0.0.0", port))
            return
        except OSError:
            if time.monotonic() > end:
                raise RuntimeError(f"port {port} stays busy; is another vpcd running?") from None
            time.sleep(0.5)
        finally:
            s.close()


def _readers() -> list[str]:
    try:
        from smartcard.System import readers
        return [str(r) for r in readers()]
    except Exception:  # pcscd not up yet, or the socket half-open: "no readers", but say why
        logging.getLogger(__name__).debug("listing PC/SC readers failed", exc_info=True)
        return []


class PcscdPeer:
    """Our own pcscd (or one already serving the socket, which we then never stop)."""

    def __init__(self, log_path: str):
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.external = False

    @staticmethod
    def unavailable_reason() -> str | None:
        if shutil.which("pcscd") is None:
            return "pcscd binary not installed (apt-get install pcscd vsmartcard-vpcd)"
        return None

    def start(self, timeout: float = 30.0, attempts: int = 3) -> None:
        """Start pcscd until it shows the virtual reader.

        A fresh-clone run once saw pcscd up without the reader for 30 s (vpcd's bind lost to a
        socket of the previous run): that start is stopped and tried again, not failed.
        """
        if os.path.exists(COMM) and VPCD_READER in _readers():
            self.external = self.proc is None
            return
        if os.geteuid() != 0:
            raise RuntimeError("pcscd must be started as root for these tests")
        for attempt in range(1, attempts + 1):
            if self._start_once(timeout):
                return
            logging.getLogger(__name__).warning(
                "pcscd did not show %r within %.0f s (attempt %d of %d)", VPCD_READER, timeout, attempt, attempts)
            self.stop()
        raise RuntimeError(f"pcscd did not show {VPCD_READER!r} in {attempts} starts "
                           f"(is vsmartcard-vpcd installed?); log {self.log_path}")

    def _start_once(self, timeout: float) -> bool:
        _wait_port_free(VPCD_PORT, timeout=75)  # vpcd binds without SO_REUSEADDR
        self.proc = subprocess.Popen([shutil.which("pcscd"), "--foreground", "--debug"],  # type: ignore[list-item]
                                     stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            code = self.proc.poll()
            if code is not None:
                self.proc = None
                raise RuntimeError(f"pcscd exited with {code}; log {self.log_path}")
            if VPCD_READER in _readers():
                return True
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        """Stop our pcscd by pid (remove virtual cards first: a killed connection leaves TIME_WAIT)."""
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
