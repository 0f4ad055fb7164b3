"""The catalog (108 list items plus what the seed's text promises): committed data, its validator, its build."""
from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path

import pydantic
import pytest

from kiosk.domain.catalog import (
    DEFAULT_PATH,
    FIELD_TYPES,
    FLOWS,
    ITEM_FIELDS,
    KNOWN_DOMAINS,
    Catalog,
    CatalogError,
    Item,
    load_catalog,
)

ROOT = Path(__file__).resolve().parents[2]


def _load_build_script():
    spec = importlib.util.spec_from_file_location("build_catalog", ROOT / "scripts" / "build_catalog.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["build_catalog"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


build_catalog = _load_build_script()


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def raw_items() -> list[dict]:
    return json.loads(DEFAULT_PATH.read_text("utf-8"))["items"]


def test_108_list_items_plus_the_seed_text_items(catalog):
    assert len(catalog) == 109
    assert len(catalog.items) == 109
    assert sum(1 for it in catalog.items if it.provenance.list != "seed text") == 108


def test_every_field_of_every_item_is_filled(raw_items):
    for raw in raw_items:
        assert tuple(raw) == ITEM_FIELDS, raw["code"]
        for key in ITEM_FIELDS:
            value = raw[key]
            assert value not in ("", None, [], {}), f"{raw['code']}: {key} empty"
        for m in raw["materials"]:
            assert set(m) - {"licence_type"} == {"name", "required", "exempt_shared", "note"}
            assert m["name"] and isinstance(m["exempt_shared"], bool)
        for f in raw["fields"]:
            assert set(f) == {"name", "label", "type", "required", "choices"}
            assert f["type"] in FIELD_TYPES
            assert bool(f["choices"]) == (f["type"] == "choice"), (raw["code"], f["name"])
        assert raw["flow"] in FLOWS
        for limit in (raw["legal_limit"], raw["promised_limit"]):
            assert isinstance(limit, int) or (isinstance(limit, str) and limit.strip())


def test_to_dict_round_trips_the_committed_json(catalog, raw_items):
    assert [it.to_dict() for it in catalog.items] == raw_items


def test_five_named_domains_are_covered(catalog):
    domains = catalog.by_domain()
    for d in ("商事登记", "人社", "交通", "不动产", "税务"):
        assert domains.get(d), d
    assert set(domains) <= set(KNOWN_DOMAINS)
    assert sum(len(v) for v in domains.values()) == 109


def test_no_duplicates(catalog):
    codes = [it.code for it in catalog.items]
    assert len(set(codes)) == 109
    keys = {(it.domain, it.main_name, it.sub_name) for it in catalog.items}
    assert len(keys) == 109
    # village ∪ community are de-duplicated by sub-item name
    assert len({it.sub_name for it in catalog.items}) == 109


def test_provenance_of_seed_and_outside_items(catalog):
    lists = {it.provenance.list for it in catalog.items}
    assert lists == {"附件3", "附件4", "附件1", "outside seed", "seed text"}
    for it in catalog.items:
        p = it.provenance
        if p.list in ("outside seed", "seed text"):
            assert p.row is None and p.basis
        else:
            assert isinstance(p.row, int) and p.row > 0
        assert (p.sources[0].list, p.sources[0].row) == (p.list, p.row)
    # a merged duplicate names every list that has it
    unemployed = catalog.search("无就业经历人员失业登记")[0]
    assert {s.list for s in unemployed.provenance.sources} == {"附件3", "附件4", "附件1"}


def test_town_items_for_the_terminal_are_present(catalog):
    subs = {it.sub_name for it in catalog.items}
    for name in ("个体工商户设立登记", "社会保障卡临时挂失", "社会保障卡密码重置", "水费缴纳",
                 "燃气费缴纳", "电费缴纳", "自来水居民户更名过户", "用电居民更名过户"):
        assert name in subs


def test_normalisation_of_the_seed_text(catalog):
    subs = {it.sub_name for it in catalog.items}
    assert "居民养老保险待遇领取资格认证" in subs  # "居民养老保险待遇 领取资格认证" in 附件3
    assert "再婚夫妻（一方未生育）已共同生育一个子女申请再生育" in subs  # half-width brackets in 附件4
    for it in catalog.items:
        for text in (it.domain, it.main_name, it.sub_name, it.category):
            assert " " not in text and "(" not in text and ")" not in text, text
    pay = next(it for it in catalog.items if it.sub_name == "居民养老保险待遇支付")
    assert pay.promised_limit == "当月办理，下月发放"
    assert pay.legal_limit == "无"
    unemployed = next(it for it in catalog.items if it.sub_name == "无就业经历人员失业登记")
    assert (unemployed.legal_limit, unemployed.promised_limit) == (7, 0)


def test_flows_follow_the_item_wording(catalog):
    by_sub = {it.sub_name: it for it in catalog.items}
    assert by_sub["个人参保缴费证明查询打印"].flow == "query_print"
    assert by_sub["水费缴纳"].flow == "pay"
    assert by_sub["居民基本医疗保险申报缴费"].flow == "pay"
    assert by_sub["居民养老保险待遇领取资格认证"].flow == "certify"
    assert by_sub["个体工商户设立登记"].flow == "apply"
    assert by_sub["水费缴纳"].requires_id is False
    assert {it.flow for it in catalog.items} == set(FLOWS)


def test_codes_and_implementation_codes(catalog):
    it = catalog.get("QHB-RS-001")
    assert it.sub_name == "无就业经历人员失业登记"
    for it in catalog.items:
        assert it.implementation_code == f"PLACEHOLDER-370306-{it.code}"


def test_get_find_and_unknown_code(catalog):
    with pytest.raises(KeyError, match="QHB-XX-999"):
        catalog.get("QHB-XX-999")
    assert catalog.find("QHB-XX-999") is None
    assert catalog.find("QHB-RS-001") is catalog.get("QHB-RS-001")
    assert "QHB-RS-001" in catalog


def test_enabled_drops_switched_off_items(catalog):
    smaller = catalog.enabled(["QHB-RS-001", "QHB-SZ-001"])
    assert len(smaller) == 107
    assert smaller.find("QHB-RS-001") is None
    assert smaller.search("shuifei") and all(i.code != "QHB-SZ-001" for i in smaller.search("shuifei"))
    with pytest.raises(CatalogError, match="QHB-NO-001"):
        catalog.enabled(["QHB-NO-001"])


def test_items_are_frozen(catalog):
    with pytest.raises(pydantic.ValidationError):
        catalog.items[0].code = "QHB-RS-999"  # type: ignore[misc]


# ---------------------------------------------------------------- the validator refuses broken data

def _write(tmp_path: Path, items: list[dict], version: int = 1) -> Path:
    p = tmp_path / "items.json"
    p.write_text(json.dumps({"version": version, "items": items}, ensure_ascii=False), "utf-8")
    return p


def test_refuses_duplicate_code(tmp_path, raw_items):
    items = copy.deepcopy(raw_items[:3])
    items[2]["code"] = items[0]["code"]
    with pytest.raises(CatalogError, match=f"duplicate code {items[0]['code']}"):
        load_catalog(_write(tmp_path, items))


def test_refuses_duplicate_names(tmp_path, raw_items):
    items = copy.deepcopy(raw_items[:3])
    items[1].update(domain=items[0]["domain"], main_name=items[0]["main_name"],
                    sub_name=items[0]["sub_name"])
    with pytest.raises(CatalogError, match="duplicates QHB-RS-001"):
        load_catalog(_write(tmp_path, items))


@pytest.mark.parametrize("field", ["flow", "materials", "provenance", "fee", "requires_id"])
def test_refuses_missing_field(tmp_path, raw_items, field):
    items = copy.deepcopy(raw_items[:2])
    del items[1][field]
    with pytest.raises(CatalogError, match=rf"item #2 \(QHB-RS-002\): {field}: missing"):
        load_catalog(_write(tmp_path, items))


def test_refuses_unknown_domain(tmp_path, raw_items):
    items = copy.deepcopy(raw_items[:1])
    items[0]["domain"] = "外星事务"
    with pytest.raises(CatalogError, match="unknown domain '外星事务'"):
        load_catalog(_write(tmp_path, items))


@pytest.mark.parametrize("path,value,expect", [
    (("flow",), "teleport", "flow"),
    (("fields", 0, "type"), "email", "fields.0.type"),
    (("fields", 0, "choices"), ["a"], "must not have choices"),
    (("item_type",), "慢办件", "item_type"),
    (("legal_limit",), -1, "negative"),
    (("materials",), [], "materials"),
    (("code",), "RS-1", "code"),
    (("provenance", "list"), "附件9", "provenance.list"),
    (("requires_id",), "yes", "requires_id"),
    (("main_name",), "", "main_name"),
    (("conditions",), ["  "], "conditions"),
    (("materials", 0, "name"), "", "materials.0.name"),
])
def test_refuses_bad_values(tmp_path, raw_items, path, value, expect):
    items = copy.deepcopy(raw_items[:1])
    node = items[0]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(CatalogError, match=expect):
        load_catalog(_write(tmp_path, items))


def test_refuses_unknown_extra_field(tmp_path, raw_items):
    items = copy.deepcopy(raw_items[:1])
    items[0]["colour"] = "red"
    with pytest.raises(CatalogError, match="colour: unknown field"):
        load_catalog(_write(tmp_path, items))


def test_refuses_choice_field_without_choices(tmp_path, raw_items):
    items = copy.deepcopy(raw_items[:1])
    items[0]["fields"][0] = {"name": "x", "label": "X", "type": "choice", "required": True, "choices": []}
    with pytest.raises(CatalogError, match="at least two choices"):
        load_catalog(_write(tmp_path, items))


def test_refuses_bad_files(tmp_path, raw_items):
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", "utf-8")
    with pytest.raises(CatalogError, match="not valid JSON"):
        load_catalog(bad)
    with pytest.raises(CatalogError, match="version 7"):
        load_catalog(_write(tmp_path, raw_items[:1], version=7))


def test_load_from_directory(tmp_path, raw_items):
    _write(tmp_path, raw_items[:5])
    assert len(load_catalog(tmp_path)) == 5


# ---------------------------------------------------------------- the build from the seed

@pytest.fixture(scope="module")
def seed() -> Path:
    p = build_catalog.find_seed()
    if p is None:
        pytest.skip("seed not available (../shared/seed or /work/shared/seed)")
    return p


def test_build_from_seed_matches_committed_data(seed):
    prior = json.loads(DEFAULT_PATH.read_text("utf-8"))["items"]
    text = build_catalog.dump(build_catalog.build(seed, prior=prior))
    assert text == DEFAULT_PATH.read_text("utf-8"), "run scripts/build_catalog.py and commit"


def test_fresh_build_is_deterministic_and_keeps_codes(seed):
    a = build_catalog.build(seed, prior=None)
    b = build_catalog.build(seed, prior=None)
    assert a == b
    committed = {(i["domain"], i["main_name"], i["sub_name"]): i["code"]
                 for i in json.loads(DEFAULT_PATH.read_text("utf-8"))["items"]}
    assert {(i["domain"], i["main_name"], i["sub_name"]): i["code"] for i in a} == committed


def test_codes_survive_a_new_item(seed):
    prior = json.loads(DEFAULT_PATH.read_text("utf-8"))["items"]
    items = build_catalog.build(seed, prior=prior)
    # Pretend the first item was published later: it gets the next free number.
    renumbered = [dict(items[0])]
    build_catalog.assign_codes(renumbered, prior=items[1:])
    assert renumbered[0]["code"] == "QHB-RS-034"  # next free number in 人社


def test_seed_parser_handles_wrapped_rows():
    lines = ["序号\t所属领域\t主项名称\t子项名称\t事项类别\t办理形式\t服务对象\t办件类型\t法定办结时限\t承诺办结时限\t收费项目",
             "1\t人社\t社会保险 登记\t居民养老保险(参保)登记\t公共服务\t代办\t自然人\t即办件\t1 个工作日\t0 个工作日\t不收费",
             "2\t人社\t\t居民养老保险待遇\t公共服务\t代办\t自然人\t承诺件\t无\t当月办理,下\t不收费",
             "\t\t\t领取\t\t\t\t\t\t月发放\t"]
    rows = build_catalog._rows([ln for ln in lines[1:]], "附件3", build_catalog.STATION_COLUMNS)
    assert [r.row for r in rows] == [1, 2]
    assert rows[0].cells["main_name"] == "社会保险登记"
    assert rows[0].cells["sub_name"] == "居民养老保险（参保）登记"
    assert rows[1].cells["main_name"] == "社会保险登记"  # empty = same as above
    assert rows[1].cells["sub_name"] == "居民养老保险待遇领取"
    assert rows[1].cells["promised_limit"] == "当月办理，下月发放"
    assert build_catalog.parse_limit("7个工作日") == 7
    assert build_catalog.parse_limit("即时办理") == "即时办理"


def test_item_model_is_the_public_type(catalog):
    assert all(isinstance(it, Item) for it in catalog.items)


# ---------------------------------------------------------------- CLI

@pytest.fixture(scope="module")
def cli():
    from kiosk.cli.main import cli as root
    return root


def _run(cli, *args):
    from click.testing import CliRunner
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_cli_list_json_is_the_committed_items(cli, raw_items):
    res = _run(cli, "catalog", "list", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == raw_items


def test_cli_list_table(cli):
    res = _run(cli, "catalog", "list")
    assert res.exit_code == 0
    assert "QHB-RS-001" in res.output and "无就业经历人员失业登记" in res.output
    assert res.output.rstrip().endswith("共 109 项")


def test_cli_list_marks_and_drops_disabled_items(cli, tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('[catalog]\ndisabled = ["QHB-SZ-001"]\n', "utf-8")
    res = _run(cli, "catalog", "list", "--config", str(site))
    assert "水费缴纳（已停用）" in res.output
    res = _run(cli, "catalog", "list", "--json", "--enabled-only", "--config", str(site))
    codes = [i["code"] for i in json.loads(res.output)]
    assert len(codes) == 108 and "QHB-SZ-001" not in codes


def test_cli_show(cli, raw_items):
    res = _run(cli, "catalog", "show", "QHB-RS-001", "--json")
    assert res.exit_code == 0
    assert json.loads(res.output) == raw_items[0]
    res = _run(cli, "catalog", "show", "qhb-rs-001")
    assert res.exit_code == 0
    assert "需要的材料" in res.output and "户口簿【不用带（数据共享）】" in res.output
    assert "占位编码" in res.output


def test_cli_show_unknown_code_exits_1(cli):
    res = _run(cli, "catalog", "show", "QHB-XX-999")
    assert res.exit_code == 1
    assert "QHB-XX-999" in res.output and "没有编码" in res.output


def test_cli_search(cli):
    res = _run(cli, "catalog", "search", "ylbx", "--json", "--limit", "5")
    assert res.exit_code == 0
    found = json.loads(res.output)
    assert len(found) == 5 and all("养老保险" in i["main_name"] for i in found)
    assert tuple(found[0]) == ITEM_FIELDS
    res = _run(cli, "catalog", "search", "水费")
    assert "水费缴纳" in res.output
    res = _run(cli, "catalog", "search", "qqqqqq")
    assert res.exit_code == 0 and "没有找到" in res.output
    res = _run(cli, "catalog", "search", "ylbx", "--limit", "0")
    assert res.exit_code == 2


def test_cli_catalog_error_is_reported(cli, tmp_path, raw_items):
    bad = _write(tmp_path, [dict(raw_items[0], domain="外星事务")])
    site = tmp_path / "site.toml"
    site.write_text(f'[catalog]\npath = "{bad}"\n', "utf-8")
    res = _run(cli, "catalog", "list", "--config", str(site))
    assert res.exit_code == 2 and "unknown domain" in res.output


def test_real_kiosk_executable_lists_every_item():
    import os
    import subprocess

    exe = ROOT / ".venv" / "bin" / "kiosk"
    if not exe.exists():
        pytest.skip("no .venv/bin/kiosk (run the README's setup first)")
    env = {k: v for k, v in os.environ.items() if k != "KIOSK_CONFIG" and not k.startswith("KIOSK__")}
    out = subprocess.run([str(exe), "catalog", "list", "--json"], capture_output=True, text=True,
                         timeout=120, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    items = json.loads(out.stdout)
    assert len(items) == 109
    assert {"商事登记", "人社", "交通", "不动产", "税务"} <= {i["domain"] for i in items}
    assert all(i["provenance"]["list"] for i in items)


# ---------------------------------------------------------------- the seed parser, property-based

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_cjk = st.text(alphabet=st.sampled_from(list("养老保险居民登记变更申请（）()、，,“”《》残疾人证") + [" "]),
               min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(_cjk)
def test_normalise_is_idempotent_and_removes_spaces_and_half_width_brackets(text):
    once = build_catalog.normalise(text)
    assert build_catalog.normalise(once) == once
    assert " " not in once and "(" not in once and ")" not in once


@settings(max_examples=200, deadline=None)
@given(_cjk.filter(lambda s: len(s.strip()) >= 2), st.integers(min_value=1, max_value=29))
def test_a_cell_wrapped_onto_the_next_line_parses_as_one(name, cut):
    cut = min(cut, len(name) - 1)
    head, tail = name[:cut], name[cut:]
    whole = build_catalog._rows([f"1\t人社\t主项\t{name}\t公共服务\t代办\t自然人\t即办件\t1个工作日\t0个工作日\t不收费"],
                                "附件3", build_catalog.STATION_COLUMNS)
    wrapped = build_catalog._rows([f"1\t人社\t主项\t{head}\t公共服务\t代办\t自然人\t即办件\t1个工作日\t0个工作日\t不收费",
                                   f"\t\t\t{tail}\t\t\t\t\t\t\t"],
                                  "附件3", build_catalog.STATION_COLUMNS)
    assert len(wrapped) == 1
    assert wrapped[0].cells["sub_name"] == whole[0].cells["sub_name"]
    assert wrapped[0].cells["fee"] == "不收费"
