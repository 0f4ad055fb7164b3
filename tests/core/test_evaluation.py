"""好差评 by GB/T 39734-2020: the versioned, pushable indicator set and the evaluation record built on it."""
from __future__ import annotations

import pytest

from kiosk.config import EVALUATION_LEVELS, ConfigError, EvaluationSection, load_config_layers
from kiosk.domain.evaluation import (
    EVALUATION_MESSAGES,
    InvalidEvaluation,
    asks_reasons,
    build_evaluation,
    can_rate_later,
)
from kiosk.fleet.pushable import forbidden_keys, is_pushable

SET = EvaluationSection()
COMMON = {"kiosk_id": "ZC-TEST-01", "created_at": "2026-11-30T10:00:00+08:00"}


def test_default_set_is_the_standards_self_service_channel():
    assert SET.levels == list(EVALUATION_LEVELS) == ["非常满意", "满意", "基本满意", "不满意", "非常不满意"]
    assert SET.reasons_for == ["不满意", "非常不满意"] and SET.reason_required
    assert [r.text for r in SET.reasons] == ["服务效率", "服务水平", "服务态度"]  # the offline channel's indicators
    assert SET.overall_indicator == "整体满意度" and SET.standard == "GB/T 39734-2020"
    assert SET.version and SET.channel == "self_service_terminal" and SET.note_max_chars > 0
    assert asks_reasons(SET, "不满意") and asks_reasons(SET, "非常不满意") and not asks_reasons(SET, "基本满意")


def test_a_bad_rating_carries_reasons_note_case_number_and_set_version():
    body = build_evaluation(SET, tracking_no="SD2611300000000012", level="不满意",
                            reasons=["service_efficiency", "service_attitude", "service_efficiency"],
                            note="排队时间太长", item_code="QHB-RS-001", **COMMON)
    assert body["tracking_no"] == "SD2611300000000012" and body["indicator_set_version"] == SET.version
    assert body["reasons"] == ["service_efficiency", "service_attitude"]
    assert body["reason"] == "服务效率、服务态度：排队时间太长"  # what a platform before the set reads
    assert body["note"] == "排队时间太长" and body["channel"] == "self_service_terminal"
    assert "later" not in body
    good = build_evaluation(SET, tracking_no="ZM1234ABCD", level="非常满意", later=True, **COMMON)
    assert "reasons" not in good and "reason" not in good and good["later"] is True


@pytest.mark.parametrize("kw,reason", [
    ({"level": "还行"}, "level"),
    ({"level": "非常不满意"}, "reasons_missing"),
    ({"level": "不满意", "reasons": ["slow_lift"]}, "unknown_reason"),
    ({"level": "满意", "reasons": ["service_level"]}, "reasons_not_allowed"),
    ({"level": "满意", "note": "很好"}, "reasons_not_allowed"),
    ({"level": "不满意", "reasons": ["service_level"], "note": "太" * 201}, "note_too_long"),
    ({"level": "满意", "tracking_no": ""}, "tracking_no"),
    ({"level": "满意", "tracking_no": "SD 12<script>"}, "tracking_no"),
])
def test_refusals_name_their_reason(kw, reason):
    args = {"tracking_no": "SD2611300000000012", **COMMON, **kw}
    with pytest.raises(InvalidEvaluation) as e:
        build_evaluation(SET, **args)
    assert e.value.reason == reason and str(e.value) == EVALUATION_MESSAGES[reason]
    assert "already_rated" in EVALUATION_MESSAGES


def test_rating_later_only_for_finished_unrated_cases():
    assert can_rate_later("done") and can_rate_later("returned")
    assert not can_rate_later("in_review") and not can_rate_later("done", already_rated=True)


PUSHED = {"evaluation": {"version": "sd-2027.1", "reasons": [
    {"code": "too_many_trips", "text": "多次跑动", "hint": "来了好几趟"},
    {"code": "guide_unclear", "text": "办事指南不清楚"}]}}


def test_a_bundle_may_push_a_new_set_and_the_kiosk_uses_it():
    assert forbidden_keys(PUSHED) == [] and is_pushable("evaluation.reasons")
    loaded = load_config_layers(overrides=[("bundle 7", PUSHED)], env={}, profile="development")
    ev = loaded.config.evaluation
    assert ev.version == "sd-2027.1" and [r.code for r in ev.reasons] == ["too_many_trips", "guide_unclear"]
    assert loaded.sources["evaluation"] == "bundle 7"  # a section new to the layers is sourced whole
    body = build_evaluation(ev, tracking_no="SD2611300000000012", level="非常不满意", reasons=["too_many_trips"],
                            **COMMON)
    assert body["indicator_set_version"] == "sd-2027.1" and body["reason"] == "多次跑动"
    with pytest.raises(InvalidEvaluation):  # the old set's codes are gone with it
        build_evaluation(ev, tracking_no="SD2611300000000012", level="不满意", reasons=["service_level"], **COMMON)


@pytest.mark.parametrize("section,match", [
    ({"levels": ["好", "中", "差"]}, "five distinct levels"),
    ({"reasons_for": ["很差"]}, "reasons_for"),
    ({"reasons": [{"code": "a", "text": "甲"}, {"code": "a", "text": "乙"}]}, "unique"),
    ({"reasons": []}, "at least one reason"),
    ({"reasons": [{"code": "Bad Code", "text": "甲"}]}, "evaluation.reasons.0.code"),
    ({"colour": "red"}, "evaluation.colour"),
])
def test_a_broken_set_is_refused_by_the_loader(section, match):
    with pytest.raises(ConfigError, match=match):
        load_config_layers(overrides=[("bundle 8", {"evaluation": section})], env={}, profile="development")
