"""Decide whether a kiosk may trust a bundle, and say why not with a reason code.

Checks run from cheapest and least trusting to most: size, shape, signatures
(k of n pinned keys, counted by distinct raw key bytes), validity window (an
expiry is required, at most 30 days after the signed ``issued_at``), targets,
rollback (above the trusted high-water mark and at least the site file's
``[fleet] min_version``), the pushable allow-list (``kiosk.fleet.pushable``), then
the configuration schema. Nothing in an unsigned bundle is looked at beyond its
shape, and nothing the broker says (such as the topic a bundle came on) is
trusted: targets come from the signed part only.

Reason codes: ``ok``, ``bad_signature``, ``unknown_key``, ``below_threshold``,
``expiry_required`` (no signed ``expires`` or ``issued_at``), ``expiry_too_long``
(``expires`` more than 30 days after ``issued_at``, or more than 30 days from the
kiosk's clock), ``expired``, ``not_yet_valid``, ``not_targeted``, ``rollback``,
``forbidden_key`` (the detail names the keys), ``invalid_content``, ``unsafe_config``
(with ``[ui] production`` on, the configuration the bundle would produce fails the
production check; decided by ``kiosk.fleet.apply.ConfigApplier.verify``),
``too_large``, ``malformed``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from kiosk.fleet.bundle import (
    DEFAULT_MAX_BYTES,
    Bundle,
    BundleError,
    parse_bundle,
    parse_public_key,
    public_key_string,
    verify_signature,
)
from kiosk.fleet.pushable import describe_forbidden, forbidden_keys

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from kiosk.config import KioskConfig

REASONS = (
    "ok", "bad_signature", "unknown_key", "below_threshold", "expired", "not_yet_valid",
    "rollback", "not_targeted", "invalid_content", "too_large", "malformed",
    "forbidden_key", "expiry_required", "expiry_too_long", "unsafe_config",
)

#: The longest a bundle may stay valid: `expires` at most this long after its signed `issued_at`.
MAX_VALIDITY = timedelta(days=30)
#: Clock difference tolerated between the signing machine and a kiosk.
CLOCK_SKEW = timedelta(minutes=5)

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

    admin_keys: dict[str, Ed25519PublicKey]  # canonical `ed25519:<base64>` spelling -> key (one per raw key)
    threshold: int
    kiosk_id: str
    group: str
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def create(cls, admin_keys: list[str], threshold: int, kiosk_id: str, group: str,
               max_bytes: int = DEFAULT_MAX_BYTES) -> TrustPolicy:
        keys = {}
        for s in admin_keys:
            pub = parse_public_key(s)  # ValueError names a bad pinned key
            keys[public_key_string(pub)] = pub  # two spellings of one key are one key
        return cls(keys, max(1, int(threshold)), kiosk_id, group, max_bytes)

    @classmethod
    def from_config(cls, cfg: KioskConfig) -> TrustPolicy:
        fleet = cfg.fleet
        return cls.create(fleet.admin_keys, fleet.threshold, cfg.kiosk.id, cfg.kiosk.group,
                          int(getattr(fleet, "max_bundle_bytes", DEFAULT_MAX_BYTES) or DEFAULT_MAX_BYTES))

    def lookup(self, keyid: str) -> tuple[str, Ed25519PublicKey] | None:
        """The pinned key a signature's `keyid` names, under its canonical spelling; None if not pinned.

        Any spelling that decodes to a pinned key's raw bytes finds it, and always as
        the same canonical name, so thresholds count distinct raw keys.
        """
        try:
            canonical = public_key_string(parse_public_key(keyid))
        except ValueError:
            return None
        pub = self.admin_keys.get(canonical)
        return None if pub is None else (canonical, pub)

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
        pinned = policy.lookup(s.keyid)
        if pinned is None:
            unknown.append(s.keyid)
        elif verify_signature(pinned[1], s.sig, payload):
            good.add(pinned[0])
        else:
            bad.append(s.keyid)
    if bad:  # a pinned key's signature that does not match: forged or tampered content
        return "bad_signature", f"{len(bad)} signature(s) by pinned keys do not match the content"
    if len(good) >= policy.threshold:
        return "ok", f"{len(good)} of {policy.threshold} required signatures"
    if not good and unknown:
        return "unknown_key", f"signed only by key(s) this kiosk does not pin ({len(unknown)})"
    return "below_threshold", f"{len(good)} valid signature(s), {policy.threshold} required"


def check_expiry(issued_at: datetime | None, expires: datetime | None, now: datetime) -> tuple[str, str] | None:
    """(reason, detail) when the validity window is not acceptable; None when it is.

    One rule for the kiosk and for `kiosk-admin sign`: an expiry is required, and it
    lies at most 30 days after the signed issuing time (and, so a future
    ``issued_at`` cannot stretch it, at most 30 days from the kiosk's own clock).
    """
    if expires is None:
        return "expiry_required", "the bundle has no signed expiry ('expires'); sign it with --expires"
    if issued_at is None:
        return "expiry_required", "the bundle has no signed issuing time ('issued_at') to measure its expiry from"
    if expires - issued_at > MAX_VALIDITY:
        return "expiry_too_long", (f"expires {(expires - issued_at).days} days after it was issued; "
                                   f"at most {MAX_VALIDITY.days} days")
    if expires - now > MAX_VALIDITY + CLOCK_SKEW:
        return "expiry_too_long", f"expires more than {MAX_VALIDITY.days} days from now"
    return None


def verify_bundle(
    data: bytes,
    policy: TrustPolicy,
    current_version: int = 0,
    *,
    now: datetime | None = None,
    content_check: ContentCheck | None = None,
    min_version: int = 0,
) -> Verdict:
    """The whole decision for one received bundle.

    Rollback floor: the version must be above `current_version` (the stored
    high-water mark) and at least `min_version` (the site file's pinned floor,
    which survives the loss of the state directory).
    """
    now = now or datetime.now(UTC)
    try:
        bundle = parse_bundle(data, policy.max_bytes)
    except BundleError as e:
        return Verdict(False, e.reason, None, e.detail)
    v = bundle.version

    reason, detail = check_signatures(bundle, policy)
    if reason != "ok":
        return Verdict(False, reason, v, detail)
    expiry = check_expiry(bundle.issued_at, bundle.expires, now)
    if expiry is not None:
        return Verdict(False, expiry[0], v, expiry[1])
    if bundle.not_before and now < bundle.not_before:
        return Verdict(False, "not_yet_valid", v, f"valid from {bundle.signed.get('not_before')}",
                       bundle_not_before=bundle.not_before)
    if bundle.expires and now >= bundle.expires:
        return Verdict(False, "expired", v, f"expired at {bundle.signed.get('expires')}")
    if not policy.targets_me(bundle.targets):
        return Verdict(False, "not_targeted", v, f"targets {', '.join(bundle.targets)}")
    if v <= current_version:
        return Verdict(False, "rollback", v, f"version {v} is not above the trusted version {current_version}")
    if v < min_version:
        return Verdict(False, "rollback", v, f"version {v} is below the site file's [fleet] min_version {min_version}")
    forbidden = forbidden_keys(bundle.config)
    if forbidden:
        return Verdict(False, "forbidden_key", v, describe_forbidden(forbidden))
    if content_check is not None:
        problem = content_check(bundle.config)
        if problem:
            return Verdict(False, "invalid_content", v, problem)
    return Verdict(True, "ok", v, detail, bundle)
