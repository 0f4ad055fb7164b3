"""The 不动产登记信息查询单: what a public real-estate query found, on screen and on paper (issue 14 item 2).

The platform answers ``POST /v1/real-estate/search`` with the public view of each unit: its
natural state (坐落, 面积, 用途, 权利类型) and its restrictions (查封, 抵押, 异议, 预告登记). This
module turns an answer into display values and into the slip the receipt printer prints. Only the
public fields are ever read from the answer: nothing about the owner reaches the screen or the
paper, even if a platform sent it.

Composition yields the same layout blocks as receipts (kiosk.domain.receipt), so the ESC/POS
printer (GB18030), the emulator and a preview show the same thing.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kiosk.domain.real_estate import RESTRICTION_KINDS, format_unit_number
from kiosk.domain.receipt import Block, Cut, Feed, Rule, columns_for_paper, hanging_lines, slip_heading, wrapped_lines

__all__ = [
    "BY_NAMES", "NO_RESTRICTION", "SLIP_NOTE", "PropertyRestriction", "PropertyUnit", "PropertySlip",
    "unit_from_platform", "units_from_answer", "query_text", "natural_state", "restriction_lines",
    "compose_property_slip", "unit_views",
]

#: how the citizen searched, as the screen and the slip name it
BY_NAMES: dict[str, str] = {"address": "坐落", "certificate_number": "不动产权证书号", "unit_number": "不动产单元号"}
NO_RESTRICTION = "无限制"
SLIP_NOTE = ("本查询结果仅供参考，不作为办理不动产登记、交易、抵押和诉讼的依据；"
             "需要证明的，请到不动产登记机构申请出具查询结果证明。")


@dataclass(frozen=True)
class PropertyRestriction:
    kind: str  # one of RESTRICTION_KINDS (an unknown kind is shown as the platform names it)
    registered_on: str = ""
    note: str = ""

    def text(self) -> str:
        """抵押（2021-07-02登记，一般抵押）."""
        detail = "，".join(x for x in ((f"{self.registered_on}登记" if self.registered_on else ""), self.note) if x)
        return f"{self.kind}（{detail}）" if detail else self.kind


@dataclass(frozen=True)
class PropertyUnit:
    """One unit's public view; it has no field for the owner."""

    unit_number: str
    address: str
    certificate_number: str = ""
    area_m2: float | None = None
    land_area_m2: float | None = None
    use: str = ""
    right_type: str = ""
    right_nature: str = ""
    restrictions: tuple[PropertyRestriction, ...] = ()

    @property
    def restricted(self) -> bool:
        return bool(self.restrictions)

    def restriction_summary(self) -> str:
        """抵押、查封 in the standard order, or 无限制."""
        if not self.restrictions:
            return NO_RESTRICTION
        kinds = list(dict.fromkeys(r.kind for r in self.restrictions))
        order = {k: i for i, k in enumerate(RESTRICTION_KINDS)}
        return "、".join(sorted(kinds, key=lambda k: (order.get(k, len(order)), kinds.index(k))))


def _text(v: Any) -> str:
    return v.strip() if isinstance(v, str) else ""


def _area(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        return None
    return float(v)


def unit_from_platform(d: Mapping[str, Any]) -> PropertyUnit:
    """The public fields of one unit of the platform's answer (owner and anything else are not read)."""
    restrictions = tuple(
        PropertyRestriction(_text(r.get("kind")) or "限制", _text(r.get("registered_on")), _text(r.get("note")))
        for r in (d.get("restrictions") or ()) if isinstance(r, Mapping))
    return PropertyUnit(
        unit_number=_text(d.get("unit_number")), address=_text(d.get("address")),
        certificate_number=_text(d.get("certificate_number")), area_m2=_area(d.get("area_m2")),
        land_area_m2=_area(d.get("land_area_m2")), use=_text(d.get("use")), right_type=_text(d.get("right_type")),
        right_nature=_text(d.get("right_nature")), restrictions=restrictions)


def units_from_answer(answer: Mapping[str, Any]) -> tuple[PropertyUnit, ...]:
    return tuple(unit_from_platform(u) for u in (answer.get("results") or ()) if isinstance(u, Mapping))


def query_text(by: str, value: str) -> str:
    """What was searched, as printed: 不动产单元号 370306 004002 GB00123 F00010502."""
    shown = format_unit_number(value) if by == "unit_number" and len(value) == 28 else value
    return f"{BY_NAMES.get(by, by)}：{shown}"


def _area_text(v: float | None) -> str:
    return "—" if v is None else f"{v:g}平方米"


def natural_state(unit: PropertyUnit) -> list[tuple[str, str]]:
    """(label, value) of the unit's natural state, in the order screen and slip show them."""
    out = [("坐落", unit.address or "—")]
    if unit.unit_number:
        shown = format_unit_number(unit.unit_number) if len(unit.unit_number) == 28 else unit.unit_number
        out.append(("不动产单元号", shown))
    out.append(("不动产权证书号", unit.certificate_number or "未发证"))
    if unit.area_m2 is not None:
        out.append(("房屋建筑面积", _area_text(unit.area_m2)))
    if unit.land_area_m2 is not None:
        out.append(("土地面积", _area_text(unit.land_area_m2)))
    out += [("用途", unit.use or "—"), ("权利类型", unit.right_type or "—")]
    if unit.right_nature:
        out.append(("权利性质", unit.right_nature))
    return out


def restriction_lines(unit: PropertyUnit) -> list[str]:
    """Each restriction with its date and note, or 无限制."""
    return [r.text() for r in unit.restrictions] or [NO_RESTRICTION]


@dataclass(frozen=True)
class PropertySlip:
    """Everything on the slip: the query, what it found, when; nothing about any owner or citizen."""

    brand: str
    station: str
    by: str
    value: str
    units: tuple[PropertyUnit, ...]
    queried_at: str  # local time of the query, 2026-11-30 15:02
    as_of: str = ""  # the register's own time stamp, as the platform gave it


def compose_property_slip(slip: PropertySlip, paper_mm: int = 58) -> list[Block]:
    """The slip as layout blocks for `paper_mm` paper (58 or 80)."""
    cols = columns_for_paper(paper_mm)
    blocks: list[Block] = slip_heading(slip.brand, slip.station, "不动产登记信息查询单", cols)
    blocks += wrapped_lines("查询方式：" + query_text(slip.by, slip.value), cols)
    blocks += wrapped_lines(f"查询时间：{slip.queried_at}", cols)
    blocks += wrapped_lines(f"查询结果：{len(slip.units)} 个不动产单元" if slip.units else "查询结果：没有查到", cols,
                     bold=True)
    for i, unit in enumerate(slip.units, 1):
        blocks.append(Rule())
        if len(slip.units) > 1:
            blocks += wrapped_lines(f"【第{i}个】", cols, bold=True)
        blocks += wrapped_lines("【自然状况】", cols, bold=True)
        for label, value in natural_state(unit):
            blocks += hanging_lines(f"{label}：", value, cols)
        blocks += wrapped_lines("【限制信息】", cols, bold=True)
        for text in restriction_lines(unit):
            blocks += hanging_lines("• ", text, cols, bold=unit.restricted)
    blocks.append(Rule())
    if slip.as_of:
        blocks += wrapped_lines(f"登记信息截至：{slip.as_of}", cols)
    blocks += wrapped_lines(SLIP_NOTE, cols)
    blocks += wrapped_lines("本单不含权利人信息。", cols)
    blocks.append(Feed(3))
    blocks.append(Cut())
    return blocks


def unit_views(units: Sequence[PropertyUnit]) -> list[dict[str, Any]]:
    """Display values of each unit for a screen: title, natural-state lines, restrictions."""
    return [{"title": u.address or u.unit_number, "lines": [f"{k}：{v}" for k, v in natural_state(u)[1:]],
             "restriction_summary": u.restriction_summary(), "restrictions": restriction_lines(u),
             "restricted": u.restricted} for u in units]

