"""Pinyin search over the catalog: initials, full pinyin, Chinese, ranking, heteronyms."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.domain.catalog import load_catalog
from kiosk.domain.search import SearchIndex, normalise_query, to_syllables


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _subs(items):
    return [it.sub_name for it in items]


def _is_pension(it) -> bool:
    return "养老保险" in it.main_name


def test_initials_find_pension_items_first(catalog):
    results = catalog.search("ylbx")
    pension = [it for it in catalog.items if _is_pension(it)]
    assert len(pension) >= 8
    head = results[:len(pension)]
    assert all(_is_pension(it) for it in head), _subs(head)
    # items where the sub-item name says it too come before those that only share the main name
    assert "养老保险" in head[0].sub_name


def test_full_pinyin_and_its_prefixes(catalog):
    full = catalog.search("yanglaobaoxian")
    assert full and all("养老保险" in it.main_name + it.sub_name for it in full[:8])
    assert catalog.search("yanglao")[:8] == full[:8]
    assert "社会保障卡密码重置" in _subs(catalog.search("shehuibaozhangka"))
    # a query ending inside a syllable matches as a prefix
    assert _subs(catalog.search("shuif"))[0] == "水费缴纳"
    # but a match must start at a syllable boundary: "anglao" is not in "yanglao"
    assert not any("养老" in it.sub_name for it in catalog.search("anglaobaox"))


def test_chinese_substring(catalog):
    results = catalog.search("养老保险")
    assert results and all(_is_pension(it) or "养老保险" in it.sub_name for it in results[:8])
    assert _subs(catalog.search("水费")) [0] == "水费缴纳"
    assert catalog.search("不动产")[0].domain == "不动产"


def test_brackets_and_spaces_in_the_query_are_normalised(catalog):
    a = catalog.search("变更登记(变更地址)")
    b = catalog.search("变更登记（变更地址）")
    assert a == b and a[0].sub_name == "个体工商户变更登记（变更地址）"
    assert catalog.search(" YLBX ") == catalog.search("ylbx")
    assert catalog.search("yang lao") == catalog.search("yanglao")


def test_main_name_and_domain_rank_before_incidental_hits(catalog):
    # "bdc" (不动产) is the domain of three items and only a material of the transfer items
    results = catalog.search("bdc")
    domains = [it.domain for it in results]
    assert domains[:3] == ["不动产"] * 3
    assert len(results) > 3  # the incidental hits come after
    idx = catalog._index.explain("bdc")
    tiers = [tier for _, tier, _ in idx]
    assert tiers == sorted(tiers)


def test_domain_query(catalog):
    results = catalog.search("税务")
    assert {it.domain for it in results[:2]} == {"税务"}
    assert catalog.search("jiaotong")[0].domain == "交通"


def test_heteronyms_read_in_context(catalog):
    # 重 in 重度 is zhong, in 重置 chong (a phrase fix): both readings work where they belong
    assert _subs(catalog.search("zhongdu"))[0] == "重度残疾人护理补贴给付"
    assert _subs(catalog.search("chongzhi"))[0] == "社会保障卡密码重置"
    assert _subs(catalog.search("mmcz"))[0] == "社会保障卡密码重置"
    # 种 in 种植 is zhong; reading it "chong" is only a guess, ranked after sure hits
    explained = dict((code, kind) for code, _, kind in catalog._index.explain("chongzhi"))
    zhongzhi = next(it.code for it in catalog.items if it.sub_name.startswith("种植业"))
    assert explained[zhongzhi] == "full_heteronym"


def test_deterministic_order_and_limit(catalog):
    a = catalog.search("b", limit=50)
    b = catalog.search("b", limit=50)
    assert a == b and len(a) == 50
    assert catalog.search("b", limit=5) == a[:5]
    assert catalog.search("ylbx", limit=0) == []


def test_empty_and_nonsense_queries(catalog):
    assert catalog.search("") == []
    assert catalog.search("   ") == []
    assert catalog.search("！？") == []
    assert catalog.search("qqqqqq") == []
    assert catalog.search("火星") == []


def test_index_is_built_once_and_search_needs_no_pypinyin(catalog, monkeypatch):
    import kiosk.domain.search as search_mod

    def boom(*a, **k):  # pragma: no cover - would fail the test
        raise AssertionError("pypinyin called during search")

    catalog.warm_search()
    monkeypatch.setattr(search_mod, "_pypinyin", boom)
    assert catalog.search("ylbx")


def test_to_syllables_keeps_positions_aligned():
    s = to_syllables("个体工商户变更登记（变更地址）100")
    assert s.text == "个体工商户变更登记变更地址100"
    assert len(s.readings) == len(s.text) == len(s.initials)
    assert "zhi" in s.readings[12]
    assert normalise_query("Ｙ Ｌ'bx") == "ylbx"


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=12))
def test_search_never_raises_and_respects_limit(catalog, q):
    results = catalog.search(q, limit=7)
    assert len(results) <= 7
    assert len({it.code for it in results}) == len(results)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(range(108)))
def test_every_item_is_found_by_its_own_initials_and_name(catalog, i):
    it = catalog.items[i]
    syl = to_syllables(it.sub_name)
    initials = syl.first_letters
    assert it in catalog.search(it.sub_name, limit=108)
    assert it in catalog.search(initials, limit=108)


def test_search_index_standalone(catalog):
    idx = SearchIndex(catalog.items[:3])
    assert idx.search("shiye") and all(it in catalog.items[:3] for it in idx.search("shiye"))
