"""A receipt still held to the scanner after a failed look-up is looked up again, without lowering it.

A camera scanner sees a held code every frame, and its dedupe reports the code once while it stays in
view. After "网络中断，请稍后再试" the progress service re-arms the scanner: the same held code counts
once more after the dedupe window.
"""
from __future__ import annotations

import random
import uuid

import pytest

from tests.platform.samples import application_body

pytestmark = pytest.mark.ui


@pytest.fixture
def short_dedupe(ui):
    qr = ui[2].ctx.devices["qr"]
    before = qr.deduper.window_s
    qr.deduper.window_s = 1.5  # the held code is seen every frame: far more often than this, even on a loaded machine
    yield ui
    qr.deduper.window_s = before


def test_a_receipt_held_through_a_failed_lookup_is_looked_up_again(short_dedupe):
    app, drv, svc = short_dedupe
    sim = svc.wiring.simulator
    body = application_body(svc.ctx.platform.kiosk_id, rng=random.Random(uuid.uuid4().int))
    tn = svc.ctx.platform.submit_application(body, f"rescan-{uuid.uuid4().hex}")["tracking_no"]
    qr = svc.ctx.devices["qr"]
    held = f"QHB1:{tn}"
    sim.options.mode = "outage"
    try:
        drv.wait_screen("home")
        assert qr.scan(held)
        drv.wait_screen("progress")
        pr = app.screen("progress")
        drv.wait_until(lambda: pr.error, timeout=60, what="the look-up fails during the outage")
        assert pr.has_results is False
    finally:
        sim.options.mode = "normal"

    seen_again: list[bool] = []

    def held_in_view() -> bool:  # the camera sees the receipt at every frame while the citizen holds it
        seen_again.append(qr.scan(held))
        return pr.has_results

    drv.wait_until(held_in_view, timeout=60, what="the held receipt looked up again")
    assert seen_again.count(True) == 1  # one more report, not one per frame
    assert tn in pr.results and not pr.error
    drv.tap("progress-done")


def test_a_held_receipt_is_not_reported_again_without_a_failure(short_dedupe):
    """The re-arming is the failure's: after a good answer, holding the receipt does not repeat the look-up."""
    app, drv, svc = short_dedupe
    body = application_body(svc.ctx.platform.kiosk_id, rng=random.Random(uuid.uuid4().int))
    tn = svc.ctx.platform.submit_application(body, f"rescan-{uuid.uuid4().hex}")["tracking_no"]
    qr = svc.ctx.devices["qr"]
    held = f"QHB1:{tn}"
    drv.wait_screen("home")
    assert qr.scan(held)
    drv.wait_screen("progress")
    pr = app.screen("progress")
    drv.wait_until(lambda: pr.has_results, timeout=60, what="the case found")
    again = []
    for _ in range(8):  # held for 2.4 s after the answer, seen every 0.3 s
        drv.pump(0.3)
        again.append(qr.scan(held))
    assert not any(again)
    drv.tap("progress-done")
