"""The working calendar: which instants are working time, and arithmetic on working time.

Step deadlines ("4 working hours", "2 working days") and quiet hours are measured here. A day
is a working day when the official Chinese schedule says so (public holidays off, make-up
working days 调休 on, from the `chinese-calendar` package), unless the organisation's overrides
say otherwise. On a working day the working periods, e.g. 09:00-12:00 and 13:30-18:00 in the
organisation's timezone, are working time.

Pure: no I/O, no storage, no wall clock. Callers pass every instant in.

Decisions at the edges (each one has a test):

- Periods are half-open: 09:00 is working time, 12:00 is not.
- Instants may be in any timezone; they are converted to the organisation's timezone to find
  their day and compared as instants. Naive datetimes are refused. Every returned datetime is
  in the timezone of the argument it came from.
- Working time is real elapsed time. On a daylight-saving change day a period that spans the
  change is an hour shorter or longer than its wall-clock length; `working_hours_per_day` is the
  wall-clock length. A wall time that does not exist or occurs twice is read with `fold=0`.
- `add_working_time(start, 0)` returns `start` itself, even outside working time. A positive
  duration starts counting at the next working instant and returns the earliest instant by
  which that much working time has passed: a period's end (12:00), never the next period's
  start (13:30). Negative durations are refused.
- `working_time_between(a, b)` is antisymmetric: it is negative when `b` is before `a`.
- A search that would go more than three years ahead (absurd overrides or durations) raises
  `NoWorkingTime`, a `ValueError`, instead of running on.
- For a year the holiday data does not cover, Monday to Friday are working days. The year is
  recorded in `unknown_years`, logged once per calendar and reported by `coverage_warning()`.
- The overrides win over both the official schedule and that fallback; a date in both
  override sets is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

import chinese_calendar

logger = logging.getLogger(__name__)

SEARCH_LIMIT_YEARS = 3
_SEARCH_LIMIT_DAYS = SEARCH_LIMIT_YEARS * 366


class NoWorkingTime(ValueError):
    """The search found no answer within `SEARCH_LIMIT_YEARS` of `start`."""

    def __init__(self, message: str, *, start: datetime) -> None:
        super().__init__(message)
        self.start = start


class PeriodLike(Protocol):
    """Anything with a start and an end time, such as `bot.settings.WorkingPeriod`."""

    @property
    def start(self) -> time: ...

    @property
    def end(self) -> time: ...


class WorkingCalendar:
    """Working days and working hours of one organisation.

    `periods` are the working periods of a working day, in order, as wall-clock times in `tz`:
    objects with `.start`/`.end` or `(start, end)` tuples. `extra_holidays` are days off and
    `extra_workdays` working days that the official schedule does not have.

    The calendar remembers which years it found no holiday data for; apart from that it
    does not change once built. Build one per organisation and keep it, so that each unknown
    year is logged once.
    """

    def __init__(
        self,
        tz: ZoneInfo,
        periods: Sequence[PeriodLike | tuple[time, time]],
        *,
        extra_holidays: Iterable[date] = frozenset(),
        extra_workdays: Iterable[date] = frozenset(),
    ) -> None:
        self._tz = tz
        self._periods = _checked_periods(periods)
        self._extra_holidays = _checked_dates(extra_holidays, "extra_holidays")
        self._extra_workdays = _checked_dates(extra_workdays, "extra_workdays")
        both = self._extra_holidays & self._extra_workdays
        if both:
            listed = ", ".join(d.isoformat() for d in sorted(both))
            raise ValueError(f"{listed} cannot be both an extra holiday and an extra working day")
        self._unknown_years: set[int] = set()

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    @property
    def periods(self) -> tuple[tuple[time, time], ...]:
        return self._periods

    @property
    def working_hours_per_day(self) -> timedelta:
        """Wall-clock length of a working day's periods (09:00-12:00,13:30-18:00 gives 7:30)."""
        return sum(
            (
                datetime.combine(date.min, end) - datetime.combine(date.min, start)
                for start, end in self._periods
            ),
            timedelta(0),
        )

    @property
    def unknown_years(self) -> frozenset[int]:
        """Years looked at so far that the holiday data does not cover (weekends only there)."""
        return frozenset(self._unknown_years)

    def coverage_warning(self, through: date | None = None) -> str | None:
        """A line for a health page when holiday data is missing for a year in use, else None.

        `through` also checks the year of that date, so a caller can pass e.g. today plus a
        few weeks to learn of next year's missing data before a deadline falls in it.
        """
        if through is not None:
            self._official_workday(through)
        if not self._unknown_years:
            return None
        years = ", ".join(str(y) for y in sorted(self._unknown_years))
        return (
            f"holiday data for {years} is not known; treating weekends only as days off "
            "(upgrade chinese-calendar)"
        )

    def is_working_day(self, d: date) -> bool:
        """Whether `d` is a working day: overrides first, then the official schedule."""
        if isinstance(d, datetime):
            # A datetime is a date too, but its day depends on the timezone it is read in.
            raise TypeError("is_working_day takes a date; for an instant use is_working_time")
        if d in self._extra_holidays:
            return False
        if d in self._extra_workdays:
            return True
        return self._official_workday(d)

    def is_working_time(self, at: datetime) -> bool:
        """Whether the instant `at` falls inside a working period of a working day."""
        _require_aware(at, "at")
        first = next(self._spans(at, self._local_day(at)), None)
        # Compared in UTC: an instant in a DST gap or fold never equals one in another zone.
        return first is not None and first[0] == at.astimezone(UTC)

    def next_working_start(self, at: datetime) -> datetime:
        """`at` itself if it is working time, else the start of the next working period."""
        _require_aware(at, "at")
        first = next(self._spans(at, self._horizon(at)), None)
        if first is None:
            raise NoWorkingTime(
                f"no working time within {SEARCH_LIMIT_YEARS} years after {at.isoformat()}; "
                "check extra_holidays",
                start=at,
            )
        return at if first[0] == at.astimezone(UTC) else first[0].astimezone(at.tzinfo)

    def add_working_time(self, start: datetime, duration: timedelta) -> datetime:
        """The earliest instant by which `duration` of working time has passed since `start`."""
        _require_aware(start, "start")
        if duration < timedelta(0):
            raise ValueError(f"duration must not be negative, got {duration}")
        if not duration:
            return start
        remaining = duration
        for span_start, span_end in self._spans(start, self._horizon(start)):
            length = span_end - span_start
            if remaining <= length:
                return (span_start + remaining).astimezone(start.tzinfo)
            remaining -= length
        raise NoWorkingTime(
            f"adding {duration} of working time to {start.isoformat()} goes more than "
            f"{SEARCH_LIMIT_YEARS} years ahead; check the duration and extra_holidays",
            start=start,
        )

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Working time from `a` to `b`; negative when `b` is before `a`."""
        _require_aware(a, "a")
        _require_aware(b, "b")
        # In UTC: Python compares two datetimes of one zone by wall clock, ignoring DST folds.
        begin, end = a.astimezone(UTC), b.astimezone(UTC)
        if end < begin:
            return -self.working_time_between(end, begin)
        total = timedelta(0)
        for span_start, span_end in self._spans(begin, self._local_day(end)):
            if span_start >= end:
                break
            total += min(span_end, end) - span_start
        return total

    def _spans(self, after: datetime, last_day: date) -> Iterator[tuple[datetime, datetime]]:
        """Working periods as UTC instants, in order, from `after`'s day through `last_day`.

        Periods that end by `after` are skipped and the one it falls in is cut to start at
        it. Each period is also cut to start where the previous one ended, so that wall times
        made ambiguous or impossible by a daylight-saving change never count twice.
        """
        cursor = after.astimezone(UTC)
        first_day = self._local_day(after)
        for offset in range((last_day - first_day).days + 1):
            day = first_day + timedelta(days=offset)
            if not self.is_working_day(day):
                continue
            for start, end in self._periods:
                span_start = max(self._instant(day, start), cursor)
                span_end = self._instant(day, end)
                if span_end > span_start:
                    yield span_start, span_end
                    cursor = span_end

    def _instant(self, day: date, wall: time) -> datetime:
        return datetime.combine(day, wall, self._tz).astimezone(UTC)

    def _local_day(self, at: datetime) -> date:
        return at.astimezone(self._tz).date()

    def _horizon(self, at: datetime) -> date:
        day = self._local_day(at)
        if (date.max - day).days <= _SEARCH_LIMIT_DAYS:
            return date.max
        return day + timedelta(days=_SEARCH_LIMIT_DAYS)

    def _official_workday(self, d: date) -> bool:
        if d.year not in self._unknown_years:
            try:
                return bool(chinese_calendar.is_workday(d))
            except NotImplementedError:
                self._unknown_years.add(d.year)
                logger.warning(
                    "holiday data for %d is not known to chinese-calendar; "
                    "treating only Saturdays and Sundays as days off in %d",
                    d.year,
                    d.year,
                )
        return d.weekday() < 5


def _checked_periods(periods: Sequence[PeriodLike | tuple[time, time]]) -> tuple[tuple[time, time], ...]:
    checked: list[tuple[time, time]] = []
    for period in periods:
        if isinstance(period, tuple):
            start, end = period
        else:
            start, end = period.start, period.end
        if not isinstance(start, time) or not isinstance(end, time):
            raise ValueError(f"working period {period!r} needs a start and an end time")
        if start.tzinfo is not None or end.tzinfo is not None:
            raise ValueError(
                f"working period {start}-{end} must be naive wall-clock times in the calendar's tz"
            )
        if end <= start:
            raise ValueError(f"working period {start}-{end} ends before it starts")
        if checked and start < checked[-1][1]:
            raise ValueError(f"working period {start}-{end} overlaps or precedes the period before it")
        checked.append((start, end))
    if not checked:
        raise ValueError("a working calendar needs at least one working period")
    return tuple(checked)


def _checked_dates(dates: Iterable[date], name: str) -> frozenset[date]:
    checked = frozenset(dates)
    for d in checked:
        if isinstance(d, datetime) or not isinstance(d, date):
            raise ValueError(f"{name} must hold dates, got {d!r}")
    return checked


def _require_aware(at: datetime, name: str) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {at.isoformat()}")
