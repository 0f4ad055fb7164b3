"""The drainer's bookkeeping against an in-process fake platform: what each record becomes, what the pass
report counts, what the drainer says about the platform, and the request bodies. Written against the
mutants `make mutate` left alive (docs/benchmarks.md, "Mutation testing"); each test is fast and in-process."""
from __future__ import annotations

import hashlib
import random
import sqlite3

from kiosk.ports.platform import PermanentError, RetryableError
from offline_cache.drainer import Drainer
from tests.platform.samples import application_payload


class FakePlatform:
    """Answers like the platform; `fail` maps an endpoint to the exception it raises instead."""

    kiosk_id = "qhb-test"

    def __init__(self):
        self.materials: list[str] = []
        self.bodies: list[tuple[str, dict]] = []
        self.fail: dict[str, BaseException] = {}
        self.seen_leases: list[float | None] = []
        self.seen_inflight: list[int] = []
        self.outbox = None
        self.n = 0

    def _answer(self, kind: str, body: dict, ref_field: str) -> dict:
        self.bodies.append((kind, body))
        if self.outbox is not None:
            inflight = self.outbox.list(["inflight"], decrypt=False)
            self.seen_inflight.append(len(inflight))
            self.seen_leases.extend(r.lease_until for r in inflight)
        if kind in self.fail:
            raise self.fail[kind]
        self.n += 1
        return {ref_field: f"{kind[:2].upper()}{self.n}", "tracking_no": f"SD-{self.n}"}

    def put_material(self, sha: str, data: bytes) -> None:
        assert hashlib.sha256(data).hexdigest() == sha
        self.materials.append(sha)

    def submit_application(self, body, key):
        return self._answer("application", body, "tracking_no")

    def submit_evaluation(self, body, key):
        return self._answer("evaluation", body, "evaluation_id")

    def submit_help_request(self, body, key):
        return self._answer("help_request", body, "request_id")

    def book_home_visit(self, body, key):
        return self._answer("home_visit", body, "request_id")


class Clock:
    def __init__(self, t: float = 50_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def _app(i: int) -> dict:
    return application_payload(random.Random(i))


def test_a_fresh_drainer_has_not_judged_the_platform_yet(outbox):
    d = Drainer(outbox, FakePlatform())
    assert d.online is None and d.last_error is None


def test_each_material_goes_up_once_per_drainer(outbox):
    fake = FakePlatform()
    d = Drainer(outbox, fake)
    photo = b"\xff\xd8 the same household register page"
    outbox.enqueue("application", _app(1), attachments=[photo])
    outbox.enqueue("application", _app(2), attachments=[photo])
    assert d.drain_once().delivered == 2
    assert fake.materials == [hashlib.sha256(photo).hexdigest()]


def test_the_platform_reference_of_each_kind_is_recorded(outbox):
    fake = FakePlatform()
    d = Drainer(outbox, fake)
    ev = outbox.enqueue("evaluation", {"tracking_no": "SD261127ABCDEFGH1", "level": "满意"})
    hr = outbox.enqueue("help_request", {"topic": "不会操作"})
    hv = outbox.enqueue("home_visit", {"address": "周村区某村3号"})
    assert d.drain_once().delivered == 3
    assert outbox.get(ev).platform_ref == "EV1"
    assert outbox.get(hr).platform_ref == "HE2"
    assert outbox.get(hv).platform_ref == "HO3"


def test_a_rating_without_a_case_number_goes_to_the_platform_as_it_is(outbox):
    fake = FakePlatform()
    d = Drainer(outbox, fake)
    ev = outbox.enqueue("evaluation", {"level": "满意", "channel": "kiosk"})
    rep = d.drain_once()
    assert rep.delivered == 1 and rep.errors == [] and outbox.get(ev).state == "done"
    assert "tracking_no" not in fake.bodies[0][1]


def test_a_rating_of_a_dead_lettered_case_is_dead_lettered_with_the_reason(outbox):
    fake = FakePlatform()
    fake.fail["application"] = PermanentError("refused", status=422, code="invalid", detail="表单有误")
    d = Drainer(outbox, fake)
    rid = outbox.enqueue("application", _app(3))
    ev = outbox.enqueue("evaluation", {"tracking_no": rid, "level": "不满意"})
    rep = d.drain_once()
    assert rep.failed == 2 and rep.deferred == 0
    rec = outbox.get(ev)
    assert rec.state == "failed" and rec.last_error == "HTTP 404 case_not_submitted"
    assert rec.failure_reason == "所评价的办件未能提交成功，评价无法送达"
    assert [k for k, _ in fake.bodies] == ["application"]  # the rating never reached the platform


def test_ratings_waiting_for_their_cases_are_each_counted_as_deferred(outbox):
    fake = FakePlatform()
    fake.fail["application"] = RetryableError("down", status=503)
    d = Drainer(outbox, fake, max_consecutive_failures=10)
    evs = []
    for i in range(2):
        rid = outbox.enqueue("application", _app(10 + i))
        evs.append(outbox.enqueue("evaluation", {"tracking_no": rid, "level": "满意"}))
    rep = d.drain_once()
    assert rep.deferred == 2 and rep.retried == 2
    assert all(outbox.get(e).state == "pending" for e in evs)


def test_every_dead_letter_of_a_pass_is_counted(outbox, tmp_path):
    fake = FakePlatform()
    d = Drainer(outbox, fake)
    bad = [outbox.enqueue("help_request", {"topic": f"t{i}"}) for i in range(2)]
    con = sqlite3.connect(tmp_path / "outbox.db")
    con.executemany("UPDATE records SET payload=? WHERE id=?", [(b"\x00" * 40, r) for r in bad])
    con.commit()
    con.close()
    assert d.drain_once().failed == 2

    fake.fail["help_request"] = PermanentError("refused", status=422, code="invalid")
    for i in range(2):
        outbox.enqueue("help_request", {"topic": f"u{i}"})
    rep = d.drain_once()
    assert rep.failed == 2


def test_what_the_drainer_says_about_the_platform_follows_the_last_answer(outbox):
    fake = FakePlatform()
    d = Drainer(outbox, fake)
    fake.fail["help_request"] = RetryableError("platform unavailable", status=503)
    outbox.enqueue("help_request", {"topic": "a"})
    d.drain_once()
    assert d.online is False and d.last_error == "platform unavailable"

    fake.fail["help_request"] = PermanentError("refused", status=422, code="invalid")
    d.drain_once(ignore_backoff=True)
    assert d.online is True and d.last_error is None  # a refusal is an answer: the platform is there


def test_three_refusals_of_the_kiosks_credential_in_a_row_end_the_pass(outbox):
    fake = FakePlatform()
    fake.fail["help_request"] = PermanentError("bad signature", status=401, code="unauthorized")
    ids = [outbox.enqueue("help_request", {"topic": f"t{i}"}) for i in range(5)]
    d = Drainer(outbox, fake)
    rep = d.drain_once()
    assert rep.stopped_early and rep.retried == 3 and rep.failed == 0
    assert d.online is False and d.last_error == "bad signature"  # the kiosk cannot talk to the platform
    assert len(fake.bodies) == 3 and all(outbox.get(i).state == "pending" for i in ids)


def test_three_unexpected_errors_in_a_row_end_the_pass(outbox):
    fake = FakePlatform()
    fake.fail["help_request"] = RuntimeError("a bug")
    for i in range(5):
        outbox.enqueue("help_request", {"topic": f"t{i}"})
    rep = Drainer(outbox, fake).drain_once()
    assert rep.stopped_early and rep.retried == 3 and rep.errors == ["RuntimeError"] * 3
    assert len(fake.bodies) == 3


def test_a_pass_claims_sixteen_records_at_a_time_under_a_two_minute_lease(outbox):
    fake = FakePlatform()
    fake.outbox = outbox
    clock = Clock()
    for i in range(17):
        outbox.enqueue("help_request", {"topic": f"t{i}"})
    assert Drainer(outbox, fake, clock=clock).drain_once().delivered == 17
    assert fake.seen_inflight[0] == 16 and fake.seen_inflight[-1] == 1
    assert set(fake.seen_leases) == {clock.t + 120.0}


def test_the_first_retry_waits_at_most_a_second(outbox):
    d = Drainer(outbox, FakePlatform())
    assert max(d.backoff_s(1) for _ in range(200)) <= 1.0


def test_the_application_body_carries_materials_implementation_and_licences(outbox):
    d = Drainer(outbox, FakePlatform())
    photo = b"\xff\xd8 id card copy"
    licences = [{"licence_ref": "ELZB0000000103", "licence_type": "marriage_certificate", "material": "结婚证"}]
    rid = outbox.enqueue("application", {**_app(5), "impl_code": "IMPL-7", "licences": licences},
                         attachments=[photo])
    kind, body = d.request_for(outbox.get(rid))
    assert kind == "application"
    assert body["materials"] == [hashlib.sha256(photo).hexdigest()]
    assert body["impl_code"] == "IMPL-7" and body["licences"] == licences

    plain = outbox.enqueue("application", _app(6))
    _, body = d.request_for(outbox.get(plain))
    assert body["materials"] == [] and "impl_code" not in body and "licences" not in body


def test_the_evaluation_body_carries_the_indicator_set_fields(outbox):
    d = Drainer(outbox, FakePlatform())
    p = {"tracking_no": "SD261127ABCDEFGH1", "level": "不满意", "reason": "排队", "item_code": "QHB-RS-001",
         "impl_code": "IMPL-7", "reasons": ["等待时间长"], "note": "无", "indicator_set_version": "2026.1",
         "channel": "kiosk", "later": True, "extra": "dropped"}
    rid = outbox.enqueue("evaluation", p)
    kind, body = d.request_for(outbox.get(rid))
    assert kind == "evaluation"
    assert {k: body[k] for k in p if k in body} == {k: v for k, v in p.items() if k != "extra"}
    assert "extra" not in body and body["kiosk_id"] == "qhb-test"
