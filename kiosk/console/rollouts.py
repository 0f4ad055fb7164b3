"""Staged rollouts of a signed bundle: named canary kiosks first, then percentages of the targeted kiosks.

The console never signs anything: it takes a bundle the administrators signed, checks it
as a kiosk would (format, pinned keys and threshold, validity window) and releases it
stage by stage by publishing it retained on each released kiosk's own topic
(``qhb/config/kiosk/{id}``; the signed targets still decide whether the kiosk takes it).

A stage is finished when every kiosk in it has acknowledged, and those that applied it
have stayed healthy (online, reporting the new version) for ``soak_s`` seconds; the next
stage starts then, and not before ``min_stage_s`` after the previous one started (the
schedule). The rollout halts by itself when the share of a stage's kiosks that answered
``refused``, ``failed`` or ``rolled_back`` passes ``max_failure_share``; an administrator
can pause, resume (also a halted rollout) or abort it. Everything is in the database, so
a restarted console carries on where it was.
"""
from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from kiosk.console.db import ConsoleDB
from kiosk.fleet.bundle import Bundle, BundleError, parse_bundle
from kiosk.fleet.transport import topic_for_target
from kiosk.fleet.verify import TrustPolicy, check_signatures

log = logging.getLogger(__name__)

RUNNING, PAUSED, HALTED, ABORTED, COMPLETED = "running", "paused", "halted", "aborted", "completed"
BAD_RESULTS = ("refused", "failed", "rolled_back")

Publisher = Callable[[str, bytes], None]  # (topic, payload): retained, QoS 1


class RolloutError(Exception):
    """Refused upload or operation; ``reason`` is a verifier reason code or a state problem."""

    def __init__(self, reason: str, detail: str):
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")


@dataclass
class RolloutPlan:
    canaries: list[str] = field(default_factory=list)  # kiosk ids released first, as stage 0
    percentages: list[float] = field(default_factory=lambda: [5.0, 25.0, 100.0])  # cumulative shares
    soak_s: float = 600.0  # how long a stage's kiosks stay healthy before the next stage
    min_stage_s: float = 0.0  # the schedule: at least this long between stage starts
    max_failure_share: float = 0.2  # halt when more of a stage's kiosks than this refused/failed/rolled back

    def __post_init__(self) -> None:
        if not self.percentages or any(not 0 < p <= 100 for p in self.percentages):
            raise ValueError("percentages must be between 0 and 100")
        if list(self.percentages) != sorted(self.percentages):
            raise ValueError("percentages are cumulative and must increase")
        if self.percentages[-1] != 100:
            self.percentages = [*self.percentages, 100.0]
        if not 0 <= self.max_failure_share < 1:
            raise ValueError("max_failure_share must be in [0, 1)")

    @property
    def stages(self) -> int:
        return (1 if self.canaries else 0) + len(self.percentages)


def console_policy(admin_keys: list[str], threshold: int) -> TrustPolicy:
    """What the console checks uploads against: the kiosks' pinned keys and threshold."""
    return TrustPolicy.create(admin_keys, threshold, kiosk_id="console", group="console")


def check_bundle_as_kiosk(raw: bytes, policy: TrustPolicy, now: datetime | None = None) -> Bundle:
    """Format, pinned signatures (k of n), validity window: what every kiosk will check first.

    The kiosk-specific checks (target, rollback, its own schema and site file) stay with the
    kiosks; their refusals are what halts a rollout.
    """
    now = now or datetime.now(UTC)
    try:
        bundle = parse_bundle(raw, policy.max_bytes)
    except BundleError as e:
        raise RolloutError(e.reason, e.detail) from None
    reason, detail = check_signatures(bundle, policy)
    if reason != "ok":
        raise RolloutError(reason, detail)
    if bundle.expires and now >= bundle.expires:
        raise RolloutError("expired", f"expired at {bundle.signed.get('expires')}")
    return bundle


def _order_key(rollout_id: str, kiosk_id: str) -> str:
    """A stable pseudo-random order per rollout: the same kiosks are not always first."""
    return hashlib.sha256(f"{rollout_id}/{kiosk_id}".encode()).hexdigest()


class Rollouts:
    """Create, advance, pause, resume and abort rollouts; `tick()` does one round of the state machine."""

    def __init__(self, db: ConsoleDB, publish: Publisher, policy: TrustPolicy,
                 clock: Callable[[], float] = time.time):
        self.db = db
        self.publish = publish
        self.policy = policy
        self.clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ administrator actions
    def create(self, raw: bytes, plan: RolloutPlan) -> str:
        bundle = check_bundle_as_kiosk(raw, self.policy)
        rid = uuid.uuid4().hex
        now = self.clock()
        self.db.save_rollout({"id": rid, "version": bundle.version, "targets": list(bundle.targets), "bundle": raw,
                              "plan": asdict(plan), "state": RUNNING, "stage": 0, "stage_started": None,
                              "stage_healthy_since": None, "reason": None, "created": now})
        log.info("rollout created", extra={"rollout": rid, "version": bundle.version})
        self.tick()
        return rid

    def _set_state(self, rid: str, allowed_from: tuple[str, ...], state: str, reason: str | None = None) -> None:
        with self._lock:
            r = self.db.rollout(rid)
            if r is None:
                raise RolloutError("unknown_rollout", rid)
            if r["state"] not in allowed_from:
                raise RolloutError("bad_state", f"rollout is {r['state']}")
            self.db.save_rollout({"id": rid, "state": state, "reason": reason,
                                  **({"stage_healthy_since": None} if state == RUNNING else {})})

    def pause(self, rid: str) -> None:
        self._set_state(rid, (RUNNING,), PAUSED, "paused by an administrator")

    def resume(self, rid: str) -> None:
        self._set_state(rid, (PAUSED, HALTED), RUNNING)

    def abort(self, rid: str) -> None:
        """Stop releasing; kiosks released but not yet answered lose the retained copy."""
        self._set_state(rid, (RUNNING, PAUSED, HALTED), ABORTED, "aborted by an administrator")
        r = self.db.rollout(rid)
        assert r is not None
        members = self.db.members(rid)
        answered = self.db.latest_acks(r["version"], list(members))
        for kid in members:
            if kid not in answered:
                self.publish(topic_for_target(f"kiosk:{kid}"), b"")

    # ------------------------------------------------------------------ the state machine
    def status(self, rid: str) -> dict[str, Any] | None:
        r = self.db.rollout(rid)
        if r is None:
            return None
        members = self.db.members(rid)
        acks = self.db.latest_acks(r["version"], list(members))
        stages: dict[int, dict[str, int]] = {}
        for kid, st in members.items():
            s = stages.setdefault(st, {"kiosks": 0, "applied": 0, "bad": 0, "waiting": 0})
            s["kiosks"] += 1
            res = acks.get(kid, {}).get("result")
            s["applied" if res == "applied" else "bad" if res in BAD_RESULTS else "waiting"] += 1
        return {"id": rid, "version": r["version"], "targets": r["targets"], "state": r["state"],
                "stage": r["stage"], "stages": RolloutPlan(**r["plan"]).stages, "reason": r["reason"],
                "plan": r["plan"], "per_stage": {str(k): v for k, v in sorted(stages.items())}}

    def _stage_kiosks(self, r: dict[str, Any], plan: RolloutPlan, released: dict[str, int]) -> list[str]:
        targeted = self.db.kiosk_ids(r["targets"])
        stage = r["stage"]
        if plan.canaries:
            if stage == 0:
                return [k for k in plan.canaries if k in set(targeted) and k not in released]
            stage -= 1
        # cumulative: after this stage, this share of the targeted kiosks (canaries included) has it
        total = math.ceil(len(targeted) * plan.percentages[stage] / 100.0)
        pool = sorted((k for k in targeted if k not in released), key=lambda k: _order_key(r["id"], k))
        return pool[:max(0, total - len(released))]

    def tick(self) -> None:
        with self._lock:
            for r in self.db.rollouts([RUNNING]):
                try:
                    self._advance(r)
                except Exception:  # noqa: BLE001 - logged; one broken rollout must not stop the others
                    log.exception("rollout step failed", extra={"rollout": r["id"]})

    def _advance(self, r: dict[str, Any]) -> None:
        rid, now = r["id"], self.clock()
        plan = RolloutPlan(**r["plan"])
        members = self.db.members(rid)
        if r["stage_started"] is None:  # release the current stage
            kiosks = self._stage_kiosks(r, plan, members)
            for kid in kiosks:
                self.publish(topic_for_target(f"kiosk:{kid}"), r["bundle"])
            self.db.add_members(rid, r["stage"], kiosks, now)
            self.db.save_rollout({"id": rid, "stage_started": now, "stage_healthy_since": None})
            log.info("rollout stage released", extra={"rollout": rid, "stage": r["stage"], "kiosks": len(kiosks)})
            return
        stage_members = [k for k, s in members.items() if s == r["stage"]]
        acks = self.db.latest_acks(r["version"], stage_members)
        bad = [k for k in stage_members if acks.get(k, {}).get("result") in BAD_RESULTS]
        if stage_members and len(bad) / len(stage_members) > plan.max_failure_share:
            reason = (f"stage {r['stage']}: {len(bad)} of {len(stage_members)} kiosks refused, failed or rolled back "
                      f"(threshold {plan.max_failure_share:.0%})")
            self.db.save_rollout({"id": rid, "state": HALTED, "reason": reason})
            log.warning("rollout halted", extra={"rollout": rid, "reason": reason})
            return
        applied = [k for k in stage_members if acks.get(k, {}).get("result") == "applied"]
        everyone_answered = all(k in acks for k in stage_members)
        known = self.db.kiosks_by_id(applied)
        healthy = all(known.get(k, {}).get("online") and (known[k].get("config_version") or 0) >= r["version"]
                      for k in applied)
        if not (everyone_answered and healthy):
            if r["stage_healthy_since"] is not None:
                self.db.save_rollout({"id": rid, "stage_healthy_since": None})
            return
        if r["stage_healthy_since"] is None:
            self.db.save_rollout({"id": rid, "stage_healthy_since": now})
            return
        if now - r["stage_healthy_since"] < plan.soak_s or now - r["stage_started"] < plan.min_stage_s:
            return
        if r["stage"] + 1 >= plan.stages:
            self.db.save_rollout({"id": rid, "state": COMPLETED, "reason": None})
            log.info("rollout completed", extra={"rollout": rid})
            return
        self.db.save_rollout({"id": rid, "stage": r["stage"] + 1, "stage_started": None, "stage_healthy_since": None})
        self._advance(self.db.rollout(rid) or r)

    # ------------------------------------------------------------------ background
    def start(self, interval_s: float = 1.0) -> Rollouts:
        def loop() -> None:
            while not self._stop.wait(interval_s):
                self.tick()

        self._thread = threading.Thread(target=loop, name="console-rollouts", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
