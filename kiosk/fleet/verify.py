"""Decide whether a kiosk may trust a bundle, and say why not with a reason code.

Checks run from cheapest and least trusting to most: size, shape, signatures
(k of n pinned keys), validity window, targets, rollback, then the configuration
schema. Nothing in an unsigned bundle is looked at beyond its shape, and nothing
the broker says (such as the topic a bundle came on) is trusted: targets come
from the signed part only.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kiosk.fleet.bundle import (
    DEFAULT_MAX_BYTES,
    Bundle,
    BundleError,
    parse_bundle,
    parse_public_key,
    verify_signature,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from kiosk.config import KioskConfig

REASONS = (
    "ok", "bad_signature", "unknown_key", "below_threshold", "expired", "not_yet_valid",
    "rollback", "not_targeted", "invalid_content", "too_large", "malformed",
)

ContentCheck = Callable[[dict[str, Any]], "str | None"]  # problem description, or None when valid


@dataclass
class Verdict:
    accepted: bool
    reason: str
    version: int | None = None
    detail: str = ""
    bundle: Bundle | None = field(default=None, repr=False)
    bundle_not_before: datetime | None = None  # for not_yet_valid: when to look again

    def as_json(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "reason": self.reason, "version": self.version}


@dataclass
class TrustPolicy:
    """What one kiosk pins: admin keys, threshold, and who it is."""

    admin_keys: dict[str, Ed25519PublicKey]
    threshold: int
    kiosk_id: str
    group: str
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def create(cls, admin_keys: list[str], threshold: int, kiosk_id: str, group: str,
               max_bytes: int = DEFAULT_MAX_BYTES) -> TrustPolicy:
        keys = {}
        for s in admin_keys:
            keys[s.strip()] = parse_public_key(s)  # ValueError names a bad pinned key
        return cls(keys, max(1, int(threshold)), kiosk_id, group, max_bytes)

    @classmethod
    def from_config(cls, cfg: KioskConfig) -> TrustPolicy:
        fleet = cfg.fleet
        return cls.create(fleet.admin_keys, fleet.threshold, cfg.kiosk.id, cfg.kiosk.group,
                          int(getattr(fleet, "max_bundle_bytes", DEFAULT_MAX_BYTES) or DEFAULT_MAX_BYTES))

    def targets_me(self, targets: list[str]) -> bool:
        mine = {"all", f"group:{self.group}", f"kiosk:{self.kiosk_id}"}
        return any(t in mine for t in targets)


def check_signatures(bundle: Bundle, policy: TrustPolicy) -> tuple[str, str]:
    """(reason, detail): 'ok' when at least `threshold` distinct pinned keys signed."""
    payload = bundle.payload()
    good: set[str] = set()
    bad: list[str] = []
    unknown: list[str] = []
    for s in bundle.signatures:
        pub = policy.admin_keys.get(s.keyid)
        if pub is None:
            unknown.append(s.keyid)
        elif verify_signature(pub, s.sig, payload):
            good.add(s.keyid)
        else:
            bad.append(s.keyid)
    if bad:  # a pinned key's signature that does not match: forged or tampered content
        return "bad_signature", f"{len(bad)} signature(s) by pinned keys do not match the content"
    if len(good) >= policy.threshold:
        return "ok", f"{len(good)} of {policy.threshold} required signatures"
    if not good and unknown:
        return "unknown_key", f"signed only by key(s) this kiosk does not pin ({len(unknown)})"
    return "below_threshold", f"{len(good)} valid signature(s), {policy.threshold} required"


def verify_bundle(
    data: bytes,
    policy: TrustPolicy,
    current_version: int = 0,
    *,
    now: datetime | None = None,
    content_check: ContentCheck | None = None,
) -> Verdict:
    """The whole decision for one received bundle."""
    now = now or datetime.now(UTC)
    try:
        bundle = parse_bundle(data, policy.max_bytes)
    except BundleError as e:
        return Verdict(False, e.reason, None, e.detail)
    v = bundle.version

    reason, detail = check_signatures(bundle, policy)
    if reason != "ok":
        return Verdict(False, reason, v, detail)
    if bundle.not_before and now < bundle.not_before:
        return Verdict(False, "not_yet_valid", v, f"valid from {bundle.signed.get('not_before')}",
                       bundle_not_before=bundle.not_before)
    if bundle.expires and now >= bundle.expires:
        return Verdict(False, "expired", v, f"expired at {bundle.signed.get('expires')}")
    if not policy.targets_me(bundle.targets):
        return Verdict(False, "not_targeted", v, f"targets {', '.join(bundle.targets)}")
    if v <= current_version:
        return Verdict(False, "rollback", v, f"version {v} is not above the trusted version {current_version}")
    if content_check is not None:
        problem = content_check(bundle.config)
        if problem:
            return Verdict(False, "invalid_content", v, problem)
    return Verdict(True, "ok", v, detail, bundle)
