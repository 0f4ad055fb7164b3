"""Working-day calendar: promised completion dates counted the way offices count them.

A day is a working day when it is Monday to Friday and not a public holiday, or
when it is a make-up working day (调休上班) on a weekend. Holidays and make-up
days come from config (`[calendar] holidays / workdays`) because the State Council
publishes them each year.

Counting rule (承诺办结时限 "N个工作日"): the day of submission does not count;
the promise falls on the N-th working day after it. "0个工作日" / "即办" means the
same day. A limit that is not a number of working days ("当月办理，下月发放")
has no computable date: callers print the text as it is.
"""
from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["WorkdayCalendar", "parse_promised_limit", "promised_date"]

_DAYS = re.compile(r"^\s*(\d+)\s*个?\s*工作日")
_SAME_DAY = ("即办", "即时办理", "当场办结", "当场办理", "立即办理", "随时办理")


def _dates(values: Iterable[Any]) -> frozenset[_dt.date]:
    out = set()
    for v in values:
        out.add(v if isinstance(v, _dt.date) else _dt.date.fromisoformat(str(v).strip()))
    return frozenset(out)


@dataclass(frozen=True)
class WorkdayCalendar:
    holidays: frozenset[_dt.date] = field(default_factory=frozenset)
    workdays: frozenset[_dt.date] = field(default_factory=frozenset)

    @classmethod
    def from_lists(cls, holidays: Iterable[Any] = (), workdays: Iterable[Any] = ()) -> WorkdayCalendar:
        """ISO date strings or dates; a bad date raises ValueError naming nothing personal."""
        return cls(_dates(holidays), _dates(workdays))

    @classmethod
    def from_config(cls, cfg: Any) -> WorkdayCalendar:
        """Accepts a KioskConfig or its CalendarSection."""
        section = getattr(cfg, "calendar", cfg)
        return cls.from_lists(section.holidays, section.workdays)

    def is_workday(self, d: _dt.date) -> bool:
        if d in self.workdays:
            return True
        if d in self.holidays:
            return False
        return d.weekday() < 5

    def next_workday(self, d: _dt.date) -> _dt.date:
        """d itself when it is a working day, else the first working day after it."""
        while not self.is_workday(d):
            d += _dt.timedelta(days=1)
        return d

    def add_workdays(self, start: _dt.date, n: int) -> _dt.date:
        """The n-th working day after `start` (start itself never counts); n=0 is `start`."""
        if n < 0:
            raise ValueError("n must be >= 0")
        if isinstance(start, _dt.datetime):
            start = start.date()
        d = start
        left = n
        while left:
            d += _dt.timedelta(days=1)
            if self.is_workday(d):
                left -= 1
        return d

    def workdays_between(self, start: _dt.date, end: _dt.date) -> int:
        """Working days in (start, end]: the inverse of add_workdays."""
        count = 0
        d = start
        while d < end:
            d += _dt.timedelta(days=1)
            if self.is_workday(d):
                count += 1
        return count


def parse_promised_limit(limit: Any) -> int | None:
    """Working days in a promised limit: 5, "5", "5个工作日", "5 个工作日内审核完成"; 0 for 即办.

    None when the limit is not a count of working days (a fixed period, a season).
    """
    if limit is None or isinstance(limit, bool):
        return None
    if isinstance(limit, int):
        return limit if limit >= 0 else None
    text = str(limit).strip()
    if text.isdigit():
        return int(text)
    m = _DAYS.match(text)
    if m:
        return int(m.group(1))
    if any(word in text for word in _SAME_DAY):
        return 0
    return None


def promised_date(calendar: WorkdayCalendar, limit_or_item: Any,
                  submitted: _dt.date | _dt.datetime) -> _dt.date | None:
    """The promised completion date of an item (or a raw limit) submitted on `submitted`."""
    limit = getattr(limit_or_item, "promised_limit", limit_or_item)
    days = parse_promised_limit(limit)
    if days is None:
        return None
    day = submitted.date() if isinstance(submitted, _dt.datetime) else submitted
    return calendar.add_workdays(day, days)
