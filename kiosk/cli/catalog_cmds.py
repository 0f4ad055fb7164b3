"""`kiosk catalog list|show|search`: the service items, for technicians and tools.

JSON output (--json) is the item objects exactly as in config/catalog/items.json
(kiosk.domain.catalog.ITEM_FIELDS); the human output is a compact table in Chinese.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Iterable

import click

from kiosk.cli._groups import config_option, echo_json, fail, group
from kiosk.config import ConfigError, load_config
from kiosk.domain.catalog import Catalog, CatalogError, Item, load_catalog

FLOW_NAMES = {"query_print": "查询打印", "apply": "申请", "pay": "缴费", "certify": "认证"}
TYPE_NAMES = {"text": "文字", "phone": "电话", "date": "日期", "choice": "选择", "id_number": "身份证号",
              "bank_account": "银行卡号", "number": "数字"}


def _width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def _cut(s: str, width: int) -> str:
    out, w = "", 0
    for c in s:
        cw = _width(c)
        if w + cw > width - 1 and _width(s) > width:
            return out + "…"
        out += c
        w += cw
    return out


def _pad(s: str, width: int) -> str:
    s = _cut(s, width)
    return s + " " * max(0, width - _width(s))


def limit_text(v: int | str) -> str:
    """A time limit as the guide prints it: 0 is 当场办结, N working days, or the text as given."""
    if isinstance(v, int):
        return "当场办结" if v == 0 else f"{v}个工作日"
    return v


def _table(items: Iterable[Item], disabled: set[str] | frozenset[str] = frozenset()) -> str:
    cols = (("编码", 12), ("领域", 12), ("事项名称", 44), ("方式", 8), ("承诺时限", 20))
    lines = ["  ".join(_pad(h, w) for h, w in cols).rstrip()]
    lines.append("  ".join("-" * w for _, w in cols))
    n = 0
    for it in items:
        n += 1
        name = it.sub_name + ("（已停用）" if it.code in disabled else "")
        row = (it.code, it.domain, name, FLOW_NAMES[it.flow], limit_text(it.promised_limit))
        lines.append("  ".join(_pad(v, w) for v, (_, w) in zip(row, cols, strict=True)).rstrip())
    lines.append(f"共 {n} 项")
    return "\n".join(lines)


def _guide(it: Item) -> str:
    """The 一次性告知 of one item, as the technician would read it to a citizen."""
    p = it.provenance
    out = [
        f"{it.code}  {it.sub_name}",
        f"领域：{it.domain}    主项：{it.main_name}",
        f"事项类别：{it.category}    办理形式：{it.handling_form}    服务对象：{it.service_object}",
        f"办件类型：{it.item_type}    法定时限：{limit_text(it.legal_limit)}    "
        f"承诺时限：{limit_text(it.promised_limit)}    收费：{it.fee}",
        f"终端办理方式：{FLOW_NAMES[it.flow]}    需要刷身份证：{'是' if it.requires_id else '否'}",
        "需要的材料：",
    ]
    for i, m in enumerate(it.materials, 1):
        tag = "不用带（数据共享）" if m.exempt_shared else ("必须" if m.required else "可选")
        out.append(f"  {i}. {m.name}【{tag}】" + (f" — {m.note}" if m.note else ""))
    out.append("办理条件：")
    out += [f"  - {c}" for c in it.conditions]
    out.append("需要填写：")
    for f in it.fields:
        extra = "：" + "、".join(f.choices) if f.choices else ""
        out.append(f"  - {f.label}（{TYPE_NAMES[f.type]}，{'必填' if f.required else '选填'}）{extra}")
    sources = "、".join(f"{s.list}" + (f" 第{s.row}行" if s.row is not None else "") for s in p.sources)
    out.append(f"来源：{sources}" + (f"（清单中的领域：{p.domain_in_seed}）" if p.domain_in_seed else ""))
    if p.basis:
        out.append(f"收录理由：{p.basis}")
    out.append(f"实施编码：{it.implementation_code}（占位编码，不是正式实施编码）")
    return "\n".join(out)


def _load(config_file: str | None) -> tuple[Catalog, set[str]]:
    try:
        cfg = load_config(site_file=config_file)
    except ConfigError as e:
        fail(f"配置有误 (configuration error):\n{e}", 2)
    path = cfg.resolve_path(cfg.catalog.path) if cfg.catalog.path else None
    try:
        cat = load_catalog(path)
    except CatalogError as e:
        fail(f"事项目录有误 (catalog error): {e}", 2)
    return cat, set(cfg.catalog.disabled)


def register(cli: click.Group) -> None:
    """Add `catalog list|show|search` to the root group (called by kiosk.cli.main)."""
    grp = group(cli, "catalog", help="The service items (事项目录): list, show, search.")

    @grp.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print the item objects as JSON.")
    @click.option("--enabled-only", is_flag=True, help="Leave out the items switched off in [catalog] disabled.")
    @config_option
    def list_cmd(as_json: bool, enabled_only: bool, config_file: str | None) -> None:
        """List every service item."""
        cat, disabled = _load(config_file)
        if enabled_only:
            cat = cat.enabled(disabled & {it.code for it in cat.items})
        if as_json:
            echo_json(cat.to_list())
        else:
            click.echo(_table(cat.items, disabled))

    @grp.command("show")
    @click.argument("code")
    @click.option("--json", "as_json", is_flag=True, help="Print the item object as JSON.")
    @config_option
    def show_cmd(code: str, as_json: bool, config_file: str | None) -> None:
        """Show one item's guide: materials, conditions, form fields, source."""
        cat, _ = _load(config_file)
        it = cat.find(code.strip().upper())
        if it is None:
            fail(f"没有编码为 {code} 的事项 (unknown item code); "
                 f"用 `kiosk catalog search` 或 `kiosk catalog list` 查找编码", 1)
        if as_json:
            echo_json(it.to_dict())
        else:
            click.echo(_guide(it))

    @grp.command("search")
    @click.argument("query")
    @click.option("--json", "as_json", is_flag=True, help="Print the matching item objects as JSON.")
    @click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
                  help="At most this many results.")
    @config_option
    def search_cmd(query: str, as_json: bool, limit: int, config_file: str | None) -> None:
        """Search by pinyin initials (ylbx), full pinyin (yanglao) or Chinese (养老)."""
        cat, disabled = _load(config_file)
        results = cat.search(query, limit=limit)
        if as_json:
            echo_json([it.to_dict() for it in results])
        elif not results:
            click.echo(f"没有找到和“{query}”有关的事项")
        else:
            click.echo(_table(results, disabled))
