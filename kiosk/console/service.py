"""The console's services in one place: database, ingest, rollouts, uploads, the admin token.

The JSON API (kiosk.console.server) and the server-rendered pages (kiosk/console/web/) are thin
layers over this object; nothing here knows about HTTP.
"""
from __future__ import annotations

import hmac
import logging
import os
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk.console.db import ConsoleDB, database_url
from kiosk.console.ingest import Ingest
from kiosk.console.rollouts import RolloutError, RolloutPlan, Rollouts, check_bundle_as_kiosk, console_policy
from kiosk.fleet.bundle import BundleError
from kiosk.fleet.commands import (
    CommandError,
    check_command_signatures,
    command_topic_for_target,
    parse_command,
    thresholds_from,
)
from kiosk.fleet.transport import topic_for_target
from kiosk.fleet.verify import TrustPolicy

log = logging.getLogger(__name__)

TOKEN_FILE = "admin-token"
HISTORY_KEEP_S = 30 * 86400.0  # health history: 10,000 kiosks a minute is 14 million rows a day
STALE_OFFLINE_S = 600.0  # silent this long: offline even without a last will (a cut cable, a broker restart)


def ensure_admin_token(state_dir: Path) -> tuple[str, bool]:
    """(token, created): DIR/admin-token, written 0600 on first start; the API's bearer token and first login."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / TOKEN_FILE
    try:
        return path.read_text(encoding="ascii").strip(), False
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(token + "\n")
    return token, True


@dataclass
class ConsoleConfig:
    broker_url: str
    state_dir: Path
    db_url: str | None = None
    admin_keys: list[str] = field(default_factory=list)  # the kiosks' pinned keys (ed25519:...)
    threshold: int = 1  # the kiosks' bundle threshold
    command_thresholds: Mapping[str, int] | None = None
    broker_kw: dict[str, Any] = field(default_factory=dict)
    tick_s: float = 1.0


class Console:
    """`start()` connects ingest and the rollout loop; `stop()` ends them."""

    def __init__(self, cfg: ConsoleConfig):
        self.cfg = cfg
        self.token, self.token_created = ensure_admin_token(cfg.state_dir)
        self.db = ConsoleDB(database_url(cfg.state_dir, cfg.db_url))
        self.policy: TrustPolicy = console_policy(cfg.admin_keys, cfg.threshold)
        self.thresholds = thresholds_from(cfg.command_thresholds)
        self.ingest = Ingest(self.db, cfg.broker_url, **cfg.broker_kw)
        self.rollouts = Rollouts(self.db, self.ingest.publish, self.policy)
        self._stop = threading.Event()
        self._house: threading.Thread | None = None

    def start(self) -> Console:
        self.ingest.start()
        self.rollouts.start(self.cfg.tick_s)
        self._house = threading.Thread(target=self._housekeeping, name="console-housekeeping", daemon=True)
        self._house.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.rollouts.stop()
        self.ingest.stop()
        self.db.close()

    def _housekeeping(self) -> None:
        while not self._stop.wait(30.0):
            try:
                self.db.mark_stale_offline(STALE_OFFLINE_S)
                self.db.prune_history(HISTORY_KEEP_S)
            except Exception:  # noqa: BLE001 - logged; housekeeping tries again
                log.exception("console housekeeping failed")

    def token_ok(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(presented.encode(), self.token.encode())  # type: ignore[union-attr]

    # ------------------------------------------------------------------ uploads (verified as a kiosk would)
    def upload_command(self, raw: bytes) -> dict[str, Any]:
        """Check format, pinned signatures for the action's threshold and expiry; store; publish retained."""
        try:
            cmd = parse_command(raw)
        except CommandError as e:
            raise RolloutError(e.reason, e.detail) from None
        reason, detail = check_command_signatures(cmd, self.policy, self.thresholds.get(cmd.action, 2))
        if reason != "ok":
            raise RolloutError(reason, detail)
        if datetime.now(UTC) >= cmd.expires:
            raise RolloutError("expired", f"expired at {cmd.signed.get('expires')}")
        self.db.add_command(cmd.id, cmd.action, cmd.target, cmd.signed["expires"], cmd.signed.get("issued_at"), raw)
        topic = command_topic_for_target(cmd.target)
        self.ingest.publish(topic, raw)
        return {"id": cmd.id, "action": cmd.action, "target": cmd.target, "topics": [topic]}

    def push_bundle(self, raw: bytes) -> dict[str, Any]:
        """A bundle to all its targets at once (no stages)."""
        try:
            bundle = check_bundle_as_kiosk(raw, self.policy)
        except BundleError as e:
            raise RolloutError(e.reason, e.detail) from None
        topics = sorted({topic_for_target(t) for t in bundle.targets})
        for t in topics:
            self.ingest.publish(t, raw)
        return {"version": bundle.version, "targets": bundle.targets, "topics": topics}

    def start_rollout(self, raw: bytes, plan: Mapping[str, Any]) -> str:
        try:
            p = RolloutPlan(**dict(plan))
        except (TypeError, ValueError) as e:
            raise RolloutError("bad_plan", str(e)) from None
        return self.rollouts.create(raw, p)
