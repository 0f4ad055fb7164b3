"""kiosk.app.evaluations without a window: the indicator set for the screen, a rating now, a rating later.

The outbox and the platform are small fakes behind their ports: what is queued, and what the
drainer's outcome for the record was (delivered, dead-lettered with already_rated, refused, still
pending), decide what the citizen is told.
"""
from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from kiosk.app.context import Timings
from kiosk.app.evaluations import NOT_DELIVERED_MESSAGE, RATED_FILE, EvaluationService
from kiosk.app.services import Kiosk
from kiosk.config import EvaluationSection, load_config
from kiosk.domain.catalog import load_catalog
from kiosk.domain.evaluation import EVALUATION_MESSAGES
from kiosk.domain.tracking import new_tracking_no
from kiosk.infra.speech import RecordingSpeech
from kiosk.ports.outbox import Record

CASE = new_tracking_no("SD")  # a platform number with its check character
LOCAL = new_tracking_no("LQ")  # the kiosk's own number of the same case


class FakeOutbox:
    """Keeps what is queued; each record then takes the state the test chose (the drainer's outcome)."""

    def __init__(self) -> None:
        self.queued: list[tuple[str, dict[str, Any]]] = []
        self.outcome: dict[str, Any] = {"state": "done"}
        self._lock = threading.Lock()

    def enqueue(self, kind: str, payload: dict[str, Any], attachments: Any = (), idempotency_key: Any = None) -> str:
        with self._lock:
            self.queued.append((kind, payload))
            return f"LQ{len(self.queued):015d}"

    def get(self, record_id: str, decrypt: bool = True) -> Record | None:
        return Record(id=record_id, seq=1, kind="evaluation", idempotency_key="k", attachments=[],
                      created_at=0.0, next_attempt_at=0.0, **{"attempts": 0, **self.outcome})


class NoWiring:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the lifecycle is not started here (wiring.{name})")


@pytest.fixture
def svc(tmp_path):
    k = Kiosk(load_config(), NoWiring(), speech=RecordingSpeech(), state_dir=tmp_path, catalog=load_catalog(),
              timings=Timings(submit_wait_s=3.0))
    k.ctx.outbox = FakeOutbox()  # type: ignore[assignment]
    k.ctx.ready.set()
    yield k
    k.ctx.pool.shutdown(wait=True)


def events(svc: Kiosk, kinds: tuple[str, ...], timeout: float = 5.0) -> list[Any]:
    """UI events of these kinds, waiting (a guard only) until at least one came."""
    got: list[Any] = []
    end = time.monotonic() + timeout
    while not got and time.monotonic() < end:
        svc.ctx.events.drain(lambda ev: got.append(ev) if ev.kind in kinds else None)
        time.sleep(0.01)
    return got


def finished_visit(svc: Kiosk, tracking_no: str = CASE) -> None:
    s = svc.ctx.session
    s.choose_item("QHB-RS-018")
    s.begin_submit()
    s.submitted(tracking_no, queued=False)


def test_the_screen_gets_the_configured_set(svc):
    view = svc.evaluations.indicator_view()
    default = EvaluationSection()
    assert view["levels"] == default.levels and view["version"] == default.version
    assert [r["text"] for r in view["reasons"]] == ["服务效率", "服务水平", "服务态度"]
    assert svc.evaluations.asks_reasons("不满意") and not svc.evaluations.asks_reasons("满意")
    pushed = EvaluationSection(version="sd-2027.1", levels=["A", "B", "C", "D", "E"], reasons_for=["E"])
    svc.ctx.config = svc.ctx.config.model_copy(update={"evaluation": pushed})
    assert svc.evaluations.indicator_view()["levels"] == ["A", "B", "C", "D", "E"]
    assert svc.evaluations.asks_reasons("E") and not svc.evaluations.asks_reasons("D")


def test_a_rating_now_is_queued_with_the_case_and_remembered_across_a_restart(svc, tmp_path):
    finished_visit(svc)
    ob = svc.ctx.outbox
    assert svc.evaluations.rate_case("不满意") == EVALUATION_MESSAGES["reasons_missing"]
    assert svc.evaluations.rate_case("满意", ["service_level"]) == EVALUATION_MESSAGES["reasons_not_allowed"]
    assert ob.queued == []  # a refused choice queues nothing
    assert svc.evaluations.rate_case("不满意", ["service_level"], "说不清楚") == ""
    svc.ctx.pool.submit(lambda: None).result()
    deadline = time.monotonic() + 5
    while not svc.evaluations.is_rated(CASE) and time.monotonic() < deadline:
        time.sleep(0.01)
    (kind, body), = ob.queued
    assert kind == "evaluation" and body["tracking_no"] == CASE and body["item_code"] == "QHB-RS-018"
    assert body["indicator_set_version"] == EvaluationSection().version and body["note"] == "说不清楚"
    assert svc.ctx.session.data.rating == "不满意"
    assert json.loads((tmp_path / RATED_FILE).read_text())["cases"] == [CASE]
    again = EvaluationService(svc.ctx)  # the kiosk restarted
    assert again.is_rated(LOCAL, CASE) and not again.is_rated(new_tracking_no("SD"))


@pytest.mark.parametrize("outcome, kind, data", [
    ({"state": "done", "platform_ref": "EV1"}, "evaluation_sent", {"queued": False}),
    ({"state": "pending", "attempts": 1, "last_error": "network down"}, "evaluation_sent", {"queued": True}),
    ({"state": "failed", "last_error": "HTTP 409 already_rated"}, "evaluation_refused",
     {"reason": "already_rated", "message": EVALUATION_MESSAGES["already_rated"]}),
    ({"state": "failed", "last_error": "HTTP 404 not_found"}, "evaluation_refused",
     {"reason": "refused", "message": NOT_DELIVERED_MESSAGE}),
])
def test_a_later_rating_tells_what_became_of_it(svc, outcome, kind, data):
    svc.ctx.outbox.outcome = outcome
    assert svc.evaluations.rate_later(CASE, "非常满意", item_code="QHB-RS-018", aliases=[LOCAL]) == ""
    ev, = events(svc, ("evaluation_sent", "evaluation_refused"))
    assert ev.kind == kind and ev.data == data
    (_, body), = svc.ctx.outbox.queued
    assert body["later"] is True and body["tracking_no"] == CASE and body["level"] == "非常满意"
    rated = outcome["state"] != "failed" or "already_rated" in outcome["last_error"]
    assert svc.evaluations.is_rated(CASE) is rated and svc.evaluations.is_rated(LOCAL) is rated


def test_a_case_rated_here_is_refused_before_anything_is_queued(svc):
    svc.evaluations.rate_later(CASE, "满意")
    events(svc, ("evaluation_sent",))
    svc.evaluations.rate_later(CASE, "基本满意")
    ev, = events(svc, ("evaluation_sent", "evaluation_refused"))
    assert ev.kind == "evaluation_refused" and ev.data["message"] == EVALUATION_MESSAGES["already_rated"]
    assert len(svc.ctx.outbox.queued) == 1
    assert svc.evaluations.rate_later("not a case!", "满意") == EVALUATION_MESSAGES["tracking_no"]


def test_an_unreadable_rated_file_starts_empty(svc, tmp_path, caplog):
    (tmp_path / RATED_FILE).write_text("{not json")
    assert not svc.evaluations.is_rated(CASE)
    assert "rated cases unreadable" in caplog.text


class FakePlatform:
    def __init__(self, status: str) -> None:
        self.status = status

    def get_application(self, tracking_no: str) -> dict[str, Any]:
        return {"tracking_no": tracking_no, "item_code": "QHB-RS-018", "status": self.status, "reason": None}


@pytest.mark.parametrize("status, rated, rateable", [
    ("done", False, True), ("returned", False, True), ("in_review", False, False), ("done", True, False)])
def test_a_receipts_case_is_rateable_when_finished_and_not_yet_rated(svc, status, rated, rateable):
    svc.ctx.platform = FakePlatform(status)  # type: ignore[assignment]
    if rated:
        svc.evaluations._remember(CASE)
    svc.progress.progress_by_tracking(CASE)
    ev, = events(svc, ("progress_result",))
    case, = ev.data["cases"]
    assert ev.data["by"] == "receipt" and case["status"] == status
    assert case["rated"] is rated and case["rateable"] is rateable


def _scan(kind: str, value: str) -> SimpleNamespace:
    return SimpleNamespace(kind="code_scanned", device_kind="qr", payload={"kind": kind, "value": value})


def test_a_receipt_scanned_on_the_home_screen_opens_its_case(svc):
    svc.progress.on_device_event(_scan("tracking", CASE))
    assert svc.ctx.events.pending() == 0  # the home screen is not listening
    svc.progress.listen_for_receipts()
    svc.progress.on_device_event(_scan("citizen_code", "whatever"))
    svc.progress.on_device_event(_scan("tracking", CASE))
    ev, = events(svc, ("receipt_scanned",))
    assert ev.data == {"tracking_no": CASE}
    svc.progress.start_progress_lookup()  # the progress screen looks it up itself
    svc.progress.on_device_event(_scan("tracking", CASE))
    assert svc.ctx.events.pending() == 0
    svc.progress.stop_progress_lookup()
    svc.progress.stop_listening_for_receipts()
    svc.progress.on_device_event(_scan("tracking", CASE))
    assert svc.ctx.events.pending() == 0
