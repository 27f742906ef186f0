"""Working hours (工作时) on the street office's calendar: pure functions, no database.

The 数字城管 manuals count a step's time limit in working hours: 8:30–12:00 and 14:00–18:00 on
working days; weekends and public holidays do not count, make-up working days (调休, a Saturday or
Sunday worked to bridge a holiday) do. Which days are which is data (orgs.cases_models.WorkCalendarDay,
loaded by orgs.cases_selectors.work_days): the State Council publishes each year's arrangement in
November, so it cannot be computed.

Rules, stated once:
- Times are read on the local wall clock of `days.tz` (China has had no daylight saving since 1991,
  so local arithmetic is exact). Results are aware datetimes in that zone.
- `add_working_hours(start, h)` is the earliest moment by which `h` working hours have passed since
  `start`. Zero hours is `start` itself, even outside working time; a positive amount that ends
  exactly at a period's end is that end (a limit of 3.5 h from 8:30 falls due at 12:00, not at
  14:00).
- `working_hours_between(a, b)` counts the working time in [a, b); negative when b < a. It is the
  inverse: working_hours_between(s, add_working_hours(s, h)) == h for every s and h >= 0
  (tests/orgs/test_calendar.py proves it with hypothesis), and additions chain:
  add(add(s, a), b) == add(s, a + b).
- Amounts are kept in whole seconds, so the round trip is exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

__all__ = [
    "DEFAULT_PERIODS",
    "WorkDays",
    "add_working_hours",
    "add_working_time",
    "deadline_after",
    "parse_periods",
    "working_hours_between",
    "working_time_between",
]

Period = tuple[time, time]
DEFAULT_PERIODS: tuple[Period, ...] = ((time(8, 30), time(12, 0)), (time(14, 0), time(18, 0)))
# A limit of 15 working days spans ~3 weeks; a year of holidays cannot stretch any sane limit past
# this many calendar days. Beyond it the calendar has no working time at all: a configuration error.
_MAX_DAYS = 3 * 366
_MICRO = timedelta(microseconds=1)
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class WorkDays:
    """Which days are worked and the working periods of a working day.

    `overrides` maps a date to True (a make-up working day on a weekend) or False (a holiday on a
    weekday, or any day of a holiday block); every other day is worked Monday to Friday.
    """

    overrides: Mapping[date, bool] = field(default_factory=dict)
    periods: tuple[Period, ...] = DEFAULT_PERIODS
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))

    def __post_init__(self) -> None:
        previous = time.min
        for begin, end in self.periods:
            if not (previous <= begin < end):
                raise ValueError("工作时段必须按时间先后排列且互不重叠")
            previous = end
        # The periods as second offsets from midnight, computed once: deadlines are computed by
        # the ten thousand when the demo builds a year of cases.
        spans = tuple((timedelta(seconds=_seconds(b)), timedelta(seconds=_seconds(e))) for b, e in self.periods)
        object.__setattr__(self, "_spans", spans)
        object.__setattr__(self, "_per_day", int(sum((e - b).total_seconds() for b, e in spans)))
        object.__setattr__(self, "_spans_us", tuple((b // _MICRO, e // _MICRO) for b, e in spans))

    def is_workday(self, day: date) -> bool:
        worked = self.overrides.get(day)
        return day.weekday() < 5 if worked is None else worked

    @property
    def spans(self) -> tuple[tuple[timedelta, timedelta], ...]:
        return self._spans  # type: ignore[attr-defined,no-any-return]

    @property
    def spans_us(self) -> tuple[tuple[int, int], ...]:
        """The periods as microseconds after midnight."""
        return self._spans_us  # type: ignore[attr-defined,no-any-return]

    @property
    def seconds_per_day(self) -> int:
        return self._per_day  # type: ignore[attr-defined,no-any-return]


def parse_periods(pairs: object) -> tuple[Period, ...]:
    """[["08:30", "12:00"], ["14:00", "18:00"]] (the settings' form) as time pairs."""
    out: list[Period] = []
    for begin, end in pairs:  # type: ignore[attr-defined]
        out.append((time.fromisoformat(begin), time.fromisoformat(end)))
    return tuple(out)


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _as_seconds(hours: float | int | Decimal) -> int:
    seconds = round(Decimal(str(hours)) * 3600)
    if seconds < 0:
        raise ValueError("工作时长不能为负数")
    return int(seconds)


def _local(moment: datetime, days: WorkDays) -> datetime:
    if moment.tzinfo is days.tz:
        return moment
    if moment.tzinfo is None:
        raise ValueError("需要带时区的时间")
    return moment.astimezone(days.tz)


def add_working_hours(start: datetime, hours: float | int | Decimal, *, days: WorkDays) -> datetime:
    """The moment `hours` working hours after `start` (see the module's rules)."""
    return add_working_time(start, timedelta(seconds=_as_seconds(hours)), days=days)


def add_working_time(start: datetime, amount: timedelta, *, days: WorkDays) -> datetime:
    """`add_working_hours` for an amount already in time units (whole seconds or finer)."""
    if amount < timedelta(0):
        raise ValueError("工作时长不能为负数")
    local = _local(start, days)
    if not amount:
        return local
    if days.seconds_per_day == 0:
        raise ValueError("工作日没有工作时段")
    # Integer microseconds of the day rather than datetimes in the loop: a year of demo cases
    # computes two million deadlines.
    left = amount // _MICRO
    cursor = ((local.hour * 60 + local.minute) * 60 + local.second) * 1_000_000 + local.microsecond
    day = local.date()
    spans = days.spans_us
    for _ in range(_MAX_DAYS):
        if days.is_workday(day):
            for begin, end in spans:
                lo = begin if begin > cursor else cursor
                if lo >= end:
                    continue
                if left <= end - lo:
                    return datetime.combine(day, time.min, tzinfo=days.tz) + timedelta(microseconds=lo + left)
                left -= end - lo
        day += _ONE_DAY
        cursor = 0
    raise ValueError(f"{_MAX_DAYS} 天内没有足够的工作时间，请检查工作日历")


def working_time_between(a: datetime, b: datetime, *, days: WorkDays) -> timedelta:
    """The working time in [a, b) (negative when b < a)."""
    a, b = _local(a, days), _local(b, days)
    if b < a:
        return -working_time_between(b, a, days=days)
    total = timedelta()
    day = a.date()
    while day <= b.date():
        if days.is_workday(day):
            midnight = datetime.combine(day, time.min, tzinfo=days.tz)
            for begin, end in days.spans:
                lo = max(a, midnight + begin)
                hi = min(b, midnight + end)
                if hi > lo:
                    total += hi - lo
        day += timedelta(days=1)
    return total


def working_hours_between(a: datetime, b: datetime, *, days: WorkDays) -> float:
    """Working hours in [a, b), as a float (negative when b < a)."""
    return working_time_between(a, b, days=days).total_seconds() / 3600


def deadline_after(
    start: datetime, hours: float | int | Decimal | timedelta, *, urgent: bool, days: WorkDays
) -> datetime:
    """A step's deadline: `hours` working hours after `start`, or continuous hours for an urgent
    category (a missing manhole cover is not left open over the weekend). `hours` may be given as
    a timedelta of working time."""
    amount = hours if isinstance(hours, timedelta) else timedelta(seconds=_as_seconds(hours))
    if urgent:
        return _local(start, days) + amount
    return add_working_time(start, amount, days=days)
