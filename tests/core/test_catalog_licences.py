"""Catalog materials name the e-licence that replaces them; the citizen-code flag; the seed-text item."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from kiosk.domain.catalog import DEFAULT_PATH, CatalogError, load_catalog
from kiosk.domain.elicence import LICENCE_TYPES
from tests.core.test_catalog import build_catalog

EXPECTED = {  # a word in the material's name -> the licence type it must carry
    "身份证": "resident_id_card",
    "户口簿": "household_register",
    "营业执照": "business_licence",
    "不动产权证书": "real_estate_certificate",
    "结婚证": "marriage_certificate",
    "残疾人证": "disability_certificate",
}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def raw_items() -> list[dict]:
    return json.loads(DEFAULT_PATH.read_text("utf-8"))["items"]


@pytest.mark.parametrize("word,licence_type", sorted(EXPECTED.items()))
def test_materials_carry_their_licence_type(catalog, word, licence_type):
    found = [(it.code, m) for it in catalog.items for m in it.materials if word in m.name
             and not m.name.startswith("原户主")]  # someone else's ID card: the library gives only one's own
    assert found, word
    for code, m in found:
        assert m.licence_type == licence_type, (code, m.name)


def test_someone_elses_card_and_plain_papers_have_no_licence_type(catalog):
    for it in catalog.items:
        for m in it.materials:
            if m.name.startswith("原户主") or m.name in ("申请表", "医院诊断证明和病历", "本人近期照片"):
                assert m.licence_type is None, (it.code, m.name)


def test_every_named_type_is_known_and_several_kinds_occur(catalog):
    kinds = {m.licence_type for it in catalog.items for m in it.materials if m.licence_type}
    assert kinds <= set(LICENCE_TYPES)
    assert set(EXPECTED.values()) <= kinds


def test_json_leaves_out_an_absent_licence_type(raw_items):
    mats = [m for it in raw_items for m in it["materials"]]
    assert any("licence_type" not in m for m in mats) and any("licence_type" in m for m in mats)
    assert all(m.get("licence_type", "x") is not None for m in mats)


def test_validator_refuses_an_unknown_licence_type(tmp_path, raw_items):
    items = copy.deepcopy(raw_items[:1])
    items[0]["materials"][0]["licence_type"] = "library_card"
    p = tmp_path / "items.json"
    p.write_text(json.dumps({"version": 1, "items": items}, ensure_ascii=False), "utf-8")
    with pytest.raises(CatalogError, match="materials.0.licence_type.*unknown licence type 'library_card'"):
        load_catalog(p)


def test_citizen_code_only_where_no_card_is_needed_in_hand(catalog):
    by_sub = {it.sub_name: it for it in catalog.items}
    assert by_sub["无就业经历人员失业登记"].citizen_code_allowed is True
    assert by_sub["水费缴纳"].citizen_code_allowed is False  # no identity needed at all
    assert by_sub["不动产登记信息查询"].citizen_code_allowed is False  # public query
    for it in catalog.items:
        if any(m.name == "本人社会保障卡" for m in it.materials) or it.flow == "certify" or not it.requires_id:
            assert not it.citizen_code_allowed, it.code
    assert sum(it.citizen_code_allowed for it in catalog.items) > 50


def test_an_old_catalog_without_the_new_fields_still_loads(tmp_path, raw_items):
    items = copy.deepcopy(raw_items[:3])
    for it in items:
        it.pop("citizen_code_allowed")
        for m in it["materials"]:
            m.pop("licence_type", None)
    p = tmp_path / "items.json"
    p.write_text(json.dumps({"version": 1, "items": items}, ensure_ascii=False), "utf-8")
    loaded = load_catalog(p)
    assert not any(it.citizen_code_allowed for it in loaded.items)


# ------------------------------------------------------------ the item the seed's text promises

def test_real_estate_query_item_quotes_the_seed(catalog):
    it = next(i for i in catalog.items if i.sub_name == "不动产登记信息查询")
    assert it.domain == "不动产" and it.flow == "query_print" and it.requires_id is False
    p = it.provenance
    assert p.list == "seed text" and p.row is None and "登记财产" in p.basis
    assert "坐落位置、权属证书号、不动产单元号任一检索方式" in p.quote
    seed = build_catalog.find_seed()
    if seed is not None:
        assert re.sub(r"\s+", "", p.quote) in re.sub(r"\s+", "", seed.read_text("utf-8"))


def test_seed_text_provenance_needs_its_quote(tmp_path, raw_items):
    item = copy.deepcopy(next(i for i in raw_items if i["provenance"]["list"] == "seed text"))
    del item["provenance"]["quote"]
    p = tmp_path / "items.json"
    p.write_text(json.dumps({"version": 1, "items": [item]}, ensure_ascii=False), "utf-8")
    with pytest.raises(CatalogError, match="quote the seed"):
        load_catalog(p)


def test_build_refuses_a_quote_the_seed_does_not_have(tmp_path):
    seed = build_catalog.find_seed()
    if seed is None:
        pytest.skip("seed not available")
    src = Path(build_catalog.CATALOG_DIR / "seed_text.toml").read_text("utf-8")
    bad = tmp_path / "seed_text.toml"
    bad.write_text(src.replace("自主查询不动产自然状况", "自主查询不动产价格"), "utf-8")
    with pytest.raises(ValueError, match="not in the seed"):
        build_catalog.seed_text_items(bad, seed)
