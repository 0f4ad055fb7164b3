"""The pages' own queries: one page of kiosks (filters by group and problem), the groups, recent commands.

The JSON API returns the whole list; a page of a 10,000-kiosk fleet must not, so this
reads one page (``PAGE_SIZE`` rows, ordered by id) plus the filtered count, and the
kiosks table gets indexes on the columns the problem filters use.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kiosk.console.db import ConsoleDB, command_results, commands, filter_kiosks, kiosks

log = logging.getLogger(__name__)

PAGE_SIZE = 50  # a page renders in well under 300 ms even on a loaded machine
PROBLEM_LABELS = {"paper_out": "缺纸", "queue_old": "队列超过 1 小时", "offline": "离线", "device_fault": "设备故障"}

_INDEXES = [
    sa.Index("ix_kiosks_paper", kiosks.c.paper),
    sa.Index("ix_kiosks_queue_age", kiosks.c.queue_oldest_age_s),
    sa.Index("ix_kiosks_online", kiosks.c.online),
    sa.Index("ix_kiosks_faults", kiosks.c.faults_n),
]


def ensure_indexes(engine: Engine) -> None:
    """The problem filters' indexes (idempotent; also on a database made before they existed)."""
    for ix in _INDEXES:
        ix.create(engine, checkfirst=True)


def fleet_page(db: ConsoleDB, *, group: str | None, problem: str | None, page: int) -> dict[str, Any]:
    """{"rows", "matched", "page", "pages"} for the fleet page."""
    with db.engine.connect() as conn:
        matched = int(conn.execute(filter_kiosks(sa.select(sa.func.count()).select_from(kiosks), group, problem))
                      .scalar_one())
        pages = max(1, -(-matched // PAGE_SIZE))
        page = min(max(1, page), pages)
        q = filter_kiosks(sa.select(kiosks), group, problem).order_by(kiosks.c.id)
        rows = list(conn.execute(q.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)))
    now = time.time()
    return {"rows": [ConsoleDB._kiosk_json(r, now) for r in rows], "matched": matched, "page": page,
            "pages": pages}


def groups(db: ConsoleDB) -> list[str]:
    with db.engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.select(kiosks.c.grp).where(kiosks.c.grp.is_not(None))
                                           .distinct().order_by(kiosks.c.grp))]


def recent_commands(db: ConsoleDB, limit: int = 50) -> list[dict[str, Any]]:
    """The newest commands with how many kiosks answered each way (the commands page)."""

    with db.engine.connect() as conn:
        cmds = list(conn.execute(sa.select(commands.c.id, commands.c.action, commands.c.target, commands.c.expires,
                                           commands.c.created).order_by(commands.c.created.desc()).limit(limit)))
        ids = [c.id for c in cmds]
        tally: dict[str, dict[str, int]] = {}
        if ids:
            cr = command_results.c
            for r in conn.execute(sa.select(cr.command_id, cr.status, sa.func.count())
                                  .where(cr.command_id.in_(ids)).group_by(cr.command_id, cr.status)):
                tally.setdefault(r[0], {})[r[1]] = int(r[2])
    return [{"id": c.id, "action": c.action, "target": c.target, "expires": c.expires,
             "created": c.created, "results": tally.get(c.id, {})} for c in cmds]
