"""Through the outbox: an evaluation keeps its indicator-set fields, an application its e-licence references."""
from __future__ import annotations

import pytest

from kiosk.config import EvaluationSection
from kiosk.domain.evaluation import build_evaluation
from kiosk.platform.client import PlatformClient
from kiosk.platform.credentials import configured_credentials
from offline_cache.drainer import Drainer
from standins.licence_registry import PEOPLE
from standins.platform_sim import start_in_thread
from tests.platform.samples import application_payload


@pytest.fixture
def sim(tmp_path):
    h = start_in_thread(tmp_path / "sim", seed=8)
    yield h
    h.stop()


@pytest.fixture
def drainer(outbox, sim):
    c = configured_credentials()
    client = PlatformClient(sim.url, c.kiosk_id, c.secret, read_timeout=5)
    yield Drainer(outbox, client, base_backoff_s=0.5, max_backoff_s=4)
    client.close()


def _stored(sim, kind: str) -> list[str]:
    return [r[0] for r in sim.state.db.execute("SELECT body FROM records WHERE kind=?", (kind,)).fetchall()]


def test_an_evaluation_reaches_the_platform_with_its_indicator_set(outbox, drainer, sim):
    rid = outbox.enqueue("application", application_payload())
    body = build_evaluation(EvaluationSection(), tracking_no=rid, level="不满意", reasons=["service_level"],
                            note="指引看不懂", kiosk_id="ignored", created_at="2026-11-30T10:00:00+08:00", later=True)
    ev = outbox.enqueue("evaluation", body)
    for _ in range(3):
        if drainer.drain_once(ignore_backoff=True).remaining == 0:
            break
    rec = outbox.get(ev)
    assert rec.state == "done" and rec.result["indicator_set_version"] == EvaluationSection().version
    [stored] = _stored(sim, "evaluation")
    for text in ('"reasons": ["service_level"]', '"note": "指引看不懂"', '"later": true', outbox.get(rid).platform_ref):
        assert text in stored


def test_a_second_rating_of_a_case_is_dead_lettered_with_the_platforms_reason(outbox, drainer, sim):
    rid = outbox.enqueue("application", application_payload())
    first = outbox.enqueue("evaluation", {"tracking_no": rid, "level": "满意"})
    second = outbox.enqueue("evaluation", {"tracking_no": rid, "level": "非常满意"})
    for _ in range(3):
        if drainer.drain_once(ignore_backoff=True).remaining == 0:
            break
    assert outbox.get(first).state == "done"
    rec = outbox.get(second)
    assert rec.state == "failed" and "只能评价一次" in rec.failure_reason


def test_an_application_carries_its_licence_references(outbox, drainer, sim):
    p = application_payload()
    p["licences"] = [{"licence_ref": "ELZB0000000102", "licence_type": "household_register", "material": "户口簿"}]
    rid = outbox.enqueue("application", p)
    assert drainer.drain_once().delivered == 1 and outbox.get(rid).state == "done"
    body = sim.state.db.execute("SELECT body FROM applications").fetchone()[0]
    assert "ELZB0000000102" in body and PEOPLE["zhang"]["id_number"] not in body  # a reference, not the licence
