"""Draw parsed ESC/POS operations as the paper a thermal printer would produce (PNG).

Geometry of a 203 dpi printer: 384 dots per line on 58 mm paper, 576 on 80 mm;
font A cells are 12x24 dots for single-byte characters and 24x24 for Chinese;
lines advance 30 dots. Text is drawn with the WenQuanYi Micro Hei CJK font; a QR
code is drawn from the data stored by ``GS ( k`` (module size and error
correction as sent), so what a phone scans from the PNG is what the printer got.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Iterable

import qrcode
from PIL import Image, ImageDraw, ImageFont
from qrcode.constants import ERROR_CORRECT_H, ERROR_CORRECT_L, ERROR_CORRECT_M, ERROR_CORRECT_Q

from standins.escpos_parser import Cut, Feed, Init, Newline, Op, QrPrint, Raster, Style, Text

__all__ = ["FONT_PATH", "PAPER_DOTS", "render_ops", "split_receipts"]

FONT_PATH = os.environ.get("KIOSK_RECEIPT_FONT", "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
PAPER_DOTS = {58: 384, 80: 576}
CELL_H = 24
LINE_DOTS = 30
MARGIN = 24  # white paper edge around the printable area


@functools.lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype(FONT_PATH, size)
    except OSError:  # no CJK font installed: still render ASCII legibly
        return ImageFont.load_default(size)


@functools.lru_cache(maxsize=4096)
def _glyph(ch: str, bold: bool, underline: bool, invert: bool, sw: int, sh: int) -> Image.Image:
    cjk = ord(ch) >= 0x80
    w = (24 if cjk else 12)
    img = Image.new("L", (w, CELL_H), 255)
    d = ImageDraw.Draw(img)
    font = _font(22 if cjk else 22)
    bbox = font.getbbox(ch)
    gx = (w - (bbox[2] - bbox[0])) // 2 - bbox[0]
    d.text((gx, 0), ch, font=font, fill=0, stroke_width=1 if bold else 0, stroke_fill=0)
    if underline:
        d.line([(0, CELL_H - 1), (w, CELL_H - 1)], fill=0, width=1)
    if invert:
        img = Image.eval(img, lambda v: 255 - v)
    if sw != 1 or sh != 1:
        img = img.resize((w * sw, CELL_H * sh), Image.Resampling.NEAREST)
    return img


def _qr_image(data: str, module: int, ec: str) -> Image.Image:
    level = {"L": ERROR_CORRECT_L, "M": ERROR_CORRECT_M, "Q": ERROR_CORRECT_Q, "H": ERROR_CORRECT_H}[ec]
    q = qrcode.QRCode(error_correction=level, box_size=1, border=0)
    q.add_data(data.encode("utf-8"))
    q.make(fit=True)
    matrix = q.get_matrix()
    n = len(matrix)
    img = Image.new("L", (n, n), 255)
    img.putdata([0 if cell else 255 for row in matrix for cell in row])
    return img.resize((n * module, n * module), Image.Resampling.NEAREST)


def _raster_image(op: Raster) -> Image.Image:
    img = Image.frombytes("1", (op.width_bytes * 8, op.height), op.data)
    return Image.eval(img.convert("L"), lambda v: 255 - v)  # 1 bits are black dots


class _Paper:
    def __init__(self, width: int):
        self.width = width
        self.rows: list[tuple[Image.Image, str]] = []  # (strip, align)
        self.line: list[Image.Image] = []
        self.x = 0
        self.align = "left"

    def put(self, cell: Image.Image, align: str) -> None:
        if not self.line:
            self.align = align
        if self.x + cell.width > self.width and self.line:  # the printer wraps by itself
            self.newline()
            self.align = align
        self.line.append(cell)
        self.x += cell.width

    def newline(self) -> None:
        if not self.line:
            self.rows.append((Image.new("L", (1, LINE_DOTS), 255), "left"))
            return
        h = max(c.height for c in self.line)
        strip = Image.new("L", (self.x, h + LINE_DOTS - CELL_H), 255)
        x = 0
        for c in self.line:
            strip.paste(c, (x, h - c.height))
            x += c.width
        self.rows.append((strip, self.align))
        self.line, self.x = [], 0

    def block(self, img: Image.Image, align: str) -> None:
        if self.line:
            self.newline()
        self.rows.append((img, align))

    def feed(self, dots: int) -> None:
        if self.line:
            self.newline()
            dots = max(0, dots - LINE_DOTS)
        if dots:
            self.rows.append((Image.new("L", (1, dots), 255), "left"))

    def image(self) -> Image.Image:
        if self.line:
            self.newline()
        height = sum(r.height for r, _ in self.rows) + 2 * MARGIN
        out = Image.new("L", (self.width + 2 * MARGIN, max(height, 2 * MARGIN + 1)), 255)
        y = MARGIN
        for strip, align in self.rows:
            w = min(strip.width, self.width)
            x = 0 if align == "left" else (self.width - w if align == "right" else (self.width - w) // 2)
            out.paste(strip.crop((0, 0, w, strip.height)), (MARGIN + x, y))
            y += strip.height
        return out


def render_ops(ops: Iterable[Op], paper_mm: int = 58) -> Image.Image:
    """One receipt's operations (up to and excluding its cut) as a grayscale image."""
    paper = _Paper(PAPER_DOTS.get(paper_mm, 384))
    for op in ops:
        if isinstance(op, Text):
            st: Style = op.style
            for ch in op.text:
                sw, sh = st.scale(ord(ch) >= 0x80)
                paper.put(_glyph(ch, st.bold, bool(st.underline), st.invert, sw, sh), st.align)
        elif isinstance(op, Newline):
            paper.newline()
        elif isinstance(op, Feed):
            paper.feed(op.dots)
        elif isinstance(op, QrPrint):
            paper.block(_qr_image(op.data, op.module, op.ec), op.style.align)
        elif isinstance(op, Raster):
            paper.block(_raster_image(op), op.style.align)
        elif isinstance(op, (Cut, Init)):
            continue
    return paper.image()


def split_receipts(ops: Iterable[Op]) -> tuple[list[list[Op]], list[Op]]:
    """Cut receipts (each without its Cut) and the uncut remainder."""
    done: list[list[Op]] = []
    cur: list[Op] = []
    for op in ops:
        if isinstance(op, Cut):
            done.append(cur)
            cur = []
        else:
            cur.append(op)
    return done, cur
