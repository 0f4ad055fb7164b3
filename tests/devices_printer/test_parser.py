"""The emulator's ESC/POS parser: chunking does not matter, text survives, garbage never derails it."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from devices.printer.escpos_out import blocks_to_bytes, encode_gb18030
from kiosk.domain.receipt import Cut as CutBlock
from kiosk.domain.receipt import Line, Qr
from standins.escpos_parser import (
    Cut,
    EscPosParser,
    Feed,
    Newline,
    QrPrint,
    StatusQuery,
    Text,
    Unknown,
    merge_text,
    parse,
)

CJK = st.sampled_from(list("齐好办周村区便民服务站办件编号张三丰，。：（）“”【】"))
ASCII = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
TEXT = st.text(st.one_of(CJK, ASCII), min_size=1, max_size=40)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points + [len(data)]:
        out.append(data[last:p])
        last = p
    return out


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(TEXT, min_size=1, max_size=6), cuts=st.lists(st.integers(0, 10_000), max_size=12),
       bold=st.booleans(), scale=st.sampled_from([1, 2]))
def test_chunking_does_not_change_the_result(lines, cuts, bold, scale):
    blocks = [Line(t, bold=bold, scale=scale) for t in lines] + [Qr("QHB1:X"), CutBlock()]
    # status queries between commands, as the adapter sends them before and after a job
    data = b"\x10\x04\x01".join(blocks_to_bytes([b]) for b in blocks) + b"\x10\x04\x04"
    whole = merge_text(parse(data))
    p = EscPosParser()
    ops = []
    for chunk in chunked(data, cuts):
        ops += p.feed(chunk)
    ops += p.flush()
    assert merge_text(ops) == whole
    assert sum(isinstance(o, StatusQuery) for o in ops) == len(blocks)


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(TEXT, min_size=1, max_size=6))
def test_text_round_trips_through_gb18030_chinese_mode(lines):
    ops = parse(blocks_to_bytes([Line(t) for t in lines] + [CutBlock()]))
    assert not [o for o in ops if isinstance(o, Unknown)]
    printed, cur = [], ""
    for op in ops:
        if isinstance(op, Text):
            cur += op.text
        elif isinstance(op, Newline):
            printed.append(cur)
            cur = ""
    assert printed == lines
    assert isinstance([o for o in ops if not isinstance(o, Feed)][-1], Cut)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_never_crash_and_are_consumed(data):
    p = EscPosParser(chinese_mode=True)
    p.feed(data)
    p.flush()
    assert not p._buf


def test_without_chinese_mode_gb18030_is_not_chinese():
    raw = "中文".encode("gb18030") + b"\n"
    assert [o.text for o in parse(raw) if isinstance(o, Text)] != ["中文"]
    assert [o.text for o in parse(b"\x1c\x26" + raw) if isinstance(o, Text)] == ["中文"]


def test_qr_store_and_print():
    data = b"QHB1:LQ261127ABCDEFGH7"
    store = bytes([0x1D, 0x28, 0x6B, (len(data) + 3) & 0xFF, (len(data) + 3) >> 8, 0x31, 0x50, 0x30]) + data
    stream = (b"\x1d(k\x04\x001A2\x00" b"\x1d(k\x03\x001C\x07" b"\x1d(k\x03\x001E2" + store
              + b"\x1d(k\x03\x001Q0")
    qrs = [o for o in parse(stream) if isinstance(o, QrPrint)]
    assert len(qrs) == 1 and qrs[0].data == data.decode() and qrs[0].module == 7 and qrs[0].ec == "Q"


def test_status_query_between_text():
    ops = parse(b"AB\x10\x04\x04CD\n")
    kinds = [type(o).__name__ for o in ops]
    assert kinds == ["Text", "StatusQuery", "Text", "Newline"]
    assert ops[1] == StatusQuery(4)


def test_style_commands():
    ops = parse(b"\x1b\x61\x01\x1bE\x01\x1d!\x11AB\n\x1b@x")
    t = [o for o in ops if isinstance(o, Text)]
    assert t[0].style.align == "center" and t[0].style.bold and t[0].style.scale(False) == (2, 2)
    assert t[1].style.align == "left" and not t[1].style.bold


def test_four_byte_gb18030_and_encoder_fallback():
    assert [o.text for o in parse(b"\x1c\x26" + "𠀀".encode("gb18030")) if isinstance(o, Text)] == ["𠀀"]
    assert encode_gb18030("a𠀀中") == b"a?" + "中".encode("gb18030")
