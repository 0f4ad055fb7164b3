"""The application service without a window or devices: flow order, out-of-service logic, display models."""
from __future__ import annotations

import pytest

from kiosk.app.common import OFFLINE_MESSAGE, StationStatus
from kiosk.bootstrap.app import build_kiosk
from kiosk.config import load_config


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    from kiosk.domain.catalog import load_catalog

    return build_kiosk(load_config(), state_dir=tmp_path_factory.mktemp("svc"), catalog=load_catalog())


@pytest.mark.parametrize("code, steps", [
    ("QHB-RS-018", ["identify", "form", "review"]),  # apply, no paper to photograph
    ("QHB-RS-027", ["identify", "form", "materials", "review"]),  # apply with a paper
    ("QHB-RS-008", ["identify", "form", "certificate_fetch"]),  # query_print
    ("QHB-RS-005", ["identify", "form", "payment"]),  # pay
    ("QHB-RS-022", ["identify", "form", "review"]),  # certify
])
def test_flow_order(svc, code, steps):
    svc.ctx.session.end("test")
    svc.visit.choose_item(code)
    seen, after = [], "guide"
    while True:
        nxt = svc.visit.next_screen(after)
        seen.append(nxt)
        if nxt in ("review", "payment", "certificate_fetch"):
            break
        after = nxt
    assert seen == steps
    assert svc.visit.next_screen("receipt") == "rating"


def test_out_of_service_logic(svc):
    svc.ctx.status.devices = {"idcard": "offline", "qr": "ready", "camera": "ready", "printer": "error"}
    assert svc.station.missing_devices(["idcard", "camera"]) == ["idcard"]
    assert not svc.station.everything_down()
    text = svc.station.working_flows_text()
    assert "申请办理" not in text and "办件查询" in text and "帮办代办" in text and "二维码" in text
    svc.ctx.status.devices = {k: "offline" for k in svc.ctx.status.devices}
    assert svc.station.everything_down()


def test_status_message():
    assert StationStatus(online=False).message == OFFLINE_MESSAGE == "网络中断：申请将在恢复后自动提交"
    assert "待提交 2 件" in StationStatus(online=True, queued=2).message


def test_item_view_tells_everything_at_once(svc):
    v = svc.browse.item_view("QHB-RS-001")
    assert v["title"] and v["conditions"] and v["steps"][0].startswith("第1步")
    assert any("免提交" in m for m in v["materials"])  # shared data is marked exempt
    assert v["promised"] and v["legal"] and v["fee"]


def test_applicant_phone_must_be_a_mobile_number(svc):
    svc.ctx.session.end("test")
    svc.visit.choose_item("QHB-RS-022")  # certify: phone optional in the catalog, required by the platform
    errors = svc.visit.validate_form({})
    assert "phone" in errors and "11位" in errors["phone"]
    assert svc.visit.validate_form({"phone": "13912345678"}) == {}


def test_leaving_the_payment_screen_after_the_visit_ended_leaves_nothing_for_the_next(svc):
    """The payment screen cancels its wait when it is left; after the wipe that must not seed the next visit."""
    svc.ctx.session.end("test")
    svc.visit.choose_item("QHB-RS-005")
    svc.payments.cancel_payment_wait()  # during the visit: the wait is cancelled
    assert svc.ctx.scratch.get("payment_cancel") is True
    svc.visit.end_visit("timeout")
    assert svc.ctx.scratch == {}
    svc.payments.cancel_payment_wait()  # the screen's on_leave, after the wipe
    assert svc.ctx.scratch == {}
