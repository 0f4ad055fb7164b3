"""The catalog as the screens show it: enabled items, domains, the most used, search, the 一次性告知."""
from __future__ import annotations

from typing import Any

from kiosk.app.common import ITEM_SCREENS, limit_text
from kiosk.app.context import AppContext
from kiosk.app.errors import logged_entry_points
from kiosk.domain.catalog import Catalog, Item

#: the steps each flow walks, for the guide screen
FLOW_STEPS = {
    "apply": ["刷身份证", "填写信息", "拍摄材料", "核对并提交", "打印回执"],
    "query_print": ["刷身份证", "拍照核验本人", "查看证明", "打印"],
    "pay": ["刷身份证", "核对账单", "手机扫码付款", "打印回执"],
    "certify": ["刷身份证", "正对摄像头拍照", "提交认证", "打印回执"],
}
#: the steps of an item with a screen of its own (kiosk.app.common.ITEM_SCREENS)
ITEM_STEPS = {"QHB-BDC-004": ["选择按坐落、证书号或单元号查询", "输入后点查询", "查看自然状况和限制信息",
                              "需要时打印查询单"]}


@logged_entry_points
class CatalogViews:
    """Read-only views of the catalog, minus the items the configuration switched off."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    @property
    def catalog(self) -> Catalog | None:
        return self.ctx.catalog

    def items(self) -> list[Item]:
        if self.ctx.catalog is None:
            return []
        disabled = set(self.ctx.config.catalog.disabled)
        return [it for it in self.ctx.catalog.items if it.code not in disabled]

    def domains(self) -> list[str]:
        seen: dict[str, None] = {}
        for it in self.items():
            seen.setdefault(it.domain, None)
        return list(seen)

    def items_in(self, domain: str) -> list[Item]:
        return [it for it in self.items() if it.domain == domain]

    def items_of_flow(self, flow: str) -> list[Item]:
        return [it for it in self.items() if it.flow == flow and it.code not in ITEM_SCREENS]

    def most_used(self, n: int = 6) -> list[Item]:
        by_code = {it.code: it for it in self.items()}
        chosen = [by_code[c] for c in self.ctx.config.catalog.most_used if c in by_code]
        if len(chosen) < n:
            kinds: dict[str, Item] = {}
            for it in self.items():
                kinds.setdefault(it.flow, it)
            for it in list(kinds.values()) + self.items():
                if it not in chosen:
                    chosen.append(it)
                if len(chosen) >= n:
                    break
        return chosen[:n]

    def search(self, query: str, limit: int = 20) -> list[Item]:
        if self.ctx.catalog is None or not query:
            return []
        disabled = set(self.ctx.config.catalog.disabled)
        return [it for it in self.ctx.catalog.search(query, limit=limit + len(disabled))
                if it.code not in disabled][:limit]

    def item(self, code: str) -> Item:
        return self.ctx.require_catalog().get(code)

    def item_view(self, code: str | None = None) -> dict[str, Any]:
        """The 一次性告知 of an item, as plain strings for the guide screen."""
        it = self.ctx.require_catalog().get(code) if code else self.ctx.current_item
        if it is None:
            return {}
        mats = []
        for m in it.materials:
            tag = "（免提交：部门间共享）" if m.exempt_shared else ("（必须）" if m.required else "（如有）")
            mats.append(f"{m.name}{tag}" + (f"：{m.note}" if m.note else ""))
        steps = ITEM_STEPS.get(it.code) or FLOW_STEPS[it.flow]
        return {
            "code": it.code, "title": it.title, "domain": it.domain,
            "item_type": it.item_type, "conditions": list(it.conditions), "materials": mats,
            "promised": limit_text(it.promised_limit), "legal": limit_text(it.legal_limit),
            "fee": it.fee or "不收费", "flow": it.flow,
            "steps": [f"第{i + 1}步：{s}" for i, s in enumerate(steps)],
        }

    def announcements(self) -> list[str]:
        return [a.text for a in self.ctx.config.announcements]
