"""An incremental ESC/POS stream parser: bytes in (in any chunking), printer operations out.

Used by the printer emulator (network and serial peers for tests, ``--simulate``
and the demo) and by ``kiosk device printer render``. It understands what our
adapter and python-escpos send: text in code page and in Chinese mode (``FS &`` /
``FS .``, GB18030 two- and four-byte characters), styles (``ESC E``, ``ESC -``,
``ESC !``, ``GS !``, ``FS !``, ``ESC a``, ``GS B``), feeds, ``GS ( k`` QR codes,
``GS v 0`` raster images, cuts and ``DLE EOT`` status queries. Anything else is
skipped by its known length and reported as :class:`Unknown` so nothing can make
the parser lose its place silently.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "Style", "Text", "Newline", "Feed", "QrPrint", "Cut", "Raster", "StatusQuery", "Init", "Unknown",
    "Op", "EscPosParser", "parse", "merge_text",
]

ESC, GS, FS, DLE = 0x1B, 0x1D, 0x1C, 0x10
LF, CR, HT = 0x0A, 0x0D, 0x09
_EC = {48: "L", 49: "M", 50: "Q", 51: "H", 0: "L", 1: "M", 2: "Q", 3: "H"}


@dataclass(frozen=True)
class Style:
    align: str = "left"
    bold: bool = False
    underline: int = 0
    invert: bool = False
    width: int = 1  # GS ! (all characters)
    height: int = 1
    esc_dw: bool = False  # ESC ! double width/height (single-byte characters)
    esc_dh: bool = False
    fs_dw: bool = False  # FS ! double width/height (Chinese characters)
    fs_dh: bool = False

    def scale(self, cjk: bool) -> tuple[int, int]:
        dw, dh = (self.fs_dw, self.fs_dh) if cjk else (self.esc_dw, self.esc_dh)
        return max(self.width, 2 if dw else 1), max(self.height, 2 if dh else 1)


@dataclass(frozen=True)
class Text:
    text: str
    style: Style


@dataclass(frozen=True)
class Newline:
    style: Style


@dataclass(frozen=True)
class Feed:
    dots: int


@dataclass(frozen=True)
class QrPrint:
    data: str
    module: int
    ec: str
    style: Style


@dataclass(frozen=True)
class Cut:
    partial: bool


@dataclass(frozen=True)
class Raster:
    width_bytes: int
    height: int
    data: bytes
    style: Style


@dataclass(frozen=True)
class StatusQuery:
    n: int


@dataclass(frozen=True)
class Init:
    pass


@dataclass(frozen=True)
class Unknown:
    data: bytes


Op = Text | Newline | Feed | QrPrint | Cut | Raster | StatusQuery | Init | Unknown

#: ESC x with a fixed number of parameter bytes.
_ESC_FIXED = {
    ord("@"): 0, ord("a"): 1, ord("E"): 1, ord("-"): 1, ord("!"): 1, ord("M"): 1, ord("G"): 1,
    ord("t"): 1, ord("d"): 1, ord("J"): 1, ord("e"): 1, ord("2"): 0, ord("3"): 1, ord("{"): 1,
    ord("V"): 1, ord("R"): 1, ord("c"): 2, ord("p"): 3, ord("="): 1, ord(" "): 1, ord("$"): 2,
    ord("\\"): 2, ord("i"): 0, ord("m"): 0, ord("S"): 0, ord("L"): 0, ord("W"): 8, ord("T"): 1,
    ord("r"): 1, ord("U"): 1, ord("%"): 1, ord("K"): 1,
}
_GS_FIXED = {
    ord("!"): 1, ord("B"): 1, ord("b"): 1, ord("L"): 2, ord("W"): 2, ord("H"): 1, ord("f"): 1,
    ord("h"): 1, ord("w"): 1, ord("a"): 1, ord("r"): 1, ord("I"): 1, ord("P"): 2, ord("$"): 2,
    ord("\\"): 2, ord("/"): 1, ord("T"): 1, ord("^"): 3, ord(":"): 0,
}
_FS_FIXED = {ord("&"): 0, ord("."): 0, ord("!"): 1, ord("-"): 1, ord("C"): 1, ord("S"): 2, ord("W"): 1,
             ord("p"): 2}

_NEED_MORE = -1


class EscPosParser:
    """Feed bytes with :meth:`feed`; call :meth:`flush` at the end of the stream.

    The result does not depend on how the stream was split into chunks.
    """

    def __init__(self, chinese_mode: bool = False, line_dots: int = 30):
        self._buf = bytearray()
        self._pending: list[str] = []
        self._pending_style: Style | None = None
        self.chinese_default = chinese_mode
        self.line_dots = line_dots
        self._reset()
        self.unknown_count = 0

    def _reset(self) -> None:
        self.style = Style()
        self.chinese = self.chinese_default
        self.qr_module = 3
        self.qr_ec = "L"
        self.qr_data = b""

    # -- public -------------------------------------------------------------
    def feed(self, data: bytes) -> list[Op]:
        self._buf += data
        out: list[Op] = []
        while self._buf:
            n = self._step(out)
            if n == _NEED_MORE:
                break
            del self._buf[:n]
        return out

    def flush(self) -> list[Op]:
        """End of stream: emit pending text; an incomplete trailing command is reported as Unknown."""
        out: list[Op] = []
        self._flush_text(out)
        if self._buf:
            out.append(Unknown(bytes(self._buf)))
            self.unknown_count += 1
            self._buf.clear()
        return out

    # -- text -----------------------------------------------------------------
    def _add_text(self, s: str, out: list[Op]) -> None:
        if self._pending and self._pending_style != self.style:
            self._flush_text(out)
        self._pending.append(s)
        self._pending_style = self.style

    def _flush_text(self, out: list[Op]) -> None:
        if self._pending:
            out.append(Text("".join(self._pending), self._pending_style or self.style))
            self._pending = []
            self._pending_style = None

    def _emit(self, op: Op, out: list[Op]) -> None:
        self._flush_text(out)
        out.append(op)

    def _set(self, **kw: Any) -> None:
        self.style = replace(self.style, **kw)

    # -- one step -------------------------------------------------------------
    def _step(self, out: list[Op]) -> int:
        b = self._buf
        c = b[0]
        if c == ESC:
            return self._esc(out)
        if c == GS:
            return self._gs(out)
        if c == FS:
            return self._fs(out)
        if c == DLE:
            return self._dle(out)
        if c == LF:
            self._emit(Newline(self.style), out)
            return 1
        if c == HT:
            self._add_text(" " * 4, out)
            return 1
        if c < 0x20 or c == 0x7F:
            return 1  # CR, FF and other controls: ignored like most receipt printers
        if c < 0x80:
            self._add_text(chr(c), out)
            return 1
        if not self.chinese:
            self._add_text(bytes([c]).decode("cp437"), out)
            return 1
        return self._gb18030(out)

    def _gb18030(self, out: list[Op]) -> int:
        b = self._buf
        if len(b) < 2:
            return _NEED_MORE
        c1, c2 = b[0], b[1]
        if 0x81 <= c1 <= 0xFE and 0x30 <= c2 <= 0x39:
            if len(b) < 4:
                return _NEED_MORE
            try:
                self._add_text(bytes(b[:4]).decode("gb18030"), out)
            except UnicodeDecodeError:
                self._add_text("?", out)
            return 4
        if 0x81 <= c1 <= 0xFE and 0x40 <= c2 <= 0xFE and c2 != 0x7F:
            try:
                self._add_text(bytes(b[:2]).decode("gb18030"), out)
            except UnicodeDecodeError:
                self._add_text("?", out)
            return 2
        self._add_text("?", out)  # a stray byte: print a placeholder, keep the next byte
        return 1

    def _unknown(self, n: int, out: list[Op]) -> int:
        self._emit(Unknown(bytes(self._buf[:n])), out)
        self.unknown_count += 1
        return n

    def _esc(self, out: list[Op]) -> int:
        b = self._buf
        if len(b) < 2:
            return _NEED_MORE
        cmd = b[1]
        if cmd == ord("*"):  # bit image: m nL nH data
            if len(b) < 5:
                return _NEED_MORE
            m, cols = b[2], b[3] | (b[4] << 8)
            total = 5 + cols * (3 if m in (32, 33) else 1)
            return _NEED_MORE if len(b) < total else self._unknown(total, out)
        if cmd == ord("D"):  # tab stops, NUL-terminated
            end = b.find(0, 2)
            return _NEED_MORE if end < 0 else self._unknown(end + 1, out)
        if cmd not in _ESC_FIXED:
            return self._unknown(2, out)
        n = 2 + _ESC_FIXED[cmd]
        if len(b) < n:
            return _NEED_MORE
        p = b[2] if n > 2 else 0
        if cmd == ord("@"):
            self._flush_text(out)
            self._reset()
            out.append(Init())
        elif cmd == ord("a"):
            self._set(align={0: "left", 48: "left", 1: "center", 49: "center", 2: "right", 50: "right"}.get(p, "left"))
        elif cmd == ord("E"):
            self._set(bold=bool(p & 1))
        elif cmd == ord("-"):
            self._set(underline=p & 0x03 if p < 48 else p - 48)
        elif cmd == ord("!"):
            self._set(bold=bool(p & 0x08), esc_dh=bool(p & 0x10), esc_dw=bool(p & 0x20),
                      underline=1 if p & 0x80 else 0)
        elif cmd == ord("d"):
            self._emit(Feed(p * self.line_dots), out)
        elif cmd == ord("J"):
            self._emit(Feed(p), out)
        elif cmd in (ord("i"), ord("m")):
            self._emit(Cut(partial=True), out)
        return n

    def _gs(self, out: list[Op]) -> int:
        b = self._buf
        if len(b) < 2:
            return _NEED_MORE
        cmd = b[1]
        if cmd == ord("V"):
            if len(b) < 3:
                return _NEED_MORE
            m = b[2]
            n = 4 if m in (65, 66, 97, 98, 103, 104) else 3
            if len(b) < n:
                return _NEED_MORE
            if m in (65, 66):  # feed then cut
                self._emit(Feed(b[3]), out)
            self._emit(Cut(partial=m in (1, 49, 66, 98, 104)), out)
            return n
        if cmd == ord("("):  # GS ( fn pL pH data
            if len(b) < 5:
                return _NEED_MORE
            n = 5 + (b[3] | (b[4] << 8))
            if len(b) < n:
                return _NEED_MORE
            if b[2] == ord("k"):
                self._qr(bytes(b[5:n]), out)
            else:
                self._unknown(n, out)
            return n
        if cmd == ord("v"):  # GS v 0 m xL xH yL yH data
            if len(b) < 8:
                return _NEED_MORE
            xb, y = b[4] | (b[5] << 8), b[6] | (b[7] << 8)
            n = 8 + xb * y
            if len(b) < n:
                return _NEED_MORE
            if b[2] == ord("0"):
                self._emit(Raster(xb, y, bytes(b[8:n]), self.style), out)
            else:
                self._unknown(n, out)
            return n
        if cmd == ord("k"):  # barcode: function A (NUL-terminated) or B (length)
            if len(b) < 3:
                return _NEED_MORE
            m = b[2]
            if m <= 6:
                end = b.find(0, 3)
                return _NEED_MORE if end < 0 else self._unknown(end + 1, out)
            if len(b) < 4:
                return _NEED_MORE
            n = 4 + b[3]
            return _NEED_MORE if len(b) < n else self._unknown(n, out)
        if cmd == ord("*"):
            if len(b) < 4:
                return _NEED_MORE
            n = 4 + b[2] * b[3] * 8
            return _NEED_MORE if len(b) < n else self._unknown(n, out)
        if cmd not in _GS_FIXED:
            return self._unknown(2, out)
        n = 2 + _GS_FIXED[cmd]
        if len(b) < n:
            return _NEED_MORE
        p = b[2] if n > 2 else 0
        if cmd == ord("!"):
            self._set(width=((p >> 4) & 0x07) + 1, height=(p & 0x07) + 1)
        elif cmd == ord("B"):
            self._set(invert=bool(p & 1))
        return n

    def _qr(self, body: bytes, out: list[Op]) -> None:
        if len(body) < 2 or body[0] != 0x31:
            self._emit(Unknown(bytes([GS, ord("("), ord("k")]) + body), out)
            self.unknown_count += 1
            return
        fn = body[1]
        if fn == 0x43 and len(body) >= 3:
            self.qr_module = max(1, min(16, body[2]))
        elif fn == 0x45 and len(body) >= 3:
            self.qr_ec = _EC.get(body[2], "L")
        elif fn == 0x50 and len(body) >= 3:
            self.qr_data = body[3:]
        elif fn == 0x51:
            try:
                data = self.qr_data.decode("utf-8")
            except UnicodeDecodeError:
                data = self.qr_data.decode("gb18030", errors="replace")
            self._emit(QrPrint(data, self.qr_module, self.qr_ec, self.style), out)
        # 0x41 model, 0x52 size info: nothing to draw

    def _fs(self, out: list[Op]) -> int:
        b = self._buf
        if len(b) < 2:
            return _NEED_MORE
        cmd = b[1]
        if cmd not in _FS_FIXED:
            return self._unknown(2, out)
        n = 2 + _FS_FIXED[cmd]
        if len(b) < n:
            return _NEED_MORE
        p = b[2] if n > 2 else 0
        if cmd == ord("&"):
            self.chinese = True
        elif cmd == ord("."):
            self.chinese = False
        elif cmd == ord("!"):
            self._set(fs_dw=bool(p & 0x04), fs_dh=bool(p & 0x08))
        return n

    def _dle(self, out: list[Op]) -> int:
        b = self._buf
        if len(b) < 2:
            return _NEED_MORE
        cmd = b[1]
        if cmd == 0x04:  # DLE EOT n: real-time status
            if len(b) < 3:
                return _NEED_MORE
            self._emit(StatusQuery(b[2]), out)
            return 3
        if cmd == 0x05:
            return _NEED_MORE if len(b) < 3 else self._unknown(3, out)
        if cmd == 0x14:
            return _NEED_MORE if len(b) < 5 else self._unknown(5, out)
        return self._unknown(1, out)


def merge_text(ops: list[Op]) -> list[Op]:
    """Adjacent Text with the same style joined (a canonical form for comparisons)."""
    merged: list[Op] = []
    for op in ops:
        if isinstance(op, Text) and merged and isinstance(merged[-1], Text) and merged[-1].style == op.style:
            merged[-1] = Text(merged[-1].text + op.text, op.style)
        else:
            merged.append(op)
    return merged


def parse(data: bytes, chinese_mode: bool = False) -> list[Op]:
    p = EscPosParser(chinese_mode)
    return p.feed(data) + p.flush()
