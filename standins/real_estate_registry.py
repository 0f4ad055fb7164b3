"""The real-estate register's public view (不动产登记信息公开查询) as the platform simulator serves it.

A small, realistic set of units in 周村区: flats in one building on 丝绸路 (one mortgaged, one free),
a village house on homestead land (查封), a shop on 正阳路 (异议 and 查封), a flat sold off-plan on
新建中路 (预告登记) and an industrial parcel with no buildings. ``search`` answers
``POST /v1/real-estate/search`` (docs/platform-api.yaml): by 坐落 text, certificate number or unit
number, the natural state and the restrictions, and never the owner (the data set does not even
hand the owner to the answer: ``_public`` copies only public fields).
"""
from __future__ import annotations

from typing import Any

from kiosk.domain.real_estate import InvalidPropertyQuery, format_unit_number, parse_property_query
from standins.licence_registry import SimRefusal

__all__ = ["UNITS", "search"]

MAX_RESULTS = 20
PUBLIC_FIELDS = ("unit_number", "certificate_number", "address", "area_m2", "land_area_m2", "use", "right_type",
                 "right_nature", "restrictions")

UNITS: tuple[dict[str, Any], ...] = (
    {"unit_number": "370306004002GB00123F00010502", "certificate_number": "鲁(2021)淄博市周村区不动产权第0001234号",
     "address": "淄博市周村区丝绸路168号3号楼2单元502室", "area_m2": 98.56, "land_area_m2": 18.42, "use": "住宅",
     "right_type": "国有建设用地使用权/房屋所有权", "right_nature": "出让/市场化商品房",
     "restrictions": [{"kind": "抵押", "registered_on": "2021-07-02", "note": "一般抵押"}],
     "owner": {"name": "张桂兰"}},
    {"unit_number": "370306004002GB00123F00010601", "certificate_number": "鲁(2021)淄博市周村区不动产权第0001240号",
     "address": "淄博市周村区丝绸路168号3号楼1单元601室", "area_m2": 112.3, "land_area_m2": 20.95, "use": "住宅",
     "right_type": "国有建设用地使用权/房屋所有权", "right_nature": "出让/市场化商品房", "restrictions": [],
     "owner": {"name": "赵明"}},
    {"unit_number": "370306101208JC00045F00010001", "certificate_number": "鲁(2020)淄博市周村区不动产权第0008817号",
     "address": "淄博市周村区王村镇西铺村中心街27号", "area_m2": 128.0, "land_area_m2": 210.0, "use": "农村宅基地/住宅",
     "right_type": "宅基地使用权/房屋所有权", "right_nature": "集体土地/自建房",
     "restrictions": [{"kind": "查封", "registered_on": "2024-03-18", "note": "淄博市周村区人民法院"}],
     "owner": {"name": "李建国"}},
    {"unit_number": "370306002001GB00567F00020101", "certificate_number": "鲁(2019)淄博市周村区不动产权第0003356号",
     "address": "淄博市周村区正阳路66号1号商铺", "area_m2": 56.2, "land_area_m2": 9.8, "use": "商业",
     "right_type": "国有建设用地使用权/房屋所有权", "right_nature": "出让/市场化商品房",
     "restrictions": [{"kind": "异议", "registered_on": "2025-10-09", "note": "异议登记15日内有效"},
                      {"kind": "查封", "registered_on": "2025-10-20", "note": "轮候查封"}],
     "owner": {"name": "王秀英"}},
    {"unit_number": "370306003005GB00890F00050803", "certificate_number": None,
     "address": "淄博市周村区新建中路19号5号楼8层803室", "area_m2": 89.74, "land_area_m2": None, "use": "住宅",
     "right_type": "国有建设用地使用权/房屋所有权", "right_nature": "出让/期房",
     "restrictions": [{"kind": "预告登记", "registered_on": "2026-05-11", "note": "预购商品房买卖预告登记"}],
     "owner": {"name": "孙立"}},
    {"unit_number": "370306005003GB00321W00000000", "certificate_number": "鲁(2022)淄博市周村区不动产权第0011020号",
     "address": "淄博市周村区北郊镇工业园纬三路8号", "area_m2": None, "land_area_m2": 5320.0, "use": "工业用地",
     "right_type": "国有建设用地使用权", "right_nature": "出让", "restrictions": [],
     "owner": {"name": "淄博某丝绸制品有限公司"}},
)

_STRIP = ("山东省", "淄博市", "周村区")


def _bare(address: str) -> str:
    for prefix in _STRIP:
        address = address.replace(prefix, "")
    return address


def _public(unit: dict[str, Any]) -> dict[str, Any]:
    out = {k: unit[k] for k in PUBLIC_FIELDS}
    out["unit_number_display"] = format_unit_number(unit["unit_number"])
    out["restrictions"] = [dict(r) for r in unit["restrictions"]]
    out["restricted"] = bool(unit["restrictions"])
    return out


def search(data: dict[str, Any], as_of: str) -> dict[str, Any]:
    """{by, value, as_of, results}; SimRefusal 422 for a malformed query (reason per part in ``errors``)."""
    by, value = data.get("by"), data.get("value")
    errors = {}
    if by not in ("address", "certificate_number", "unit_number"):
        errors["by"] = "请选择按坐落、证书号或单元号查询"
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        errors["value"] = "请填写查询内容"
    if errors:
        raise SimRefusal(422, "validation_failed", "query is not valid", "查询条件有误", errors)
    try:
        q = parse_property_query(str(value), by=by)
    except InvalidPropertyQuery as e:  # the same rule as the kiosk's: the message names the wrong part
        raise SimRefusal(422, "validation_failed", "query is not valid", e.message, {"value": e.message}) from None
    if q.by == "unit_number":
        found = [u for u in UNITS if u["unit_number"] == q.value]
    elif q.by == "certificate_number":
        found = [u for u in UNITS if u["certificate_number"] == q.value]
    else:
        needle = _bare(q.value)
        found = [u for u in UNITS if needle and needle in _bare(u["address"])]
    return {"by": q.by, "value": q.value, "as_of": as_of, "results": [_public(u) for u in found[:MAX_RESULTS]]}
