"""The console's accounts over HTTP (Flask's test client): first login, roles, CSRF on every form, throttling.

The console is not started (no broker needed): these requests never publish anything.
"""
from __future__ import annotations

import io
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from fleet.helpers import PROJECT_ROOT, clean_env

from kiosk.console.server import create_app
from kiosk.console.service import Console, ConsoleConfig

NEW_PW = "Zhoucun-2026-console"
ADDR_A = {"REMOTE_ADDR": "10.0.0.1"}


def make_console(state: Path) -> Console:
    return Console(ConsoleConfig(broker_url="mqtt://127.0.0.1:1", state_dir=state))


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch):
    """Hashes made here cost 2 MiB rather than 32 (each hash names its own n, so checking works the same)."""
    import kiosk.console.accounts as accounts

    assert accounts.hash_password("x").startswith("scrypt$n=32768,r=8,p=1$")  # what production stores
    monkeypatch.setattr(accounts, "N", 2**11)
    monkeypatch.setattr(accounts.Accounts, "_DUMMY", accounts.hash_password("dummy"))


@pytest.fixture
def console(tmp_path):
    c = make_console(tmp_path / "state")
    yield c
    c.db.close()


def csrf(resp) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', resp.get_data(as_text=True))
    assert m, resp.get_data(as_text=True)[:500]
    return m.group(1)


def login(client, name: str, password: str, environ=None):
    environ = environ or {}
    token = csrf(client.get("/login", environ_base=environ))
    return client.post("/login", data={"csrf_token": token, "username": name, "password": password},
                       environ_base=environ)


def first_login(client, console: Console) -> str:
    """admin + the admin token, then the forced new password; returns the session's CSRF token."""
    r = login(client, "admin", console.token)
    assert r.status_code == 302 and r.headers["Location"].endswith("/password")
    token = csrf(client.get("/password"))
    r = client.post("/password", data={"csrf_token": token, "new": NEW_PW, "again": NEW_PW})
    assert r.status_code == 302 and r.headers["Location"].endswith("/fleet")
    return csrf(client.get("/fleet"))


def test_first_login_is_the_admin_token_and_must_be_changed(console, tmp_path):
    state = tmp_path / "state"
    assert stat.S_IMODE(os.stat(state / "admin-token").st_mode) == 0o600
    app = create_app(console)
    assert stat.S_IMODE(os.stat(state / "console-secret").st_mode) == 0o600
    client = app.test_client()
    r = client.get("/fleet")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    r = client.get("/login")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie

    assert login(client, "admin", "wrong-password").status_code == 401
    r = login(client, "admin", console.token)
    assert r.status_code == 302 and r.headers["Location"].endswith("/password")
    # until the first password is replaced: only the password page; the API does not take the session either
    assert client.get("/fleet").headers["Location"].endswith("/password")
    assert client.get("/api/kiosks").status_code == 401
    token = csrf(client.get("/password"))
    r = client.post("/password", data={"csrf_token": token, "new": "short", "again": "short"})
    assert r.status_code == 400 and "至少" in r.get_data(as_text=True)
    r = client.post("/password", data={"csrf_token": token, "new": NEW_PW, "again": NEW_PW})
    assert r.status_code == 302
    assert client.get("/fleet").status_code == 200
    assert client.get("/api/kiosks").status_code == 200  # the API accepts the logged-in session
    assert client.get("/api/kiosks", headers={"Authorization": f"Bearer {console.token}"}).status_code == 200

    # the token is no longer a password; the new one is
    other = app.test_client()
    assert login(other, "admin", console.token).status_code == 401
    r = login(other, "admin", NEW_PW)
    assert r.status_code == 302 and r.headers["Location"].endswith("/fleet")
    # logging out ends the session on the server, not just in this browser
    stolen = client.get_cookie("qhb_console").value
    token = csrf(client.get("/fleet"))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    thief = app.test_client()
    thief.set_cookie("qhb_console", stolen)
    assert thief.get("/fleet").status_code == 302
    assert thief.get("/api/kiosks").status_code == 401


def test_every_form_needs_the_sessions_csrf_token(console):
    app = create_app(console)
    client = app.test_client()
    client.get("/login")
    r = client.post("/login", data={"username": "admin", "password": console.token})
    assert r.status_code == 403 and "CSRF" in r.get_data(as_text=True)
    token = first_login(client, console)
    bundle = {"bundle": (io.BytesIO(b"{}"), "b.json")}
    for path, data in [("/logout", {}), ("/rollouts", bundle), ("/bundles", bundle),
                       ("/commands", {"command": (io.BytesIO(b"{}"), "c")}),
                       ("/rollouts/nope/pause", {}), ("/password", {"new": "x" * 12, "again": "x" * 12})]:
        for bad in (None, "forged-" + token[7:]):
            form = dict(data) if bad is None else {**data, "csrf_token": bad}
            form = {k: ((io.BytesIO(b"{}"), "f") if isinstance(v, tuple) else v) for k, v in form.items()}
            r = client.post(path, data=form, content_type="multipart/form-data")
            assert r.status_code == 403, (path, bad, r.status_code)
    assert client.get("/fleet").status_code == 200  # still logged in: the forged logout did nothing
    # the API called with the session (not the bearer token) needs the token in a header
    assert client.post("/api/commands", data=b"{}").status_code == 403
    r = client.post("/api/commands", data=b"{}", headers={"X-CSRF-Token": token})
    assert r.status_code == 422 and r.get_json()["reason"] == "malformed"
    # the bearer token is not a cookie: no CSRF token needed
    r = app.test_client().post("/api/commands", data=b"{}", headers={"Authorization": f"Bearer {console.token}"})
    assert r.status_code == 422
    # a form with the right token goes through
    r = client.post("/rollouts", data={"csrf_token": token, "bundle": (io.BytesIO(b"not a bundle"), "b.json")},
                    content_type="multipart/form-data")
    assert r.status_code == 422 and "malformed" in r.get_data(as_text=True)
    r = client.post("/bundles", data={"csrf_token": token, "bundle": (io.BytesIO(b"not a bundle"), "b.json")},
                    content_type="multipart/form-data")
    assert r.status_code == 422 and "malformed" in r.get_data(as_text=True)


def test_viewer_reads_but_cannot_upload_roll_out_or_command(console, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("viewer-password-123\n")
    r = subprocess.run([sys.executable, "-m", "kiosk.cli.admin", "console-user", "add", "li.wei", "--role", "viewer",
                        "--state", str(tmp_path / "state"), "--password-file", str(pw)],
                       cwd=PROJECT_ROOT, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    app = create_app(console)
    client = app.test_client()
    r = login(client, "li.wei", "viewer-password-123")
    assert r.status_code == 302 and r.headers["Location"].endswith("/fleet")
    page = client.get("/rollouts").get_data(as_text=True)
    assert 'id="rollout-form"' not in page and 'id="command-form"' not in client.get("/commands").get_data(True)
    token = csrf(client.get("/fleet"))
    for path, field in [("/rollouts", "bundle"), ("/bundles", "bundle"), ("/commands", "command")]:
        r = client.post(path, data={"csrf_token": token, field: (io.BytesIO(b"{}"), "f")},
                        content_type="multipart/form-data")
        assert r.status_code == 403 and "只读" in r.get_data(as_text=True)
    assert client.post("/rollouts/x/abort", data={"csrf_token": token}).status_code == 403
    assert client.get("/api/kiosks").status_code == 200
    r = client.post("/api/commands", data=b"{}", headers={"X-CSRF-Token": token})
    assert r.status_code == 403 and r.get_json()["error"] == "forbidden"
    assert client.post("/api/rollouts/x/pause", headers={"X-CSRF-Token": token}).status_code == 403


def test_login_throttled_per_account_and_per_address_and_the_count_survives_a_restart(console, tmp_path):
    client = create_app(console).test_client()
    for _ in range(5):
        assert login(client, "admin", "not-the-password", ADDR_A).status_code in (401, 429)
    r = login(client, "admin", console.token, {"REMOTE_ADDR": "10.0.0.2"})  # right password, other address
    assert r.status_code == 429 and "秒后再试" in r.get_data(as_text=True)  # the account is locked

    # a new console process on the same state directory still knows
    console.db.close()
    again = make_console(tmp_path / "state")
    try:
        client = create_app(again).test_client()
        assert login(client, "admin", again.token, {"REMOTE_ADDR": "10.0.0.3"}).status_code == 429
        # guessing many account names from one address locks that address, not only the accounts
        for i in range(5):
            login(client, f"user{i}", "guess-guess", {"REMOTE_ADDR": "10.0.0.9"})
        again.db.engine.dispose()
        from kiosk.console.accounts import login_failures
        with again.db.engine.begin() as conn:  # the administrator's own lock expires (here: cleared)
            conn.execute(login_failures.delete().where(login_failures.c.key == "account:admin"))
        assert login(client, "admin", again.token, {"REMOTE_ADDR": "10.0.0.9"}).status_code == 429
        r = login(client, "admin", again.token, {"REMOTE_ADDR": "10.0.0.4"})
        assert r.status_code == 302 and r.headers["Location"].endswith("/password")
    finally:
        again.db.close()
