"""The organisation's live working calendar: working hours from the settings, the official
schedule, and the overrides stored in the database (`oabot calendar`, /api/v1/calendar).

`OrgCalendar` holds the current `WorkingCalendar` and rebuilds it when the stored overrides
change: at once after a change through this process's API, and within `REFRESH` after a change
by another process (the CLI, another replica). Timers already written keep their times; a rung
that falls due on a day that became a holiday waits for working time when it fires.

This is the one storage-facing piece of the calendar; the arithmetic stays in the pure
`deadlines.calendar`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from deadlines.calendar import PeriodLike, WorkingCalendar
from storage import calendar_store
from storage.calendar_store import OverrideKind
from storage.db import Database

logger = logging.getLogger(__name__)

REFRESH = timedelta(seconds=60)
# /readyz looks this far ahead for missing holiday data, so next year's gap shows in advance.
COVERAGE_LOOKAHEAD = timedelta(days=45)


class OrgCalendar:
    def __init__(self, tz: ZoneInfo, periods: Sequence[PeriodLike | tuple[time, time]]) -> None:
        self._tz = tz
        self._periods = periods
        self._current = WorkingCalendar(tz, periods)
        self._overrides: tuple[frozenset[date], frozenset[date]] = (frozenset(), frozenset())
        self.loaded_at: datetime | None = None
        self.load_error: str | None = None

    @property
    def current(self) -> WorkingCalendar:
        return self._current

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    @property
    def override_count(self) -> int:
        return len(self._overrides[0]) + len(self._overrides[1])

    def set_overrides(self, holidays: frozenset[date], workdays: frozenset[date]) -> None:
        """Rebuild the calendar if the overrides differ (an unchanged calendar keeps what it logged)."""
        if (holidays, workdays) == self._overrides:
            return
        self._current = WorkingCalendar(
            self._tz, self._periods, extra_holidays=holidays, extra_workdays=workdays
        )
        self._overrides = (holidays, workdays)
        logger.info(
            "working calendar rebuilt",
            extra={"extra_holidays": len(holidays), "extra_workdays": len(workdays)},
        )

    async def reload(self, db: Database, *, now: datetime) -> None:
        """Read the overrides; on a database error keep the calendar as it is and remember why."""
        try:
            async with db.session() as session:
                overrides = await calendar_store.list_overrides(session)
        except Exception as exc:
            self.load_error = (
                f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            )
            self.loaded_at = now
            logger.warning("calendar overrides could not be loaded: %s", self.load_error)
            return
        self.load_error = None
        self.loaded_at = now
        self.set_overrides(
            frozenset(o.day for o in overrides if o.kind == OverrideKind.HOLIDAY),
            frozenset(o.day for o in overrides if o.kind == OverrideKind.WORKDAY),
        )

    async def refresh_if_stale(self, db: Database, *, now: datetime) -> None:
        if self.loaded_at is None or abs(now - self.loaded_at) >= REFRESH:
            await self.reload(db, now=now)

    def coverage(self, now: datetime) -> str:
        """A line for /readyz: the missing-data warning, or what the calendar is built from."""
        warning = self._current.coverage_warning((now + COVERAGE_LOOKAHEAD).astimezone(self._tz).date())
        parts = [warning or "official holiday schedule known"]
        parts.append(f"{self.override_count} organisation override(s)")
        if self.load_error:
            parts.append(f"overrides not loaded ({self.load_error})")
        return "; ".join(parts)

    # -- the WorkingCalendar interface, on the current calendar ---------------------------------
    def add_working_time(self, start: datetime, duration: timedelta) -> datetime:
        return self._current.add_working_time(start, duration)

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        return self._current.working_time_between(a, b)

    def next_working_start(self, at: datetime) -> datetime:
        return self._current.next_working_start(at)

    def is_working_time(self, at: datetime) -> bool:
        return self._current.is_working_time(at)

    def is_working_day(self, d: date) -> bool:
        return self._current.is_working_day(d)
