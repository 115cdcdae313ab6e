"""Statistics in the running service: `GET /api/v1/stats`, and the wiring of the weekly
summary and the scheduled SQLite backups.

Wiring and HTTP only. The route gets its report from `services.stats.StatsService`; the weekly
summary (`services.stats.WeeklySummary`) and the backups (`services.backups.ScheduledBackups`)
are timer kinds, registered on the app's timer registry by `stats_ctx` at startup and fired by
its one scan (so each goes out once, whatever the number of replicas, also after downtime).
Backups are registered on SQLite only, which is served by one process.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.keys import CLOCK, DB, SERVICES, SETTINGS, TIMER_KINDS
from bot.web.api import api_handler
from bot.web.api_errors import ApiError, ValidationFailed
from reports.backup import sqlite_file
from reports.stats import CSV_COLUMNS, Period, PeriodInvalid, UnknownDepartment
from services.backups import ScheduledBackups
from services.stats import OrgNotImported, StatsService, WeeklySummary

logger = logging.getLogger(__name__)

SERVICE_NAME = "stats"  # its key in app[SERVICES]


def stats_service(app: web.Application) -> StatsService:
    service = app[SERVICES][SERVICE_NAME]
    assert isinstance(service, StatsService)
    return service


# -- the API ----------------------------------------------------------------------------------------
@api_handler
async def get_stats(request: web.Request) -> web.StreamResponse:
    app = request.app
    service = stats_service(app)
    q = request.query
    problems = {
        key: "unknown query parameter; allowed: dept, from, to" for key in set(q) - {"from", "to", "dept"}
    }
    period: Period | None = None
    try:
        period = service.period(q.get("from"), q.get("to"))
    except PeriodInvalid as exc:
        problems.update(exc.problems)
    if problems or period is None:
        raise ValidationFailed(
            "查询参数有误：" + "；".join(f"{k}: {v}" for k, v in sorted(problems.items())), details=problems
        )
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
    return web.json_response(report.to_dict(), dumps=functools.partial(json.dumps, ensure_ascii=False))


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
    app.router.add_get("/api/v1/stats", get_stats)
    app.cleanup_ctx.append(stats_ctx)


# -- the OpenAPI description (merged into bot.web.openapi) ----------------------------------------------
_HOURS = {"type": ["number", "null"], "description": "hours, 0.01 h; null when nothing was handled"}
STATS_ROW: dict[str, Any] = {
    "type": "object",
    "required": [c for c in CSV_COLUMNS if c != "kind"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "department": {"type": ["string", "null"]},
        "handled": {"type": "integer"},
        "median_hours": _HOURS,
        "p90_hours": _HOURS,
        "median_working_hours": _HOURS,
        "p90_working_hours": _HOURS,
        "overdue": {"type": "integer"},
        "reminders": {"type": "integer"},
        "initiated": {"type": "integer"},
    },
}
STATS_REPORT: dict[str, Any] = {
    "type": "object",
    "required": ["from", "to", "timezone", "start", "end", "department", "departments", "people"],
    "properties": {
        "from": {"type": "string", "format": "date"},
        "to": {"type": "string", "format": "date"},
        "timezone": {"type": "string"},
        "start": {"type": "string"},
        "end": {"type": "string", "description": "exclusive: 00:00 of the day after `to`"},
        "department": {"type": ["string", "null"]},
        "departments": {"type": "array", "items": {"$ref": "#/components/schemas/StatsRow"}},
        "people": {"type": "array", "items": {"$ref": "#/components/schemas/StatsRow"}},
    },
}
STATS_SCHEMAS: dict[str, Any] = {"StatsRow": STATS_ROW, "StatsReport": STATS_REPORT}


def _query(name: str, description: str, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": {"type": "string"},
        "description": description,
    }


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


STATS_PATHS: dict[str, Any] = {
    "/api/v1/stats": {
        "get": {
            "summary": "Per person and per department: handled, time to decision, overdue, reminders, initiated",
            "description": "Definitions in reports/stats.py. Dates are the organisation's, both included.",
            "parameters": [
                _query("from", "first day, YYYY-MM-DD", True),
                _query("to", "last day, YYYY-MM-DD (included)", True),
                _query("dept", "only this department and its members"),
            ],
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/StatsReport"}}},
                },
                "401": _error("missing or wrong bearer token"),
                "409": _error("no organisation imported yet"),
                "422": _error("bad or missing dates, unknown department (every problem listed)"),
            },
        }
    }
}
