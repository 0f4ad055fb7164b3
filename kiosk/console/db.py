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
import math
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

DB_FILE = "console.db"
QUEUE_OLD_S = 3600.0  # "queue older than 1 h"
HISTORY_EVERY_S = 600.0  # an unchanged kiosk's health history: one row per 10 minutes
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
    sa.Column("levels", sa.Text),  # {"kind": "level"} as JSON text, ready for the fleet list as it is
    sa.Column("faults_n", sa.Integer),
    sa.Column("history_at", sa.Float),  # when the last health_history row was written
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


ISO = "%Y-%m-%dT%H:%M:%SZ"


def _s(v: str | None) -> str:
    """A JSON string (or null) through the json module's C encoder: the fleet list is 10,000 rows."""
    return "null" if v is None else encode_basestring(v)


def _n(v: float | None) -> str:
    """A JSON number (or null); NaN and infinities, which JSON has not, become null."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "null"
    return str(v) if isinstance(v, int) else repr(float(v))


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
        self._stmts = self._statements()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def _insert(self, table: sa.Table) -> Any:
        return (postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table))

    # ------------------------------------------------------------------ ingest (kiosk -> console)
    def _statements(self) -> dict[str, Any]:
        """Built once: executemany over prepared statements (building one per message cost ~15 ms)."""
        k = kiosks.c

        def keep(ins: Any, col: str) -> Any:  # a missing value never erases a known one
            return sa.func.coalesce(ins.excluded[col], k[col])

        h = self._insert(kiosks)
        health = h.on_conflict_do_update(index_elements=["id"], set_={
            "grp": keep(h, "grp"), "station_name": keep(h, "station_name"), "online": h.excluded.online,
            "last_seen": h.excluded.last_seen, "app_version": keep(h, "app_version"),
            "config_version": keep(h, "config_version"), "devices": h.excluded.devices,
            "device_faults": h.excluded.device_faults, "paper": h.excluded.paper,
            "levels": h.excluded.levels, "faults_n": h.excluded.faults_n, "history_at": keep(h, "history_at"),
            "queue_pending": h.excluded.queue_pending, "queue_oldest_age_s": h.excluded.queue_oldest_age_s,
            "last_visit": keep(h, "last_visit"), "health_at": h.excluded.health_at})
        s = self._insert(kiosks)
        status = s.on_conflict_do_update(index_elements=["id"], set_={
            "online": s.excluded.online, "grp": keep(s, "grp"), "last_seen": keep(s, "last_seen")})
        v = self._insert(kiosks)
        version = v.on_conflict_do_update(index_elements=["id"], set_={"config_version": v.excluded.config_version})
        r = self._insert(command_results)
        result = r.on_conflict_do_update(index_elements=["command_id", "kiosk_id"], set_={
            c: r.excluded[c] for c in ("action", "status", "reason", "error", "data", "at")})
        return {
            "health": health, "status": status, "version": version, "result": result,
            "history": health_history.insert(),
            "ack": self._insert(acks).on_conflict_do_nothing(index_elements=["kiosk_id", "version", "at"]),
            "replay": self._insert(command_results).on_conflict_do_nothing(index_elements=["command_id", "kiosk_id"]),
        }

    def ingest(self, messages: Iterable[tuple[str, str, dict[str, Any]]], received: float | None = None) -> int:
        """One transaction for a batch of (kind, kiosk_id, document); kind: status | health | ack | result.

        Per kiosk the latest row wins within a batch; history, acks and results are all kept.
        """
        now = received or time.time()
        health: dict[str, dict[str, Any]] = {}
        status: dict[str, dict[str, Any]] = {}
        versions: dict[str, dict[str, Any]] = {}
        history: list[dict[str, Any]] = []
        ack_rows: dict[tuple[str, int, str], dict[str, Any]] = {}
        results: dict[tuple[str, str], dict[str, Any]] = {}
        replays: dict[tuple[str, str], dict[str, Any]] = {}
        n = 0
        for kind, kid, doc in messages:
            kid = str(kid)[:64]
            if kind == "health":
                row = self._health_row(kid, doc, now)
                health[kid] = row
                status.pop(kid, None)  # a later health report means online, whatever came before
                history.append({"kiosk_id": kid, "at": row["last_seen"], "online": True,
                                "config_version": row["config_version"], "queue_pending": row["queue_pending"],
                                "queue_oldest_age_s": row["queue_oldest_age_s"],
                                "device_faults": row["device_faults"], "paper": row["paper"]})
            elif kind == "status":
                online = bool(doc.get("online"))
                status[kid] = {"id": kid, "online": online, "grp": (str(doc["group"])[:64] if doc.get("group")
                                                                    else None),
                               "last_seen": now if online else None}
            elif kind == "ack":
                for row in self._ack_rows(kid, doc, now):
                    ack_rows[(kid, row["version"], row["at"])] = row
                cv = doc.get("config_version")
                if isinstance(cv, int):
                    versions[kid] = {"id": kid, "config_version": cv}
            elif kind == "result":
                res = self._result_row(kid, doc)
                if res is not None:
                    key = (res["command_id"], kid)
                    if res["reason"] == "rollback":  # a replay's refusal never hides what the first delivery did
                        replays[key] = res
                    else:
                        results[key] = res
                        replays.pop(key, None)
            else:
                continue
            n += 1
        st = self._stmts
        with self.engine.begin() as conn:
            history = self._thin_history(conn, history, health)
            for name, rows in (("health", list(health.values())), ("history", history),
                               ("status", list(status.values())), ("version", list(versions.values())),
                               ("ack", list(ack_rows.values())), ("result", list(results.values())),
                               ("replay", list(replays.values()))):
                if rows:
                    conn.execute(st[name], rows)
        return n

    @staticmethod
    def _history_key(row: dict[str, Any]) -> tuple[Any, ...]:
        old = (row.get("queue_oldest_age_s") or 0) > QUEUE_OLD_S
        return (row.get("online"), row.get("config_version"), row.get("paper"), tuple(row.get("device_faults") or ()),
                old, bool(row.get("queue_pending")))

    def _thin_history(self, conn: Any, history: list[dict[str, Any]],
                      health: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """Keep a history row when something an administrator looks at changed, else one per HISTORY_EVERY_S.

        10,000 kiosks reporting every minute would be 14 million rows a day; most say the same.
        """
        if not history:
            return history
        k = kiosks.c
        ids = sorted({h["kiosk_id"] for h in history})
        last: dict[str, tuple[float | None, tuple[Any, ...]]] = {}
        for i in range(0, len(ids), 900):
            for r in conn.execute(sa.select(k.id, k.history_at, k.online, k.config_version, k.paper,
                                            k.device_faults, k.queue_oldest_age_s, k.queue_pending)
                                  .where(k.id.in_(ids[i:i + 900]))):
                last[r.id] = (r.history_at, self._history_key(r._asdict()))
        kept = []
        for h in history:
            at_prev, key_prev = last.get(h["kiosk_id"], (None, None))
            key = self._history_key(h)
            if at_prev is None or key != key_prev or h["at"] - at_prev >= HISTORY_EVERY_S:
                kept.append(h)
                last[h["kiosk_id"]] = (h["at"], key)
        for kid, row in health.items():
            row["history_at"] = last.get(kid, (None, None))[0]
        return kept

    @staticmethod
    def _health_row(kid: str, doc: dict[str, Any], now: float) -> dict[str, Any]:
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
        return {
            "id": kid, "grp": str(doc.get("group") or "")[:64] or None,
            "station_name": (str(doc["station_name"])[:200] if doc.get("station_name") else None),
            "online": True, "last_seen": seen, "app_version": str(doc.get("app_version") or "")[:64] or None,
            "config_version": cv if isinstance(cv, int) else None, "devices": devices,
            "device_faults": [str(x) for x in (doc.get("device_faults") or [])][:20],
            "paper": paper_status(raw_devices),
            "levels": json.dumps({k: v["level"] for k, v in devices.items()}, ensure_ascii=False,
                                 separators=(",", ":")),
            "faults_n": len(doc.get("device_faults") or []),
            "queue_pending": q.get("depth") if available and isinstance(q.get("depth"), int) else None,
            "queue_oldest_age_s": (float(q["oldest_age_s"]) if available and isinstance(q.get("oldest_age_s"),
                                                                                       (int, float)) else None),
            "last_visit": (str(doc["last_visit"])[:32] if doc.get("last_visit") else None), "health_at": seen,
        }

    @staticmethod
    def _ack_rows(kid: str, doc: dict[str, Any], now: float) -> list[dict[str, Any]]:
        entries = [e for e in (doc.get("recent") or []) if isinstance(e, dict)]
        if not any(e.get("version") == doc.get("version") and e.get("at") == doc.get("at") for e in entries):
            entries.append(doc)
        return [{"kiosk_id": kid, "version": e["version"], "at": str(e["at"])[:32], "result": str(e["result"])[:32],
                 "reason": str(e.get("reason") or "")[:64],
                 "detail": (str(e["detail"])[:300] if e.get("detail") else None), "received": now}
                for e in entries if isinstance(e.get("version"), int) and e.get("at") and e.get("result")]

    @staticmethod
    def _result_row(kid: str, doc: dict[str, Any]) -> dict[str, Any] | None:
        cid = doc.get("command_id")
        if not isinstance(cid, str) or not doc.get("status"):
            return None
        return {"command_id": cid[:32], "kiosk_id": kid, "action": doc.get("action"),
                "status": str(doc["status"])[:16], "reason": str(doc.get("reason") or "")[:64],
                "error": str(doc.get("error") or "")[:500],
                "data": doc.get("data") if isinstance(doc.get("data"), dict) else {}, "at": str(doc.get("at"))[:32]}

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

    def list_kiosks_json(self, group: str | None = None, problem: str | None = None, *,
                         limit: int | None = None, offset: int = 0) -> str:
        """GET /api/kiosks as JSON text, assembled from columns without decoding anything (10,000 kiosks).

        `problem`: paper_out | queue_old | offline | device_fault. Entries: id, group, station_name,
        online, last_seen, app_version, config_version, devices (kind -> level), device_faults, paper,
        queue {pending, oldest_pending_age_s}, last_visit.
        """
        k = kiosks.c
        q = sa.select(k.id, k.grp, k.station_name, k.online, k.last_seen, k.app_version, k.config_version,
                      k.levels, sa.cast(k.device_faults, sa.Text), k.paper, k.queue_pending,
                      k.queue_oldest_age_s, k.last_visit).order_by(k.id)
        q = filter_kiosks(q, group, problem)
        if limit is not None:
            q = q.limit(limit).offset(offset)
        parts = []
        with self.engine.connect() as conn:
            for (kid, grp, station, online, seen, app, cv, levels, faults, paper, pending, oldest,
                 visit) in conn.execute(q):
                parts.append(
                    f'{{"id":{_s(kid)},"group":{_s(grp)},"station_name":{_s(station)},'
                    f'"online":{"true" if online else "false"},'
                    f'"last_seen":{_s(None if seen is None else time.strftime(ISO, time.gmtime(seen)))},'
                    f'"app_version":{_s(app)},"config_version":{_n(cv)},"devices":{levels or "{}"},'
                    f'"device_faults":{faults or "[]"},"paper":{_s(paper)},'
                    f'"queue":{{"pending":{_n(pending)},"oldest_pending_age_s":{_n(oldest)}}},'
                    f'"last_visit":{_s(visit)}}}')
        return "[" + ",".join(parts) + "]"

    def list_kiosks(self, group: str | None = None, problem: str | None = None, *,
                    limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """The fleet list as objects (see list_kiosks_json)."""
        out: list[dict[str, Any]] = json.loads(self.list_kiosks_json(group, problem, limit=limit, offset=offset))
        return out

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

    def kiosk_page(self, kiosk_id: str) -> dict[str, Any] | None:
        """One kiosk with what its page and its API show: health history, recent acks and command results."""
        k = self.kiosk(kiosk_id)
        if k is None:
            return None
        shot = self.last_screenshot(kiosk_id)
        return {"kiosk": k, "health_history": self.health_history(kiosk_id, 50),
                "acks": self.acks_for(kiosk_id=kiosk_id, limit=20),
                "commands": self.command_results_for(kiosk_id, 20),
                "last_screenshot_at": shot[0] if shot else None}

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


def filter_kiosks(q: Any, group: str | None, problem: str | None) -> Any:
    """The fleet's filters (group; problem: paper_out, queue_old, offline, device_fault), one rule for API and pages."""
    k = kiosks.c
    if group:
        q = q.where(k.grp == group)
    if problem == "paper_out":
        q = q.where(k.paper == "out")
    elif problem == "queue_old":
        q = q.where(k.queue_oldest_age_s > QUEUE_OLD_S)
    elif problem == "offline":
        q = q.where(sa.or_(k.online.is_(False), k.online.is_(None)))
    elif problem == "device_fault":
        q = q.where(k.faults_n > 0)
    return q
