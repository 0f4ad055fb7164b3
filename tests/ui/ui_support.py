"""Helpers shared by the UI test modules (a uniquely named module: test folders share sys.path)."""
from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.config import load_config
from kiosk.infra.speech import RecordingSpeech

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "ui"


def make_service(tmp: Path, clock=None, **cli: object):
    from kiosk.bootstrap.app import build_kiosk

    overrides = {"ui": {"voice": True, "idle_timeout_s": 90, "idle_warning_s": 15}}
    for k, v in cli.items():
        overrides.setdefault(k, {}).update(v)  # type: ignore[union-attr]
    cfg = load_config(cli=overrides)
    kw = {"clock": clock} if clock is not None else {}
    svc = build_kiosk(cfg, simulate=True, state_dir=tmp, speech=RecordingSpeech(), submit_wait_s=6.0,
                      payment_timeout_s=30.0, status_interval_s=1.0, thanks_s=0.3, **kw)
    return svc.start()


class Gate:
    """Wraps a port method: a call waits until `open()` (only the first call with first_only); `entered` is set
    when a call arrives, `returned` once it has returned."""

    def __init__(self, first_only: bool = False) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()
        self.returned = threading.Event()
        self.first_only = first_only
        self._used = False

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def gated(*args: Any, **kwargs: Any) -> Any:
            if self.first_only and self._used:
                return fn(*args, **kwargs)
            self._used = True
            self.entered.set()
            try:
                if not self.released.wait(60):  # a guard against hanging the run, not a timing
                    raise TimeoutError("the test never opened the gate")
                return fn(*args, **kwargs)
            finally:
                self.returned.set()

        return gated

    def open(self) -> None:
        self.released.set()
