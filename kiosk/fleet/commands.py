"""Signed remote commands: the file format, the kiosk's decision, at-most-once execution, results.

A command is one JSON document, signed like a configuration bundle (Ed25519, k of n
pinned administrator keys) but under its own domain-separation tag, so a command
signature is never a bundle signature and the other way round::

    {"format": "qhb-fleet-command/1",
     "signed": {"id": "<32 hex>", "action": "screenshot", "target": "kiosk:qhb-0001",
                "expires": "2026-12-01T10:00:00Z", "issued_at": "...", "issued_by": ["ed25519:..."],
                "args": {}},
     "signatures": [{"keyid": "ed25519:<base64>", "sig": "<base64>"}]}

The number of signatures an action needs is configuration (``[fleet.command_thresholds]``,
e.g. 1 for a screenshot, 2 for a reboot). A kiosk executes a command at most once (ids
are remembered in the fleet state directory until well after they expire) and refuses
with the bundle reason codes: ``bad_signature``, ``unknown_key``, ``below_threshold``,
``expired``, ``not_targeted``, ``rollback`` (an id it has already executed: a replay),
``too_large``, ``malformed``. What the kiosk did is published retained on
``qhb/kiosk/{id}/result``: ``done`` with data, ``refused`` with a reason code,
``failed`` with an error, or ``expired``.

Topics: ``qhb/command/all``, ``qhb/command/group/{group}``, ``qhb/command/kiosk/{id}``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.fleet.bounded_queue import put_dropping_oldest
from kiosk.fleet.bundle import (
    TARGET_RE,
    BundleError,
    Signature,
    canonical_json,
    format_time,
    opt_time,
    parse_time,
    public_key_string,
    read_envelope,
    verify_signature,
)
from kiosk.fleet.bundle import _b64 as b64
from kiosk.fleet.transport import publish_retained
from kiosk.fleet.trust import read_json
from kiosk.fleet.verify import TrustPolicy
from kiosk.infra.atomic_file import atomic_write_json

log = logging.getLogger(__name__)

FORMAT = "qhb-fleet-command/1"
SIGNING_TAG = b"qhb-fleet-command/1\n"
ACTIONS = ("screenshot", "diagnostics", "test-page", "drain", "restart", "reboot")
DEFAULT_THRESHOLDS: dict[str, int] = {"screenshot": 1, "diagnostics": 1, "test-page": 1, "drain": 1,
                                      "restart": 2, "reboot": 2}
STATUSES = ("done", "refused", "failed", "expired")
MAX_COMMAND_BYTES = 64 * 1024
#: Commands queued while one is being carried out; when full, the oldest is dropped (logged).
COMMAND_QUEUE_MAX = 32
MAX_LIFETIME = timedelta(days=7)  # an expiry further out is refused as malformed
ID_RE_LEN = 32
COMMANDS_FILE = "commands.json"
RESULT_HISTORY = 10
COMMAND_ALL = "qhb/command/all"

CommandError = BundleError  # (reason, detail), the same reason codes as bundles


# ------------------------------------------------------------------ topics
def command_topics(kiosk_id: str, group: str) -> list[str]:
    return [COMMAND_ALL, f"qhb/command/group/{group}", f"qhb/command/kiosk/{kiosk_id}"]


def command_topic_for_target(target: str) -> str:
    if target == "all":
        return COMMAND_ALL
    kind, _, name = target.partition(":")
    return f"qhb/command/{kind}/{name}"


def is_command_topic(topic: str) -> bool:
    return topic.startswith("qhb/command/")


def result_topic(kiosk_id: str) -> str:
    return f"qhb/kiosk/{kiosk_id}/result"


# ------------------------------------------------------------------ the document
@dataclass
class Command:
    id: str
    action: str
    target: str
    expires: datetime
    issued_at: datetime | None = None
    issued_by: list[str] = field(default_factory=list)
    args: dict[str, Any] = field(default_factory=dict)
    signatures: list[Signature] = field(default_factory=list)
    signed: dict[str, Any] = field(default_factory=dict)  # the signed object exactly as read

    def payload(self) -> bytes:
        return SIGNING_TAG + canonical_json(self.signed)

    def to_bytes(self) -> bytes:
        doc = {"format": FORMAT, "signed": self.signed,
               "signatures": [{"keyid": s.keyid, "sig": b64(s.sig)} for s in self.signatures]}
        return json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True, allow_nan=False).encode("utf-8") + b"\n"

    def digest(self) -> str:
        return hashlib.sha256(self.payload()).hexdigest()


def build_command(action: str, target: str, expires: datetime, *, command_id: str | None = None,
                  args: dict[str, Any] | None = None, issued_at: datetime | None = None,
                  issued_by: list[str] | None = None) -> dict[str, Any]:
    """The signed part of a new command; ValueError names what is wrong."""
    if action not in ACTIONS:
        raise ValueError(f"action {action!r} is not one of {', '.join(ACTIONS)}")
    if not TARGET_RE.match(target):
        raise ValueError(f"target {target!r} is not all, group:NAME or kiosk:ID")
    issued = issued_at or datetime.now(UTC)
    if expires <= issued:
        raise ValueError("the command would already be expired")
    if expires - issued > MAX_LIFETIME:
        raise ValueError(f"a command may live at most {MAX_LIFETIME.days} days")
    return {"id": command_id or uuid.uuid4().hex, "action": action, "target": target,
            "expires": format_time(expires), "issued_at": format_time(issued),
            "issued_by": list(issued_by or []), "args": dict(args or {})}


def sign_command(signed: dict[str, Any], keys: list[Ed25519PrivateKey]) -> Command:
    payload = SIGNING_TAG + canonical_json(signed)
    sigs = [Signature(public_key_string(k.public_key()), k.sign(payload)) for k in keys]
    return parse_command(Command("", "", "", datetime.now(UTC), signatures=sigs, signed=signed).to_bytes())


def add_command_signature(cmd: Command, key: Ed25519PrivateKey) -> Command:
    """Co-sign: another administrator's signature for a k-of-n action."""
    keyid = public_key_string(key.public_key())
    sigs = [s for s in cmd.signatures if s.keyid != keyid] + [Signature(keyid, key.sign(cmd.payload()))]
    return parse_command(replace(cmd, signatures=sigs).to_bytes())


def is_command(data: bytes) -> bool:
    """Whether `data` claims to be a command (for `kiosk-admin push`, which takes bundles and commands)."""
    try:
        doc = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("format") == FORMAT


def parse_command(data: bytes, max_bytes: int = MAX_COMMAND_BYTES) -> Command:
    """Bytes -> Command, or CommandError('too_large' | 'malformed'). Never checks signatures."""
    signed, signatures = read_envelope(data, fmt=FORMAT, max_bytes=max_bytes, what="command", fields={
        "id", "action", "target", "expires", "issued_at", "issued_by", "args"})
    cid, action, target = signed.get("id"), signed.get("action"), signed.get("target")
    if not isinstance(cid, str) or len(cid) != ID_RE_LEN or any(c not in "0123456789abcdef" for c in cid):
        raise CommandError("malformed", "id must be 32 lowercase hex digits")
    if action not in ACTIONS:
        raise CommandError("malformed", f"unknown action {action!r}")
    if not isinstance(target, str) or not TARGET_RE.match(target):
        raise CommandError("malformed", "target must be all, group:NAME or kiosk:ID")
    args = signed.get("args", {})
    if not isinstance(args, dict):
        raise CommandError("malformed", "args must be an object")
    expires = opt_time(signed, "expires")
    if expires is None:
        raise CommandError("malformed", "a command needs an expiry")
    return Command(id=cid, action=action, target=target, expires=expires, issued_at=opt_time(signed, "issued_at"),
                   issued_by=list(signed.get("issued_by", [])), args=dict(args), signatures=signatures, signed=signed)


# ------------------------------------------------------------------ the kiosk's decision
def thresholds_from(configured: Mapping[str, int] | None, floor: int = 1) -> dict[str, int]:
    """Per-action signature thresholds: the defaults, overridden by configuration, never below 1."""
    out = dict(DEFAULT_THRESHOLDS)
    for k, v in (configured or {}).items():
        out[k] = max(floor, int(v))
    return out


def check_command_signatures(cmd: Command, policy: TrustPolicy, threshold: int) -> tuple[str, str]:
    """(reason, detail) exactly as for bundles (kiosk.fleet.verify.check_signatures), over the command tag."""
    payload = cmd.payload()
    good: set[str] = set()
    bad, unknown = [], []
    for s in cmd.signatures:
        pub = policy.admin_keys.get(s.keyid)
        if pub is None:
            unknown.append(s.keyid)
        elif verify_signature(pub, s.sig, payload):
            good.add(s.keyid)
        else:
            bad.append(s.keyid)
    if bad:
        return "bad_signature", f"{len(bad)} signature(s) by pinned keys do not match the content"
    if len(good) >= threshold:
        return "ok", f"{len(good)} of {threshold} required signatures"
    if not good and unknown:
        return "unknown_key", f"signed only by key(s) this kiosk does not pin ({len(unknown)})"
    return "below_threshold", f"{len(good)} valid signature(s), {threshold} required for {cmd.action}"


@dataclass
class CommandVerdict:
    accepted: bool
    reason: str
    detail: str = ""
    command: Command | None = field(default=None, repr=False)

    @property
    def status(self) -> str:
        """The result status a refusal is published with: ``expired`` has its own."""
        return "done" if self.accepted else ("expired" if self.reason == "expired" else "refused")


def verify_command(data: bytes, policy: TrustPolicy, thresholds: Mapping[str, int], *,
                   executed: Callable[[str], bool] = lambda _id: False,
                   now: datetime | None = None) -> CommandVerdict:
    """The whole decision for one received command (cheapest and least trusting checks first)."""
    now = now or datetime.now(UTC)
    try:
        cmd = parse_command(data, min(policy.max_bytes, MAX_COMMAND_BYTES))
    except CommandError as e:
        return CommandVerdict(False, e.reason, e.detail)
    reason, detail = check_command_signatures(cmd, policy, thresholds.get(cmd.action, max(DEFAULT_THRESHOLDS.values())))
    if reason != "ok":
        return CommandVerdict(False, reason, detail, cmd)
    if now >= cmd.expires:
        return CommandVerdict(False, "expired", f"expired at {cmd.signed.get('expires')}", cmd)
    if not policy.targets_me([cmd.target]):
        return CommandVerdict(False, "not_targeted", f"targets {cmd.target}", cmd)
    if executed(cmd.id):
        return CommandVerdict(False, "rollback", f"command {cmd.id} was already handled here", cmd)
    return CommandVerdict(True, "ok", detail, cmd)


class CommandStore:
    """The ids this kiosk has handled, kept until a week after they expire (they are refused as expired after)."""

    def __init__(self, state_dir: str | Path):
        self.path = Path(state_dir) / COMMANDS_FILE
        self._lock = threading.Lock()
        raw = read_json(self.path)
        self._ids: dict[str, dict[str, Any]] = raw if isinstance(raw, dict) else {}

    def handled(self, command_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._ids.get(command_id)

    def remember(self, cmd: Command, status: str, digest: str) -> None:
        """Written before the action runs: a crash mid-action never runs it twice."""
        now = datetime.now(UTC)
        with self._lock:
            self._ids = {k: v for k, v in self._ids.items()
                         if parse_time(v.get("expires", "1970-01-01T00:00:00Z")) + MAX_LIFETIME > now}
            self._ids[cmd.id] = {"expires": format_time(cmd.expires), "status": status, "digest": digest,
                                 "action": cmd.action, "at": format_time(now)}
            atomic_write_json(self.path, self._ids)


# ------------------------------------------------------------------ execution
@dataclass
class CommandResult:
    status: str  # done | refused | failed | expired
    reason: str = ""  # refusal reason code
    error: str = ""  # failure description (no personal data)
    data: dict[str, Any] = field(default_factory=dict)
    then: Callable[[], None] | None = field(default=None, repr=False)  # runs after the result is published

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "error": self.error[:500], "data": self.data}


class CommandExecutor(Protocol):
    """Carries out one accepted command; may wait (until ``cmd.expires``) for an idle moment."""

    def execute(self, cmd: Command) -> CommandResult: ...


class RefusingExecutor:
    """The standalone agent has no screen, printer or app to act on: every action is refused."""

    def execute(self, cmd: Command) -> CommandResult:
        return CommandResult("refused", "not_supported", data={"detail": "no kiosk application attached"})


Publisher = Callable[[str, bytes], None]  # (topic, payload), retained QoS 1


class CommandChannel:
    """The agent's side: receive, verify, hand an accepted command to the executor once, publish the result.

    Runs on its own worker thread so a long action (waiting for the idle moment of a restart) never
    stalls bundles or keep-alives.
    """

    def __init__(self, *, kiosk_id: str, group: str, policy: TrustPolicy, thresholds: Mapping[str, int],
                 state_dir: str | Path, executor: CommandExecutor | None, publish: Publisher):
        self.kiosk_id, self.group = kiosk_id, group
        self.policy = policy
        self.thresholds = dict(thresholds)
        self.store = CommandStore(state_dir)
        self.executor: CommandExecutor = executor or RefusingExecutor()
        self.publish = publish
        self.recent: list[dict[str, Any]] = []
        self._work: queue.Queue[tuple[bytes, bool]] = queue.Queue(maxsize=COMMAND_QUEUE_MAX)
        self.dropped = 0  # over the command size limit, or the oldest of a full queue
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.handled = 0

    def topics(self) -> list[str]:
        return command_topics(self.kiosk_id, self.group)

    def receive(self, raw: bytes, retained: bool = False) -> None:
        """From the network thread: queue only, and bounded.

        A message over the command size limit is dropped before anything parses it; when
        the queue is full (an action waiting for its idle moment under a flood) the oldest
        message is dropped with a log line. A dropped genuine command is sent again by its
        administrator (`kiosk-admin` shows it unanswered).
        """
        limit = min(self.policy.max_bytes, MAX_COMMAND_BYTES)
        if len(raw) > limit:
            self.dropped += 1
            log.warning("fleet command over the size limit dropped unparsed", extra={"bytes": len(raw), "limit": limit})
            return
        dropped = put_dropping_oldest(self._work, (raw, retained))
        if dropped:
            self.dropped += dropped
            log.warning("fleet command queue full; oldest message dropped", extra={"limit": COMMAND_QUEUE_MAX})

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fleet-commands", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is None or self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                raw, retained = self._work.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self.handle(raw, retained)
            except Exception:  # noqa: BLE001 - logged; one bad command must not stop the channel
                log.exception("command handling failed")

    def handle(self, raw: bytes, retained: bool = False) -> dict[str, Any] | None:
        """Decide, execute, publish. Returns the published result (None: a redelivery already answered)."""
        digest = hashlib.sha256(raw).hexdigest()
        try:
            cid = parse_command(raw, 1 << 30).id
        except CommandError:
            cid = None
        if cid and retained and (self.store.handled(cid) or {}).get("digest") == digest:
            return None  # the broker redelivers its retained copy on every reconnect: answered already
        verdict = verify_command(raw, self.policy, self.thresholds,
                                 executed=lambda i: self.store.handled(i) is not None)
        cmd = verdict.command
        if verdict.accepted and cmd is not None:
            self.store.remember(cmd, "accepted", digest)
            try:
                result = self.executor.execute(cmd)
            except Exception as e:  # noqa: BLE001 - logged; a failing action is a `failed` result
                log.exception("command action failed", extra={"action": cmd.action})
                result = CommandResult("failed", error=f"{type(e).__name__}: {e}")
            self.store.remember(cmd, result.status, digest)
        else:
            result = CommandResult(verdict.status, verdict.reason, data={"detail": verdict.detail[:300]})
            if cmd is not None and verdict.reason == "expired" and self.store.handled(cmd.id) is None:
                self.store.remember(cmd, "expired", digest)  # report an expired command once, not per reconnect
        doc = {"kiosk_id": self.kiosk_id, "command_id": cmd.id if cmd else None,
               "action": cmd.action if cmd else None, **result.as_json(), "at": format_time(datetime.now(UTC))}
        summary = {k: doc[k] for k in ("command_id", "action", "status", "reason", "at")}
        self.recent = (self.recent + [summary])[-RESULT_HISTORY:]
        doc["recent"] = list(self.recent)
        self.publish(result_topic(self.kiosk_id), json.dumps(doc, ensure_ascii=False).encode("utf-8"))
        self.handled += 1
        log.info("command %s", doc["status"], extra={"action": doc["action"], "reason": doc["reason"]})
        if result.then is not None:
            try:
                result.then()
            except Exception:  # noqa: BLE001 - logged; the result is already out
                log.exception("command follow-up failed")
        return doc


# ------------------------------------------------------------------ the administrator's side
def push_command(url: str, raw: bytes, **kw: Any) -> list[str]:
    """Send a signed command (retained until it is replaced, so a kiosk that is offline now gets it later)."""
    cmd = parse_command(raw)
    return publish_retained(url, [command_topic_for_target(cmd.target)], raw, **kw)
