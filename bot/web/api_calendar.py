"""The deadline service's HTTP edge: calendar override routes and the calendar readiness check.

- `GET /api/v1/calendar/overrides[?from=DATE&to=DATE]`: the organisation's extra holidays and
  extra working days, with the holiday-data coverage line;
- `POST /api/v1/calendar/overrides` `{date, kind: holiday|workday, reason?}`: set one (a date
  already overridden is replaced; 201 when new, 200 when replaced);
- `DELETE /api/v1/calendar/overrides/{date}`: remove one (404 when there is none).

Each route is one `services.calendar` call; nothing here reads or writes storage. A change
applies to this process at once and to other processes (replicas, a running service after
`oabot calendar ...`) within a minute. Deadlines already computed keep their times.

/readyz gets a `calendar` check that is always ok: its detail carries the warning when the
installed chinese-calendar has no holiday data for a year in use or coming soon (weekends only
are then days off), so operators see it without the service being taken out of rotation.
"""

from __future__ import annotations

from datetime import date

from aiohttp import web
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from bot.keys import CLOCK, DB, DEADLINES, READINESS
from bot.web.api_errors import ValidationFailed
from bot.web.routes import Body, Day, Id, Query, Reason, Reply, RouteTable, read_body, read_query, reply
from services.api_tokens import Scope
from services.calendar import CalendarOverride, CalendarService, OverrideKind

ROUTES = RouteTable()
_DAY = TypeAdapter(Day)


class OverrideQuery(Query):
    start: Day | None = Field(None, alias="from", description="first date")
    end: Day | None = Field(None, alias="to", description="last date")


class NewCalendarOverride(Body):
    date: Day = Field(description="YYYY-MM-DD in the organisation's timezone")
    kind: OverrideKind = Field(description="holiday: an extra day off; workday: an extra working day")
    reason: Reason = ""
    created_by: Id | None = Field(None, description="who made the change (for the record)")


class CalendarOverrides(BaseModel):
    items: list[CalendarOverride]
    coverage: str


def _service(request: web.Request) -> CalendarService:
    app = request.app
    return CalendarService(app[DB], app[DEADLINES].calendar, app[CLOCK].now)


@ROUTES.route(
    "GET",
    "/api/v1/calendar/overrides",
    summary="The organisation's calendar overrides (extra holidays and working days)",
    query=OverrideQuery,
    ok=CalendarOverrides,
    errors=((422, "bad date"),),
)
async def list_overrides(request: web.Request) -> web.StreamResponse:
    q = read_query(request, OverrideQuery)
    service = _service(request)
    items = await service.overrides(start=q.start, end=q.end)
    return reply(CalendarOverrides(items=items, coverage=service.coverage()))


@ROUTES.route(
    "POST",
    "/api/v1/calendar/overrides",
    summary="Make a date an extra holiday or an extra working day",
    body=NewCalendarOverride,
    ok=[Reply(201, CalendarOverride, "created"), Reply(200, CalendarOverride, "replaced")],
    errors=((422, "invalid body"),),
    scope=Scope.ADMIN,
)
async def set_override(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, NewCalendarOverride)
    saved, created = await _service(request).set(
        day=body.date, kind=body.kind, reason=body.reason.strip(), created_by=body.created_by
    )
    return reply(saved, status=201 if created else 200)


@ROUTES.route(
    "DELETE",
    "/api/v1/calendar/overrides/{date}",
    summary="Remove a date's override",
    ok=CalendarOverride,
    errors=(404, (422, "bad date")),
    scope=Scope.ADMIN,
)
async def remove_override(request: web.Request) -> web.StreamResponse:
    try:
        day: date = _DAY.validate_python(request.match_info["date"])
    except ValidationError:
        raise ValidationFailed(
            "日期格式应为 YYYY-MM-DD", details={"date": "expected a date YYYY-MM-DD"}
        ) from None
    return reply(await _service(request).remove(day))


async def check_calendar(app: web.Application) -> tuple[str, bool, str]:
    """Always ok: a missing year of holiday data is a warning in the detail, not an outage."""
    return "calendar", True, app[DEADLINES].calendar.coverage(app[CLOCK].now())


def setup_deadlines(app: web.Application) -> None:
    ROUTES.add_to(app.router)
    app[READINESS].add(check_calendar)
