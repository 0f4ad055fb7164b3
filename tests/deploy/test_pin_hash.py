"""The technician PIN hash: salted scrypt, self-describing, with a floor; `kiosk-admin pin-hash` writes it."""
from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from kiosk.infra.pin_hash import hash_pin, hash_strength_problem, pin_problem, verify_pin


def _encode(pin: str, n: int, r: int, p: int, salt_len: int = 16, length: int = 32) -> str:
    salt = os.urandom(salt_len)
    digest = Scrypt(salt=salt, length=length, n=n, r=r, p=p).derive(pin.encode())
    return f"scrypt${f'n={n},r={r},p={p}'}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def test_hash_is_salted_verifies_and_refuses_the_wrong_pin():
    a, b = hash_pin("135792"), hash_pin("135792")
    assert a != b and a.startswith("scrypt$n=32768,r=8,p=1$")
    assert "135792" not in a
    assert verify_pin("135792", a) and verify_pin("135792", b)
    assert not verify_pin("135793", a) and not verify_pin("", a)
    assert not verify_pin("１３５７９２", a)  # full-width digits are not the PIN
    assert hash_strength_problem(a) is None


def test_short_or_non_digit_pins_are_refused():
    for pin in ("1", "12345", "12a456", "１２３４５６", "1234567890123"):
        assert pin_problem(pin), pin
        with pytest.raises(ValueError):
            hash_pin(pin)
    assert pin_problem("123456") is None


def test_weak_or_malformed_hashes_are_below_the_floor_and_never_verify_when_malformed():
    weak = _encode("135792", n=2**10, r=8, p=1)
    assert verify_pin("135792", weak)  # a weak hash still works; the production check refuses it
    assert "n=1024 < 32768" in (hash_strength_problem(weak) or "")
    assert "r=1 < 8" in (hash_strength_problem(_encode("135792", n=2**15, r=1, p=1)) or "")
    assert "salt" in (hash_strength_problem(_encode("135792", n=2**15, r=8, p=1, salt_len=4)) or "")
    for bad in ("246810", "", "scrypt$n=32768,r=8,p=1$$", "bcrypt$2b$12$abc", "scrypt$n=1000,r=8,p=1$AAAA$AAAA"):
        assert hash_strength_problem(bad), bad
        assert not verify_pin("246810", bad)
    huge = "scrypt$n=1073741824,r=8,p=1$" + base64.b64encode(b"s" * 16).decode() + "$" + \
        base64.b64encode(b"h" * 32).decode()
    assert not verify_pin("246810", huge)  # refused without trying to allocate 1 TiB


def _admin(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kiosk.cli.admin", *args], input=stdin, capture_output=True,
                          text=True, timeout=60, start_new_session=True)


def test_kiosk_admin_pin_hash_prints_only_the_site_line():
    r = _admin("pin-hash", "--pin-stdin", stdin="864209\n864209\n")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "[ui]" and lines[1].startswith('technician_pin_hash = "scrypt$')
    assert "864209" not in r.stdout + r.stderr
    assert verify_pin("864209", lines[1].split('"')[1])


def test_kiosk_admin_pin_hash_asks_twice_and_refuses_mismatch_and_short_pins():
    ok = _admin("pin-hash", stdin="531864\n531864\n")  # no terminal: the prompt reads standard input
    assert ok.returncode == 0, ok.stderr
    assert verify_pin("531864", ok.stdout.strip().splitlines()[-1].split('"')[1])
    differ = _admin("pin-hash", "--pin-stdin", stdin="531864\n531865\n")
    assert differ.returncode == 1 and "differ" in differ.stderr and "scrypt" not in differ.stdout
    short = _admin("pin-hash", "--pin-stdin", stdin="12345\n")
    assert short.returncode == 1 and "at least 6 digits" in short.stderr and "scrypt" not in short.stdout
