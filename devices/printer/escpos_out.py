"""Layout blocks (kiosk.domain.receipt) -> ESC/POS through python-escpos, Chinese as GB18030 in Chinese mode.

python-escpos's own text path (MagicEncode) sends GB18030 without ``FS &`` and
turns a line of only Chinese punctuation into '?', so text goes out as GB18030
bytes between ``FS &`` and ``FS .`` while styles, QR, feeds and cuts use
python-escpos.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from escpos.constants import QR_ECLEVEL_H, QR_ECLEVEL_L, QR_ECLEVEL_M, QR_ECLEVEL_Q

from kiosk.domain.receipt import Block, Cut, Feed, Line, Qr, Rule, columns_for_paper

__all__ = ["encode_gb18030", "write_blocks", "blocks_to_bytes", "FS_CHINESE_ON", "FS_CHINESE_OFF"]

FS_CHINESE_ON = b"\x1c\x26"
FS_CHINESE_OFF = b"\x1c\x2e"
_EC = {"L": 0, "M": 1, "Q": 2, "H": 3}


def encode_gb18030(text: str) -> bytes:
    """GB18030 with the printer's two-byte font in mind: four-byte characters become '?'."""
    try:
        return text.encode("gbk")  # the two-byte part of GB18030, all at once
    except UnicodeEncodeError:
        pass
    out = bytearray()
    for ch in text:
        b = ch.encode("gb18030", errors="replace")
        out += b if len(b) <= 2 else b"?"
    return bytes(out)


def _size(scale: int) -> bytes:
    n = max(1, min(8, scale)) - 1
    return bytes([0x1D, 0x21, (n << 4) | n])  # GS ! : width and height for all characters


def write_blocks(p: Any, blocks: Iterable[Block], paper_mm: int = 58) -> None:
    """Send the blocks to a python-escpos printer object `p`."""
    ec_const = {"L": QR_ECLEVEL_L, "M": QR_ECLEVEL_M, "Q": QR_ECLEVEL_Q, "H": QR_ECLEVEL_H}
    cols = columns_for_paper(paper_mm)
    p.hw("INIT")
    p._raw(FS_CHINESE_ON)
    for b in blocks:
        if isinstance(b, Line):
            p.set(align=b.align, bold=b.bold)
            p._raw(_size(b.scale) + encode_gb18030(b.text) + b"\n")
            if b.scale != 1:
                p._raw(_size(1))
        elif isinstance(b, Rule):
            p.set(align="left", bold=False)
            p._raw(encode_gb18030(b.char * (cols // max(1, len(b.char.encode("gb18030"))))) + b"\n")
        elif isinstance(b, Qr):
            p.set(align="center", bold=False)
            p.qr(b.data, native=True, size=b.module, ec=ec_const[b.ec])
            p._raw(b"\n")
            p.set(align="left")
        elif isinstance(b, Feed):
            p.ln(b.lines)
        elif isinstance(b, Cut):
            p.cut(mode="PART" if b.partial else "FULL")
    p._raw(FS_CHINESE_OFF)


def blocks_to_bytes(blocks: Iterable[Block], paper_mm: int = 58) -> bytes:
    """The exact ESC/POS bytes the printer would receive (render, file driver, tests)."""
    from escpos.printer import Dummy  # noqa: PLC0415 - python-escpos loads its printer database (~1.7 s) on import

    d = Dummy()
    write_blocks(d, blocks, paper_mm)
    return bytes(d.output)
