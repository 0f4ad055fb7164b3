"""DLE EOT status bytes: the emulator's encoding and the adapter's decoding agree."""
from __future__ import annotations

import pytest

from devices.printer.status import NAMED_CONDITIONS, BadStatusByte, decode_status, encode_status


@pytest.mark.parametrize("name", sorted(NAMED_CONDITIONS))
def test_round_trip(name):
    cond = NAMED_CONDITIONS[name]
    answers = [encode_status(cond, n) for n in (1, 2, 3, 4)]
    assert all(a & 0x93 == 0x12 for a in answers)  # fixed bits as the spec says
    assert decode_status(*answers) == cond


def test_known_bytes():
    assert decode_status(0x12, 0x12, 0x12, 0x12).code == "ok"
    assert decode_status(0x12, 0x12, 0x12, 0x1E).code == "paper_near_end"
    assert decode_status(0x1A, 0x32, 0x12, 0x7E).code == "paper_out"
    assert decode_status(0x1A, 0x16, 0x12, 0x12).code == "cover_open"
    assert decode_status(0x1A, 0x52, 0x1A, 0x12).code == "cutter_error"
    assert not decode_status(0x12, 0x12, 0x12, 0x1E).fault


def test_a_text_byte_is_not_a_status():
    with pytest.raises(BadStatusByte):
        decode_status(ord("A"))


def test_fault_messages_tell_what_to_do():
    for cond in NAMED_CONDITIONS.values():
        if cond.fault:
            assert "补打" in cond.message
