"""`kiosk-admin enroll` issues a kiosk's own secrets; `kiosk platform-sim --credentials-file` trusts exactly those;
an untrusted kiosk is refused with 401 and its records wait in the outbox until it is trusted."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from kiosk.platform.client import PlatformClient
from kiosk.platform.credentials import development_credentials, load_credentials
from kiosk.ports.platform import PlatformError
from offline_cache.drainer import Drainer
from offline_cache.outbox import Outbox
from tests.deploy.support import PROJECT_ROOT, PlatformSimProcess, make_tls
from tests.platform.samples import application_body, application_payload


def _enroll(out: Path, kiosk: str = "qhb-370306-0042", *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kiosk.cli.admin", "enroll", "--kiosk", kiosk, "--group", "zhoucun",
                           "--out", str(out), *extra], capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)


def _sim(tmp_path: Path, *args: str) -> PlatformSimProcess:
    return PlatformSimProcess([sys.executable, "-m", "kiosk.cli.main", "platform-sim", "--port", "0",
                               "--state", str(tmp_path / "sim-state"), *args])


def test_enroll_writes_0600_secrets_and_prints_the_site_lines(tmp_path):
    out = tmp_path / "enroll" / "qhb-370306-0042"
    r = _enroll(out, "qhb-370306-0042", "--install-dir", "/etc/qhb-kiosk")
    assert r.returncode == 0, r.stderr
    cred, pw = out / "platform-credentials.toml", out / "mqtt-password"
    for p in (cred, pw):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    c = load_credentials(cred)
    assert c.kiosk_id == "qhb-370306-0042" and len(c.secret) == 32
    password = pw.read_text().strip()
    assert len(password) >= 32
    # never a secret on the terminal
    assert c.secret.hex() not in r.stdout + r.stderr and password not in r.stdout + r.stderr
    lines = tomllib.loads(r.stdout)
    assert lines["kiosk"] == {"id": "qhb-370306-0042", "group": "zhoucun"}
    assert lines["platform"] == {"credentials_file": "/etc/qhb-kiosk/platform-credentials.toml"}
    assert lines["fleet"] == {"username": "qhb-370306-0042", "password_file": "/etc/qhb-kiosk/mqtt-password"}
    # a second kiosk gets a different secret; an issued secret is never overwritten
    other = _enroll(tmp_path / "k2", "qhb-370306-0043")
    assert load_credentials(tmp_path / "k2" / "platform-credentials.toml").secret != c.secret, other.stderr
    again = _enroll(out)
    assert again.returncode == 1 and "refusing to overwrite" in again.stderr
    assert load_credentials(cred).secret == c.secret
    bad = _enroll(tmp_path / "k3", "../etc")
    assert bad.returncode == 2 and not (tmp_path / "k3").exists()


def test_platform_sim_trusts_exactly_the_given_credentials_over_tls(tmp_path):
    _enroll(tmp_path / "k1", "qhb-370306-0042")
    _enroll(tmp_path / "k2", "qhb-370306-0043")
    ca, crt, key = make_tls(tmp_path / "tls")
    k1, k2 = (load_credentials(tmp_path / k / "platform-credentials.toml") for k in ("k1", "k2"))
    sim = _sim(tmp_path, "--credentials-file", str(tmp_path / "k1" / "platform-credentials.toml"),
               "--tls-cert", str(crt), "--tls-key", str(key))
    try:
        assert sim.url.startswith("https://127.0.0.1:") and "trusts=qhb-370306-0042" in sim.line
        with PlatformClient(sim.url, k1.kiosk_id, k1.secret, ca_bundle=str(ca), read_timeout=10) as c:
            got = c.submit_application(application_body(k1.kiosk_id), idempotency_key="enrolled-0001")
            assert got["tracking_no"]
        for who in (k2, development_credentials()):
            with PlatformClient(sim.url, who.kiosk_id, who.secret, ca_bundle=str(ca), read_timeout=10) as c:
                with pytest.raises(PlatformError) as e:
                    c.submit_application(application_body(who.kiosk_id), idempotency_key=f"untrusted-{who.kiosk_id}")
                assert e.value.status == 401
        assert sim.stats(verify=str(ca))["accepted"] == 1
    finally:
        sim.stop()


def test_without_the_flag_the_simulator_trusts_the_development_credential(tmp_path):
    sim = _sim(tmp_path)
    try:
        dev = development_credentials()
        assert sim.url.startswith("http://") and f"trusts={dev.kiosk_id}" in sim.line
        with PlatformClient(sim.url, dev.kiosk_id, dev.secret, read_timeout=10) as c:
            assert c.submit_application(application_body(dev.kiosk_id), idempotency_key="development-0001")["tracking_no"]
    finally:
        sim.stop()


def test_an_untrusted_kiosks_records_stay_queued_then_deliver_once_trusted(tmp_path):
    _enroll(tmp_path / "k1", "qhb-370306-0042")
    cred_file = tmp_path / "k1" / "platform-credentials.toml"
    me = load_credentials(cred_file)
    outbox = Outbox(tmp_path / "outbox.db", os.urandom(16))
    ids = [outbox.enqueue("application", application_payload(), attachments=[os.urandom(64)],
                          idempotency_key=f"waiting-{i:04d}") for i in range(2)]
    other = _enroll(tmp_path / "k2", "qhb-370306-0043")
    assert other.returncode == 0
    sim = _sim(tmp_path, "--credentials-file", str(tmp_path / "k2" / "platform-credentials.toml"))
    try:
        with PlatformClient(sim.url, me.kiosk_id, me.secret, read_timeout=10) as client:
            rep = Drainer(outbox, client).drain_once(ignore_backoff=True)
            assert rep.delivered == 0 and rep.failed == 0
        st = outbox.stats()
        assert st["pending"] == 2 and st["failed"] == 0 and st["done"] == 0
        for rid in ids:
            rec = outbox.get(rid)
            assert rec.state == "pending" and rec.attempts >= 1 and "401" in (rec.last_error or "")
        assert sim.stats()["accepted"] == 0
    finally:
        sim.stop()
    sim = _sim(tmp_path, "--credentials-file", str(cred_file))  # the platform now trusts this kiosk
    try:
        with PlatformClient(sim.url, me.kiosk_id, me.secret, read_timeout=10) as client:
            rep = Drainer(outbox, client).drain_once(ignore_backoff=True)
        assert rep.delivered == 2
        assert outbox.stats()["pending"] == 0 and sim.stats()["accepted"] == 2
    finally:
        sim.stop()
        outbox.close()


def test_credentials_file_is_repeatable_and_one_kiosk_cannot_be_given_twice(tmp_path):
    for d, kiosk in (("k1", "qhb-370306-0042"), ("k2", "qhb-370306-0043"), ("k3", "qhb-370306-0044")):
        assert _enroll(tmp_path / d, kiosk).returncode == 0
    files = {d: str(tmp_path / d / "platform-credentials.toml") for d in ("k1", "k2", "k3")}
    sim = _sim(tmp_path, "--credentials-file", files["k1"], "--credentials-file", files["k2"])
    try:
        assert "trusts=qhb-370306-0042, qhb-370306-0043" in sim.line, sim.line
        k1, k2, k3 = (load_credentials(files[d]) for d in ("k1", "k2", "k3"))
        for who, trusted in ((k1, True), (k2, True), (k3, False), (development_credentials(), False)):
            with PlatformClient(sim.url, who.kiosk_id, who.secret, read_timeout=10) as c:
                if trusted:
                    assert c.submit_application(application_body(who.kiosk_id), idempotency_key=f"t-{who.kiosk_id}")
                else:
                    with pytest.raises(PlatformError) as e:
                        c.submit_application(application_body(who.kiosk_id), idempotency_key=f"u-{who.kiosk_id}")
                    assert e.value.status == 401, who
        assert sim.stats()["accepted"] == 2
    finally:
        sim.stop()
    # the same kiosk id from two files (a re-enrollment next to the old one): refused, not a silent pick
    assert _enroll(tmp_path / "again", "qhb-370306-0042").returncode == 0
    r = subprocess.run([sys.executable, "-m", "kiosk.cli.main", "platform-sim", "--port", "0", "--state",
                        str(tmp_path / "s2"), "--credentials-file", files["k1"], "--credentials-file",
                        str(tmp_path / "again" / "platform-credentials.toml")],
                       capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)
    assert r.returncode == 2 and "more than one --credentials-file for kiosk qhb-370306-0042" in r.stderr
