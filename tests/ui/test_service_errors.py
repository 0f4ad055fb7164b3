"""Errors are never swallowed: an exception inside each service entry point is logged with its traceback.

Every public method of every application service is called once with its context
replaced by one that raises on any use (a stand-in for a broken port, a bug, a
full disk...). Whether the method fails at once on the UI thread or later on a
pool thread, the failure must reach the log with its traceback. The UI event
queue never drops a `clear`, and says when it drops anything else.
"""
from __future__ import annotations

import logging
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from kiosk.app.errors import public_entry_points
from kiosk.app.events import UiEventQueue
from kiosk.app.services import Kiosk
from kiosk.config import load_config
from kiosk.domain.catalog import load_catalog
from kiosk.infra.speech import RecordingSpeech

#: the services a screen (or the CLI, the fleet link) reaches through Kiosk
SERVICES = ("station", "browse", "mode", "materials", "visit", "progress", "identify", "receipts", "certificates",
            "payments", "help", "technician", "lifecycle", "guides", "reading", "evaluations", "licences",
            "property")
#: entry points that touch neither the context nor any collaborator: nothing inside them can raise
CANNOT_FAIL = {("materials", "stop_preview"): "only clears a flag",
               ("reading", "stop"): "touches the speech backend only while a reading is going (none here)",
               ("property", "check"): "the domain's rule on the typed query only",
               ("property", "address_words"): "matches the place words by pinyin only"}


class Boom(RuntimeError):
    """The injected fault."""


class BrokenContext:
    """A context whose every use raises Boom, except starting background work (so that path is exercised too)."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def in_background(self, fn: Any, *args: Any) -> Any:
        return self._real.in_background(fn, *args)

    def __getattr__(self, name: str) -> Any:
        raise Boom(f"ctx.{name} is broken")


class Exploding:
    """A collaborator (PIN gate, listener list) that raises on any use."""

    def __getattr__(self, name: str) -> Any:
        raise Boom(f"{name} is broken")


class NoWiring:
    """The lifecycle is never started here; any use of the wiring is a fault too."""

    def __getattr__(self, name: str) -> Any:
        raise Boom(f"wiring.{name} is broken")


ARGS: dict[str, Any] = {
    "code": "QHB-RS-018", "item_code": "QHB-RS-018", "name": "申请表", "values": {}, "kinds": ["idcard"],
    "keys": ["ui.voice"], "level": "满意", "reason": None, "phone": "13912345678", "when": "明天上午",
    "tracking_no": "SD261127ABCDEFGH1", "token": None, "after": "guide", "query": "yl", "domain": "社会保障",
    "flow": "apply", "number": "LQ261127ABCDEFGH1", "text": "您好", "on": True, "pin": "0000", "kind": "printer",
    "tool": "report", "lines": 5, "limit": 5, "n": 3, "background": False, "timeout": 0.1,
    "away_from_home": False, "title": "首页", "choices": ["返回"], "fn": lambda reason: None,
    "ev": SimpleNamespace(kind="card_inserted", device_kind="idcard", payload={}),
    "material": "申请表", "consent": True, "by": "address", "query_text": "丝绸路168号", "typed": "scl", "payload": {"kind": "elicence", "value": "EL1:", "refused": None},
}


def _kiosk(tmp_path_factory: pytest.TempPathFactory) -> Kiosk:
    return Kiosk(load_config(), NoWiring(), speech=RecordingSpeech(), state_dir=tmp_path_factory.mktemp("errors"),
                 catalog=load_catalog())


def _entry_points() -> list[tuple[str, str]]:
    """(service, method) for every wrapped public method, read from the classes (no kiosk is built here)."""
    import kiosk.app.services as services_mod

    out = []
    for attr in SERVICES:
        cls = {"station": "StatusService", "browse": "CatalogViews", "mode": "ModeService",
               "materials": "MaterialsService", "visit": "VisitService", "progress": "ProgressService",
               "identify": "IdentifyService", "receipts": "ReceiptService", "certificates": "CertificateService",
               "payments": "PaymentService", "help": "HelpService", "technician": "TechnicianTools",
               "lifecycle": "Lifecycle", "guides": "GuidePrintService", "reading": "ReadAloudService",
               "evaluations": "EvaluationService", "licences": "LicenceService",
               "property": "PropertyQueryService"}[attr]
        klass = getattr(services_mod, cls)
        out += [(attr, name) for name in public_entry_points(klass)]
    return out


ENTRY_POINTS = _entry_points()


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    k = _kiosk(tmp_path_factory)
    yield k
    k.ctx.pool.shutdown(wait=True, cancel_futures=True)


def test_every_service_of_the_kiosk_is_covered(svc):
    services = {name for name, v in vars(svc).items() if public_entry_points(v)}
    assert services == set(SERVICES)
    assert len(ENTRY_POINTS) > 60  # the whole surface, not a sample


def _boom_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    hits = []
    for r in caplog.records:
        exc = r.exc_info[1] if r.exc_info else None
        while exc is not None:
            if isinstance(exc, Boom):
                hits.append(r)
                break
            exc = exc.__cause__ or exc.__context__
    return hits


@pytest.mark.parametrize("service, method", [p for p in ENTRY_POINTS if p not in CANNOT_FAIL],
                         ids=[f"{s}.{m}" for s, m in ENTRY_POINTS if (s, m) not in CANNOT_FAIL])
def test_an_exception_inside_each_entry_point_is_logged(svc, caplog, service, method):
    import inspect

    target = getattr(svc, service)
    real_ctx = target.ctx
    saved: dict[str, Any] = {}
    target.ctx = BrokenContext(real_ctx)
    # entry points that hand over to another service or never touch the context break through their collaborators
    for attr, value in list(vars(target).items()):
        if attr in ("pin_gate", "_clear_listeners") or (attr != "ctx" and public_entry_points(value)):
            saved[attr] = value
            setattr(target, attr, Exploding())
    caplog.set_level(logging.DEBUG)
    try:
        fn = getattr(target, method)
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.default is p.empty]
        kwargs = {p.name: real_ctx.config if p.name == "config" else ARGS[p.name] for p in params}
        try:
            fn(**kwargs)
        except Boom:
            pass  # failed at once: it still had to be logged on its way up
        end = time.monotonic() + 10  # a guard only: background work reports as soon as it has failed
        while not _boom_logged(caplog) and time.monotonic() < end:
            time.sleep(0.01)
    finally:
        target.ctx = real_ctx
        for k, v in saved.items():
            setattr(target, k, v)
    hits = _boom_logged(caplog)
    assert hits, f"{service}.{method}: the injected exception was not logged"
    assert all(r.levelno >= logging.WARNING for r in hits), [(r.levelname, r.getMessage()) for r in hits]


def test_the_ui_queue_never_drops_a_clear_and_logs_what_it_drops(caplog):
    q = UiEventQueue(maxsize=3)
    caplog.set_level(logging.WARNING, logger="kiosk.app.events")
    for i in range(5):
        q.post("status", n=i)
    assert q.post("clear", reason="timeout")  # a full queue still takes the clear
    assert q.dropped == 2
    assert any("dropped status" in r.getMessage() for r in caplog.records)
    got: list[str] = []
    q.drain(lambda ev: got.append(ev.kind))
    assert got == ["status", "status", "status", "clear"]


def test_the_ui_queue_takes_events_from_many_threads_without_losing_any():
    q = UiEventQueue(maxsize=10_000)

    def post(n: int) -> None:
        for i in range(500):
            q.post("status", n=n, i=i)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seen: list[Any] = []
    while q.drain(seen.append, limit=1000):
        pass
    assert len(seen) == 4000 and q.dropped == 0


def test_a_background_failure_is_logged_with_its_traceback(svc, caplog):
    caplog.set_level(logging.DEBUG)
    done = threading.Event()

    def work(token: int) -> None:
        try:
            raise Boom("in the pool")
        finally:
            done.set()

    fut = svc.ctx.in_background(work)
    fut.result(timeout=10)
    assert done.is_set()
    hits = _boom_logged(caplog)
    assert hits and hits[0].levelno == logging.ERROR and "work" in hits[0].getMessage()


def test_a_result_of_an_ended_visit_is_dropped_at_debug_without_personal_data(svc, caplog):
    caplog.set_level(logging.DEBUG)
    svc.ctx.session.end("test")
    token = svc.ctx.session.token
    svc.ctx.session.end("timeout")
    name = "欧阳娜娜"
    svc.ctx.events.clear()
    assert not svc.ctx.post_for(token, "identified", person={"name": name})
    assert svc.ctx.events.pending() == 0
    dropped = [r for r in caplog.records if "ended visit" in r.getMessage()]
    assert dropped and all(r.levelno == logging.DEBUG for r in dropped)
    assert not any(name in r.getMessage() for r in caplog.records)


def test_the_ui_queue_wakes_the_ui_for_each_queued_event_and_not_for_a_dropped_one(caplog):
    q = UiEventQueue(maxsize=2)
    woken: list[int] = []
    q.set_waker(lambda: woken.append(q.pending()))
    q.post("status", n=1)
    q.post("status", n=2)
    assert not q.post("status", n=3)  # full: dropped, nothing to wake the UI for
    assert q.post("clear", reason="timeout")
    assert woken == [1, 2, 3]  # after the event is in the queue, so the woken UI finds it


def test_a_failing_waker_is_logged_and_the_event_still_reaches_the_ui(caplog):
    q = UiEventQueue()
    caplog.set_level(logging.ERROR, logger="kiosk.app.events")

    def broken() -> None:
        raise RuntimeError("clock gone")

    q.set_waker(broken)
    assert q.post("clear", reason="timeout")
    assert any("waking the UI" in r.getMessage() and r.exc_info for r in caplog.records)
    got: list[str] = []
    q.drain(lambda ev: got.append(ev.kind))
    assert got == ["clear"]
