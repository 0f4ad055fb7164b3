"""Helpers shared by the UI test modules (a uniquely named module: test folders share sys.path)."""
from __future__ import annotations

from pathlib import Path

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
