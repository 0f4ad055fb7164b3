"""PC/SC path: pcscd + vpcd + a Python virtual social security card on the vpcd socket."""
from __future__ import annotations

import pytest
from event_recorder import Events as _Events  # noqa: E402

from devices.base import DeviceError, DeviceState, EventKind
from devices.idcard.pcsc import ApduError, transmit_checked
from devices.idcard.sscard import PSAM_MESSAGE, read_sscard
from kiosk.bootstrap import drivers
from standins.sam_emulator import sample_id_number
from standins.vpcd_card import SocialSecurityCardApp, VirtualCard

READER = "Virtual PCD 00 00"

# pyscard objects whose pcscd went away complain from __del__ ("Invalid handle"): expected here
# One pcscd with vpcd on its fixed port: every test that needs it is in this file, and scripts/test.sh
# runs pytest-xdist with --dist loadfile, so they all run in one worker.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


class Events(_Events):
    def inserted(self, card, timeout=20):
        """The card_inserted event of this virtual card (the monitor may still report an earlier one)."""
        atr = card.atr.hex(" ").upper()
        with self.cond:
            self.cond.wait_for(lambda: any(e.kind == EventKind.CARD_INSERTED and e.payload["atr"] == atr
                                           for e in self.got), timeout)
        return next(e.payload for e in self.got if e.kind == EventKind.CARD_INSERTED and e.payload["atr"] == atr)


@pytest.fixture
def reader(pcscd):
    dev = drivers.create("sscard", {"driver": "pcsc", "reader": READER, "poll_interval_s": 0.2,
                                    "reconnect_initial_s": 0.2, "reconnect_max_s": 0.5})
    ev = Events(dev)
    dev.open()
    dev.start_polling()
    try:
        yield dev, ev
    finally:
        dev.close()


def test_insert_read_remove(reader):
    dev, ev = reader
    assert dev.status.state == DeviceState.READY and dev.reader_name == READER
    card = SocialSecurityCardApp()
    card.insert()
    try:
        p = ev.inserted(card)
        assert p["atr"] == card.atr.hex(" ").upper()
        sc = p["card"]
        assert sc.id_number == sample_id_number() and sc.name == "张小明" and sc.spec_version == "3.00"
        assert sc.sex == "男" and sc.nation == "汉" and sc.birth_date.isoformat() == "1990-01-01"
        assert sc.expiry_date.isoformat() == "2030-01-01" and not sc.holder_protected
        assert sc.id_number not in repr(sc)
        assert bytes.fromhex("00A404000F") + bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF") in card.apdus
        # synchronous read of the card still on the reader
        assert dev.read_present_card()["card"].card_number == "A12345678"
    finally:
        card.remove()
    assert ev.wait(EventKind.CARD_REMOVED)
    with pytest.raises(DeviceError) as ei:
        dev.read_present_card()
    assert ei.value.code == "no_card"
    assert dev.statistics["operations"] >= 1 and "read_ms" in dev.statistics
    assert dev.health("external").ok


def test_psam_protected_holder_data(reader):
    dev, ev = reader
    card = SocialSecurityCardApp(psam_required=True)
    card.insert()
    try:
        sc = ev.inserted(card)["card"]
    finally:
        card.remove()
    assert sc.holder_protected and sc.id_number is None and sc.card_number == "A12345678"
    assert sc.masked()["message"] == PSAM_MESSAGE and "PSAM" in PSAM_MESSAGE
    assert ev.wait(EventKind.CARD_REMOVED)


def test_not_a_social_security_card(reader):
    dev, ev = reader
    card = VirtualCard()  # answers 6D00 to everything
    card.insert()
    try:
        err = ev.inserted(card)["error"]
    finally:
        card.remove()
    assert ev.wait(EventKind.CARD_REMOVED)
    assert err["code"] == "not_sscard" and "社会保障卡" in err["message"]
    assert dev.statistics["last_error"] == "not_sscard"


def test_status_word_error_from_card(reader):
    dev, ev = reader
    card = SocialSecurityCardApp()
    card.fail_next = b"\x65\x81"
    card.insert()
    try:
        p = ev.inserted(card)
    finally:
        card.remove()
    assert ev.wait(EventKind.CARD_REMOVED)
    err = p["error"]
    assert err["code"] == "memory_failure", p
    assert "人工窗口" in err["message"]


def test_pcscd_gone_goes_offline_and_recovers(reader, pcscd):
    if pcscd.external:
        pytest.skip("pcscd was started outside the tests; not stopping it")
    dev, ev = reader
    pcscd.stop()
    assert ev.wait(EventKind.DEVICE_LOST)
    assert dev.wait_for_state(DeviceState.OFFLINE)
    assert dev.status.code in ("pcsc_unavailable", "reader_missing")
    pcscd.start()
    assert ev.wait(EventKind.DEVICE_BACK)
    card = SocialSecurityCardApp()
    card.insert()
    try:  # card monitoring is back too, without restarting anything
        assert ev.inserted(card)["card"].id_number == sample_id_number()
        assert dev.read_present_card()["card"].id_number == sample_id_number()
    finally:
        card.remove()
    assert ev.wait(EventKind.CARD_REMOVED, 1)
    import gc
    gc.collect()  # let stale pyscard handles complain now, inside this test


# -- pure APDU logic (no pcscd) ------------------------------------------------------------------

def _card_transmit(app):
    def t(apdu):
        r = app.apdu(bytes(apdu))
        return list(r[:-2]), r[-2], r[-1]
    return t


def test_transmit_follows_61xx_and_6cxx():
    calls = []

    def t(apdu):
        calls.append(bytes(apdu))
        if apdu[1] == 0xB2 and apdu[4] == 0:
            return [], 0x6C, 4
        if apdu[1] == 0xB2:
            return [1, 2], 0x61, 2
        if apdu[1] == 0xC0:
            return [3, 4], 0x90, 0x00
        return [], 0x6A, 0x82

    assert transmit_checked(t, bytes.fromhex("00B2010400")) == b"\x01\x02\x03\x04"
    assert calls[1] == bytes.fromhex("00B2010404") and calls[2] == bytes.fromhex("00C0000002")
    with pytest.raises(ApduError) as ei:
        transmit_checked(t, bytes.fromhex("00A4000000"))
    assert ei.value.sw == 0x6A82 and ei.value.code == "not_found"


def test_read_sscard_in_process():
    sc = read_sscard(_card_transmit(SocialSecurityCardApp()))
    assert sc.id_number == sample_id_number()
    assert read_sscard(_card_transmit(SocialSecurityCardApp(psam_required=True))).holder_protected


def test_sscard_cli_reads_masked(pcscd):
    import json

    from click.testing import CliRunner

    from kiosk.cli.main import cli
    card = SocialSecurityCardApp()
    card.insert()
    try:
        r = CliRunner().invoke(cli, ["device", "sscard", "read", "--reader", READER, "--json"])
    finally:
        card.remove()
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["card"]["name"] == "张**" and sample_id_number() not in r.output
    r = CliRunner().invoke(cli, ["device", "sscard", "read", "--reader", READER, "--wait", "0.2", "--json"])
    assert r.exit_code == 1, (r.output, r.exception)
    assert json.loads(r.output)["reason"] in ("no_card", "card_removed")


def test_interactive_health_waits_for_a_card(reader):
    dev, ev = reader
    card = SocialSecurityCardApp()
    try:
        h = dev.health("interactive", timeout=20, prompt=lambda msg: card.insert())
        assert h.ok and h.details["atr"] == card.atr.hex(" ").upper()
    finally:
        card.remove()
    assert ev.wait(EventKind.CARD_REMOVED)
    assert not dev.health("interactive", timeout=0.5).ok
