"""The 一次性告知单: the item's guide on paper, for a citizen who takes it home (issue 14 item 4).

An elderly villager who lacks a material must not leave with nothing in hand. The slip says
what the screen's guide says: the conditions, each material with what replaces it (an
electronic licence fetched at the kiosk, data the departments share, or bring it), the fee,
the time limits, when the station has staff and the helper's phone, and a QR code linking the
item's page on the provincial platform. It is composed from the catalog and the station's
configuration only: nothing about the citizen is ever on it.

Composition yields the same layout blocks as receipts (kiosk.domain.receipt), so the ESC/POS
printer (GB18030), the emulator and a preview show the same thing.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kiosk.domain.elicence import licence_name
from kiosk.domain.receipt import (
    Block,
    Cut,
    Feed,
    Qr,
    Rule,
    columns_for_paper,
    hanging_lines,
    slip_heading,
    wrapped_lines,
)

__all__ = [
    "DEFAULT_ITEM_PAGE_URL", "GuideMaterial", "GuideSlip", "compose_guide", "guide_for_item",
    "item_page_url", "material_replacement", "staffed_hours_text",
]

#: Where the item's page is on the provincial platform; ``{code}`` is the catalog code, ``{region}``
#: the kiosk's region. A placeholder address, like the catalog's implementation codes, until the
#: province publishes its item page addresses ([kiosk] item_page_url overrides it).
DEFAULT_ITEM_PAGE_URL = "https://zwfw.sd.gov.cn/item?region={region}&code={code}"

_DAY_NAMES = {"mon": "周一", "tue": "周二", "wed": "周三", "thu": "周四", "fri": "周五", "sat": "周六",
              "sun": "周日"}


@dataclass(frozen=True)
class GuideMaterial:
    """One material line: its name, whether it is needed, what can stand in for it, the catalog note."""

    name: str
    required: bool
    replacement: str
    note: str = ""


@dataclass(frozen=True)
class GuideSlip:
    """Everything on the slip; no field holds anything about a citizen."""

    station: str
    brand: str
    item_code: str
    item: str
    conditions: tuple[str, ...]
    materials: tuple[GuideMaterial, ...]
    fee: str
    promised: str
    legal: str
    staffed_hours: str
    helper_phone: str
    service_phone: str
    page_url: str
    missing: tuple[str, ...] = field(default_factory=tuple)  # the materials the visit stopped for


def material_replacement(material: Any) -> str:
    """What replaces a catalog material (kiosk.domain.catalog.Material) on paper: the citizen's choice."""
    if getattr(material, "exempt_shared", False):
        return "免提交：部门间共享，不用带"
    licence_type = getattr(material, "licence_type", None)
    if licence_type:
        return f"可用电子证照代替（{licence_name(licence_type)}）：在本机扫爱山东APP的证照二维码"
    return "请带原件" if getattr(material, "required", True) else "如有请带上"


def staffed_hours_text(periods: Iterable[Any]) -> str:
    """[hours] staffed periods as one line: 周一至周五 08:30-12:00、13:30-17:30 (days in config order)."""
    by_days: dict[str, list[str]] = {}
    for p in periods:
        days = str(p.days)
        first, _, last = days.partition("-")
        label = _DAY_NAMES.get(first, first) + (f"至{_DAY_NAMES.get(last, last)}" if last else "")
        by_days.setdefault(label, []).append(f"{p.open}-{p.close}")
    return "；".join(f"{d} {'、'.join(times)}" for d, times in by_days.items())


def item_page_url(template: str, *, code: str, region: str) -> str:
    """The item's page address from the configured template."""
    return template.replace("{code}", code).replace("{region}", region)


def _limit(v: int | str | None) -> str:
    if isinstance(v, int):
        return "当场办结" if v == 0 else f"{v}个工作日"
    return str(v or "")


def guide_for_item(item: Any, cfg: Any, *, missing: Sequence[str] = ()) -> GuideSlip:
    """The slip of a catalog item at this station (cfg: kiosk.config.KioskConfig)."""
    kiosk = cfg.kiosk
    template = getattr(kiosk, "item_page_url", None) or DEFAULT_ITEM_PAGE_URL
    return GuideSlip(
        station=kiosk.station_name, brand=kiosk.brand, item_code=item.code, item=item.title,
        conditions=tuple(item.conditions),
        materials=tuple(GuideMaterial(m.name, bool(m.required), material_replacement(m), m.note or "")
                        for m in item.materials),
        fee=item.fee or "不收费", promised=_limit(item.promised_limit), legal=_limit(item.legal_limit),
        staffed_hours=staffed_hours_text(cfg.hours.staffed),
        helper_phone=kiosk.helper_phone, service_phone=kiosk.service_phone,
        page_url=item_page_url(template, code=item.code, region=kiosk.region_code),
        missing=tuple(missing))


def compose_guide(slip: GuideSlip, paper_mm: int = 58) -> list[Block]:
    """The slip as layout blocks for `paper_mm` paper (58 or 80)."""
    cols = columns_for_paper(paper_mm)
    blocks: list[Block] = slip_heading(slip.brand, slip.station, "一次性告知单", cols)
    blocks += wrapped_lines("办理事项：" + slip.item, cols, bold=True)
    blocks += wrapped_lines(f"事项编码：{slip.item_code}", cols)
    if slip.missing:
        blocks.append(Rule())
        blocks += wrapped_lines("您这次还缺：" + "、".join(slip.missing), cols, bold=True)
        blocks += wrapped_lines("备齐后带上本单再来办理。", cols)
    blocks.append(Rule())
    blocks += wrapped_lines("【办理条件】", cols, bold=True)
    for i, c in enumerate(slip.conditions or ("无特别条件",), 1):
        blocks += hanging_lines(f"{i}.", c, cols)
    blocks += wrapped_lines("【需要的材料】", cols, bold=True)
    for i, m in enumerate(slip.materials, 1):
        mark = "（必须）" if m.required else "（如有）"
        blocks += hanging_lines(f"{i}.", m.name + mark, cols, bold=m.name in slip.missing)
        blocks += hanging_lines("  → ", m.replacement, cols)
        if m.note:
            blocks += hanging_lines("  注：", m.note, cols)
    blocks += wrapped_lines("【收费】", cols, bold=True)
    blocks += wrapped_lines(slip.fee, cols)
    blocks += wrapped_lines("【办理时限】", cols, bold=True)
    if slip.promised:
        blocks += wrapped_lines(f"承诺时限：{slip.promised}", cols)
    if slip.legal:
        blocks += wrapped_lines(f"法定时限：{slip.legal}", cols)
    blocks.append(Rule())
    if slip.staffed_hours:
        blocks += wrapped_lines("工作人员在岗：" + slip.staffed_hours, cols)
    if slip.helper_phone:
        blocks += wrapped_lines(f"帮办代办电话：{slip.helper_phone}", cols)
    blocks += wrapped_lines(f"政务服务热线：{slip.service_phone}", cols)
    blocks.append(Feed(1))
    blocks.append(Qr(slip.page_url))
    blocks += wrapped_lines("扫码查看省政务服务网上的事项指南", cols, align="center")
    blocks.append(Feed(3))
    blocks.append(Cut())
    return blocks
