"""The binding census names who observes a long-lived widget (the soak's --trace-bindings)."""
from __future__ import annotations

from kivy.lang import Builder
from kivy.properties import ObjectProperty
from kivy.uix.widget import Widget

from bench.binding_census import census, growth


class _CensusChild(Widget):
    owner = ObjectProperty(None, rebind=True)


Builder.load_string("""
<_CensusChild>:
    height: self.owner.width if self.owner else 0
""", filename="census_test.kv")


def test_growth_names_the_kv_rule_that_binds_to_another_widget():
    owner = Widget()
    before = census()
    children = [_CensusChild(owner=owner) for _ in range(3)]
    grown = growth(before, census(), top=None)
    rows = [g for g in grown if g["observed"] == "Widget.width" and "census_test.kv" in g["observer"]]
    assert len(rows) == 1, grown
    assert rows[0]["grew"] == 3
    assert "_CensusChild.height: self.owner.width" in rows[0]["observer"]
    assert len(children) == 3


def test_no_growth_when_nothing_new_binds():
    Widget()
    before = census()
    assert [g for g in growth(before, census(), top=None) if "census_test.kv" in g["observer"]] == []
