"""The console's one database layer (SQLAlchemy Core): SQLite in the state directory, or PostgreSQL.

Everything the console knows lives here: each kiosk's latest health, its health history,
acknowledgements, signed commands and their per-kiosk results, rollouts and their state.
The same code runs on both engines; the only dialect-specific part is the upsert
(``INSERT ... ON CONFLICT``, which both have).

A kiosk's latest row is written from what it publishes (kiosk.fleet.health's document on
``qhb/kiosk/{id}/health``, its status, acks and command results) by kiosk.console.ingest.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

DB_FILE = "console.db"
QUEUE_OLD_S = 3600.0  # "queue older than 1 h"
PROBLEMS = ("paper_out", "queue_old", "offline", "device_fault")

metadata = sa.MetaData()

kiosks = sa.Table(
    "kiosks", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("grp", sa.String(64), index=True),
    sa.Column("station_name", sa.Text),
    sa.Column("online", sa.Boolean),
    sa.Column("last_seen", sa.Float),  # epoch seconds of the last message from the kiosk
    sa.Column("app_version", sa.String(64)),
    sa.Column("config_version", sa.BigInteger),
    sa.Column("devices", sa.JSON),  # kind -> {"level", "state", "code"[, "paper"]}
    sa.Column("device_faults", sa.JSON),
    sa.Column("paper", sa.String(16)),  # ok | low | out | unknown (the printer's paper)
    sa.Column("queue_pending", sa.Integer),
    sa.Column("queue_oldest_age_s", sa.Float),
    sa.Column("last_visit", sa.String(32)),
    sa.Column("health_at", sa.Float),
)

health_history = sa.Table(
    "health_history", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("kiosk_id", sa.String(64), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("online", sa.Boolean),
    sa.Column("config_version", sa.BigInteger),
    sa.Column("queue_pending", sa.Integer),
    sa.Column("queue_oldest_age_s", sa.Float),
    sa.Column("device_faults", sa.JSON),
    sa.Column("paper", sa.String(16)),
    sa.Index("ix_health_kiosk_at", "kiosk_id", "at"),
)

acks = sa.Table(
    "acks", metadata,
    sa.Column("kiosk_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.BigInteger, primary_key=True),
    sa.Column("at", sa.String(32), primary_key=True),
    sa.Column("result", sa.String(32), nullable=False),
    sa.Column("reason", sa.String(64)),
    sa.Column("detail", sa.Text),
    sa.Column("received", sa.Float),
    sa.Index("ix_acks_version", "version"),
)

commands = sa.Table(
    "commands", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("target", sa.String(80), nullable=False),
    sa.Column("expires", sa.String(32), nullable=False),
    sa.Column("issued_at", sa.String(32)),
    sa.Column("raw", sa.LargeBinary, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)

command_results = sa.Table(
    "command_results", metadata,
    sa.Column("command_id", sa.String(32), primary_key=True),
    sa.Column("kiosk_id", sa.String(64), primary_key=True),
    sa.Column("action", sa.String(32)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(64)),
    sa.Column("error", sa.Text),
    sa.Column("data", sa.JSON),
    sa.Column("at", sa.String(32)),
)

rollouts = sa.Table(
    "rollouts", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("targets", sa.JSON, nullable=False),
    sa.Column("bundle", sa.LargeBinary, nullable=False),
    sa.Column("plan", sa.JSON, nullable=False),  # canaries, percentages, soak_s, max_failure_share
    sa.Column("state", sa.String(16), nullable=False),  # running | paused | halted | aborted | completed
    sa.Column("stage", sa.Integer, nullable=False),  # index into the stages (0 = canaries)
    sa.Column("stage_started", sa.Float),
    sa.Column("stage_healthy_since", sa.Float),
    sa.Column("reason", sa.Text),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
)

rollout_members = sa.Table(
    "rollout_members", metadata,
    sa.Column("rollout_id", sa.String(32), primary_key=True),
    sa.Column("kiosk_id", sa.String(64), primary_key=True),
    sa.Column("stage", sa.Integer, nullable=False),
    sa.Column("sent", sa.Float),
)


def database_url(state_dir: str | Path, db_url: str | None = None) -> str:
    """--db as given (postgresql://... runs on psycopg 3), else SQLite in the state directory."""
    if db_url:
        if db_url.startswith("postgresql://"):
            return "postgresql+psycopg://" + db_url[len("postgresql://"):]
        return db_url
    return f"sqlite:///{Path(state_dir).resolve() / DB_FILE}"


def iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def device_level(d: Any) -> str:
    """A device's health level for the fleet page: ok | warn | error | unknown."""
    if not isinstance(d, dict):
        return "unknown"
    state, code = d.get("state"), d.get("code")
    if state in ("error", "offline") or d.get("health_ok") is False:
        return "error"
    if code in ("paper_near_end",) or state == "degraded":
        return "warn"
    if state in ("ready", "busy"):
        return "ok"
    return "unknown"


def paper_status(devices: dict[str, Any]) -> str | None:
    prn = devices.get("printer")
    if not isinstance(prn, dict):
        return None
    code = prn.get("code")
    if code == "paper_out":
        return "out"
    if code == "paper_near_end":
        return "low"
    return "ok" if prn.get("state") in ("ready", "busy") else "unknown"


class ConsoleDB:
    """One engine, short transactions; thread-safe through SQLAlchemy's pool."""

    def __init__(self, url: str):
        self.url = url
        kw: dict[str, Any] = {"future": True}
        if url.startswith("sqlite:///"):
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        if url.startswith("sqlite"):
            kw["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kw["pool_pre_ping"] = True
        self.engine: Engine = sa.create_engine(url, **kw)
        if url.startswith("sqlite"):
            @sa.event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_conn: Any, _rec: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()
        metadata.create_all(self.engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def _insert(self, table: sa.Table) -> Any:
        return (postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table))

    def _upsert(self, conn: Connection, table: sa.Table, keys: Sequence[str], row: dict[str, Any]) -> None:
        ins = self._insert(table).values(**row)
        update = {k: ins.excluded[k] for k in row if k not in keys}
        conn.execute(ins.on_conflict_do_update(index_elements=list(keys), set_=update) if update
                     else ins.on_conflict_do_nothing(index_elements=list(keys)))

    # ------------------------------------------------------------------ ingest (kiosk -> console)
    def ingest(self, messages: Iterable[tuple[str, str, dict[str, Any]]], received: float | None = None) -> int:
        """One transaction for a batch of (kind, kiosk_id, document); kind: status | health | ack | result."""
        now = received or time.time()
        n = 0
        with self.engine.begin() as conn:
            for kind, kiosk_id, doc in messages:
                handler = {"status": self._status, "health": self._health, "ack": self._ack,
                           "result": self._result}.get(kind)
                if handler is not None:
                    handler(conn, kiosk_id, doc, now)
                    n += 1
        return n

    def _status(self, conn: Connection, kid: str, doc: dict[str, Any], now: float) -> None:
        row: dict[str, Any] = {"id": kid, "online": bool(doc.get("online"))}
        if doc.get("group"):
            row["grp"] = str(doc["group"])[:64]
        if row["online"]:
            row["last_seen"] = now
        self._upsert(conn, kiosks, ["id"], row)

    def _health(self, conn: Connection, kid: str, doc: dict[str, Any], now: float) -> None:
        rd, rq = doc.get("devices"), doc.get("queue")
        raw_devices: dict[str, Any] = rd if isinstance(rd, dict) else {}
        devices: dict[str, dict[str, Any]] = {}
        for kind, d in raw_devices.items():
            dd = d if isinstance(d, dict) else {}
            entry = {"level": device_level(d), "state": dd.get("state"), "code": dd.get("code")}
            if kind == "printer":
                entry["paper"] = paper_status(raw_devices)
            devices[str(kind)] = entry
        q: dict[str, Any] = rq if isinstance(rq, dict) else {}
        available = q.get("available", True)
        ts = doc.get("ts")
        seen = float(ts) if isinstance(ts, (int, float)) else now
        cv = doc.get("config_version")
        row = {
            "id": kid, "grp": str(doc.get("group") or "")[:64] or None, "station_name": doc.get("station_name"),
            "online": True, "last_seen": seen, "app_version": str(doc.get("app_version") or "")[:64] or None,
            "config_version": cv if isinstance(cv, int) else None, "devices": devices,
            "device_faults": list(doc.get("device_faults") or []), "paper": paper_status(raw_devices),
            "queue_pending": q.get("depth") if available else None,
            "queue_oldest_age_s": q.get("oldest_age_s") if available else None,
            "last_visit": doc.get("last_visit"), "health_at": seen,
        }
        row = {k: v for k, v in row.items() if v is not None or k in ("queue_pending", "queue_oldest_age_s")}
        self._upsert(conn, kiosks, ["id"], row)
        conn.execute(health_history.insert().values(
            kiosk_id=kid, at=seen, online=True, config_version=row.get("config_version"),
            queue_pending=row.get("queue_pending"), queue_oldest_age_s=row.get("queue_oldest_age_s"),
            device_faults=row.get("device_faults"), paper=row.get("paper")))

    def _ack(self, conn: Connection, kid: str, doc: dict[str, Any], now: float) -> None:
        entries = [e for e in (doc.get("recent") or []) if isinstance(e, dict)]
        if not any(e.get("version") == doc.get("version") and e.get("at") == doc.get("at") for e in entries):
            entries.append(doc)
        for e in entries:
            if not isinstance(e.get("version"), int) or not e.get("at") or not e.get("result"):
                continue
            ins = self._insert(acks).values(kiosk_id=kid, version=e["version"], at=str(e["at"])[:32],
                                            result=str(e["result"])[:32], reason=str(e.get("reason") or "")[:64],
                                            detail=(str(e["detail"])[:300] if e.get("detail") else None),
                                            received=now)
            conn.execute(ins.on_conflict_do_nothing(index_elements=["kiosk_id", "version", "at"]))
        cv = doc.get("config_version")
        if isinstance(cv, int):
            self._upsert(conn, kiosks, ["id"], {"id": kid, "config_version": cv})

    def _result(self, conn: Connection, kid: str, doc: dict[str, Any], now: float) -> None:
        cid = doc.get("command_id")
        if not isinstance(cid, str) or not doc.get("status"):
            return
        row: dict[str, Any] = {"command_id": cid[:32], "kiosk_id": kid, "action": doc.get("action"),
                               "status": str(doc["status"])[:16],
               "reason": str(doc.get("reason") or "")[:64], "error": str(doc.get("error") or "")[:500],
               "data": doc.get("data") if isinstance(doc.get("data"), dict) else {}, "at": str(doc.get("at"))[:32]}
        if row["reason"] == "rollback":  # a replay's refusal never hides what the first delivery did
            conn.execute(self._insert(command_results).values(**row).on_conflict_do_nothing(
                index_elements=["command_id", "kiosk_id"]))
        else:
            self._upsert(conn, command_results, ["command_id", "kiosk_id"], row)

    def mark_stale_offline(self, older_than_s: float, now: float | None = None) -> int:
        """Kiosks silent for longer than `older_than_s` count as offline (a broker without wills, a cut cable)."""
        cutoff = (now or time.time()) - older_than_s
        with self.engine.begin() as conn:
            r = conn.execute(kiosks.update().where(kiosks.c.online.is_(True), kiosks.c.last_seen < cutoff)
                             .values(online=False))
            return int(r.rowcount or 0)

    def prune_history(self, keep_s: float, now: float | None = None) -> int:
        cutoff = (now or time.time()) - keep_s
        with self.engine.begin() as conn:
            return int(conn.execute(health_history.delete().where(health_history.c.at < cutoff)).rowcount or 0)

    # ------------------------------------------------------------------ the fleet
    @staticmethod
    def _kiosk_json(r: Any, now: float) -> dict[str, Any]:
        devices = r.devices or {}
        return {
            "id": r.id, "group": r.grp, "station_name": r.station_name, "online": bool(r.online),
            "last_seen": iso(r.last_seen),
            "last_seen_age_s": None if r.last_seen is None else round(now - r.last_seen, 1),
            "app_version": r.app_version, "config_version": r.config_version,
            "devices": {k: (v or {}).get("level", "unknown") for k, v in devices.items()},
            "device_details": devices, "device_faults": r.device_faults or [], "paper": r.paper,
            "queue": {"pending": r.queue_pending, "oldest_pending_age_s": r.queue_oldest_age_s},
            "last_visit": r.last_visit,
        }

    def list_kiosks(self, group: str | None = None, problem: str | None = None) -> list[dict[str, Any]]:
        """The fleet page and GET /api/kiosks; `problem`: paper_out | queue_old | offline | device_fault."""
        q = sa.select(kiosks).order_by(kiosks.c.id)
        if group:
            q = q.where(kiosks.c.grp == group)
        if problem == "paper_out":
            q = q.where(kiosks.c.paper == "out")
        elif problem == "queue_old":
            q = q.where(kiosks.c.queue_oldest_age_s > QUEUE_OLD_S)
        elif problem == "offline":
            q = q.where(sa.or_(kiosks.c.online.is_(False), kiosks.c.online.is_(None)))
        elif problem == "device_fault":
            q = q.where(kiosks.c.device_faults.is_not(None))
        now = time.time()
        with self.engine.connect() as conn:
            rows = [self._kiosk_json(r, now) for r in conn.execute(q)]
        if problem == "device_fault":
            rows = [r for r in rows if r["device_faults"]]
        return rows

    def counts(self) -> dict[str, int]:
        """The numbers at the top of the fleet page."""
        k = kiosks.c
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(
                sa.func.count(),
                sa.func.sum(sa.case((k.online.is_(True), 1), else_=0)),
                sa.func.sum(sa.case((k.paper == "out", 1), else_=0)),
                sa.func.sum(sa.case((k.queue_oldest_age_s > QUEUE_OLD_S, 1), else_=0)),
            )).one()
        total, online, paper, old = (int(x or 0) for x in r)
        return {"total": total, "online": online, "offline": total - online, "paper_out": paper, "queue_old": old}

    def kiosk(self, kiosk_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(kiosks).where(kiosks.c.id == kiosk_id)).first()
        return None if r is None else self._kiosk_json(r, time.time())

    def kiosk_ids(self, targets: Sequence[str]) -> list[str]:
        """The known kiosks a list of targets (all, group:X, kiosk:ID) names, sorted."""
        conds: list[sa.ColumnElement[bool]] = []
        for t in targets:
            if t == "all":
                conds = [sa.true()]
                break
            kind, _, name = t.partition(":")
            conds.append(kiosks.c.grp == name if kind == "group" else kiosks.c.id == name)
        if not conds:
            return []
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.select(kiosks.c.id).where(sa.or_(*conds)).order_by(kiosks.c.id))]

    def health_history(self, kiosk_id: str, limit: int = 100) -> list[dict[str, Any]]:
        h = health_history.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(health_history).where(h.kiosk_id == kiosk_id)
                                .order_by(h.at.desc()).limit(limit))
            return [{"at": iso(r.at), "online": r.online, "config_version": r.config_version,
                     "queue_pending": r.queue_pending, "queue_oldest_age_s": r.queue_oldest_age_s,
                     "device_faults": r.device_faults or [], "paper": r.paper} for r in rows]

    def acks_for(self, *, kiosk_id: str | None = None, version: int | None = None,
                 limit: int = 1000) -> list[dict[str, Any]]:
        a = acks.c
        q = sa.select(acks).order_by(a.at.desc()).limit(limit)
        if kiosk_id is not None:
            q = q.where(a.kiosk_id == kiosk_id)
        if version is not None:
            q = q.where(a.version == version)
        with self.engine.connect() as conn:
            return [{"kiosk_id": r.kiosk_id, "version": r.version, "result": r.result, "reason": r.reason,
                     "detail": r.detail, "at": r.at} for r in conn.execute(q)]

    def latest_acks(self, version: int, kiosk_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Each named kiosk's latest ack for `version` (the rollout's view of a stage)."""
        out: dict[str, dict[str, Any]] = {}
        if not kiosk_ids:
            return out
        a = acks.c
        with self.engine.connect() as conn:
            for i in range(0, len(kiosk_ids), 900):
                chunk = list(kiosk_ids[i:i + 900])
                for r in conn.execute(sa.select(acks).where(a.version == version, a.kiosk_id.in_(chunk))
                                      .order_by(a.at)):
                    out[r.kiosk_id] = {"result": r.result, "reason": r.reason, "at": r.at}
        return out

    def kiosks_by_id(self, kiosk_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        now = time.time()
        with self.engine.connect() as conn:
            for i in range(0, len(kiosk_ids), 900):
                chunk = list(kiosk_ids[i:i + 900])
                for r in conn.execute(sa.select(kiosks).where(kiosks.c.id.in_(chunk))):
                    out[r.id] = self._kiosk_json(r, now)
        return out

    # ------------------------------------------------------------------ commands
    def add_command(self, cmd_id: str, action: str, target: str, expires: str, issued_at: str | None,
                    raw: bytes) -> None:
        with self.engine.begin() as conn:
            conn.execute(self._insert(commands).values(id=cmd_id, action=action, target=target, expires=expires,
                                                       issued_at=issued_at, raw=raw, created=time.time())
                         .on_conflict_do_nothing(index_elements=["id"]))

    def command(self, cmd_id: str) -> dict[str, Any] | None:
        """A command with each targeted kiosk's result (``pending`` where none came yet)."""
        with self.engine.connect() as conn:
            c = conn.execute(sa.select(commands).where(commands.c.id == cmd_id)).first()
            res = {r.kiosk_id: r for r in conn.execute(
                sa.select(command_results).where(command_results.c.command_id == cmd_id))}
        if c is None and not res:
            return None
        expected = self.kiosk_ids([c.target]) if c is not None else []
        results = []
        for kid in sorted(set(expected) | set(res)):
            r = res.get(kid)
            results.append({"kiosk_id": kid, "status": r.status if r else "pending", "reason": r.reason if r else "",
                            "error": r.error if r else "", "data": (r.data or {}) if r else {},
                            "at": r.at if r else None})
        return {"id": cmd_id, "action": c.action if c else None, "target": c.target if c else None,
                "expires": c.expires if c else None, "results": results}

    def command_results_for(self, kiosk_id: str, limit: int = 20) -> list[dict[str, Any]]:
        r_ = command_results.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(command_results).where(r_.kiosk_id == kiosk_id)
                                .order_by(r_.at.desc()).limit(limit))
            return [{"command_id": r.command_id, "action": r.action, "status": r.status, "reason": r.reason,
                     "error": r.error, "at": r.at, "data": r.data or {}} for r in rows]

    def last_screenshot(self, kiosk_id: str) -> tuple[str, str] | None:
        """(at, base64 PNG) of the kiosk's newest successful screenshot."""
        for r in self.command_results_for(kiosk_id, limit=200):
            if r["action"] == "screenshot" and r["status"] == "done" and r["data"].get("png_b64"):
                return r["at"], r["data"]["png_b64"]
        return None

    # ------------------------------------------------------------------ rollouts
    def save_rollout(self, row: dict[str, Any]) -> None:
        """Insert a new rollout (every column) or update the given columns of an existing one."""
        row = dict(row, updated=time.time())
        with self.engine.begin() as conn:
            fields = {k: v for k, v in row.items() if k != "id"}
            if conn.execute(rollouts.update().where(rollouts.c.id == row["id"]).values(**fields)).rowcount == 0:
                conn.execute(rollouts.insert().values(**row))

    def rollout(self, rollout_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(rollouts).where(rollouts.c.id == rollout_id)).first()
        return None if r is None else dict(r._mapping)

    def rollouts(self, states: Sequence[str] | None = None) -> list[dict[str, Any]]:
        q = sa.select(rollouts).order_by(rollouts.c.created)
        if states:
            q = q.where(rollouts.c.state.in_(list(states)))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def add_members(self, rollout_id: str, stage: int, kiosk_ids: Sequence[str], sent: float) -> None:
        if not kiosk_ids:
            return
        with self.engine.begin() as conn:
            conn.execute(self._insert(rollout_members).on_conflict_do_nothing(
                index_elements=["rollout_id", "kiosk_id"]),
                [{"rollout_id": rollout_id, "kiosk_id": k, "stage": stage, "sent": sent} for k in kiosk_ids])

    def members(self, rollout_id: str) -> dict[str, int]:
        """kiosk id -> the stage it was released in."""
        m = rollout_members.c
        with self.engine.connect() as conn:
            return {r.kiosk_id: r.stage for r in conn.execute(sa.select(rollout_members)
                                                              .where(m.rollout_id == rollout_id))}


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)
