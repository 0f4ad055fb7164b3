"""What goes on paper: the receipt and query documents as transport-free layout blocks.

A visit ends with a receipt the citizen keeps: station and brand, the item, the
masked applicant, the tracking number and its QR, the time, the promised
completion date, the offline notice when the request is queued, and the 好差评
prompt. ``query_print`` items print whole documents (a payment certificate...).

Composition yields a list of blocks (`Line`, `Rule`, `Qr`, `Feed`, `Cut`) already
wrapped to the paper's columns, so the ESC/POS printer, the emulator's renderer
and a screen preview all show the same thing. Column widths follow thermal
printers in Chinese mode: a character that is one byte in GB18030 (ASCII) takes
one column, every other character two (58 mm paper: 32 columns, 80 mm: 48).
"""
from __future__ import annotations

import datetime as _dt
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kiosk.domain.identity import mask_id_number, mask_name
from kiosk.domain.tracking import qr_payload
from kiosk.domain.workdays import WorkdayCalendar, parse_promised_limit, promised_date

__all__ = [
    "COLUMNS", "OFFLINE_NOTICE", "RATING_LEVELS",
    "Line", "Rule", "Qr", "Feed", "Cut", "Block",
    "Receipt", "QueryDocument", "ReceiptDataError",
    "char_width", "text_width", "wrap_text", "columns_for_paper",
    "compose_receipt", "compose_document", "plain_text",
]

#: Paper width in millimetres -> characters per line at the normal font.
COLUMNS: dict[int, int] = {58: 32, 80: 48}
OFFLINE_NOTICE = "网络恢复后自动提交，凭此单查询进度"
RATING_LEVELS = ("非常满意", "满意", "基本满意", "不满意", "非常不满意")

# Chinese line-breaking rules (禁则): these never start a line / never end one.
_NO_LINE_START = set("，。、；：？！）》」』】〕〉”’…—·%,.;:?!)]}")
_NO_LINE_END = set("（《「『【〔〈“‘([{")


# ------------------------------------------------------------------ layout blocks
@dataclass(frozen=True)
class Line:
    """One printed line (already fits the paper at its scale)."""

    text: str
    align: str = "left"  # left | center | right
    bold: bool = False
    scale: int = 1  # 1 normal, 2 double width and height


@dataclass(frozen=True)
class Rule:
    char: str = "-"


@dataclass(frozen=True)
class Qr:
    data: str
    module: int = 6  # dots per module
    ec: str = "M"  # L M Q H


@dataclass(frozen=True)
class Feed:
    lines: int = 1


@dataclass(frozen=True)
class Cut:
    partial: bool = False


Block = Line | Rule | Qr | Feed | Cut


# -------------------------------------------------------------------- text width
def columns_for_paper(paper_mm: int) -> int:
    try:
        return COLUMNS[int(paper_mm)]
    except (KeyError, ValueError):
        raise ValueError(f"unsupported paper width {paper_mm!r} mm (58 or 80)") from None


def _clean(text: str) -> str:
    """Tabs become spaces; other control characters (except newlines) are dropped."""
    out = []
    for ch in text.replace("\r\n", "\n").replace("\t", " "):
        if ch == "\n" or unicodedata.category(ch)[0] != "C":
            out.append(ch)
    return "".join(out)


def char_width(ch: str) -> int:
    """1 for characters the printer prints half-width (one GB18030 byte), else 2."""
    if ch == "\n":
        return 0
    return 1 if ord(ch) < 0x80 else 2


def text_width(text: str) -> int:
    return sum(char_width(c) for c in text)


def _tokens(paragraph: str) -> list[str]:
    """Latin words and runs of spaces stay together; every other character is its own token."""
    toks: list[str] = []
    buf = ""
    for ch in paragraph:
        if ord(ch) < 0x80 and ch != " ":
            if buf and buf[-1] == " ":
                toks.append(buf)
                buf = ""
            buf += ch
        elif ch == " ":
            if buf and buf[-1] != " ":
                toks.append(buf)
                buf = ""
            buf += ch
        else:
            if buf:
                toks.append(buf)
                buf = ""
            toks.append(ch)
    if buf:
        toks.append(buf)
    return toks


def _wrap_paragraph(paragraph: str, cols: int) -> list[str]:
    lines: list[str] = []
    cur = ""
    for tok in _tokens(paragraph):
        if tok.isspace():
            if cur and text_width(cur) + text_width(tok) <= cols:
                cur += tok
            elif cur:
                lines.append(cur.rstrip(" ") or cur)
                cur = ""
            continue  # spaces at a line start are dropped after a wrap
        if text_width(cur) + text_width(tok) <= cols:
            cur += tok
            continue
        # The token does not fit on this line.
        if text_width(tok) > cols:  # a word longer than a line: hard split
            for ch in tok:
                if text_width(cur) + char_width(ch) > cols:
                    lines.append(cur.rstrip(" "))
                    cur = ""
                cur += ch
            continue
        carry = ""
        # 禁则: punctuation must not start the next line; bring the last character along.
        stripped = cur.rstrip(" ")
        if (tok in _NO_LINE_START and len(stripped) > 1 and stripped == cur
                and ord(stripped[-1]) >= 0x80 and stripped[-1] not in _NO_LINE_START):
            carry, cur = stripped[-1], stripped[:-1]
        # an opening bracket must not end a line
        while len(cur) > 1 and cur[-1] in _NO_LINE_END:
            carry, cur = cur[-1] + carry, cur[:-1]
        if cur.strip(" "):
            lines.append(cur.rstrip(" "))
        cur = carry + tok
        if text_width(cur) > cols:  # carried characters made it too long: give up on the rule
            lines.append(carry)
            cur = tok
    if cur.strip(" ") or not lines:
        lines.append(cur.rstrip(" ") if cur.strip(" ") else "")
    return lines


def wrap_text(text: str, cols: int) -> list[str]:
    """Wrap to `cols` columns (CJK = 2), honouring newlines; every line has width <= cols.

    Only spaces at wrap points are dropped; no other character is lost or reordered.
    """
    if cols < 2:
        raise ValueError("cols must be >= 2")
    out: list[str] = []
    for paragraph in _clean(text).split("\n"):
        out.extend(_wrap_paragraph(paragraph, cols))
    return out


def _pad(text: str, width: int, align: str = "left") -> str:
    gap = max(0, width - text_width(text))
    if align == "right":
        return " " * gap + text
    if align == "center":
        return " " * (gap // 2) + text + " " * (gap - gap // 2)
    return text + " " * gap


def _field(label: str, value: str, cols: int, bold: bool = False) -> list[Line]:
    """`label：value` with the value wrapped under itself (hanging indent)."""
    head = label + "："
    indent = text_width(head)
    if indent > cols // 2:  # a long label: value on its own lines
        return [Line(x) for x in wrap_text(head, cols)] + [Line(x, bold=bold) for x in wrap_text(value, cols)]
    parts = wrap_text(value or "—", cols - indent)
    lines = [Line(head + parts[0], bold=bold)]
    lines += [Line(" " * indent + p, bold=bold) for p in parts[1:]]
    return lines


def wrapped_lines(text: str, cols: int, align: str = "left", bold: bool = False, scale: int = 1) -> list[Line]:
    """`text` wrapped to the paper's columns (at double width: half as many), one Line per row."""
    return [Line(x, align=align, bold=bold, scale=scale) for x in wrap_text(text, max(2, cols // scale))]


def slip_heading(brand: str, station: str, title: str, cols: int) -> list[Block]:
    """The top of every slip: the brand large, the station, the slip's title, a rule."""
    return [*wrapped_lines(brand, cols, align="center", bold=True, scale=2),
            *wrapped_lines(station, cols, align="center"),
            *wrapped_lines(title, cols, align="center", bold=True), Rule()]


def hanging_lines(head: str, text: str, cols: int, *, bold: bool = False) -> list[Line]:
    """`head` then `text` wrapped under itself (numbered lists, labelled values)."""
    indent = text_width(head)
    parts = wrap_text(text or "—", max(2, cols - indent))
    return [Line(head + parts[0], bold=bold)] + [Line(" " * indent + p, bold=bold) for p in parts[1:]]


# ------------------------------------------------------------------------ models
class ReceiptDataError(ValueError):
    """Receipt data that cannot be printed; names the fields, never their values."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("回执数据不完整或有误：" + "；".join(f"{k}: {m}" for k, m in problems))


_M = TypeVar("_M", bound=BaseModel)


def _validated(model: type[_M], data: Mapping[str, Any]) -> _M:
    try:
        return model.model_validate(dict(data))
    except ValidationError as e:  # the default message quotes input values (personal data)
        problems = [(".".join(str(p) for p in err["loc"]) or "(root)", err["msg"])
                    for err in e.errors(include_input=False, include_url=False)]
        raise ReceiptDataError(problems) from None


class Receipt(BaseModel):
    """The facts of one submitted visit; names and ID numbers are full here and masked on paper."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    station: str = Field(min_length=1)
    brand: str = "齐好办"
    item: str = Field(min_length=1)
    applicant_name: str = ""
    applicant_id: str = ""
    tracking_no: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z-]+$")
    submitted_at: _dt.datetime
    promised_date: _dt.date | None = None
    promised_text: str | None = None  # e.g. "5个工作日" or a non-countable limit
    queued: bool = False
    service_phone: str = "12345"
    helper_phone: str = ""

    @field_validator("promised_date", mode="before")
    @classmethod
    def _date_only(cls, v: Any) -> Any:
        if isinstance(v, str) and not v.strip():
            return None
        if isinstance(v, str) and "T" in v:
            return v.split("T", 1)[0]
        if isinstance(v, _dt.datetime):
            return v.date()
        return v

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Receipt:
        """Validate e.g. a RECEIPT.json; raises ReceiptDataError without personal data."""
        return _validated(cls, data)

    @classmethod
    def for_visit(cls, cfg: Any, item: Any, *, applicant_name: str, applicant_id: str, tracking_no: str,
                  submitted_at: _dt.datetime, queued: bool, calendar: Any = None) -> Receipt:
        """A receipt for a submitted visit: station and phones from config, the item's name, and
        the promised date counted in working days from its promised limit."""
        cal = calendar or WorkdayCalendar.from_config(cfg)
        limit = getattr(item, "promised_limit", None)
        name = getattr(item, "sub_name", None) or getattr(item, "main_name", None) or str(item)
        days = parse_promised_limit(limit)
        return cls.from_mapping(dict(
            station=cfg.kiosk.station_name, brand=cfg.kiosk.brand, item=name, applicant_name=applicant_name,
            applicant_id=applicant_id, tracking_no=tracking_no, submitted_at=submitted_at,
            promised_date=promised_date(cal, limit, submitted_at),
            promised_text=(f"{days}个工作日" if days else ("即办" if days == 0 else (str(limit) if limit else None))),
            queued=queued, service_phone=cfg.kiosk.service_phone, helper_phone=cfg.kiosk.helper_phone,
        ))


class QueryDocument(BaseModel):
    """A whole document printed for a ``query_print`` item (e.g. 社会保险缴费证明)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    title: str = Field(min_length=1)
    station: str = Field(min_length=1)
    brand: str = "齐好办"
    applicant_name: str = ""
    applicant_id: str = ""
    fields: list[tuple[str, str]] = Field(default_factory=list)  # (label, value)
    table_header: list[str] = Field(default_factory=list)
    table_rows: list[list[str]] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    generated_at: _dt.datetime
    verify_code: str | None = None  # printed as a QR when present
    tracking_no: str | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> QueryDocument:
        return _validated(cls, data)


# ------------------------------------------------------------------- composition
def _header(brand: str, station: str, subtitle: str, cols: int) -> list[Block]:
    blocks: list[Block] = []
    blocks += wrapped_lines(brand, cols, align="center", bold=True, scale=2)
    blocks += wrapped_lines(station, cols, align="center")
    blocks += wrapped_lines(subtitle, cols, align="center", bold=True)
    blocks.append(Rule())
    return blocks


def _fmt_time(t: _dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M")


def compose_receipt(receipt: Receipt, paper_mm: int = 58) -> list[Block]:
    """The receipt as layout blocks for `paper_mm` paper (58 or 80)."""
    cols = columns_for_paper(paper_mm)
    blocks: list[Block] = _header(receipt.brand, receipt.station, "自助服务回执", cols)
    blocks += _field("办理事项", receipt.item, cols)
    if receipt.applicant_name:
        blocks += _field("申请人", mask_name(receipt.applicant_name), cols)
    if receipt.applicant_id:
        blocks += _field("证件号码", mask_id_number(receipt.applicant_id), cols)
    blocks += _field("办件编号", receipt.tracking_no, cols, bold=True)
    blocks += _field("提交时间", _fmt_time(receipt.submitted_at), cols)
    if receipt.promised_date is not None:
        promise = receipt.promised_date.isoformat()
        with_text = f"{promise}（{receipt.promised_text}）" if receipt.promised_text else promise
        if text_width("承诺办结：" + with_text) <= cols:
            promise = with_text
        blocks += _field("承诺办结", promise, cols)
    elif receipt.promised_text:
        blocks += _field("办理时限", receipt.promised_text, cols)
    blocks.append(Rule())
    if receipt.queued:
        blocks += wrapped_lines("【暂存待提交】", cols, align="center", bold=True)
        if text_width(OFFLINE_NOTICE) <= cols:
            blocks += wrapped_lines(OFFLINE_NOTICE, cols, align="center", bold=True)
        else:  # break at the comma rather than mid-phrase
            head, _, tail = OFFLINE_NOTICE.partition("，")
            blocks += wrapped_lines(head + "，", cols, align="center", bold=True)
            blocks += wrapped_lines(tail, cols, align="center", bold=True)
        blocks.append(Feed(1))
    blocks.append(Qr(qr_payload(receipt.tracking_no)))
    blocks += wrapped_lines("扫码或凭办件编号查询办理进度", cols, align="center")
    blocks.append(Rule())
    blocks += wrapped_lines("请对本次服务进行评价（好差评）：", cols)
    blocks += wrapped_lines("  ".join(RATING_LEVELS), cols)
    blocks += wrapped_lines(f"可在本机“好差评”页面或拨打{receipt.service_phone}评价", cols)
    if receipt.helper_phone:
        blocks += wrapped_lines(f"帮办代办电话：{receipt.helper_phone}", cols)
    blocks.append(Feed(3))
    blocks.append(Cut())
    return blocks


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], cols: int) -> list[Block]:
    """Columns sized to their content, shrunk proportionally to fit; cells wrap inside a column."""
    n = len(header)
    if n == 0:
        return []
    cells = [list(header)] + [[str(c) for c in r][:n] + [""] * (n - len(r)) for r in rows]
    gap = 1
    natural = [max(text_width(r[i]) for r in cells) for i in range(n)]
    avail = cols - gap * (n - 1)
    widths = natural[:]
    while sum(widths) > avail:
        i = widths.index(max(widths))
        widths[i] -= 1
    widths = [max(2, w) for w in widths]
    out: list[Block] = []
    for ri, row in enumerate(cells):
        wrapped = [wrap_text(row[i], widths[i]) for i in range(n)]
        height = max(len(w) for w in wrapped)
        for k in range(height):
            parts = [_pad(w[k] if k < len(w) else "", widths[i], "right" if ri and i == n - 1 else "left")
                     for i, w in enumerate(wrapped)]
            out.append(Line((" " * gap).join(parts).rstrip(" "), bold=(ri == 0)))
        if ri == 0:
            out.append(Rule())
    return out


def compose_document(doc: QueryDocument, paper_mm: int = 80) -> list[Block]:
    """A query_print document (certificate, statement) as layout blocks."""
    cols = columns_for_paper(paper_mm)
    blocks: list[Block] = []
    blocks += wrapped_lines(doc.title, cols, align="center", bold=True, scale=2)
    blocks += wrapped_lines(doc.station, cols, align="center")
    blocks.append(Rule())
    if doc.applicant_name:
        blocks += _field("姓名", mask_name(doc.applicant_name), cols)
    if doc.applicant_id:
        blocks += _field("证件号码", mask_id_number(doc.applicant_id), cols)
    for label, value in doc.fields:
        blocks += _field(label, value, cols)
    if doc.table_header:
        blocks.append(Rule())
        blocks += _table(doc.table_header, doc.table_rows, cols)
    blocks.append(Rule())
    for note in doc.notes:
        blocks += wrapped_lines(note, cols)
    blocks += _field("打印时间", _fmt_time(doc.generated_at), cols)
    if doc.tracking_no:
        blocks += _field("办件编号", doc.tracking_no, cols)
    if doc.verify_code:
        blocks.append(Qr(doc.verify_code))
        blocks += wrapped_lines("扫码核验本证明真伪", cols, align="center")
    blocks += wrapped_lines(f"{doc.brand} · 自助打印", cols, align="center")
    blocks.append(Feed(3))
    blocks.append(Cut())
    return blocks


def plain_text(blocks: Iterable[Block], paper_mm: int = 58) -> str:
    """A text preview of the blocks (screens, logs in tests); QR shown as a placeholder."""
    cols = columns_for_paper(paper_mm)
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Line):
            width = cols // b.scale
            out.append(_pad(b.text, width, b.align).rstrip(" "))
        elif isinstance(b, Rule):
            out.append(b.char * cols)
        elif isinstance(b, Qr):
            out.append(_pad("[QR]", cols, "center").rstrip(" "))
        elif isinstance(b, Feed):
            out.extend([""] * b.lines)
        elif isinstance(b, Cut):
            out.append("~" * cols)
    return "\n".join(out)
