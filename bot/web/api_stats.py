"""Statistics in the running service: `GET /api/v1/stats`, and the wiring of the weekly
summary and the scheduled SQLite backups.

Wiring and HTTP only. The route gets its report from `services.stats.StatsService`; the weekly
summary (`services.stats.WeeklySummary`) and the backups (`services.backups.ScheduledBackups`)
are timer kinds, registered on the app's timer registry by `stats_ctx` at startup and fired by
its one scan (so each goes out once, whatever the number of replicas, also after downtime).
Backups are registered on SQLite only, which is served by one process.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from bot.keys import CLOCK, DB, SERVICES, SETTINGS, TIMER_KINDS
from bot.web.api_errors import ApiError, ValidationFailed
from bot.web.routes import Query, RouteTable, check_query, refuse, reply
from reports.backup import sqlite_file
from reports.stats import Period, PeriodInvalid, UnknownDepartment
from services.backups import ScheduledBackups
from services.stats import OrgNotImported, StatsService, WeeklySummary

logger = logging.getLogger(__name__)

SERVICE_NAME = "stats"  # its key in app[SERVICES]


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


# -- wiring -----------------------------------------------------------------------------------------
async def stats_ctx(app: web.Application) -> AsyncIterator[None]:
    """The report service, the weekly summary and, on SQLite, the backups (as timer kinds)."""
    settings = app[SETTINGS]
    now = app[CLOCK].now
    stats = StatsService(tz=settings.tz, working_hours=settings.working_hours)
    app[SERVICES][SERVICE_NAME] = stats
    WeeklySummary(db=app[DB], stats=stats, kinds=app[TIMER_KINDS], office_role=settings.office_role, now=now)
    path = sqlite_file(settings.database_url)
    if path is not None and settings.backup_times:
        ScheduledBackups(
            db=app[DB],
            kinds=app[TIMER_KINDS],
            path=path,
            directory=Path(settings.backup_dir),
            keep=settings.backup_keep,
            times=settings.backup_times,
            tz=settings.tz,
            now=now,
        )
    yield


def setup_stats(app: web.Application) -> None:
    ROUTES.add_to(app.router)
    app.cleanup_ctx.append(stats_ctx)
