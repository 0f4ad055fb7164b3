"""`kiosk device idcard read|decode` against the emulator on a pty and captured frames."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from devices.idcard.ga467 import GA467Frame
from devices.idcard.text_block import encode_text_block
from kiosk.cli.main import cli
from standins.sam_emulator import read_response_frame, sample_card


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def card_hex(card=None, fp=None) -> str:
    card = card or sample_card()
    return read_response_frame(encode_text_block(card), card.photo_wlt, fp).encode().hex(" ").upper()


def test_read_over_pty_masked_and_unmasked(sam_pty):
    _, _, port = sam_pty
    card = sample_card()
    r = run("device", "idcard", "read", "--driver", "ga467-serial", "--port", port, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)["card"]
    assert out["id_number"] == "370***********" + card.id_number[-4:] and out["name"] == "张**"
    assert card.id_number not in r.output and card.name not in r.output and out["read_ms"] > 0
    r = run("device", "idcard", "read", "--port", port, "--json", "--unmasked")
    assert json.loads(r.output)["card"]["id_number"] == card.id_number
    r = run("device", "idcard", "read", "--port", port)
    assert r.exit_code == 0 and "姓名: 张**" in r.output and "民族: 汉" in r.output


def test_read_no_card_and_missing_port(sam_pty, tmp_path):
    emu, _, port = sam_pty
    emu.remove_card()
    r = run("device", "idcard", "read", "--port", port, "--wait", "0.3", "--json")
    assert r.exit_code == 1 and json.loads(r.output)["reason"] == "no_card"
    r = run("device", "idcard", "read", "--port", str(tmp_path / "nope"), "--wait", "0.3")
    assert r.exit_code == 1 and "device_lost" in r.output
    r = run("device", "idcard", "read")
    assert r.exit_code == 2  # usage: --port required


def test_decode_good_frames():
    card = sample_card()
    r = run("device", "idcard", "decode", "--hex", card_hex(), "--json")
    assert r.exit_code == 0
    out = json.loads(r.output)["card"]
    assert out["name"] == "张**" and out["valid_to"] == "2040-01-01" and not out["expired"]
    assert card.id_number not in r.output
    r = run("device", "idcard", "decode", "--hex", card_hex(fp=b"\x01" * 512), "--unmasked", "--json")
    assert json.loads(r.output)["card"]["id_number"] == card.id_number
    r = run("device", "idcard", "decode", "--hex", card_hex(sample_card(valid_to=dt.date(2020, 2, 2))))
    assert r.exit_code == 0 and "已过有效期" in r.output


def _mutate(hexs: str, i: int, v: int) -> str:
    b = bytearray(bytes.fromhex(hexs))
    b[i] = v
    return b.hex()


@pytest.mark.parametrize("make,reason", [
    (lambda h: _mutate(h, 0, 0xAB), "bad_preamble"),
    (lambda h: h[:-6], "bad_length"),
    (lambda h: _mutate(h, 5, 0x06), "bad_length"),
    (lambda h: _mutate(h, 200, 0x00) if bytes.fromhex(h)[200] else _mutate(h, 200, 1), "bad_checksum"),
    (lambda h: GA467Frame.response(0x41).encode().hex(), "sam_status"),
    (lambda h: read_response_frame(b"\x00" * 256, b"").encode().hex(), "malformed_text"),
    (lambda h: GA467Frame.response(0x90, b"\x01\x00").encode().hex(), "malformed_text"),
])
def test_decode_refusals_exit_2_with_reason(make, reason):
    r = run("device", "idcard", "decode", "--hex", make(card_hex()), "--json")
    assert r.exit_code == 2
    assert json.loads(r.output)["reason"] == reason
    r = run("device", "idcard", "decode", "--hex", make(card_hex()))
    assert r.exit_code == 2 and reason in r.output


def test_decode_sam_status_names_the_code():
    r = run("device", "idcard", "decode", "--hex", "AA AA AA 96 69 00 04 00 00 80 84", "--json")
    out = json.loads(r.output)
    assert r.exit_code == 2 and out["code"] == "no_card" and out["sw3"] == "80"


def test_decode_not_hex_is_usage_error():
    assert run("device", "idcard", "decode", "--hex", "zz").exit_code == 2
