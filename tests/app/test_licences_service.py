"""kiosk.app.licences without a UI: consent, the offer, refusals, the masked display, a late answer dropped.

The platform is a stand-in behind PlatformPort.fetch_licence (the real client and simulator are exercised by
tests/ui/test_elicence_ui.py); the session, the catalog and the background pool are the real ones.
"""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from kiosk.app.common import EIdentity
from kiosk.app.events import UiEvent
from kiosk.app.services import Kiosk
from kiosk.config import load_config
from kiosk.domain.catalog import load_catalog
from kiosk.domain.elicence import reason_message
from kiosk.infra.speech import RecordingSpeech
from kiosk.ports.platform import LicenceRefused

ITEM = "QHB-SS-003"
MATERIAL = "经营场所使用证明（房产证或租房合同）"
HOLDER = ("张桂兰", "370306195203150027")


class NoWiring:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"wiring.{name} used")


class FakeLibrary:
    """fetch_licence: records each body; answers with ``answer`` (a dict, or an exception to raise)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.answer: Any = None
        self.gate: threading.Event | None = None

    def fetch_licence(self, body: dict[str, Any]) -> dict[str, Any]:
        self.bodies.append(dict(body))
        if self.gate is not None:
            self.gate.wait(10)
        if isinstance(self.answer, Exception):
            raise self.answer
        return dict(self.answer)


def _licence(licence_type: str = "real_estate_certificate", number: str = "鲁(2021)淄博市周村区不动产权第0001234号"):
    return {"licence_ref": "ELZB0000000104", "licence_type": licence_type, "licence_name": "不动产权证书",
            "number": number, "holder": {"name": HOLDER[0], "id_type": "resident_id", "id_number": HOLDER[1]},
            "issuer": "淄博市自然资源局", "valid_from": "2021-06-18", "valid_until": None, "status": "valid"}


@pytest.fixture
def kiosk(tmp_path):
    k = Kiosk(load_config(), NoWiring(), speech=RecordingSpeech(), state_dir=tmp_path, catalog=load_catalog())
    k.ctx.platform = FakeLibrary()  # type: ignore[assignment]
    s = k.ctx.session
    s.choose_item(ITEM)
    s.identify(EIdentity(HOLDER[0], HOLDER[1], "resident_id"), names=(HOLDER[0],))
    s.start_form()
    s.set_form({"new_premises": "周村区丝绸路8号", "phone": "13912345678"})
    s.to_materials()
    yield k
    k.ctx.pool.shutdown(wait=True, cancel_futures=True)


def _events(k: Kiosk, kind: str, timeout: float = 10.0) -> list[UiEvent]:
    """The UI events of ``kind`` once one has arrived (the timeout only guards against hanging)."""
    got: list[UiEvent] = []
    end = time.monotonic() + timeout
    while not got and time.monotonic() < end:
        k.ctx.events.drain(lambda ev: got.append(ev) if ev.kind == kind else None)
        time.sleep(0.01)
    return got


def test_without_consent_nothing_is_fetched(kiosk):
    lib = kiosk.ctx.platform
    assert kiosk.licences.fetch_with_consent(MATERIAL, consent=False) is False
    assert kiosk.licences.fetch_with_consent("申请表", consent=True) is False  # no licence can stand in for it
    kiosk.ctx.pool.submit(lambda: None).result()
    assert lib.bodies == [] and kiosk.ctx.session.data.licences == []


def test_a_code_scanned_without_the_offer_open_is_ignored(kiosk):
    lib = kiosk.ctx.platform
    kiosk.licences.on_code(kiosk.ctx.session.token, {"kind": "elicence", "value": "EL1:X", "refused": None})
    assert kiosk.ctx.events.pending() == 0 and lib.bodies == []


def test_consent_fetches_by_type_for_the_identified_holder_and_keeps_the_reference_masked(kiosk):
    lib = kiosk.ctx.platform
    lib.answer = _licence()
    assert kiosk.licences.fetch_with_consent(MATERIAL, consent=True)
    (ev,) = _events(kiosk, "licence_result")
    assert ev.data["ok"] and ev.data["material"] == MATERIAL
    assert lib.bodies == [{"method": "holder", "licence_type": "real_estate_certificate", "consent": True,
                           "holder": {"id_type": "resident_id", "id_number": HOLDER[1]}}]
    shown = ev.data["licence"]
    assert shown["holder"] == "张** 370***********0027" and shown["valid_until"] == "长期"
    assert HOLDER[0] not in str(shown) and HOLDER[1] not in str(shown)
    assert kiosk.licences.fetched(MATERIAL) == shown
    assert kiosk.licences.application_licences() == [
        {"licence_ref": "ELZB0000000104", "licence_type": "real_estate_certificate", "material": MATERIAL}]
    kiosk.licences.discard(MATERIAL)
    assert kiosk.licences.application_licences() == []


def test_a_number_carrying_the_holders_id_number_is_masked(kiosk):
    lib = kiosk.ctx.platform
    lib.answer = _licence(number=HOLDER[1])
    kiosk.licences.offer(MATERIAL)
    kiosk.licences.on_code(kiosk.ctx.session.token, {"kind": "elicence", "value": "EL1:QR", "refused": None})
    (ev,) = _events(kiosk, "licence_result")
    assert ev.data["licence"]["number"] == "370***********0027"
    assert lib.bodies[0]["method"] == "qr" and lib.bodies[0]["qr_payload"] == "EL1:QR"


@pytest.mark.parametrize("code", ["unknown_licence", "expired", "revoked", "not_holder", "qr_expired"])
def test_each_refusal_is_told_plainly_and_nothing_is_kept(kiosk, code):
    kiosk.ctx.platform.answer = LicenceRefused(code, status=422)
    kiosk.licences.fetch_with_consent(MATERIAL, consent=True)
    (ev,) = _events(kiosk, "licence_result")
    assert not ev.data["ok"] and ev.data["reason"] == code and ev.data["message"] == reason_message(code)
    assert kiosk.ctx.session.data.licences == []


def test_a_licence_of_another_type_does_not_stand_in(kiosk):
    kiosk.ctx.platform.answer = _licence(licence_type="business_licence")
    kiosk.licences.fetch_with_consent(MATERIAL, consent=True)
    (ev,) = _events(kiosk, "licence_result")
    assert not ev.data["ok"] and ev.data["reason"] == "wrong_type" and "营业执照" in ev.data["message"]
    assert kiosk.ctx.session.data.licences == []


def test_a_malformed_or_expired_qr_is_refused_without_asking_the_platform(kiosk):
    kiosk.licences.offer(MATERIAL)
    kiosk.licences.on_code(kiosk.ctx.session.token, {"kind": None, "value": None, "refused": {
        "reason": "elicence_expired", "message": "x"}})
    (ev,) = _events(kiosk, "licence_result")
    assert ev.data["message"] == reason_message("elicence_expired") and kiosk.ctx.platform.bodies == []


def test_an_answer_after_the_visit_ended_is_dropped(kiosk):
    lib = kiosk.ctx.platform
    lib.answer = _licence()
    lib.gate = threading.Event()
    kiosk.licences.fetch_with_consent(MATERIAL, consent=True)
    end = time.monotonic() + 10
    while not lib.bodies and time.monotonic() < end:
        time.sleep(0.01)
    kiosk.visit.end_visit("walked away")
    lib.gate.set()
    kiosk.ctx.pool.submit(lambda: None).result()
    kiosk.ctx.pool.shutdown(wait=True)
    assert kiosk.ctx.session.data.licences == [] and kiosk.ctx.events.pending() == 0
