"""Receipt composition: content, masking, offline notice, QR payload, width-aware wrapping."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.domain.receipt import (
    OFFLINE_NOTICE,
    Cut,
    Line,
    Qr,
    QueryDocument,
    Receipt,
    ReceiptDataError,
    compose_document,
    compose_receipt,
    plain_text,
    text_width,
    wrap_text,
)
from kiosk.domain.tracking import new_tracking_no, parse_qr_payload

FULL_ID = "370306199001011234"


def make(**kw) -> Receipt:
    data = dict(
        station="周村区城北路街道便民服务站", item="城乡居民基本养老保险参保登记",
        applicant_name="张三丰", applicant_id=FULL_ID, tracking_no=new_tracking_no("LQ", dt.date(2026, 11, 27)),
        submitted_at="2026-11-27T14:32:00+08:00", promised_date="2026-12-04", queued=False,
    )
    data.update(kw)
    return Receipt.from_mapping(data)


@pytest.mark.parametrize("paper,cols", [(58, 32), (80, 48)])
def test_every_line_fits_the_paper(paper, cols):
    r = make(item="城乡居民基本养老保险参保登记（含变更、注销等业务的办理）" * 2, queued=True)
    for b in compose_receipt(r, paper):
        if isinstance(b, Line):
            assert text_width(b.text) <= cols // b.scale


def test_content_and_masking():
    r = make()
    blocks = compose_receipt(r)
    text = plain_text(blocks)
    assert "周村区城北路街道便民服务站" in text and "齐好办" in text
    assert "张**" in text and "三丰" not in text
    assert "370***********1234" in text and FULL_ID not in text
    assert r.tracking_no in text
    assert "2026-11-27 14:32" in text and "2026-12-04" in text
    assert "好差评" in text and "非常不满意" in text
    assert OFFLINE_NOTICE.split("，")[0] not in text  # not queued: no offline notice
    qrs = [b for b in blocks if isinstance(b, Qr)]
    assert len(qrs) == 1 and parse_qr_payload(qrs[0].data) == r.tracking_no
    assert isinstance(blocks[-1], Cut)


@pytest.mark.parametrize("paper", [58, 80])
def test_offline_notice_when_queued(paper):
    text = plain_text(compose_receipt(make(queued=True), paper), paper).replace("\n", "").replace(" ", "")
    assert OFFLINE_NOTICE in text


def test_non_countable_limit_is_printed_as_text():
    text = plain_text(compose_receipt(make(promised_date=None, promised_text="当月办理，下月发放")))
    assert "当月办理，下月发放" in text


def test_bad_data_names_fields_not_values():
    with pytest.raises(ReceiptDataError) as e:
        Receipt.from_mapping(dict(station="站", item="事项", applicant_id=FULL_ID, tracking_no="LQ1",
                                  submitted_at="not a time", queued=False))
    assert "submitted_at" in str(e.value)
    assert FULL_ID not in str(e.value)


def test_query_document_table_fits():
    doc = QueryDocument(
        title="社会保险个人权益记录", station="周村区城北路街道便民服务站", applicant_name="李四",
        applicant_id=FULL_ID, fields=[("参保险种", "城镇职工基本养老保险")],
        table_header=["缴费年月", "缴费基数", "个人缴费"],
        table_rows=[["2026-0%d" % m, "4,500.00", "360.00"] for m in range(1, 10)],
        notes=["本证明仅用于证明参保人员参保缴费情况。"], generated_at=dt.datetime(2026, 11, 27, 10, 0),
        verify_code="https://example.invalid/verify/ABC123",
    )
    for paper, cols in ((58, 32), (80, 48)):
        blocks = compose_document(doc, paper)
        for b in blocks:
            if isinstance(b, Line):
                assert text_width(b.text) <= cols // b.scale
        text = plain_text(blocks, paper)
        assert "李*" in text and FULL_ID not in text and "2026-09" in text and "360.00" in text


# ------------------------------------------------------------------- wrapping properties
_chars = st.one_of(
    st.sampled_from(list("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动")),
    st.sampled_from(list("，。、；：？！（）《》“”…—·")),
    st.characters(min_codepoint=0x21, max_codepoint=0x7E),
    st.just(" "), st.just("\n"),
)


@settings(max_examples=300, deadline=None)
@given(text=st.text(_chars, max_size=200), cols=st.integers(2, 60))
def test_wrap_fits_and_loses_nothing(text, cols):
    lines = wrap_text(text, cols)
    assert all(text_width(x) <= cols for x in lines)
    squash = lambda s: s.replace(" ", "").replace("\n", "")  # noqa: E731
    assert "".join(squash(x) for x in lines) == squash(text)
    assert len(lines) >= text.count("\n") + 1


@settings(max_examples=100, deadline=None)
@given(text=st.text(st.sampled_from(list("的一是在不了有和人这中大为")), min_size=1, max_size=120),
       cols=st.sampled_from([32, 48]))
def test_cjk_lines_are_filled(text, cols):
    lines = wrap_text(text, cols)
    assert all(text_width(x) == cols for x in lines[:-1])


def test_punctuation_does_not_start_a_line():
    lines = wrap_text("一二三四五六七八九十，再来", 20)
    assert not lines[1].startswith("，")
    assert all(text_width(x) <= 20 for x in lines)


def test_receipt_for_a_visit_counts_working_days():
    from kiosk.config import load_config

    class Item:
        main_name = "城乡居民养老保险"
        sub_name = "城乡居民养老保险参保登记"
        promised_limit = "3个工作日"

    cfg = load_config()
    r = Receipt.for_visit(cfg, Item(), applicant_name="李四", applicant_id=FULL_ID, tracking_no=new_tracking_no(),
                          submitted_at=dt.datetime(2026, 9, 30, 16, 0), queued=True)
    assert r.station == cfg.kiosk.station_name and r.item == Item.sub_name
    assert r.promised_date == dt.date(2026, 10, 10) and r.promised_text == "3个工作日"  # over National Day

    class Seasonal:
        main_name = "高龄津贴发放"
        promised_limit = "当月办理，下月发放"

    r = Receipt.for_visit(cfg, Seasonal(), applicant_name="", applicant_id="", tracking_no=new_tracking_no(),
                          submitted_at=dt.datetime(2026, 9, 30, 16, 0), queued=False)
    assert r.promised_date is None and "下月发放" in plain_text(compose_receipt(r))
