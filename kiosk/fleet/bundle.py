"""Signed configuration bundles: the file format and the exact bytes that get signed.

A bundle is one JSON document::

    {"format": "qhb-config-bundle/1",
     "signed": {"version": 7, "targets": ["group:zhoucun"], "not_before": null,
                "expires": "2026-12-31T00:00:00Z", "issued_at": "...", "issued_by": ["ed25519:..."],
                "config": {... TOML overrides as a JSON object ...}},
     "signatures": [{"keyid": "ed25519:<base64 raw public key>", "sig": "<base64>"}]}

Signatures cover a canonical JSON rendering of ``signed`` (sorted keys, no spaces,
UTF-8, no NaN) prefixed with a domain-separation tag, so re-serialising the file
never invalidates a signature and a signature over something else is never a
valid bundle signature. Keys are identified by their pinned public key string.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT = "qhb-config-bundle/1"
SIGNING_TAG = b"qhb-config-bundle/1\n"
KEY_PREFIX = "ed25519:"
DEFAULT_MAX_BYTES = 256 * 1024
TARGET_RE = re.compile(r"^(all|group:[A-Za-z0-9_.-]{1,64}|kiosk:[A-Za-z0-9_.-]{1,64})$")
MAX_VERSION = 2**53 - 1  # stays exact in every JSON implementation


class BundleError(Exception):
    """A bundle that cannot even be read; ``reason`` is a verifier reason code."""

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass
class Bundle:
    version: int
    targets: list[str]
    config: dict[str, Any]
    not_before: datetime | None = None
    expires: datetime | None = None
    issued_at: datetime | None = None
    issued_by: list[str] = field(default_factory=list)
    signatures: list[Signature] = field(default_factory=list)
    signed: dict[str, Any] = field(default_factory=dict)  # the signed object exactly as read

    def payload(self) -> bytes:
        return signing_payload(self.signed)

    def to_bytes(self) -> bytes:
        doc = {
            "format": FORMAT,
            "signed": self.signed,
            "signatures": [{"keyid": s.keyid, "sig": _b64(s.sig)} for s in self.signatures],
        }
        return json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True, allow_nan=False).encode("utf-8") + b"\n"

    def digest(self) -> str:
        return hashlib.sha256(self.payload()).hexdigest()


# ------------------------------------------------------------------ encoding
def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _unb64(s: str, what: str) -> bytes:
    try:
        return base64.b64decode(s.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise BundleError("malformed", f"{what} is not base64") from None


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")


def signing_payload(signed: dict[str, Any]) -> bytes:
    return SIGNING_TAG + canonical_json(signed)


def format_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s: str) -> datetime:
    """ISO 8601; a time without offset is taken as UTC."""
    t = datetime.fromisoformat(s.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


# ---------------------------------------------------------------------- keys
def public_key_string(pub: Ed25519PublicKey) -> str:
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return KEY_PREFIX + _b64(raw)


def public_key_bytes(s: str) -> bytes:
    """The raw 32 bytes an `ed25519:<base64>` string names; ValueError naming the problem.

    Every spelling the configuration schema accepts (prefix in any case, white space
    inside the base64, non-canonical padding bits) gives the same bytes, so keys are
    compared and counted by these bytes, never by their spelling.
    """
    s = s.strip()
    if not s.lower().startswith(KEY_PREFIX):
        raise ValueError("public key must start with 'ed25519:'")
    try:
        raw = base64.b64decode("".join(s[len(KEY_PREFIX):].split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("public key is not base64") from None
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return raw


def parse_public_key(s: str) -> Ed25519PublicKey:
    """`ed25519:<base64 raw 32 bytes>` -> key; ValueError naming the problem."""
    return Ed25519PublicKey.from_public_bytes(public_key_bytes(s))


def generate_keypair(out: str | Path) -> tuple[Path, Path]:
    """Write OUT.key (PKCS#8 PEM, mode 0600) and OUT.pub (`ed25519:<base64>`)."""
    key = Ed25519PrivateKey.generate()
    key_path, pub_path = Path(f"{out}.key"), Path(f"{out}.pub")
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "wb") as f:
        f.write(pem)
    pub_path.write_text(public_key_string(key.public_key()) + "\n", encoding="ascii")
    return key_path, pub_path


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


# --------------------------------------------------------------------- build
def build_signed(config: dict[str, Any], version: int, targets: list[str], *,
                 expires: datetime | None = None, not_before: datetime | None = None,
                 issued_at: datetime | None = None, issued_by: list[str] | None = None) -> dict[str, Any]:
    if not (1 <= version <= MAX_VERSION):
        raise ValueError("version must be a positive integer")
    if not targets:
        raise ValueError("at least one target is needed")
    for t in targets:
        if not TARGET_RE.match(t):
            raise ValueError(f"target {t!r} is not all, group:NAME or kiosk:ID")
    return {
        "version": version,
        "targets": list(targets),
        "not_before": format_time(not_before) if not_before else None,
        "expires": format_time(expires) if expires else None,
        "issued_at": format_time(issued_at or datetime.now(UTC)),
        "issued_by": list(issued_by or []),
        "config": config,
    }


def sign(signed: dict[str, Any], keys: list[Ed25519PrivateKey]) -> Bundle:
    """A bundle over `signed`, with one signature per key."""
    canonical_json(signed)  # refuse NaN and non-JSON values before signing
    payload = signing_payload(signed)
    sigs = [Signature(public_key_string(k.public_key()), k.sign(payload)) for k in keys]
    return parse_bundle(Bundle(0, [], {}, signed=signed, signatures=sigs).to_bytes())


def add_signature(bundle: Bundle, key: Ed25519PrivateKey) -> Bundle:
    """Co-sign: another administrator adds a signature for the k-of-n threshold."""
    keyid = public_key_string(key.public_key())
    sigs = [s for s in bundle.signatures if s.keyid != keyid]
    sigs.append(Signature(keyid, key.sign(bundle.payload())))
    return parse_bundle(Bundle(0, [], {}, signed=bundle.signed, signatures=sigs).to_bytes())


# --------------------------------------------------------------------- parse
def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def opt_time(signed: dict[str, Any], name: str) -> datetime | None:
    v = signed.get(name)
    if v is None:
        return None
    if not isinstance(v, str):
        raise BundleError("malformed", f"{name} must be an ISO 8601 string or null")
    try:
        return parse_time(v)
    except ValueError:
        raise BundleError("malformed", f"{name} is not an ISO 8601 time") from None


def read_envelope(data: bytes, *, fmt: str, fields: set[str], max_bytes: int,
                  what: str = "bundle") -> tuple[dict[str, Any], list[Signature]]:
    """The signed-document envelope bundles and commands share: size, UTF-8 JSON without NaN, the format,
    a 'signed' object with only `fields`, `issued_by` strings, well-formed signatures, canonical JSON.
    Raises BundleError('too_large' | 'malformed'); never checks signatures."""
    if not isinstance(data, (bytes, bytearray)):
        raise BundleError("malformed", f"{what} must be bytes")
    if len(data) > max_bytes:
        raise BundleError("too_large", f"{len(data)} bytes, limit {max_bytes}")
    try:
        doc = json.loads(bytes(data).decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise BundleError("malformed", f"not a UTF-8 JSON document ({type(e).__name__})") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise BundleError("malformed", f"not a {fmt} document")
    signed, sigs = doc.get("signed"), doc.get("signatures")
    if not isinstance(signed, dict) or not isinstance(sigs, list):
        raise BundleError("malformed", "needs a 'signed' object and a 'signatures' list")
    extra = set(signed) - fields
    if extra:
        raise BundleError("malformed", f"unknown signed field(s): {', '.join(sorted(extra))}")
    issued_by = signed.get("issued_by", [])
    if not isinstance(issued_by, list) or not all(isinstance(x, str) for x in issued_by):
        raise BundleError("malformed", "issued_by must be a list of strings")
    signatures = []
    for s in sigs:
        if not isinstance(s, dict) or not isinstance(s.get("keyid"), str) or not isinstance(s.get("sig"), str):
            raise BundleError("malformed", "each signature needs string 'keyid' and 'sig'")
        signatures.append(Signature(s["keyid"], _unb64(s["sig"], "signature")))
    try:
        canonical_json(signed)
    except (ValueError, TypeError):
        raise BundleError("malformed", "signed part is not canonical JSON") from None
    return signed, signatures


def parse_bundle(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Bundle:
    """Bytes -> Bundle, or BundleError('too_large' | 'malformed'). Never checks signatures."""
    signed, signatures = read_envelope(data, fmt=FORMAT, max_bytes=max_bytes, fields={
        "version", "targets", "not_before", "expires", "issued_at", "issued_by", "config"})
    version = signed.get("version")
    if type(version) is not int or not (1 <= version <= MAX_VERSION):
        raise BundleError("malformed", "version must be a positive integer")
    targets = signed.get("targets")
    if (not isinstance(targets, list) or not targets
            or not all(isinstance(t, str) and TARGET_RE.match(t) for t in targets)):
        raise BundleError("malformed", "targets must be a non-empty list of all, group:NAME, kiosk:ID")
    config = signed.get("config")
    if not isinstance(config, dict):
        raise BundleError("malformed", "config must be an object")
    return Bundle(
        version=version, targets=list(targets), config=config,
        not_before=opt_time(signed, "not_before"), expires=opt_time(signed, "expires"),
        issued_at=opt_time(signed, "issued_at"), issued_by=list(signed.get("issued_by", [])),
        signatures=signatures, signed=signed,
    )


def verify_signature(pub: Ed25519PublicKey, sig: bytes, payload: bytes) -> bool:
    try:
        pub.verify(sig, payload)
        return True
    except InvalidSignature:
        return False
