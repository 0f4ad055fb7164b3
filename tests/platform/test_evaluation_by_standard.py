"""好差评 at the platform (issue 14 item 3): the indicator-set fields, and one evaluation per case.

Against `kiosk platform-sim` in its own process.
"""
from __future__ import annotations

import random

import pytest

from kiosk.config import EvaluationSection
from kiosk.domain.evaluation import build_evaluation
from kiosk.platform.client import PlatformClient
from kiosk.ports.platform import PermanentError
from tests.platform.samples import application_body

SET = EvaluationSection()


@pytest.fixture
def pc(sim_proc, creds):
    c = PlatformClient(sim_proc.url, creds.kiosk_id, creds.secret, read_timeout=10)
    yield c
    c.close()


def _case(pc, creds, seed: int) -> str:
    return pc.submit_application(application_body(creds.kiosk_id, rng=random.Random(seed)),
                                 f"key-rate-{seed:06d}")["tracking_no"]


def _rating(creds, tn: str, level: str = "不满意", **kw) -> dict:
    return build_evaluation(SET, tracking_no=tn, level=level, kiosk_id=creds.kiosk_id,
                            created_at="2026-11-30T10:00:00+08:00", **kw)


def test_a_rating_carries_case_number_and_indicator_set_version(pc, creds):
    tn = _case(pc, creds, 501)
    r = pc.submit_evaluation(_rating(creds, tn, reasons=["service_efficiency"], note="等了很久"), "rate-501-a")
    assert r["tracking_no"] == tn and r["follow_up"] is True and r["indicator_set_version"] == SET.version


def test_a_second_evaluation_of_the_same_case_is_refused_plainly(pc, creds):
    tn = _case(pc, creds, 502)
    first = _rating(creds, tn, level="满意")
    pc.submit_evaluation(first, "rate-502-a")
    again = pc.submit_evaluation(first, "rate-502-a")  # the same evaluation retried: its first answer
    assert again["tracking_no"] == tn
    with pytest.raises(PermanentError) as e:
        pc.submit_evaluation(_rating(creds, tn, level="非常满意", later=True), "rate-502-b")
    assert e.value.status == 409 and e.value.code == "already_rated" and "只能评价一次" in e.value.detail


def test_a_refused_evaluation_does_not_use_up_the_case(pc, creds):
    tn = _case(pc, creds, 503)
    bad = {**_rating(creds, tn, level="满意"), "reasons": "service_level"}  # not a list
    with pytest.raises(PermanentError) as e:
        pc.submit_evaluation(bad, "rate-503-a")
    assert e.value.status == 422 and "reasons" in e.value.errors
    assert pc.submit_evaluation(_rating(creds, tn, level="基本满意"), "rate-503-b")["level"] == "基本满意"


def test_an_older_kiosks_evaluation_without_the_set_is_still_accepted(pc, creds):
    tn = _case(pc, creds, 504)
    old = {"tracking_no": tn, "level": "不满意", "reason": "排队时间长", "kiosk_id": creds.kiosk_id,
           "created_at": "2026-11-30T10:00:00+08:00"}
    r = pc.submit_evaluation(old, "rate-504-a")
    assert r["follow_up"] is True and "indicator_set_version" not in r
