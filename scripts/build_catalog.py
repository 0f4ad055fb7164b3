#!/usr/bin/env python3
"""Build config/catalog/items.json, the kiosk's 108 service items, from the seed gazette.

Why a build step: the seed is a PDF-extracted text whose tables wrap cells across
lines, leave "same as above" cells empty and mix bracket widths.  Parsing it once,
here, and committing the result keeps the runtime free of the seed and makes every
change to the catalog a reviewable diff.

Steps (issue 2, point 4):
1. parse 附件3 (village) and 附件4 (community), normalise, de-duplicate (village first);
2. add the town (附件1) items a citizen can finish at a self-service terminal;
3. add items of the seed's five named domains (商事登记、人社、交通、不动产、税务)
   that the seed's lists lack, from config/catalog/outside_seed.toml;
4. attach the one-time notice (materials, conditions) and form fields from
   config/catalog/item_details.toml;
5. assign stable codes (kept from the committed items.json when it exists);
6. add the items the seed promises in its text, not its lists (config/catalog/seed_text.toml,
   provenance "seed text" with the seed's sentence, checked against the seed), beyond the 108.

Decisions recorded in the data:
- town-list items have no 办理形式 column; on the terminal they are "自助办理";
- 个体工商户登记 (seed domain 审批服务) is shown under 商事登记; provenance keeps
  "domain_in_seed";
- cells the PDF extraction lost are filled from ROW_FIXES and listed in provenance
  "repaired";
- `implementation_code` is a PLACEHOLDER built from region 370306 and the item code,
  not the province's real 实施编码;
- a material names the electronic licence that can replace it (``licence_type``) by its name
  (LICENCE_BY_MATERIAL) or explicitly in item_details.toml;
- the 爱山东 居民码 may identify the citizen (``citizen_code_allowed``) where the item needs an
  identity but no card in hand (not with a social security card among its materials, not for
  资格认证, which is a face check against the ID card); item_details.toml may say otherwise.

Usage:  .venv/bin/python scripts/build_catalog.py [--seed FILE] [--out FILE] [--check]
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CATALOG_DIR = ROOT / "config" / "catalog"
DEFAULT_OUT = CATALOG_DIR / "items.json"
SEED_NAME = "000_a1b172bc6f8fe25b.txt"
REGION_CODE = "370306"  # 周村区
TARGET_COUNT = 108


def find_seed() -> Path | None:
    """The seed lives in ../shared/seed beside the clone (CI) or /work/shared/seed."""
    for base in (ROOT.parent / "shared" / "seed", Path("/work/shared/seed")):
        p = base / SEED_NAME
        if p.is_file():
            return p
    return None


# --------------------------------------------------------------------------- parsing

TOWN_COLUMNS = ("seq", "domain", "category", "main_name", "sub_name", "service_object",
                "item_type", "legal_limit", "promised_limit", "fee")
STATION_COLUMNS = ("seq", "domain", "main_name", "sub_name", "category", "handling_form",
                   "service_object", "item_type", "legal_limit", "promised_limit", "fee")

_ROW_START = re.compile(r"^(\d{1,3})\t")
_CJK = r"\u3400-\u9fff\uff00-\uffef\u3000-\u303f“”‘’《》"


def normalise(text: str) -> str:
    """One spelling per cell: full-width brackets and commas, no stray spaces."""
    s = text.replace("\u3000", " ").strip()
    s = s.replace("(", "（").replace(")", "）")
    # Cells wrapped inside the PDF leave a space where the line broke; Chinese has none.
    s = re.sub(rf"(?<=[{_CJK}\w])\s+(?=[{_CJK}\w（）])", "", s)
    s = re.sub(r"\s+", "", s) if re.search(rf"[{_CJK}]", s) else s
    while True:  # ",," after Chinese: each replacement makes the next comma follow "，"
        t = re.sub(rf"(?<=[{_CJK}]),", "，", s)
        if t == s:
            break
        s = t
    s = s.replace(":", "：") if re.search(rf"[{_CJK}]", s) else s
    return s


@dataclass
class SeedRow:
    list_name: str  # 附件1 / 附件3 / 附件4
    row: int  # 序号 in that list
    cells: dict[str, str] = field(default_factory=dict)


def _table_lines(lines: list[str], heading: str, stop_prefixes: tuple[str, ...]) -> list[str]:
    """Lines of the table under `附件 N` up to the next heading (blank lines dropped)."""
    try:
        start = next(i for i, ln in enumerate(lines) if ln.strip() == heading)
    except StopIteration:
        raise ValueError(f"seed: heading {heading!r} not found") from None
    out: list[str] = []
    header_seen = False
    for ln in lines[start + 1:]:
        if any(ln.strip().startswith(p) for p in stop_prefixes):
            break
        if not ln.strip():
            continue
        if ln.startswith("序号\t"):
            header_seen = True
            continue
        if header_seen:
            out.append(ln.rstrip("\n"))
    return out


def _rows(lines: list[str], list_name: str, columns: tuple[str, ...]) -> list[SeedRow]:
    """Split lines into rows; a line not starting with a 序号 continues the previous row."""
    raw: list[list[str]] = []
    for ln in lines:
        if _ROW_START.match(ln) or not raw:
            raw.append(ln.split("\t"))
        else:  # a wrapped row: its cells continue the previous row's cells
            cont = ln.split("\t")
            prev = raw[-1]
            for i, c in enumerate(cont):
                if i < len(prev):
                    prev[i] = (prev[i] + c) if c.strip() else prev[i]
                else:
                    prev.append(c)
    rows: list[SeedRow] = []
    for cells in raw:
        cells = [normalise(c) for c in cells]
        while len(cells) > len(columns) and cells[-1] == "":
            cells.pop()
        row = SeedRow(list_name, int(cells[0]))
        row.cells = {col: (cells[i] if i < len(cells) else "") for i, col in enumerate(columns)}
        if len(cells) > len(columns):  # a shifted row (town 104-106): keep all text
            row.cells["_extra"] = "|".join(cells[len(columns):])
        rows.append(row)
    # Empty 主项名称 (and 所属领域) means "same as the row above".
    for prev, row in zip(rows, rows[1:]):
        for col in ("main_name", "domain", "category"):
            if not row.cells.get(col):
                row.cells[col] = prev.cells.get(col, "")
    return rows


def parse_seed(path: Path) -> dict[str, list[SeedRow]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    town = _table_lines(lines, "附件 1", ("附件 2",))
    village = _table_lines(lines, "附件 3", ("附件 4",))
    community = _table_lines(lines, "附件 4", ("淄博市镇", "附件 5", "附件 6"))
    return {
        "附件1": _rows(town, "附件1", TOWN_COLUMNS),
        "附件3": _rows(village, "附件3", STATION_COLUMNS),
        "附件4": _rows(community, "附件4", STATION_COLUMNS),
    }


# --------------------------------------------------------------------------- merging

#: Different spellings of one item across the lists (community spelling -> village spelling).
SUB_ALIASES: dict[str, str] = {
    "居民养老保险关系转续": "居民基本养老保险关系转续",
    "烈士遗属、因公牺牲军人遗属、病故军人遗属享受定期抚恤金待遇":
        "烈士遗属、因公牺牲军人遗属、病故军人遗属享受定期抚恤金待遇申请",
    "享受部分烈士子女定期生活补助身份认定": "享受部分烈士子女定期生活补助身份认定申请",
}

#: Cell repairs where the PDF extraction split one cell over two rows or left cells empty.
#: Every repaired field is listed in the item's provenance under "repaired".
ROW_FIXES: dict[tuple[str, int], dict[str, str]] = {
    # "计划生育家庭 / 特别独生子女扶助金": one main-name cell broken over rows 42 and 43.
    ("附件3", 42): {"main_name": "计划生育家庭特别扶助"},
    ("附件3", 43): {"main_name": "计划生育家庭特别扶助"},
    # Row 26 has only names; the town list has no such row.  Values follow row 25's sibling items.
    ("附件3", 26): {"service_object": "自然人", "item_type": "承诺件", "legal_limit": "无",
                   "promised_limit": "当月办理，下月发放", "fee": "不收费"},
    # 办件类型 and both time limits are empty in every list for this item; values follow
    # its sibling 农村土地承包经营权流转合同鉴证 (row 76).
    ("附件3", 77): {"item_type": "承诺件", "legal_limit": "无", "promised_limit": "15个工作日"},
}

#: Town-list (附件1) rows a citizen can finish at the terminal, by 序号.
TOWN_ROWS_FOR_TERMINAL: tuple[int, ...] = (
    107, 109, 110, 111, 112,  # 个体工商户登记: 设立, 变更（经营范围/地址/名称）, 注销
    36, 37,                   # 社会保障卡临时挂失, 密码重置
    130, 131, 132,            # 水费、燃气费、电费缴纳
    133, 134, 135,            # 自来水、燃气、用电居民户更名过户
    27,                       # 个体工商户、灵活就业人员基本养老保险申报缴费
    31,                       # 企业退休人员个人信息变更
    46,                       # 企业职工转个体医疗保险续接
)

#: The seed files 个体工商户登记 under 审批服务; on the terminal it is what the seed
#: calls 商事登记 (附件6-8), so it is shown there.  Provenance keeps the seed's domain.
DOMAIN_REMAP: dict[tuple[str, str], str] = {("审批服务", "个体工商户登记"): "商事登记"}

#: Domain -> code prefix.  Every domain an item may have must be listed here.
DOMAIN_CODES: dict[str, str] = {
    "人社": "RS", "医保": "YB", "民政": "MZ", "卫健": "WJ", "退役军人事务": "TY",
    "残疾人服务": "CJ", "自然资源": "ZR", "农业农村": "NY", "应急管理": "YJ", "住建": "ZJ",
    "市政服务": "SZ", "文化教育": "WH", "审批服务": "SP",
    "商事登记": "SS", "交通": "JT", "不动产": "BDC", "税务": "SW", "公安": "GA",
}

_DAYS = re.compile(r"^(\d+)个工作日$")


def parse_limit(text: str) -> int | str:
    """'7个工作日' -> 7; anything else stays the source text ('无', '当月办理，下月发放')."""
    m = _DAYS.match(text)
    return int(m.group(1)) if m else text


def flow_for(sub_name: str, main_name: str) -> str:
    """The terminal's four flows, from the item's wording."""
    name = sub_name or main_name
    if "查询" in name or "打印" in name:
        return "query_print"
    if "缴纳" in name or "缴费" in name:
        return "pay"
    if "资格认证" in name:
        return "certify"
    return "apply"


def _base_item(row: SeedRow, handling_form: str | None = None) -> dict[str, Any]:
    c = dict(row.cells)
    repaired = sorted(ROW_FIXES.get((row.list_name, row.row), {}))
    c.update(ROW_FIXES.get((row.list_name, row.row), {}))
    sub = SUB_ALIASES.get(c["sub_name"], c["sub_name"]) or c["main_name"]
    main = c["main_name"] or sub
    domain = c["domain"]
    provenance: dict[str, Any] = {"list": row.list_name, "row": row.row,
                                  "sources": [{"list": row.list_name, "row": row.row}]}
    remapped = DOMAIN_REMAP.get((domain, main))
    if remapped:
        provenance["domain_in_seed"] = domain
        domain = remapped
    if repaired:
        provenance["repaired"] = repaired
    return {
        "domain": domain,
        "main_name": main,
        "sub_name": sub,
        "category": c["category"],
        "handling_form": handling_form or c.get("handling_form", ""),
        "service_object": c["service_object"],
        "item_type": c["item_type"],
        "legal_limit": parse_limit(c["legal_limit"]),
        "promised_limit": parse_limit(c["promised_limit"]),
        "fee": c["fee"],
        "flow": flow_for(sub, main),
        "provenance": provenance,
    }


def merge_seed_items(tables: dict[str, list[SeedRow]]) -> list[dict[str, Any]]:
    """Village ∪ community (de-duplicated by sub-item name), then the terminal's town rows."""
    items: list[dict[str, Any]] = []
    by_sub: dict[str, dict[str, Any]] = {}
    for list_name in ("附件3", "附件4"):
        for row in tables[list_name]:
            item = _base_item(row)
            seen = by_sub.get(item["sub_name"])
            if seen is not None:
                seen["provenance"]["sources"].append({"list": list_name, "row": row.row})
                continue
            by_sub[item["sub_name"]] = item
            items.append(item)
    town = {r.row: r for r in tables["附件1"]}
    for n in TOWN_ROWS_FOR_TERMINAL:
        item = _base_item(town[n], handling_form="自助办理")
        seen = by_sub.get(item["sub_name"])
        if seen is not None:
            seen["provenance"]["sources"].append({"list": "附件1", "row": n})
            continue
        by_sub[item["sub_name"]] = item
        items.append(item)
    # Record the town-list row of station items too: the same item, one level up.
    for row in tables["附件1"]:
        sub = SUB_ALIASES.get(row.cells["sub_name"], row.cells["sub_name"])
        seen = by_sub.get(sub)
        if seen is not None and {"list": "附件1", "row": row.row} not in seen["provenance"]["sources"]:
            seen["provenance"]["sources"].append({"list": "附件1", "row": row.row})
    return items


def outside_seed_items(path: Path) -> list[dict[str, Any]]:
    """Items of the seed's five named domains that its lists lack (hand-written)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    out = []
    for entry in data["item"]:
        item = {k: entry[k] for k in ("domain", "main_name", "sub_name", "category", "handling_form",
                                      "service_object", "item_type", "legal_limit",
                                      "promised_limit", "fee")}
        item["flow"] = entry.get("flow") or flow_for(item["sub_name"], item["main_name"])
        item["provenance"] = {"list": "outside seed", "row": None,
                              "sources": [{"list": "outside seed", "row": None}],
                              "basis": entry["basis"]}
        out.append(item)
    return out


# --------------------------------------------------------------------------- details

#: Material name (as in item_details.toml) -> the e-licence type that can stand in for it
#: (kiosk.domain.elicence.LICENCE_TYPES). Someone else's licence (原户主身份证) has none: the library
#: only gives the identified citizen's own.
LICENCE_BY_MATERIAL: dict[str, str] = {
    "本人身份证": "resident_id_card",
    "户口簿": "household_register",
    "营业执照": "business_licence",
    "房产证或不动产权证书": "real_estate_certificate",
    "经营场所使用证明（房产证或租房合同）": "real_estate_certificate",
    "结婚证": "marriage_certificate",
    "残疾人证": "disability_certificate",
    "驾驶证": "driving_licence",
    "行驶证": "vehicle_licence",
    "土地承包经营权证": "land_contract_certificate",
}

#: Materials that must be in the citizen's hand at the kiosk: no citizen code instead of them.
CARD_IN_HAND = ("本人社会保障卡",)


def material_json(m: dict[str, Any]) -> dict[str, Any]:
    out = {"name": m["name"], "required": m.get("required", True),
           "exempt_shared": m.get("exempt_shared", False), "note": m.get("note", "")}
    licence_type = m.get("licence_type", LICENCE_BY_MATERIAL.get(m["name"]))
    if licence_type:
        out["licence_type"] = licence_type
    return out


def citizen_code_allowed(item: dict[str, Any], entry: dict[str, Any]) -> bool:
    if "citizen_code" in entry:
        return bool(entry["citizen_code"])
    return (item["requires_id"] and item["flow"] != "certify"
            and not any(m["name"] in CARD_IN_HAND for m in item["materials"]))

def _resolve_refs(values: list[Any], table: dict[str, Any], kind: str, sub: str) -> list[Any]:
    out = []
    for v in values:
        if isinstance(v, str):
            if v not in table:
                raise ValueError(f"item_details: {sub!r} refers to unknown {kind} {v!r}")
            out.append(dict(table[v]))
        else:
            out.append(dict(v))
    return out


def attach_details(items: list[dict[str, Any]], path: Path) -> None:
    """一次性告知 and form fields from item_details.toml, keyed by sub-item name."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    materials, fields, entries = data["materials"], data["fields"], data["item"]
    used: set[str] = set()

    def entry_for(sub: str, depth: int = 0) -> dict[str, Any]:
        if sub not in entries:
            raise ValueError(f"item_details: no entry for {sub!r}")
        e = dict(entries[sub])
        like = e.pop("like", None)
        if like:
            if depth > 3:
                raise ValueError(f"item_details: 'like' chain too long at {sub!r}")
            base = entry_for(like, depth + 1)
            base.update(e)
            e = base
        return e

    for item in items:
        sub = item["sub_name"]
        e = entry_for(sub)
        used.add(sub)
        item["materials"] = [material_json(m) for m in _resolve_refs(e["materials"], materials, "material", sub)]
        item["conditions"] = list(e["conditions"])
        item["requires_id"] = bool(e.get("requires_id", True))
        item["fields"] = [
            {"name": f["name"], "label": f["label"], "type": f["type"],
             "required": f.get("required", True), "choices": list(f.get("choices", []))}
            for f in _resolve_refs(e["fields"], fields, "field", sub)]
        if "flow" in e:
            item["flow"] = e["flow"]
        item["citizen_code_allowed"] = citizen_code_allowed(item, e)
    unused = sorted(set(entries) - used)
    if unused:
        raise ValueError(f"item_details: entries for items not in the catalog: {unused}")


# --------------------------------------------------------------------------- codes

FIELD_ORDER = ("code", "domain", "main_name", "sub_name", "category", "handling_form",
               "service_object", "item_type", "legal_limit", "promised_limit", "fee", "flow",
               "materials", "conditions", "requires_id", "citizen_code_allowed", "fields", "provenance",
               "implementation_code")


def implementation_code(code: str) -> str:
    """A PLACEHOLDER for the province's 实施编码: region + our code, until the real codes are loaded."""
    return f"PLACEHOLDER-{REGION_CODE}-{code}"


def item_key(item: dict[str, Any]) -> tuple[str, str, str]:
    return (item["domain"], item["main_name"], item["sub_name"])


def assign_codes(items: list[dict[str, Any]], prior: list[dict[str, Any]] | None) -> None:
    """Keep every code already published; new items get the next number in their domain."""
    known = {item_key(p): p["code"] for p in (prior or [])}
    used: dict[str, int] = {}
    for code in known.values():
        prefix, num = code.rsplit("-", 1)
        used[prefix] = max(used.get(prefix, 0), int(num))
    for item in items:
        code = known.get(item_key(item))
        if code is None:
            if item["domain"] not in DOMAIN_CODES:
                raise ValueError(f"no code prefix for domain {item['domain']!r}")
            prefix = f"QHB-{DOMAIN_CODES[item['domain']]}"
            used[prefix] = used.get(prefix, 0) + 1
            code = f"{prefix}-{used[prefix]:03d}"
        item["code"] = code
        item["implementation_code"] = implementation_code(code)


# --------------------------------------------------------------------------- build

def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def seed_text_items(path: Path, seed: Path) -> list[dict[str, Any]]:
    """Items the seed promises in its text (not its lists); each quote must occur in the seed."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    seed_text = _squash(seed.read_text(encoding="utf-8"))
    out = []
    for entry in data["item"]:
        if _squash(entry["quote"]) not in seed_text:
            raise ValueError(f"seed_text: the quote of {entry['sub_name']!r} is not in the seed")
        item = {k: entry[k] for k in ("domain", "main_name", "sub_name", "category", "handling_form",
                                      "service_object", "item_type", "legal_limit",
                                      "promised_limit", "fee")}
        item["flow"] = entry.get("flow") or flow_for(item["sub_name"], item["main_name"])
        item["provenance"] = {"list": "seed text", "row": None, "sources": [{"list": "seed text", "row": None}],
                              "basis": entry["basis"], "quote": entry["quote"]}
        out.append(item)
    return out


def build(seed: Path, catalog_dir: Path = CATALOG_DIR,
          prior: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The whole catalog as JSON-ready dicts, in catalog order."""
    items = merge_seed_items(parse_seed(seed))
    items += outside_seed_items(catalog_dir / "outside_seed.toml")
    if len(items) != TARGET_COUNT:
        raise ValueError(f"catalog has {len(items)} items, expected {TARGET_COUNT}")
    seed_text = catalog_dir / "seed_text.toml"
    if seed_text.exists():
        items += seed_text_items(seed_text, seed)
    attach_details(items, catalog_dir / "item_details.toml")
    assign_codes(items, prior)
    return [{k: item[k] for k in FIELD_ORDER} for item in items]


def dump(items: list[dict[str, Any]]) -> str:
    return json.dumps({"version": 1, "region_code": REGION_CODE, "items": items},
                      ensure_ascii=False, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed data differs")
    args = ap.parse_args(argv)
    seed = args.seed or find_seed()
    if seed is None:
        print("seed not found (../shared/seed or /work/shared/seed)", file=sys.stderr)
        return 2
    prior = json.loads(args.out.read_text("utf-8"))["items"] if args.out.exists() else None
    text = dump(build(seed, prior=prior))
    if args.check:
        same = args.out.exists() and args.out.read_text("utf-8") == text
        print("catalog data is up to date" if same else f"{args.out} is stale: run {sys.argv[0]}")
        return 0 if same else 1
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {len(json.loads(text)['items'])} items to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
