"""Per-kiosk broker credentials and TLS from [fleet] config, against Mosquitto with TLS and a password file."""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kiosk.fleet.agent import KioskAgent
from kiosk.fleet.bundle import build_signed, sign

from .conftest import Broker
from .helpers import admin, wait_for


def _cert(subject: str, issuer_key, issuer_name, key, *, ca: bool, san_ip: str | None = None):
    now = dt.datetime.now(dt.UTC)
    b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
         .issuer_name(issuer_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san_ip:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(san_ip))]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@pytest.fixture
def tls_broker(tmp_path):
    if not shutil.which("mosquitto_passwd"):
        pytest.fail("mosquitto_passwd is missing (package mosquitto)")
    ca_key, srv_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "QHB test fleet CA")])
    ca = _cert("QHB test fleet CA", ca_key, ca_name, ca_key, ca=True)
    srv = _cert("127.0.0.1", ca_key, ca_name, srv_key, ca=False, san_ip="127.0.0.1")
    d = tmp_path / "tls"
    d.mkdir()
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "server.pem").write_bytes(srv.public_bytes(serialization.Encoding.PEM))
    (d / "server.key").write_bytes(_pem_key(srv_key))
    passwd = d / "passwd"
    for i, (user, pw) in enumerate((("qhb-kt", "kiosk-secret"), ("admin-alice", "admin-secret"))):
        subprocess.run(["mosquitto_passwd", "-b"] + (["-c"] if i == 0 else []) + [str(passwd), user, pw], check=True)
    b = Broker(tmp_path)
    b.conf.write_text(f"user root\nlistener {b.port} 127.0.0.1\ncafile {d / 'ca.pem'}\ncertfile {d / 'server.pem'}\n"
                      f"keyfile {d / 'server.key'}\nallow_anonymous false\npassword_file {passwd}\n"
                      "persistence false\nlog_dest stdout\n")
    b.start()
    yield b, d
    b.stop()


def test_agent_and_admin_over_tls_with_credentials(tmp_path, tls_broker, site_factory, admin_keys):
    broker, d = tls_broker
    url = f"mqtts://127.0.0.1:{broker.port}"
    (d / "kiosk-pw").write_text("kiosk-secret\n")
    (d / "admin-pw").write_text("admin-secret\n")
    site = site_factory("kt", broker_url=url)
    text = site.read_text().replace(
        "health_interval_s = 1.0",
        f'health_interval_s = 1.0\nusername = "qhb-kt"\npassword_file = "{d / "kiosk-pw"}"\ntls_ca = "{d / "ca.pem"}"')
    site.write_text(text)
    agent = KioskAgent(str(site), env={})
    agent.start()
    try:
        wait_for(agent.connected.is_set, 30, "TLS connection with per-kiosk credentials")
        raw = sign(build_signed({"ui": {"idle_timeout_s": 123}}, 2, ["kiosk:qhb-kt"],
                                expires=datetime.now(UTC) + timedelta(days=7)), admin_keys[:1]).to_bytes()
        (tmp_path / "b2.json").write_bytes(raw)
        auth = ["--broker", url, "--username", "admin-alice", "--password-file", str(d / "admin-pw"),
                "--tls-ca", str(d / "ca.pem")]
        r = admin("push", str(tmp_path / "b2.json"), *auth)
        assert r.returncode == 0, r.stderr
        wait_for(lambda: agent.applier.trust.current_version() == 2, 30, "bundle applied over TLS")

        def acked():
            r = admin("fleet", "acks", "--version", "2", "--json", *auth)
            return r.returncode == 0 and [a["kiosk"] for a in json.loads(r.stdout)["applied"]] == ["qhb-kt"]
        wait_for(acked, 60, "ack visible to the administrator")
        # wrong password or no CA: refused, with a clear message and a non-zero exit
        (d / "bad-pw").write_text("guess\n")
        r = admin("fleet", "status", "--broker", url, "--username", "admin-alice", "--password-file",
                  str(d / "bad-pw"), "--tls-ca", str(d / "ca.pem"), "--timeout", "5")
        assert r.returncode != 0 and "refused the connection" in r.stderr
        r = admin("push", str(tmp_path / "b2.json"), "--broker", url, "--username", "admin-alice",
                  "--password-file", str(d / "bad-pw"), "--tls-ca", str(d / "ca.pem"))
        assert r.returncode != 0 and "did not accept the connection" in r.stderr
        r = admin("fleet", "status", "--broker", url, "--username", "admin-alice", "--password-file",
                  str(d / "admin-pw"), "--timeout", "5")  # system CAs do not know our test CA
        assert r.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in r.stderr
    finally:
        agent.stop()
