"""Working-day calendar: weekends, public holidays, make-up working days, promised limits."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.config import load_config
from kiosk.domain.workdays import WorkdayCalendar, parse_promised_limit, promised_date

D = dt.date


@pytest.fixture(scope="module")
def cal() -> WorkdayCalendar:
    return WorkdayCalendar.from_config(load_config())


def test_plain_week_skips_weekend():
    c = WorkdayCalendar()
    assert c.add_workdays(D(2025, 3, 7), 1) == D(2025, 3, 10)  # Fri -> Mon
    assert c.add_workdays(D(2025, 3, 8), 1) == D(2025, 3, 10)  # Sat -> Mon
    assert c.add_workdays(D(2025, 3, 3), 5) == D(2025, 3, 10)
    assert c.add_workdays(D(2025, 3, 3), 0) == D(2025, 3, 3)


def test_national_day_and_makeup_saturday(cal):
    # 2026-10-01..07 off, Saturday 2026-10-10 is a make-up working day.
    assert not cal.is_workday(D(2026, 10, 5))
    assert cal.is_workday(D(2026, 10, 10))
    assert cal.add_workdays(D(2026, 9, 30), 1) == D(2026, 10, 8)
    assert cal.add_workdays(D(2026, 9, 30), 3) == D(2026, 10, 10)
    assert cal.add_workdays(D(2026, 9, 30), 4) == D(2026, 10, 12)


def test_spring_festival(cal):
    # 2026-02-14 (Sat) is worked, 02-15..23 off.
    assert cal.add_workdays(D(2026, 2, 13), 1) == D(2026, 2, 14)
    assert cal.add_workdays(D(2026, 2, 14), 1) == D(2026, 2, 24)


def test_next_workday(cal):
    assert cal.next_workday(D(2026, 10, 1)) == D(2026, 10, 8)
    assert cal.next_workday(D(2026, 10, 9)) == D(2026, 10, 9)


def test_bad_date_in_config_is_an_error():
    with pytest.raises(ValueError):
        WorkdayCalendar.from_lists(["2026-13-01"])


@pytest.mark.parametrize("limit,days", [
    (5, 5), ("5", 5), ("5个工作日", 5), ("15 个工作日", 15), ("0个工作日", 0), ("0 个工作日", 0),
    ("5个工作日内审核完成", 5), ("即时办理", 0), ("随时办理", 0),
    ("当月办理，下月发放", None), ("11月30日前办理完成", None), ("长期", None), (None, None), (-1, None),
])
def test_parse_promised_limit(limit, days):
    assert parse_promised_limit(limit) == days


def test_promised_date_from_item_like_object(cal):
    class Item:
        promised_limit = "3个工作日"
    assert promised_date(cal, Item(), dt.datetime(2026, 9, 30, 16, 0)) == D(2026, 10, 10)
    assert promised_date(cal, "当月办理，下月发放", D(2026, 9, 30)) is None


@settings(deadline=None)
@given(start=st.dates(D(2024, 1, 1), D(2028, 12, 31)), n=st.integers(0, 60))
def test_add_is_inverse_of_count(start, n):
    c = WorkdayCalendar.from_lists(["2026-10-01", "2026-10-02"], ["2026-10-10"])
    end = c.add_workdays(start, n)
    assert c.workdays_between(start, end) == n
    if n:
        assert c.is_workday(end)
