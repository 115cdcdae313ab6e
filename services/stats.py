"""Statistics 统计 in the running service: reports for the API and the command line, and the
weekly summary sent to department heads and the office.

- `StatsService.load` reads the facts of a period (`reports.stats_queries`) and computes the
  report (`reports.stats`, pure) on the organisation's working calendar. `GET /api/v1/stats`
  and `oabot stats` get their numbers here.
- `WeeklySummary` is the `stats_weekly` timer kind: one timer per Monday 09:00 (organisation
  time) with a key unique to the slot. Firing it writes last week's summary to the outbox in the
  transaction that closes the timer, so it is sent exactly once whatever the number of replicas,
  and schedules the next Monday. A Monday missed while the service was down is sent at the next
  scan, once.

It decides no statistic and words no summary: those are `reports.stats`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from approvals.definitions import Template
from deadlines import timers
from deadlines.calendar import PeriodLike, WorkingCalendar
from deadlines.slots import MONDAY, next_weekly, slot_key
from deadlines.timer_kinds import FireResult, TimerKinds
from deadlines.timers import Timer, TimerKind
from org.model import Org
from reports.appraisal import Week, appraisal, step_namer, weeks_of
from reports.stats import (
    Period,
    StatsReport,
    UnknownDepartment,
    compute,
    parse_period,
    previous_week,
    weekly_messages,
)
from reports.stats_queries import load_facts
from storage.approval_models import OutboxRow
from storage.db import Database
from storage.org_repo import OrgNotImported as OrgNotImported  # raised by load; the API maps it
from storage.org_repo import load_org

logger = logging.getLogger(__name__)

SUMMARY_KIND = "stats_summary"  # the outbox kind of a weekly summary message
WEEKLY_AT = time(9, 0)  # Mondays, organisation time


class StatsService:
    """Builds reports for one organisation: its timezone and working calendar, kept once."""

    def __init__(self, *, tz: ZoneInfo, working_hours: Sequence[PeriodLike]) -> None:
        self.tz = tz
        self.calendar = WorkingCalendar(tz, working_hours)

    def period(self, first: str | None, last: str | None) -> Period:
        """Raises PeriodInvalid."""
        return parse_period(first, last, self.tz)

    def default_period(self, now: datetime) -> Period:
        """Last calendar month (organisation time): the desk's statistics page by default."""
        first_of_this = now.astimezone(self.tz).date().replace(day=1)
        last = first_of_this - timedelta(days=1)
        return Period(last.replace(day=1), last, self.tz)

    async def appraisal(
        self, db: Database, period: Period, *, now: datetime, templates: Mapping[str, Template]
    ) -> tuple[Org, dict[str, Any]]:
        """The desk's appraisal view (`reports.appraisal`): the same report `load` gives, plus
        overdue rates, the weekly trend and the slowest steps, as one JSON-ready dict."""
        async with db.session() as session:
            org = await load_org(session)
            facts = await load_facts(session, start=period.start, end=period.end)
            weeks = [Week(w, await load_facts(session, start=w.start, end=w.end)) for w in weeks_of(period)]
        working_time = self.calendar.working_time_between
        report = compute(facts, org, period, now=now, working_time=working_time)
        numbers = appraisal(
            report, facts, weeks, now=now, working_time=working_time, step_name=step_namer(templates)
        )
        return org, numbers

    async def load(
        self, db: Database, period: Period, *, now: datetime, department: str | None = None
    ) -> tuple[Org, StatsReport]:
        """The directory and the report. Raises OrgNotImported and UnknownDepartment."""
        async with db.session() as session:
            org = await load_org(session)
            if department is not None and department not in org.departments:
                raise UnknownDepartment(department, list(org.departments))
            facts = await load_facts(session, start=period.start, end=period.end)
        report = compute(
            facts,
            org,
            period,
            now=now,
            working_time=self.calendar.working_time_between,
            department=department,
        )
        return org, report


class WeeklySummary:
    """The `stats_weekly` timer kind: last week's summary, every Monday, once."""

    def __init__(
        self,
        *,
        db: Database,
        stats: StatsService,
        kinds: TimerKinds,
        office_role: str,
        now: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.stats = stats
        self.office_role = office_role
        self.now = now
        kinds.register(TimerKind.STATS_WEEKLY, self.fire, next_slot=self.schedule_next)

    async def schedule_next(self, session: AsyncSession, *, after: datetime, now: datetime) -> datetime:
        slot = next_weekly(MONDAY, WEEKLY_AT, after=after, tz=self.stats.tz)
        await timers.schedule_once(
            session,
            kind=TimerKind.STATS_WEEKLY,
            key=slot_key("stats_weekly", slot),
            due_at=slot,
            now=now,
            data={"slot": slot.isoformat()},
        )
        return slot

    async def fire(self, timer: Timer) -> FireResult:
        """Queue the summary of the week before the slot for every head and the office role."""
        slot = datetime.fromisoformat(str(timer.data.get("slot", timer.due_at.isoformat())))
        now = self.now()
        period = previous_week(slot, self.stats.tz)
        org, report = await self.stats.load(self.db, period, now=now)
        messages = weekly_messages(report, org, self.office_role)
        if not org.role_holders(self.office_role):
            logger.warning(
                "nobody holds the office role %r (OABOT_OFFICE_ROLE): the whole-organisation summary goes to no one",
                self.office_role,
            )
        async with self.db.transaction() as session:
            if not await timers.finish(session, timer, now=now):
                return FireResult.LOST
            for recipient, text in messages.items():
                session.add(
                    OutboxRow.due_now(kind=SUMMARY_KIND, recipient=recipient, payload={"text": text}, now=now)
                )
            await self.schedule_next(session, after=max(now, slot), now=now)
        logger.info(
            "weekly summary for %s queued for %d people",
            period.iso_week,
            len(messages),
            extra={"timer_id": timer.id},
        )
        return FireResult.FIRED if messages else FireResult.SKIPPED
