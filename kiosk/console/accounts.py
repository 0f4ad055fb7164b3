"""The console's administrators: accounts with roles, scrypt password hashes, sessions, login throttling.

Everything is in the console's database (kiosk.console.db's engine, tables of its own), so
several console instances behind a load balancer share accounts, sessions and throttling.

* Roles: ``viewer`` reads; ``operator`` also uploads bundles and commands and runs rollouts.
* Passwords: scrypt (memory-hard, 32 MiB per guess) in the same self-describing form as the
  technician PIN (kiosk.infra.pin_hash), but over UTF-8 text rather than digits only.
* First login: on a database without accounts, ``admin`` (operator) is created with the
  admin token (DIR/admin-token, mode 0600) as its password and must set a new one before
  doing anything else.
* Sessions: a random id in Flask's signed HttpOnly SameSite cookie; the database row holds
  the account, the CSRF token and the expiry, so a logout or a password change ends it everywhere.
* Throttling: failures are counted per account and per client address; after
  ``FREE_FAILURES`` each further failure locks that key for twice as long (1 min up to 1 h).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy.engine import Engine

ROLES = ("viewer", "operator")
FIRST_ADMIN = "admin"
MIN_PASSWORD = 10
SESSION_S = 12 * 3600.0
FREE_FAILURES = 5
LOCK_BASE_S, LOCK_MAX_S = 60.0, 3600.0
FAILURE_WINDOW_S = 3600.0  # failures older than this are forgotten

N, R, P = 2**15, 8, 1
_ENCODED = re.compile(r"^scrypt\$n=(\d{1,10}),r=(\d{1,4}),p=(\d{1,4})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$")
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{2,64}$")

meta = sa.MetaData()

accounts = sa.Table(
    "console_accounts", meta,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("pw_hash", sa.String(200), nullable=False),
    sa.Column("must_change", sa.Boolean, nullable=False, default=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("changed", sa.Float, nullable=False),
)

sessions = sa.Table(
    "console_sessions", meta,
    sa.Column("sid_hash", sa.String(64), primary_key=True),  # sha256 of the cookie's id: a leaked table is no login
    sa.Column("account", sa.String(64), nullable=False, index=True),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
)

login_failures = sa.Table(
    "console_login_failures", meta,
    sa.Column("key", sa.String(128), primary_key=True),  # "account:NAME" or "address:IP"
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failure", sa.Float, nullable=False),
    sa.Column("locked_until", sa.Float, nullable=False),
)


class AccountError(ValueError):
    """A refused account operation (bad name, role or password); the message is shown to the administrator."""


def hash_password(password: str) -> str:
    """A fresh salted scrypt hash of `password` (UTF-8), self-describing like kiosk.infra.pin_hash's."""
    salt = os.urandom(16)
    digest = Scrypt(salt=salt, length=32, n=N, r=R, p=P).derive(password.encode("utf-8"))
    return f"scrypt$n={N},r={R},p={P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    m = _ENCODED.match(encoded)
    if not m:
        return False
    n, r, p = (int(m.group(i)) for i in (1, 2, 3))
    if n < 2 or n & (n - 1) or 128 * n * r * p > 512 * 1024 * 1024:
        return False
    salt, digest = base64.b64decode(m.group(4)), base64.b64decode(m.group(5))
    try:
        got = Scrypt(salt=salt, length=len(digest), n=n, r=r, p=p).derive(password.encode("utf-8"))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(got, digest)


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def password_problem(password: str, name: str = "") -> str | None:
    """Why `password` is not acceptable for an administrator, or None."""
    if len(password) < MIN_PASSWORD:
        return f"密码至少 {MIN_PASSWORD} 个字符"
    if name and password.lower() == name.lower():
        return "密码不能与用户名相同"
    if len(set(password)) < 4:
        return "密码过于简单"
    return None


def _sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode("ascii", "replace")).hexdigest()


@dataclass(frozen=True)
class Session:
    account: str
    role: str
    must_change: bool
    csrf: str

    @property
    def can_operate(self) -> bool:
        return self.role == "operator"


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    sid: str | None = None
    locked_s: float = 0.0  # > 0: throttled, try again after this many seconds
    must_change: bool = False


class Accounts:
    """Accounts, sessions and throttling on the console's engine (SQLite or PostgreSQL)."""

    _DUMMY = "scrypt$n=32768,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 43 + "="

    def __init__(self, engine: Engine, clock: Any = time.time):
        self.engine = engine
        self.clock = clock
        meta.create_all(engine)

    # ------------------------------------------------------------------ accounts
    def ensure_first_admin(self, token: str) -> bool:
        """No account yet: `admin` (operator) with the admin token as password, to be changed at first login."""
        with self.engine.begin() as conn:
            if conn.execute(sa.select(sa.func.count()).select_from(accounts)).scalar_one():
                return False
        self.add(FIRST_ADMIN, "operator", token, must_change=True, check=False)
        return True

    def add(self, name: str, role: str, password: str, *, must_change: bool = False, check: bool = True) -> None:
        if not _NAME.match(name):
            raise AccountError("用户名只能包含字母、数字、点、下划线和连字符（2-64 个）")
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}")
        problem = password_problem(password, name) if check else None
        if problem:
            raise AccountError(problem)
        now = self.clock()
        with self.engine.begin() as conn:
            if conn.execute(sa.select(accounts.c.name).where(accounts.c.name == name)).first():
                raise AccountError(f"account {name} exists")
            conn.execute(accounts.insert().values(name=name, role=role, pw_hash=hash_password(password),
                                                  must_change=must_change, created=now, changed=now))

    def all(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [{"name": r.name, "role": r.role, "must_change": bool(r.must_change)}
                    for r in conn.execute(sa.select(accounts).order_by(accounts.c.name))]

    def set_password(self, name: str, password: str, keep_sid: str | None = None) -> None:
        """A new password ends every other session of the account."""
        problem = password_problem(password, name)
        if problem:
            raise AccountError(problem)
        with self.engine.begin() as conn:
            r = conn.execute(sa.select(accounts.c.pw_hash).where(accounts.c.name == name)).first()
            if r is None:
                raise AccountError(f"no account {name}")
            if verify_password(password, r.pw_hash):
                raise AccountError("新密码不能与旧密码相同")
            conn.execute(accounts.update().where(accounts.c.name == name)
                         .values(pw_hash=hash_password(password), must_change=False, changed=self.clock()))
            q = sessions.delete().where(sessions.c.account == name)
            if keep_sid:
                q = q.where(sessions.c.sid_hash != _sid_hash(keep_sid))
            conn.execute(q)

    # ------------------------------------------------------------------ login, throttled
    def locked_for(self, keys: list[str]) -> float:
        now = self.clock()
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(login_failures.c.locked_until).where(login_failures.c.key.in_(keys)))
            return max([0.0, *(r.locked_until - now for r in rows)])

    def login(self, name: str, password: str, address: str) -> LoginResult:
        """Check the throttle first (no scrypt while locked), then the password; count or clear failures."""
        keys = [f"account:{name[:64]}", f"address:{address[:64]}"]
        locked = self.locked_for(keys)
        if locked > 0:
            return LoginResult(False, locked_s=locked)
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(accounts).where(accounts.c.name == name)).first()
        ok = verify_password(password, r.pw_hash if r is not None else self._DUMMY) and r is not None
        if not ok:
            self._failed(keys)
            return LoginResult(False, locked_s=max(0.0, self.locked_for(keys)))
        with self.engine.begin() as conn:
            conn.execute(login_failures.delete().where(login_failures.c.key.in_(keys)))
        assert r is not None
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(sessions.delete().where(sessions.c.expires < now))
            conn.execute(sessions.insert().values(sid_hash=_sid_hash(sid), account=name,
                                                  csrf=secrets.token_urlsafe(32), created=now,
                                                  expires=now + SESSION_S))
        return LoginResult(True, sid=sid, must_change=bool(r.must_change))

    def _failed(self, keys: list[str]) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            for key in keys:
                r = conn.execute(sa.select(login_failures).where(login_failures.c.key == key)).first()
                n = 1 if r is None or now - r.last_failure > FAILURE_WINDOW_S else r.failures + 1
                locked = now + min(LOCK_MAX_S, LOCK_BASE_S * 2 ** (n - FREE_FAILURES)) if n >= FREE_FAILURES else 0.0
                if r is None:
                    conn.execute(login_failures.insert().values(key=key, failures=n, last_failure=now,
                                                                locked_until=locked))
                else:
                    conn.execute(login_failures.update().where(login_failures.c.key == key)
                                 .values(failures=n, last_failure=now, locked_until=locked))

    # ------------------------------------------------------------------ sessions
    def session(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(sessions.c.csrf, sessions.c.expires, accounts.c.name, accounts.c.role,
                                       accounts.c.must_change)
                             .join(accounts, accounts.c.name == sessions.c.account)
                             .where(sessions.c.sid_hash == _sid_hash(sid))).first()
        if r is None or r.expires < self.clock():
            return None
        return Session(r.name, r.role, bool(r.must_change), r.csrf)

    def logout(self, sid: str | None) -> None:
        if sid:
            with self.engine.begin() as conn:
                conn.execute(sessions.delete().where(sessions.c.sid_hash == _sid_hash(sid)))


def session_secret(path: os.PathLike[str] | str) -> bytes:
    """The key that signs session cookies: DIR/console-secret, created 0600 on first start."""
    p = os.fspath(path)
    try:
        with open(p, "rb") as f:
            data = f.read().strip()
        if len(data) >= 32:
            return data
    except FileNotFoundError:
        pass
    data = secrets.token_hex(32).encode("ascii")
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data + b"\n")
    os.chmod(p, 0o600)
    return data
