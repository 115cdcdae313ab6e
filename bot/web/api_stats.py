"""Statistics and backups in the running service: `GET /api/v1/stats`, the weekly summary sent
to department heads and the office, and the scheduled SQLite backups.

Wiring only. The numbers and texts come from `reports.stats` (pure) over the rows read by
`storage.stats_queries`; the copies are made by `reports.backup`. `setup_stats(app)` (called
from `bot.wiring`) adds the route and one cleanup_ctx that puts the jobs on the app's scheduler
and takes them off at shutdown. The summary goes out as outbox rows, so the dispatcher delivers
it like any other message. Several replicas may run the weekly job at once: a key-value marker
per ISO week lets exactly one of them send it. Backups run only on SQLite, which is served by
one process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from apscheduler.jobstores.base import JobLookupError
from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field

from bot.keys import CLOCK, DB, KV, SCHEDULER, SERVICES, SETTINGS
from bot.settings import Settings
from bot.web.api_errors import ApiError, ValidationFailed
from bot.web.routes import Query, RouteTable, check_query, refuse, reply
from deadlines.calendar import WorkingCalendar
from org.model import Org
from reports.backup import BackupResult, backup_sqlite, sqlite_file
from reports.stats import (
    Period,
    PeriodInvalid,
    StatsReport,
    UnknownDepartment,
    compute,
    parse_period,
    previous_week,
    weekly_messages,
)
from storage.approval_models import OutboxRow
from storage.db import Database
from storage.kv import KVUnavailable
from storage.org_repo import OrgNotImported, load_org
from storage.stats_queries import load_facts

logger = logging.getLogger(__name__)

SERVICE_NAME = "stats"  # its key in app[SERVICES]
SUMMARY_KIND = "stats_summary"
WEEKLY_JOB_ID = "stats-weekly-summary"
# Longer than any retry of the Monday job, shorter than a week: the next week's key is new anyway.
WEEKLY_MARKER_TTL_S = 4 * 24 * 3600.0
MISFIRE_GRACE_S = 3600  # a job missed by up to an hour (busy loop, restart) still runs


class StatsService:
    """Builds reports for one organisation: its timezone and working calendar, kept once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.calendar = WorkingCalendar(settings.tz, settings.working_hours)

    def period(self, first: str | None, last: str | None) -> Period:
        """Raises PeriodInvalid."""
        return parse_period(first, last, self.settings.tz)

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


def stats_service(app: web.Application) -> StatsService:
    service = app[SERVICES][SERVICE_NAME]
    assert isinstance(service, StatsService)
    return service


# -- the API ----------------------------------------------------------------------------------------
ROUTES = RouteTable()


class StatsQuery(Query):
    first: str = Field(alias="from", description="first day, YYYY-MM-DD")
    last: str = Field(alias="to", description="last day, YYYY-MM-DD (included)")
    dept: str | None = Field(None, description="only this department and its members")


# Hours are to 0.01 h; null when nothing was handled.
Hours = int | float | None


class StatsRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    department: str | None
    handled: int
    median_hours: Hours
    p90_hours: Hours
    median_working_hours: Hours
    p90_working_hours: Hours
    overdue: int
    reminders: int
    initiated: int


class StatsReportView(BaseModel):
    first: str = Field(alias="from", json_schema_extra={"format": "date"})
    last: str = Field(alias="to", json_schema_extra={"format": "date"})
    timezone: str
    start: str
    end: str = Field(description="exclusive: 00:00 of the day after `to`")
    department: str | None
    departments: list[StatsRow]
    people: list[StatsRow]


@ROUTES.route(
    "GET",
    "/api/v1/stats",
    summary="Per person and per department: handled, time to decision, overdue, reminders, initiated",
    description="Definitions in reports/stats.py. Dates are the organisation's, both included.",
    query=StatsQuery,
    ok=StatsReportView,
    errors=(
        (409, "no organisation imported yet"),
        (422, "bad or missing dates, unknown department (every problem listed)"),
    ),
)
async def get_stats(request: web.Request) -> web.StreamResponse:
    app = request.app
    service = stats_service(app)
    q = request.query
    _, problems = check_query(request, StatsQuery)
    period: Period | None = None
    try:
        period = service.period(q.get("from"), q.get("to"))
    except PeriodInvalid as exc:
        problems.update(exc.problems)
    if problems or period is None:
        raise refuse("查询参数有误", dict(sorted(problems.items())))
    department = q.get("dept") or None
    try:
        _, report = await service.load(app[DB], period, now=app[CLOCK].now(), department=department)
    except UnknownDepartment as exc:
        raise ValidationFailed(
            f"没有部门 {exc.department}",
            details={"dept": f"unknown department; known: {', '.join(exc.known)}"},
        ) from exc
    except OrgNotImported as exc:
        raise ApiError(str(exc), status=409, code="org_not_imported") from exc
    return reply(StatsReportView.model_validate(report.to_dict()))


# -- the weekly summary -----------------------------------------------------------------------------
async def send_weekly_summary(app: web.Application) -> int:
    """Put last week's summary in the outbox for every department head and the office role.

    Returns the number of messages written; 0 when another run (this replica or another) has
    already sent this week's, or when the key-value store cannot say whether one has.
    """
    settings = app[SETTINGS]
    now = app[CLOCK].now()
    period = previous_week(now, settings.tz)
    marker = f"stats:weekly:{period.iso_week}"
    kv = app[KV]
    try:
        first = await kv.set_if_absent(marker, now.isoformat(), WEEKLY_MARKER_TTL_S)
    except KVUnavailable:
        # Sending without the marker could send it twice from two replicas; skipping is the
        # smaller harm, and the log says so.
        logger.warning("weekly summary for %s not sent: the key-value store is unreachable", period.iso_week)
        return 0
    if not first:
        logger.info("weekly summary for %s was already sent", period.iso_week)
        return 0
    try:
        written = await _write_weekly_summary(app, period, now)
    except BaseException:
        # Nothing was written: let the next run (or another replica) try again.
        try:
            await kv.delete(marker)
        except KVUnavailable:
            logger.warning("could not clear the weekly summary marker %s", marker)
        raise
    logger.info("weekly summary for %s queued for %d people", period.iso_week, written)
    return written


async def _write_weekly_summary(app: web.Application, period: Period, now: datetime) -> int:
    settings = app[SETTINGS]
    db = app[DB]
    org, report = await stats_service(app).load(db, period, now=now)
    messages = weekly_messages(report, org, settings.office_role)
    if not org.role_holders(settings.office_role):
        logger.warning(
            "nobody holds the office role %r (OABOT_OFFICE_ROLE): the whole-organisation summary goes to no one",
            settings.office_role,
        )
    async with db.transaction() as session:
        for recipient, text in messages.items():
            session.add(
                OutboxRow.due_now(kind=SUMMARY_KIND, recipient=recipient, payload={"text": text}, now=now)
            )
    return len(messages)


# -- scheduled backups ------------------------------------------------------------------------------
async def run_scheduled_backup(app: web.Application) -> BackupResult | None:
    """Back up the SQLite database now (in a thread) and apply the retention; None if not SQLite
    or when the backup failed (logged)."""
    settings = app[SETTINGS]
    path = sqlite_file(settings.database_url)
    if path is None:
        return None
    try:
        result = await asyncio.to_thread(
            backup_sqlite, path, Path(settings.backup_dir), now=app[CLOCK].now(), keep=settings.backup_keep
        )
    except Exception:
        logger.exception("scheduled backup of %s failed", path)
        return None
    logger.info(
        "backup written: %s (%d bytes); %d old backup(s) removed",
        result.path,
        result.size,
        len(result.removed),
    )
    return result


# -- wiring -----------------------------------------------------------------------------------------
async def stats_jobs_ctx(app: web.Application) -> AsyncIterator[None]:
    """Weekly summary on Mondays 09:00 and, on SQLite, backups at OABOT_BACKUP_TIMES (org time)."""
    settings = app[SETTINGS]
    scheduler = app[SCHEDULER]
    options: dict[str, Any] = {
        "replace_existing": True,
        "coalesce": True,
        "misfire_grace_time": MISFIRE_GRACE_S,
    }
    job_ids = [WEEKLY_JOB_ID]
    scheduler.add_job(
        send_weekly_summary,
        CronTrigger(day_of_week="mon", hour=9, minute=0, timezone=settings.tz),
        args=[app],
        id=WEEKLY_JOB_ID,
        **options,
    )
    if sqlite_file(settings.database_url) is not None:
        for at in settings.backup_times:
            job_id = f"backup-{at:%H%M}"
            scheduler.add_job(
                run_scheduled_backup,
                CronTrigger(hour=at.hour, minute=at.minute, timezone=settings.tz),
                args=[app],
                id=job_id,
                **options,
            )
            job_ids.append(job_id)
    yield
    for job_id in job_ids:
        try:
            scheduler.remove_job(job_id)
        except JobLookupError:
            pass


def setup_stats(app: web.Application) -> None:
    app[SERVICES][SERVICE_NAME] = StatsService(app[SETTINGS])
    ROUTES.add_to(app.router)
    app.cleanup_ctx.append(stats_jobs_ctx)
