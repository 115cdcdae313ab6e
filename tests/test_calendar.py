"""The working calendar against the real 2025 and 2026 Chinese holiday schedules.

Each schedule fact a test relies on is first checked against the installed chinese-calendar
data, so a data change fails the facts tests, not a confusing arithmetic test.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.settings import parse_working_hours
from deadlines.calendar import NoWorkingTime, WorkingCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
OFFICE_HOURS = ((time(9, 0), time(12, 0)), (time(13, 30), time(18, 0)))
FAR_FUTURE_YEAR = 2099  # chinese-calendar will not have data for it for decades


def office_calendar(
    tz: ZoneInfo = SHANGHAI,
    *,
    extra_holidays: frozenset[date] = frozenset(),
    extra_workdays: frozenset[date] = frozenset(),
) -> WorkingCalendar:
    return WorkingCalendar(tz, OFFICE_HOURS, extra_holidays=extra_holidays, extra_workdays=extra_workdays)


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


H = timedelta(hours=1)
# Shared by tests that stay inside 2025-2026; tests leaving the data build their own,
# since a calendar remembers the years it found no data for.
CAL = office_calendar()


# --- The official schedule ---------------------------------------------------------------


def test_golden_week_2025_and_its_make_up_days_match_the_official_schedule() -> None:
    golden_week = days(date(2025, 10, 1), date(2025, 10, 8))
    for d in golden_week:
        # Mid-Autumn Festival (6 October) falls inside the National Day holiday in 2025.
        assert chinese_calendar.get_holiday_detail(d) == (
            True,
            "Mid-autumn Festival" if d == date(2025, 10, 6) else "National Day",
        )
    assert date(2025, 9, 28).weekday() == 6 and date(2025, 10, 11).weekday() == 5
    for make_up in (date(2025, 9, 28), date(2025, 10, 11)):
        assert chinese_calendar.get_holiday_detail(make_up) == (False, "National Day")

    working = {d for d in days(date(2025, 9, 26), date(2025, 10, 13)) if CAL.is_working_day(d)}
    assert working == {
        date(2025, 9, 26),
        date(2025, 9, 28),  # Sunday, make-up day
        date(2025, 9, 29),
        date(2025, 9, 30),
        date(2025, 10, 9),
        date(2025, 10, 10),
        date(2025, 10, 11),  # Saturday, make-up day
        date(2025, 10, 13),
    }
    assert working == {
        d for d in days(date(2025, 9, 26), date(2025, 10, 13)) if chinese_calendar.is_workday(d)
    }


def test_spring_festival_2026_matches_the_official_schedule() -> None:
    for d in days(date(2026, 2, 15), date(2026, 2, 23)):
        assert chinese_calendar.get_holiday_detail(d) == (True, "Spring Festival")
        assert not CAL.is_working_day(d)
    assert date(2026, 2, 14).weekday() == 5 and date(2026, 2, 28).weekday() == 5
    for make_up in (date(2026, 2, 14), date(2026, 2, 28)):
        assert chinese_calendar.get_holiday_detail(make_up) == (False, "Spring Festival")
        assert CAL.is_working_day(make_up)
    assert CAL.is_working_day(date(2026, 2, 13)) and CAL.is_working_day(date(2026, 2, 24))


def test_ordinary_weeks_are_monday_to_friday() -> None:
    # 2025-11-10..16: no holiday or make-up day in the official data.
    week = days(date(2025, 11, 10), date(2025, 11, 16))
    assert all(chinese_calendar.get_holiday_detail(d)[1] is None for d in week)
    assert [CAL.is_working_day(d) for d in week] == [True] * 5 + [False] * 2


# --- Working time ------------------------------------------------------------------------


def test_working_hours_per_day_is_the_wall_clock_length_of_the_periods() -> None:
    assert CAL.working_hours_per_day == timedelta(hours=7, minutes=30)


def test_periods_include_their_start_and_exclude_their_end() -> None:
    assert CAL.is_working_time(sh(2025, 11, 14, 9))
    assert CAL.is_working_time(sh(2025, 11, 14, 11, 59, 59))
    assert not CAL.is_working_time(sh(2025, 11, 14, 12))
    assert not CAL.is_working_time(sh(2025, 11, 14, 13, 29, 59))
    assert CAL.is_working_time(sh(2025, 11, 14, 13, 30))
    assert not CAL.is_working_time(sh(2025, 11, 14, 18))
    assert not CAL.is_working_time(sh(2025, 11, 14, 8, 59, 59))
    assert not CAL.is_working_time(sh(2025, 11, 15, 10))  # Saturday
    assert not CAL.is_working_time(sh(2025, 10, 1, 10))  # National Day
    assert CAL.is_working_time(sh(2025, 10, 11, 10))  # make-up Saturday


# --- add_working_time --------------------------------------------------------------------


def test_four_hours_from_friday_afternoon_land_on_monday_before_lunch() -> None:
    assert chinese_calendar.is_workday(date(2025, 11, 17))  # Monday
    assert CAL.add_working_time(sh(2025, 11, 14, 16), 4 * H) == sh(2025, 11, 17, 11)


def test_two_hours_from_eleven_skip_the_lunch_break() -> None:
    assert CAL.add_working_time(sh(2025, 11, 12, 11), 2 * H) == sh(2025, 11, 12, 14, 30)


def test_start_during_lunch_counts_from_the_afternoon_period() -> None:
    assert CAL.add_working_time(sh(2025, 11, 12, 12, 30), H) == sh(2025, 11, 12, 14, 30)


def test_start_on_a_sunday_counts_from_monday_morning() -> None:
    assert CAL.add_working_time(sh(2025, 11, 16, 15), H) == sh(2025, 11, 17, 10)


def test_the_evening_before_golden_week_lands_after_the_holiday() -> None:
    assert CAL.add_working_time(sh(2025, 9, 30, 19), 4 * H) == sh(2025, 10, 9, 14, 30)
    assert CAL.add_working_time(sh(2025, 9, 30, 16), 4 * H) == sh(2025, 10, 9, 11)


def test_make_up_working_days_count_on_saturday_and_sunday() -> None:
    assert CAL.add_working_time(sh(2025, 10, 10, 16), 4 * H) == sh(2025, 10, 11, 11)
    assert CAL.add_working_time(sh(2025, 9, 27, 10), 2 * H) == sh(2025, 9, 28, 11)


def test_spring_festival_2026_is_skipped_after_its_make_up_saturday() -> None:
    assert CAL.add_working_time(sh(2026, 2, 13, 17), 2 * H) == sh(2026, 2, 14, 10)
    assert CAL.add_working_time(sh(2026, 2, 14, 17), 2 * H) == sh(2026, 2, 24, 10)


def test_time_that_exactly_fills_a_period_ends_at_its_end_not_the_next_start() -> None:
    assert CAL.add_working_time(sh(2025, 11, 12, 9), 3 * H) == sh(2025, 11, 12, 12)
    assert CAL.add_working_time(sh(2025, 11, 12, 13, 30), 4.5 * H) == sh(2025, 11, 12, 18)


def test_arithmetic_is_exact_to_the_microsecond() -> None:
    start = sh(2025, 11, 12, 11, 59, 59) + timedelta(microseconds=250)
    assert CAL.add_working_time(start, timedelta(seconds=1)) == sh(2025, 11, 12, 13, 30, 0) + timedelta(
        microseconds=250
    )


def test_zero_duration_returns_the_start_itself_even_outside_working_time() -> None:
    sunday = sh(2025, 11, 16, 15)
    assert CAL.add_working_time(sunday, timedelta(0)) is sunday
    working = sh(2025, 11, 17, 10)
    assert CAL.add_working_time(working, timedelta(0)) is working


def test_a_negative_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        CAL.add_working_time(sh(2025, 11, 17, 10), -H)


def test_two_working_days_and_two_hundred_working_hours() -> None:
    monday = sh(2025, 11, 3, 9)
    assert CAL.add_working_time(monday, 2 * CAL.working_hours_per_day) == sh(2025, 11, 4, 18)
    # 200 h = 26 full days (195 h) + 5 h; the 27th working day from 2025-11-03 is 2025-12-09.
    assert all(
        chinese_calendar.get_holiday_detail(d)[1] is None for d in days(date(2025, 11, 3), date(2025, 12, 9))
    )
    deadline = CAL.add_working_time(monday, 200 * H)
    assert deadline == sh(2025, 12, 9, 15, 30)
    assert CAL.working_time_between(monday, deadline) == 200 * H


def test_a_duration_of_nearly_two_years_is_walked_day_by_day() -> None:
    # 3500 h is 466 working days and 5 h: all of 2025's working days and most of 2026's.
    cal = office_calendar()
    start = sh(2025, 1, 2, 9)
    end = cal.add_working_time(start, 3500 * H)
    assert end == sh(2026, 11, 20, 15, 30)
    assert cal.working_time_between(start, end) == 3500 * H
    assert cal.unknown_years == frozenset()


# --- working_time_between and next_working_start -----------------------------------------


def test_working_time_between_is_antisymmetric() -> None:
    friday, monday = sh(2025, 11, 14, 16), sh(2025, 11, 17, 11)
    assert CAL.working_time_between(friday, monday) == 4 * H
    assert CAL.working_time_between(monday, friday) == -4 * H
    assert CAL.working_time_between(friday, friday) == timedelta(0)


def test_no_working_time_between_two_instants_of_the_same_break() -> None:
    assert CAL.working_time_between(sh(2025, 11, 15, 8), sh(2025, 11, 16, 23)) == timedelta(0)
    assert CAL.working_time_between(sh(2025, 11, 12, 12), sh(2025, 11, 12, 13, 30)) == timedelta(0)


def test_golden_week_adds_no_working_time() -> None:
    assert CAL.working_time_between(sh(2025, 9, 30, 9), sh(2025, 10, 9, 9)) == 7.5 * H


def test_next_working_start_is_the_instant_itself_inside_working_time() -> None:
    at = sh(2025, 11, 12, 10, 15)
    assert CAL.next_working_start(at) is at


def test_next_working_start_outside_working_time_is_the_next_period_start() -> None:
    assert CAL.next_working_start(sh(2025, 11, 12, 12)) == sh(2025, 11, 12, 13, 30)
    assert CAL.next_working_start(sh(2025, 11, 12, 18)) == sh(2025, 11, 13, 9)
    assert CAL.next_working_start(sh(2025, 11, 12, 6)) == sh(2025, 11, 12, 9)
    assert CAL.next_working_start(sh(2025, 9, 30, 21)) == sh(2025, 10, 9, 9)
    assert CAL.next_working_start(sh(2025, 10, 10, 19)) == sh(2025, 10, 11, 9)


# --- Timezones ---------------------------------------------------------------------------


def test_utc_input_is_read_in_the_org_timezone_and_answered_in_utc() -> None:
    friday_4pm_shanghai = datetime(2025, 11, 14, 8, 0, tzinfo=UTC)
    deadline = CAL.add_working_time(friday_4pm_shanghai, 4 * H)
    assert deadline == sh(2025, 11, 17, 11)
    assert deadline.tzinfo is UTC and deadline.hour == 3
    # Sunday 23:30 UTC is Monday 07:30 in Shanghai: a working day, before its first period.
    sunday_night = datetime(2025, 11, 16, 23, 30, tzinfo=UTC)
    assert not CAL.is_working_time(sunday_night)
    nxt = CAL.next_working_start(sunday_night)
    assert nxt == datetime(2025, 11, 17, 1, 0, tzinfo=UTC) and nxt.tzinfo is UTC
    assert CAL.is_working_time(datetime(2025, 11, 17, 1, 0, tzinfo=UTC))


def test_shanghai_input_to_a_berlin_calendar_keeps_its_own_timezone() -> None:
    berlin = office_calendar(BERLIN)
    # Monday 2025-11-17 09:00 in Berlin is 16:00 in Shanghai.
    deadline = berlin.add_working_time(sh(2025, 11, 17, 16), H)
    assert deadline == datetime(2025, 11, 17, 10, tzinfo=BERLIN)
    assert deadline.tzinfo is SHANGHAI and deadline.hour == 17


def test_a_weekend_with_a_dst_change_in_berlin_is_counted_in_real_time() -> None:
    berlin = office_calendar(BERLIN)
    friday = datetime(2025, 3, 28, 16, tzinfo=BERLIN)  # CET
    deadline = berlin.add_working_time(friday, 4 * H)
    assert deadline == datetime(2025, 3, 31, 11, tzinfo=BERLIN)  # CEST
    # Same-zone subtraction in Python is wall-clock; the real gap is an hour under its 67 h.
    assert deadline.astimezone(UTC) - friday.astimezone(UTC) == timedelta(days=2, hours=18)


@pytest.mark.parametrize(("day", "real_hours"), [(date(2025, 3, 30), 5), (date(2025, 10, 26), 7)])
def test_a_period_across_a_dst_change_lasts_its_real_length(day: date, real_hours: int) -> None:
    # Both days are Sundays; the override makes them working days for a 00:00-06:00 shift.
    assert not chinese_calendar.is_workday(day)
    night = WorkingCalendar(BERLIN, [(time(0), time(6))], extra_workdays=frozenset({day}))
    start = datetime.combine(day, time(0), BERLIN)
    end = datetime.combine(day, time(6), BERLIN)
    assert night.working_hours_per_day == 6 * H
    assert night.working_time_between(start, end) == real_hours * H
    assert night.add_working_time(start, real_hours * H) == end
    assert night.is_working_time(datetime.combine(day, time(2, 30), BERLIN))


def test_the_repeated_hour_of_an_autumn_dst_change_is_ordered_by_instant() -> None:
    day = date(2025, 10, 26)  # Berlin's clocks go from 03:00 back to 02:00
    night = WorkingCalendar(BERLIN, [(time(0), time(6))], extra_workdays=frozenset({day}))
    first_pass = datetime(2025, 10, 26, 2, 45, tzinfo=BERLIN)  # 00:45 UTC
    second_pass = datetime(2025, 10, 26, 2, 30, fold=1, tzinfo=BERLIN)  # 01:30 UTC
    assert night.working_time_between(first_pass, second_pass) == timedelta(minutes=45)
    assert night.working_time_between(second_pass, first_pass) == -timedelta(minutes=45)
    later = night.add_working_time(first_pass, timedelta(minutes=45))
    assert later.astimezone(UTC) == datetime(2025, 10, 26, 1, 30, tzinfo=UTC)
    assert (later.hour, later.minute, later.fold) == (2, 30, 1)
    assert night.next_working_start(second_pass) is second_pass


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.add_working_time(datetime(2025, 11, 14, 16), H)
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.working_time_between(sh(2025, 11, 14, 16), datetime(2025, 11, 17, 9))


def test_is_working_day_refuses_a_datetime() -> None:
    with pytest.raises(TypeError):
        CAL.is_working_day(sh(2025, 11, 14, 16))


# --- Organisation overrides --------------------------------------------------------------


def test_an_extra_holiday_on_a_monday_moves_the_deadline_to_tuesday() -> None:
    cal = office_calendar(extra_holidays=frozenset({date(2025, 11, 17)}))
    assert cal.add_working_time(sh(2025, 11, 14, 16), 4 * H) == sh(2025, 11, 18, 11)


def test_an_extra_working_sunday_brings_the_deadline_forward() -> None:
    cal = office_calendar(extra_workdays=frozenset({date(2025, 11, 16)}))
    assert cal.add_working_time(sh(2025, 11, 14, 16), 4 * H) == sh(2025, 11, 16, 11)


def test_overrides_win_over_the_official_schedule() -> None:
    cal = office_calendar(
        extra_holidays=frozenset({date(2025, 10, 11)}),  # an official make-up Saturday
        extra_workdays=frozenset({date(2025, 10, 8)}),  # an official holiday
    )
    assert not cal.is_working_day(date(2025, 10, 11))
    assert cal.is_working_day(date(2025, 10, 8))


def test_a_date_in_both_override_sets_is_refused() -> None:
    with pytest.raises(ValueError, match="2025-11-17"):
        office_calendar(
            extra_holidays=frozenset({date(2025, 11, 17)}), extra_workdays=frozenset({date(2025, 11, 17)})
        )


def test_absurd_overrides_stop_the_search_with_a_clear_error() -> None:
    every_day = frozenset(days(date(2025, 1, 1), date(2030, 12, 31)))
    cal = office_calendar(extra_holidays=every_day)
    with pytest.raises(NoWorkingTime, match="3 years"):
        cal.add_working_time(sh(2025, 11, 14, 16), H)
    with pytest.raises(ValueError, match="extra_holidays"):
        cal.next_working_start(sh(2025, 11, 14, 16))
    assert cal.working_time_between(sh(2025, 1, 1), sh(2030, 12, 31)) == timedelta(0)


def test_an_absurd_duration_stops_the_search_with_a_clear_error() -> None:
    with pytest.raises(NoWorkingTime, match="3 years") as caught:
        office_calendar().add_working_time(sh(2025, 11, 14, 16), 100_000 * H)
    assert caught.value.start == sh(2025, 11, 14, 16)


# --- Working periods ---------------------------------------------------------------------


def test_periods_from_settings_work_like_tuples() -> None:
    from_settings = WorkingCalendar(SHANGHAI, parse_working_hours("09:00-12:00,13:30-18:00"))
    assert from_settings.periods == OFFICE_HOURS
    assert from_settings.add_working_time(sh(2025, 11, 14, 16), 4 * H) == sh(2025, 11, 17, 11)


@pytest.mark.parametrize(
    ("periods", "message"),
    [
        ([], "at least one"),
        ([(time(12), time(9))], "ends before it starts"),
        ([(time(9), time(12)), (time(11), time(18))], "overlaps"),
        ([(time(13), time(18)), (time(9), time(12))], "overlaps or precedes"),
        ([(time(9, tzinfo=UTC), time(12))], "naive"),
    ],
)
def test_bad_periods_are_refused(periods: list[tuple[time, time]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorkingCalendar(SHANGHAI, periods)


def test_back_to_back_periods_count_as_one_stretch() -> None:
    cal = WorkingCalendar(SHANGHAI, [(time(9), time(12)), (time(12), time(13))])
    assert cal.add_working_time(sh(2025, 11, 12, 11), 2 * H) == sh(2025, 11, 12, 13)
    assert cal.is_working_time(sh(2025, 11, 12, 12))


# --- Years without holiday data ----------------------------------------------------------


def test_a_year_without_holiday_data_falls_back_to_weekends_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(FAR_FUTURE_YEAR, 1, 5))
    cal = office_calendar()
    assert cal.coverage_warning() is None

    with caplog.at_level(logging.WARNING, logger="deadlines.calendar"):
        assert date(FAR_FUTURE_YEAR, 1, 2).weekday() == 4
        # 1 January would be New Year's Day; without data only the weekend is off.
        assert cal.is_working_day(date(FAR_FUTURE_YEAR, 1, 1))
        assert not cal.is_working_day(date(FAR_FUTURE_YEAR, 1, 3))
        friday = datetime(FAR_FUTURE_YEAR, 1, 2, 16, tzinfo=SHANGHAI)
        assert cal.add_working_time(friday, 4 * H) == datetime(FAR_FUTURE_YEAR, 1, 5, 11, tzinfo=SHANGHAI)

    warnings = [r for r in caplog.records if r.name == "deadlines.calendar"]
    assert len(warnings) == 1 and str(FAR_FUTURE_YEAR) in warnings[0].getMessage()
    assert cal.unknown_years == frozenset({FAR_FUTURE_YEAR})
    assert cal.coverage_warning() == (
        f"holiday data for {FAR_FUTURE_YEAR} is not known; treating weekends only as days off "
        "(upgrade chinese-calendar)"
    )


def test_overrides_still_apply_in_a_year_without_holiday_data() -> None:
    new_year = date(FAR_FUTURE_YEAR, 1, 1)
    cal = office_calendar(extra_holidays=frozenset({new_year}))
    assert not cal.is_working_day(new_year)


def test_coverage_warning_can_look_ahead_before_a_deadline_falls_there() -> None:
    cal = office_calendar()
    assert cal.coverage_warning(through=date(2026, 12, 31)) is None
    warning = cal.coverage_warning(through=date(FAR_FUTURE_YEAR, 1, 15))
    assert warning is not None and f"holiday data for {FAR_FUTURE_YEAR} is not known" in warning


# --- Properties --------------------------------------------------------------------------

instants = st.datetimes(
    min_value=datetime(2025, 1, 1),
    max_value=datetime(2026, 12, 1),
    timezones=st.sampled_from([SHANGHAI, UTC, BERLIN]),
    allow_imaginary=False,
)
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=100))


@settings(database=None, deadline=None, max_examples=300)
@given(start=instants, duration=durations)
def test_working_time_between_undoes_add_working_time(start: datetime, duration: timedelta) -> None:
    end = CAL.add_working_time(start, duration)
    assert end.astimezone(UTC) >= start.astimezone(UTC) and end.tzinfo is start.tzinfo
    assert CAL.working_time_between(start, end) == duration
    assert CAL.working_time_between(end, start) == -duration


@settings(database=None, deadline=None, max_examples=300)
@given(a=instants, b=instants)
def test_add_working_time_undoes_working_time_between_up_to_breaks(a: datetime, b: datetime) -> None:
    # Ordered as instants: Python compares two datetimes of one zone by wall clock.
    a, b = sorted((a, b), key=lambda x: x.astimezone(UTC))
    back = CAL.add_working_time(a, CAL.working_time_between(a, b))
    assert back.astimezone(UTC) <= b.astimezone(UTC)
    assert CAL.working_time_between(back, b) == timedelta(0)
    assert CAL.next_working_start(back) == CAL.next_working_start(b)


@settings(database=None, deadline=None, max_examples=300)
@given(at=instants)
def test_an_instant_is_working_time_exactly_when_it_is_its_own_next_working_start(at: datetime) -> None:
    nxt = CAL.next_working_start(at)
    assert nxt.astimezone(UTC) >= at.astimezone(UTC) and CAL.is_working_time(nxt)
    assert CAL.is_working_time(at) == (nxt.astimezone(UTC) == at.astimezone(UTC))
    assert CAL.working_time_between(at, nxt) == timedelta(0)
