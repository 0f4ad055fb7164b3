"""Encryption at rest for the offline cache: SM4-GCM by default, AES-GCM selectable.

A sealed blob is ``version(1) | alg(1) | nonce(12) | ciphertext | tag(16)``; the
associated data binds it to its place (record id, content hash) so a blob cannot
be swapped between rows. The per-kiosk key comes from the environment
(``KIOSK_STORAGE_KEY``, hex) or a key file that must not be readable by others.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ALGORITHMS = {"sm4-gcm": 1, "aes-gcm": 2}
_BY_ID = {v: k for k, v in ALGORITHMS.items()}
VERSION = 1
KEY_ENV = "KIOSK_STORAGE_KEY"
NONCE = 12
TAG = 16


class StorageKeyError(Exception):
    """The storage key is missing, malformed or exposed (message names the file, never the key)."""


class DecryptError(Exception):
    """A sealed blob failed authentication: wrong key, or the data was altered."""


class Sealer:
    """Authenticated encryption with one key; ``alg`` defaults to SM4-GCM for 16-byte keys, AES-GCM for 32."""

    def __init__(self, key: bytes, alg: str | None = None):
        if alg is None:
            alg = "sm4-gcm" if len(key) == 16 else "aes-gcm"
        if alg not in ALGORITHMS:
            raise ValueError(f"cipher must be one of {sorted(ALGORITHMS)}")
        if alg == "sm4-gcm" and len(key) != 16:
            raise ValueError("an SM4 key is 16 bytes")
        if alg == "aes-gcm" and len(key) not in (16, 32):
            raise ValueError("an AES key is 16 or 32 bytes")
        self.alg = alg
        self._key = key
        self._aes = AESGCM(key) if alg == "aes-gcm" else None
        self._sm4 = algorithms.SM4(key) if alg == "sm4-gcm" else None
        self._mac_key = hmac.new(key, b"qhb-kiosk keyed-hash v1", hashlib.sha256).digest()

    def __repr__(self) -> str:
        return f"Sealer(alg={self.alg!r})"

    def seal(self, plaintext: bytes, aad: bytes = b"") -> bytes:
        nonce = os.urandom(NONCE)
        if self._aes is not None:
            ct = self._aes.encrypt(nonce, plaintext, aad or None)
        else:
            enc = self._sm4_gcm(modes.GCM(nonce)).encryptor()
            if aad:
                enc.authenticate_additional_data(aad)
            ct = enc.update(plaintext) + enc.finalize() + enc.tag
        return bytes((VERSION, ALGORITHMS[self.alg])) + nonce + ct

    def open(self, blob: bytes, aad: bytes = b"") -> bytes:
        if len(blob) < 2 + NONCE + TAG or blob[0] != VERSION or _BY_ID.get(blob[1]) != self.alg:
            raise DecryptError("sealed data has an unknown format or another cipher")
        nonce, ct = blob[2:2 + NONCE], blob[2 + NONCE:]
        try:
            if self._aes is not None:
                return self._aes.decrypt(nonce, ct, aad or None)
            dec = self._sm4_gcm(modes.GCM(nonce, ct[-TAG:])).decryptor()
            if aad:
                dec.authenticate_additional_data(aad)
            return dec.update(ct[:-TAG]) + dec.finalize()
        except InvalidTag:
            raise DecryptError("sealed data failed authentication (wrong key or altered)") from None

    def _sm4_gcm(self, mode: modes.GCM) -> Cipher[modes.GCM]:
        if self._sm4 is None:  # cannot happen: without an AES cipher the algorithm is SM4-GCM
            raise DecryptError("no SM4 key")
        return Cipher(self._sm4, mode)

    def keyed_hash(self, data: bytes) -> str:
        """A stable pseudonym (e.g. for per-applicant ordering) that cannot be reversed without the key."""
        return hashlib.blake2b(data, key=self._mac_key, digest_size=16).hexdigest()  # keyed BLAKE2b is a MAC


def _parse_key(raw: bytes, source: str) -> bytes:
    text = raw.strip()
    try:
        if len(text) in (32, 64):
            return bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        pass
    if len(raw) in (16, 32):
        return raw
    raise StorageKeyError(f"storage key from {source} must be 16 or 32 bytes (32 or 64 hex characters)")


def load_key(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> bytes:
    """The per-kiosk storage key: ``$KIOSK_STORAGE_KEY`` (hex) first, else the key file (mode 0600 or stricter)."""
    environ: Mapping[str, str] = os.environ if env is None else env
    if environ.get(KEY_ENV):
        return _parse_key(environ[KEY_ENV].encode(), f"${KEY_ENV}")
    if path is None:
        raise StorageKeyError(f"no storage key: set ${KEY_ENV} or configure [storage] key_file")
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise StorageKeyError(f"storage key file {p} does not exist (create it with `kiosk queue init-key`)") from None
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise StorageKeyError(f"storage key file {p} is readable by others: chmod 600 {p}")
    return _parse_key(p.read_bytes(), str(p))


def create_key_file(path: str | os.PathLike[str], nbytes: int = 16) -> bytes:
    """Write a new random key (hex) to a 0600 file; refuses to overwrite an existing key."""
    if nbytes not in (16, 32):
        raise ValueError("key size is 16 or 32 bytes")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(nbytes)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key.hex().encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def load_or_create_key(path: str | os.PathLike[str], nbytes: int = 16) -> bytes:
    """For the kiosk app on first start: the key, created if absent."""
    try:
        return load_key(path)
    except StorageKeyError:
        if os.environ.get(KEY_ENV) or Path(path).exists():
            raise
        return create_key_file(path, nbytes)
