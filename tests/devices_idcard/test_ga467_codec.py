"""GA 467 frames: published vectors, resync on noise and splits, and hypothesis robustness."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.idcard.ga467 import (
    PREAMBLE,
    Command,
    FrameDecoder,
    FrameError,
    GA467Frame,
    MalformedText,
    SamError,
    parse_read_data,
    sam_error,
)
from devices.idcard.text_block import encode_text_block
from standins.sam_emulator import random_noise, read_response_frame, sample_card

# Request vectors from public code (protocols.md)
REQUESTS = {
    Command.SAM_STATUS: "AA AA AA 96 69 00 03 11 FF ED",
    Command.RESET_SAM: "AA AA AA 96 69 00 03 10 FF EC",
    Command.FIND_CARD: "AA AA AA 96 69 00 03 20 01 22",
    Command.SELECT_CARD: "AA AA AA 96 69 00 03 20 02 21",
    Command.READ_BASE: "AA AA AA 96 69 00 03 30 01 32",
    Command.READ_BASE_FP: "AA AA AA 96 69 00 03 30 10 23",
}
RESPONSES = {
    "AA AA AA 96 69 00 04 00 00 90 94": 0x90,
    "AA AA AA 96 69 00 04 00 00 60 64": 0x60,
    "AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97": 0x9F,
    "AA AA AA 96 69 00 04 00 00 80 84": 0x80,
    "AA AA AA 96 69 00 0C 00 00 90" + " 00" * 8 + " 9C": 0x90,
    "AA AA AA 96 69 00 04 00 00 81 85": 0x81,
    "AA AA AA 96 69 00 04 00 00 41 45": 0x41,
}


@pytest.mark.parametrize("cmd,hexs", REQUESTS.items())
def test_request_vectors(cmd, hexs):
    assert GA467Frame.request(*cmd).encode() == bytes.fromhex(hexs)
    assert GA467Frame.decode(bytes.fromhex(hexs)).cmd == cmd


@pytest.mark.parametrize("hexs,sw3", RESPONSES.items())
def test_response_vectors(hexs, sw3):
    f = GA467Frame.decode(bytes.fromhex(hexs))
    assert f.sw3 == sw3
    assert f.encode() == bytes.fromhex(hexs)


def test_read_response_layouts_match_published_sizes():
    card = sample_card()
    text = encode_text_block(card)
    plain = read_response_frame(text, card.photo_wlt).encode()
    assert len(plain) == 1295 and plain[:14] == bytes.fromhex("AAAAAA96690508000090 0100 0400".replace(" ", ""))
    for fp_len, total in ((1024, 2321), (512, 1809), (0, 1297)):
        raw = read_response_frame(text, card.photo_wlt, b"\x07" * fp_len).encode()
        assert len(raw) == total
        parts = parse_read_data(GA467Frame.decode(raw).data)
        assert parts.text == text and parts.photo == card.photo_wlt and len(parts.fingerprint) == fp_len
    assert read_response_frame(text, card.photo_wlt, b"\x07" * 1024).encode()[:16] == bytes.fromhex(
        "AAAAAA9669090A0000900100040004 00".replace(" ", ""))
    with pytest.raises(MalformedText):
        parse_read_data(b"\x01\x00\x04\x00" + b"\x00" * 100)


@pytest.mark.parametrize("raw,reason", [
    (b"\xAB\xAA\xAA\x96\x69\x00\x04\x00\x00\x90\x94", "bad_preamble"),
    (b"\xAA\xAA\xAA\x96\x69\x00\x05\x00\x00\x90\x94", "bad_length"),
    (b"\xAA\xAA\xAA\x96\x69\x00\x01\x94", "bad_length"),
    (b"\xAA\xAA\xAA\x96\x69\x00", "bad_length"),
    (b"\xAA\xAA\xAA\x96\x69\x00\x04\x00\x00\x90\x95", "bad_checksum"),
])
def test_strict_decode_reasons(raw, reason):
    with pytest.raises(FrameError) as ei:
        GA467Frame.decode(raw)
    assert ei.value.reason == reason


def test_sam_codes_map_to_classified_errors():
    assert sam_error(0x80).code == "no_card" and "身份证" in sam_error(0x80).message
    assert sam_error(0x41).code == "read_failed"
    assert sam_error(0x10).code == "checksum_error"
    assert sam_error(0x60).code == "sam_fault"
    e = sam_error(0xEE)
    assert isinstance(e, SamError) and e.code == "sam_fault" and e.sw3 == 0xEE


def test_decoder_resyncs_over_noise_split_and_corruption():
    good = [GA467Frame.response(0x90, bytes([i]) * i) for i in range(1, 6)]
    wire = bytearray()
    for i, f in enumerate(good):
        wire += random_noise(7, seed=i)
        if i == 2:  # a corrupted copy first: must be dropped, not returned
            bad = bytearray(f.encode())
            bad[-1] ^= 1
            wire += bad
        wire += f.encode()
    wire += PREAMBLE[:3]  # a split preamble at the end
    dec = FrameDecoder()
    out = []
    for i in range(0, len(wire), 3):  # frames split across reads
        out += dec.feed(bytes(wire[i:i + 3]))
    assert out == good
    assert dec.bad_checksums >= 1 and dec.skipped_bytes >= 35
    assert dec.pending == 3  # the partial preamble is kept for the next read
    assert dec.feed(GA467Frame.response(0x90).encode()[3:]) == [GA467Frame.response(0x90)]


def test_decoder_rejects_false_preamble_with_absurd_length():
    dec = FrameDecoder()
    real = GA467Frame.response(0x9F, b"\x00" * 4).encode()
    assert dec.feed(PREAMBLE + b"\xFF\xFF" + real) == [GA467Frame.decode(real)]
    assert dec.bad_lengths == 1


frames = st.builds(lambda sw3, data: GA467Frame.response(sw3, data), st.integers(0, 255),
                   st.binary(max_size=64))


@settings(max_examples=200, deadline=None)
@given(st.lists(frames, min_size=1, max_size=5), st.lists(st.binary(max_size=20), min_size=6, max_size=6),
       st.integers(1, 50))
def test_decoder_finds_every_frame_between_noise(fs, noises, chunk):
    wire = b""
    for f, n in zip(fs, noises):
        wire += n.replace(b"\xAA", b"") + f.encode()
    dec = FrameDecoder()
    out = []
    for i in range(0, len(wire), chunk):
        out += dec.feed(wire[i:i + chunk])
    assert out == fs


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_crash_and_every_frame_verifies(data):
    for f in FrameDecoder().feed(data):
        raw = f.encode()
        assert GA467Frame.decode(raw) == f  # checksum and length consistent
    try:
        GA467Frame.decode(data)
    except FrameError as e:
        assert e.reason in ("bad_preamble", "bad_length", "bad_checksum")


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 1294), st.integers(1, 255))
def test_single_byte_mutation_of_a_card_frame_never_yields_that_frame(pos, flip):
    card = sample_card()
    raw = bytearray(read_response_frame(encode_text_block(card), card.photo_wlt).encode())
    orig = GA467Frame.decode(bytes(raw))
    raw[pos] ^= flip
    try:
        f = GA467Frame.decode(bytes(raw))
    except FrameError:
        return
    assert f != orig  # XOR checksum catches every single-byte change, so we never get here
    raise AssertionError("mutated frame decoded")
