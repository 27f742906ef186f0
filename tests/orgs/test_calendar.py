"""The working-hours calendar (orgs/calendar.py): known answers on real dates of the State Council's
notices, and the laws that make deadlines trustworthy, proved with hypothesis."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orgs.calendar import (
    WorkDays,
    add_working_hours,
    deadline_after,
    parse_periods,
    working_hours_between,
    working_time_between,
)

TZ = ZoneInfo("Asia/Shanghai")
# The 2026 notice's Spring Festival: 2/15–2/23 off, Saturdays 2/14 and 2/28 worked.
SPRING_2026 = {date(2026, 2, 14): True, date(2026, 2, 28): True} | {
    date(2026, 2, 15) + timedelta(days=i): False for i in range(9)
}
DAYS = WorkDays(overrides=SPRING_2026)


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        # 暴露垃圾 1 工作日 (7.5 工作时: 8:30–12:00 and 14:00–18:00) from Monday 9:00: Tuesday 9:00.
        (at(2026, 3, 2, 9), 7.5, at(2026, 3, 3, 9)),
        # 8 工作时 from the same moment: half an hour more.
        (at(2026, 3, 2, 9), 8, at(2026, 3, 3, 9, 30)),
        # 道路不洁 5 工作时 from Friday 16:00: 2 h on Friday, 3 h on Monday → 11:30.
        (at(2026, 3, 6, 16), 5, at(2026, 3, 9, 11, 30)),
        # Ends exactly at noon: due at 12:00, not at 14:00.
        (at(2026, 3, 2, 8, 30), 3.5, at(2026, 3, 2, 12)),
        # Raised at lunch: counting starts at 14:00.
        (at(2026, 3, 2, 12, 30), 1, at(2026, 3, 2, 15)),
        # Raised at night: counting starts the next working morning.
        (at(2026, 3, 2, 22), 1, at(2026, 3, 3, 9, 30)),
        # Friday 2/13 17:00 before the Spring Festival: 1 h on Friday, 7 h on the make-up Saturday.
        (at(2026, 2, 13, 17), 8, at(2026, 2, 14, 17, 30)),
        # 16 h from the same Friday: 1 + 7.5 h, then the holiday block (2/15–2/23) is skipped and
        # the last 7.5 h fill Tuesday 2/24.
        (at(2026, 2, 13, 17), 16, at(2026, 2, 24, 18)),
        # 违法搭建 15 工作日 from Monday 2026-03-02 9:00: three weeks later.
        (at(2026, 3, 2, 9), 15 * 7.5, at(2026, 3, 23, 9)),
        # Zero hours: the start itself, even outside working time.
        (at(2026, 3, 1, 3), 0, at(2026, 3, 1, 3)),
    ],
)
def test_known_deadlines(start, hours, due):
    assert add_working_hours(start, hours, days=DAYS) == due
    assert working_hours_between(start, due, days=DAYS) == pytest.approx(hours)


def test_urgent_categories_count_continuous_hours():
    # 井盖缺失 2 h on the Spring Festival's eve: due two hours later, holiday or not.
    start = at(2026, 2, 16, 23)
    assert deadline_after(start, 2, urgent=True, days=DAYS) == at(2026, 2, 17, 1)
    assert deadline_after(start, 2, urgent=False, days=DAYS) == at(2026, 2, 24, 10, 30)


def test_times_in_another_zone_are_read_on_the_local_clock():
    utc_start = datetime(2026, 3, 2, 1, 0, tzinfo=ZoneInfo("UTC"))  # 9:00 in Shanghai
    assert add_working_hours(utc_start, 7.5, days=DAYS) == at(2026, 3, 3, 9)


def test_configured_periods_and_refusals():
    days = WorkDays(periods=parse_periods([["09:00", "17:00"]]))
    assert add_working_hours(at(2026, 3, 2, 9), 8, days=days) == at(2026, 3, 2, 17)
    with pytest.raises(ValueError):
        WorkDays(periods=parse_periods([["14:00", "18:00"], ["08:30", "12:00"]]))
    with pytest.raises(ValueError):
        add_working_hours(datetime(2026, 3, 2, 9), 1, days=DAYS)  # noqa: DTZ001 - naive on purpose
    with pytest.raises(ValueError):
        add_working_hours(at(2026, 3, 2, 9), -1, days=DAYS)
    never = WorkDays(overrides={date(2026, 1, 1) + timedelta(days=i): False for i in range(4 * 366)})
    with pytest.raises(ValueError):
        add_working_hours(at(2026, 1, 1, 9), 1, days=never)


# --- laws ---------------------------------------------------------------------------------------

moments = st.datetimes(
    # hypothesis takes naive bounds and attaches the zone itself.
    min_value=datetime(2025, 12, 1),  # noqa: DTZ001
    max_value=datetime(2026, 12, 31),  # noqa: DTZ001
    timezones=st.just(TZ),
).map(lambda d: d.replace(microsecond=0))
# Amounts in whole minutes up to 15 working days: limits are set in tenths of an hour.
amounts = st.integers(min_value=0, max_value=120 * 60).map(lambda minutes: minutes / 60)
holidays = st.dictionaries(
    st.dates(min_value=date(2025, 12, 1), max_value=date(2027, 3, 31)), st.booleans(), max_size=40
)


@settings(max_examples=300, deadline=None)
@given(start=moments, hours=amounts, overrides=holidays)
def test_between_inverts_add(start, hours, overrides):
    days = WorkDays(overrides=overrides)
    due = add_working_hours(start, hours, days=days)
    assert due >= start
    assert working_time_between(start, due, days=days) == timedelta(seconds=round(hours * 3600))


@settings(max_examples=200, deadline=None)
@given(start=moments, a=amounts, b=amounts, overrides=holidays)
def test_additions_chain(start, a, b, overrides):
    days = WorkDays(overrides=overrides)
    assert add_working_hours(add_working_hours(start, a, days=days), b, days=days) == add_working_hours(
        start, a + b, days=days
    )


@settings(max_examples=200, deadline=None)
@given(start=moments, a=amounts, b=amounts)
def test_more_hours_never_fall_due_earlier(start, a, b):
    lo, hi = sorted((a, b))
    assert add_working_hours(start, lo, days=DAYS) <= add_working_hours(start, hi, days=DAYS)


@settings(max_examples=200, deadline=None)
@given(a=moments, b=moments, overrides=holidays)
def test_between_is_antisymmetric_and_counts_only_working_time(a, b, overrides):
    days = WorkDays(overrides=overrides)
    forward = working_time_between(a, b, days=days)
    assert forward == -working_time_between(b, a, days=days)
    lo, hi = sorted((a, b))
    # Never more than the calendar time, never more than 7.5 h per calendar day touched.
    assert abs(forward) <= hi - lo
    assert abs(forward) <= timedelta(hours=7.5) * ((hi.date() - lo.date()).days + 1)


@settings(max_examples=100, deadline=None)
@given(start=moments, hours=st.integers(min_value=1, max_value=40))
def test_a_deadline_is_inside_working_time(start, hours):
    due = add_working_hours(start, hours, days=DAYS)
    local = due.astimezone(TZ)
    assert DAYS.is_workday(local.date())
    assert any(begin < local.time() <= end for begin, end in DAYS.periods)
