"""docs/deployment.md, followed literally on temporary paths, ends with a production kiosk delivering an application
to a platform simulator (its own process, HTTPS) that trusts only the kiosk's enrolled credential.

The command blocks of sections 1-5 are run in order as written, with only these translations:
`sudo` / `sudo -u qhb-kiosk` dropped, `install -o/-g` owners dropped (we are not root), /etc/qhb-kiosk and
/var/lib/qhb-kiosk moved under a temporary root, /opt/qhb-kiosk/.venv/bin/ is this checkout's venv, the
rehearsal simulator listens on a free port (--port 0), `systemctl enable --now qhb-kiosk` runs the unit's
ExecStart, and commands that need root or the real machine (useradd, git clone, cp of units, udevadm) are
skipped. Interactive prompts get their answers on standard input. The site file is the guide's `toml` block
with the values the guide says to paste (what enroll and pin-hash printed, the admin public keys, and the
platform URL: the rehearsal simulator's).
"""
from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import subprocess
import threading
import time
import tomllib
from pathlib import Path

import pytest
import requests

from kiosk.infra.pin_hash import verify_pin
from kiosk.platform.client import PlatformClient
from kiosk.platform.credentials import development_credentials
from kiosk.ports.platform import PlatformError
from offline_cache.crypto import load_key
from offline_cache.outbox import Outbox
from tests.deploy.support import PROJECT_ROOT, VENV_BIN, PlatformSimProcess, clean_env, make_tls
from tests.platform.samples import application_body, application_payload

GUIDE = PROJECT_ROOT / "docs" / "deployment.md"
OLD_GUIDE = Path(__file__).parent / "fixtures" / "old-deployment-guide.md"
SKIPPED = {"useradd", "git", "cp"}  # need root or the real machine; `cp ... && udevadm ...` is one line
PIN = "135792"


def guide_sections(text: str, last: int) -> str:
    """The guide up to (not including) section `last + 1`."""
    return text.split(f"\n## {last + 1}.", 1)[0]


def code_blocks(text: str, lang: str) -> list[str]:
    return [body for lng, body in re.findall(r"```(\w*)\n(.*?)```", text, re.S) if lng == lang]


def command_lines(block: str) -> list[str]:
    """Logical lines of a shell block (backslash continuations joined)."""
    return [ln.strip() for ln in block.replace("\\\n", " ").splitlines() if ln.strip()]


class Machine:
    """The temporary root the guide's absolute paths are moved under, and the administrator's working directory."""

    def __init__(self, tmp: Path):
        self.root = tmp / "root"
        self.admin = tmp / "admin"
        self.admin.mkdir(parents=True)
        (self.root / "etc").mkdir(parents=True)
        (self.root / "var" / "lib").mkdir(parents=True)

    def path(self, s: str) -> str:
        s = s.replace("/opt/qhb-kiosk/.venv/bin/", f"{VENV_BIN}/")
        s = s.replace("/etc/qhb-kiosk", str(self.root / "etc" / "qhb-kiosk"))
        return s.replace("/var/lib/qhb-kiosk", str(self.root / "var" / "lib" / "qhb-kiosk"))

    def argv(self, line: str) -> list[str] | None:
        argv = shlex.split(line, comments=True)
        if argv[:3] == ["sudo", "-u", "qhb-kiosk"]:
            argv = argv[3:]
        elif argv[:1] == ["sudo"]:
            argv = argv[1:]
        if argv[0] in SKIPPED:
            return None
        if argv[0] == "install":
            out, skip = [], False
            for a in argv:
                if skip:
                    skip = False
                elif a in ("-o", "-g"):
                    skip = True
                else:
                    out.append(a)
            argv = out
        if argv[0] in ("kiosk", "kiosk-admin"):
            argv[0] = str(VENV_BIN / argv[0])
        return [self.path(a) for a in argv]


def _run(argv: list[str], cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=180, env=clean_env(),
                          start_new_session=True)  # no controlling terminal: prompts read standard input


def site_file_from_guide(text: str, m: Machine, printed: dict[str, str], sim_url: str) -> str:
    """The guide's site.toml with the values it tells the administrator to paste."""
    (block,) = [b for b in code_blocks(text, "toml") if "production = true" in b]
    assert printed["enroll"].strip(), "enroll printed nothing"
    # what `kiosk-admin enroll --install-dir /etc/qhb-kiosk` printed is literally in the guide's site file
    for line in printed["enroll"].splitlines():
        if line and not line.startswith("#"):
            assert line in m.path(block), f"the guide's site.toml lacks the enroll line {line!r}"
    site = re.sub(r'technician_pin_hash = "[^"]*"', printed["pin-hash"].splitlines()[-1], block)
    keys = [(m.admin / f"{who}.pub").read_text().strip() for who in ("alice", "bob")]
    site = site.replace('["ed25519:<alice.pub>", "ed25519:<bob.pub>"]', f'["{keys[0]}", "{keys[1]}"]')
    site = re.sub(r'base_url = "https://[^"]*"', f'base_url = "{sim_url}"', site)
    return m.path(site)


def _systemd_exec_start() -> list[str]:
    unit = (PROJECT_ROOT / "deploy" / "qhb-kiosk.service").read_text()
    (line,) = [ln for ln in unit.splitlines() if ln.startswith("ExecStart=")]
    return shlex.split(line.split("=", 1)[1])


def _lines(stream, q: queue.Queue) -> None:
    for line in stream:
        q.put(line)
    q.put(None)


@pytest.mark.timeout(600)
def test_following_the_guide_ends_with_a_production_kiosk_delivering_to_a_platform_that_trusts_only_it(tmp_path):
    text = GUIDE.read_text(encoding="utf-8")
    steps = guide_sections(text, 5)
    m = Machine(tmp_path)
    # the administrator's test CA for the rehearsal platform (section 2), and the fleet CA the site file names
    ca, crt, key = make_tls(m.admin)
    assert (ca.name, crt.name, key.name) == ("platform-ca.pem", "platform.crt", "platform.key")
    (m.admin / "fleet-ca.pem").write_bytes(ca.read_bytes())  # the broker's CA (section 6), installed in section 3
    printed: dict[str, str] = {}
    sim: PlatformSimProcess | None = None
    kiosk: subprocess.Popen[str] | None = None
    site_path = m.root / "etc" / "qhb-kiosk" / "site.toml"
    ran: list[str] = []
    try:
        for block in code_blocks(steps, "sh"):
            for line in command_lines(block):
                argv = m.argv(line)
                if argv is None:
                    continue
                name = " ".join(Path(a).name if i == 0 else a for i, a in enumerate(argv[:2]))
                ran.append(name)
                if name == "kiosk platform-sim":
                    assert "--port" in argv
                    argv[argv.index("--port") + 1] = "0"
                    sim = PlatformSimProcess(argv, cwd=m.admin)
                    assert sim.url.startswith("https://") and "trusts=qhb-370306-0042" in sim.line, sim.line
                    continue
                if name == "systemctl enable":
                    assert sim is not None
                    kiosk = _start_kiosk(m, site_path, sim, ca)
                    continue
                if str(site_path) in argv and not site_path.exists():  # section 4: the site file, then section 5
                    assert sim is not None
                    site_path.write_text(site_file_from_guide(text, m, printed, sim.url), encoding="utf-8")
                    site_path.chmod(0o644)
                r = _run(argv, m.admin, stdin=f"{PIN}\n{PIN}\n" if name == "kiosk-admin pin-hash" else "")
                assert r.returncode == 0, f"{line}\n{r.stdout}\n{r.stderr}"
                printed[argv[1]] = r.stdout
                if name == "kiosk queue" and argv[2] == "init-key":
                    _citizen_applies(m)  # what the kiosk app does when a citizen submits: into the encrypted queue
        assert ran[:4] == ["kiosk-admin keygen", "kiosk-admin keygen", "kiosk-admin enroll", "kiosk-admin pin-hash"]
        assert {"kiosk platform-sim", "install -d", "install -m", "kiosk queue", "kiosk config", "systemctl enable",
                "kiosk diagnose"} <= set(ran), ran
        assert verify_pin(PIN, tomllib.loads(printed["pin-hash"])["ui"]["technician_pin_hash"])
        assert printed["config"].startswith("OK: kiosk qhb-370306-0042")
        # enrolled secrets on the kiosk: 0600
        for f in ("platform-credentials.toml", "mqtt-password"):
            assert (m.root / "etc" / "qhb-kiosk" / f).stat().st_mode & 0o777 == 0o600
        assert sim is not None and kiosk is not None
        # the production kiosk delivered the application: to the simulator that trusts only its credential
        assert sim.stats(verify=str(ca))["accepted"] == 1
        assert "delivered 0" in printed["queue"] or "pending 0" in printed["queue"]
        apps = requests.get(sim.url + "/__sim/applications", timeout=10, verify=str(ca)).json()["applications"]
        assert [a["item_code"] for a in apps] == [application_payload()["item_code"]]
        # ... and trusts nothing else: the development credential is refused with 401
        dev = development_credentials()
        with PlatformClient(sim.url, dev.kiosk_id, dev.secret, ca_bundle=str(ca), read_timeout=10) as client:
            with pytest.raises(PlatformError) as refused:
                client.submit_application(application_body(dev.kiosk_id), idempotency_key="guide-dev-0001")
        assert refused.value.status == 401
        assert (m.root / "etc" / "qhb-kiosk" / "fleet-ca.pem").read_bytes() == ca.read_bytes()
    finally:
        if kiosk is not None and kiosk.poll() is None:
            kiosk.send_signal(signal.SIGTERM)
            try:
                kiosk.wait(60)
            except subprocess.TimeoutExpired:
                kiosk.kill()
                kiosk.wait(10)
        if sim is not None:
            sim.stop()


def _citizen_applies(m: Machine) -> None:
    var = m.root / "var" / "lib" / "qhb-kiosk"
    ob = Outbox(var / "outbox.db", load_key(var / "kiosk.key", env={}))
    try:
        ob.enqueue("application", application_payload(), attachments=[os.urandom(256)],
                   idempotency_key="guide-application-0001")
    finally:
        ob.close()


def _start_kiosk(m: Machine, site: Path, sim: PlatformSimProcess, ca: Path) -> subprocess.Popen[str]:
    """`systemctl enable --now qhb-kiosk`: the unit's ExecStart, offscreen; returns once the platform has the
    application the kiosk had queued."""
    argv = [m.path(a) for a in _systemd_exec_start()]
    assert argv[1:] == ["run", "--config", str(site)], argv
    proc = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=clean_env(KIVY_NO_ARGS="1"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    q: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, q), daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + 240  # guards against hanging forever only
    while time.monotonic() < deadline:
        try:
            line = q.get(timeout=1)
        except queue.Empty:
            line = ""
        if line is None:
            raise AssertionError("kiosk run exited:\n" + "".join(seen[-80:]))
        seen.append(line)
        if any("home screen shown" in s for s in seen) and sim.stats(verify=str(ca))["accepted"] >= 1:
            assert not any("refusing to start" in s for s in seen)
            assert any("kiosk run: production mode:" in s for s in seen), "".join(seen[-80:])  # production, no profile
            return proc
    proc.kill()
    raise AssertionError("the production kiosk did not deliver its queue:\n" + "".join(seen[-80:]))


def test_the_old_guides_site_file_is_refused_in_production(tmp_path):
    """The site file of the guide before enrollment: with production on, every development value it relied on
    is named (it ran on what is now the development profile); on the safe defaults it lacks the credential."""
    old = OLD_GUIDE.read_text(encoding="utf-8")
    (block,) = [b for b in code_blocks(old, "toml") if "[kiosk]" in b]
    site = tmp_path / "old-site.toml"
    site.write_text(block.replace("/var/lib/qhb-kiosk", str(tmp_path / "var")), encoding="utf-8")
    kiosk = str(VENV_BIN / "kiosk")
    as_then = subprocess.run([kiosk, "config", "check", str(site)], capture_output=True, text=True, timeout=120,
                             env=clean_env(KIOSK_PROFILE="development", KIOSK__UI__PRODUCTION="true"))
    assert as_then.returncode == 1, as_then.stdout + as_then.stderr
    for key in ("platform.embedded_simulator", "platform.credentials_file", "ui.technician_pin",
                "platform.base_url", "devices.idcard.driver", "fleet.min_version", "fleet.admin_keys"):
        assert key in as_then.stderr, (key, as_then.stderr)
    assert "development credential" in as_then.stderr and "plain-text PIN" in as_then.stderr
    now = subprocess.run([kiosk, "config", "check", str(site)], capture_output=True, text=True, timeout=120,
                         env=clean_env(KIOSK__UI__PRODUCTION="true"))
    assert now.returncode == 1
    assert "platform.credentials_file: required key is missing" in now.stderr
    assert "platform.base_url: required key is missing" in now.stderr
