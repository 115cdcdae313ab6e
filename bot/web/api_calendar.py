"""The deadline service's HTTP edge: calendar override routes and the calendar readiness check.

- `GET /api/v1/calendar/overrides[?from=DATE&to=DATE]`: the organisation's extra holidays and
  extra working days, with the holiday-data coverage line;
- `POST /api/v1/calendar/overrides` `{date, kind: holiday|workday, reason?}`: set one (a date
  already overridden is replaced; 201 when new, 200 when replaced);
- `DELETE /api/v1/calendar/overrides/{date}`: remove one (404 when there is none).

A change applies to this process at once and to other processes (replicas, a running service
after `oabot calendar ...`) within a minute. Deadlines already computed keep their times.

/readyz gets a `calendar` check that is always ok: its detail carries the warning when the
installed chinese-calendar has no holiday data for a year in use or coming soon (weekends only
are then days off), so operators see it without the service being taken out of rotation.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web

from bot.keys import CLOCK, DB, DEADLINES, READINESS
from bot.web.api_errors import NotFound, ValidationFailed, read_json
from storage import calendar_store
from storage.calendar_store import Override, OverrideKind

OVERRIDE = {
    "type": "object",
    "required": ["date", "kind", "reason"],
    "properties": {
        "date": {"type": "string", "format": "date"},
        "kind": {"enum": [k.value for k in OverrideKind]},
        "reason": {"type": "string"},
        "created_by": {"type": ["string", "null"]},
        "created_at": {"type": "string"},
    },
}
NEW_OVERRIDE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["date", "kind"],
    "properties": {
        "date": {
            "type": "string",
            "format": "date",
            "description": "YYYY-MM-DD in the organisation's timezone",
        },
        "kind": {
            "enum": [k.value for k in OverrideKind],
            "description": "holiday: an extra day off; workday: an extra working day",
        },
        "reason": {"type": "string"},
        "created_by": {"type": "string", "description": "who made the change (for the record)"},
    },
}
_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_LIST = {
    "type": "object",
    "required": ["items", "coverage"],
    "properties": {
        "items": {"type": "array", "items": {"$ref": "#/components/schemas/CalendarOverride"}},
        "coverage": {"type": "string"},
    },
}


def _ok(schema: dict[str, Any], status: str = "200", description: str = "OK") -> dict[str, Any]:
    return {status: {"description": description, "content": {"application/json": {"schema": schema}}}}


_REF = {"$ref": "#/components/schemas/CalendarOverride"}
# Merged into the OpenAPI document by bot.web.openapi.
OPENAPI_PATHS: dict[str, dict[str, Any]] = {
    "/api/v1/calendar/overrides": {
        "get": {
            "summary": "The organisation's calendar overrides (extra holidays and working days)",
            "parameters": [
                {
                    "name": "from",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "first date",
                },
                {
                    "name": "to",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "last date",
                },
            ],
            "responses": {
                **_ok(_LIST),
                "401": {"description": "missing or wrong bearer token", **_ERROR},
                "422": {"description": "bad date", **_ERROR},
            },
        },
        "post": {
            "summary": "Make a date an extra holiday or an extra working day",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/NewCalendarOverride"}}
                },
            },
            "responses": {
                **_ok(_REF, "201", "created"),
                **_ok(_REF, "200", "replaced"),
                "401": {"description": "missing or wrong bearer token", **_ERROR},
                "422": {"description": "invalid body", **_ERROR},
            },
        },
    },
    "/api/v1/calendar/overrides/{date}": {
        "delete": {
            "summary": "Remove a date's override",
            "parameters": [{"name": "date", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {
                **_ok(_REF),
                "401": {"description": "missing or wrong bearer token", **_ERROR},
                "404": {"description": "not found", **_ERROR},
            },
        },
    },
}
OPENAPI_SCHEMAS: dict[str, Any] = {"CalendarOverride": OVERRIDE, "NewCalendarOverride": NEW_OVERRIDE}


def override_view(o: Override) -> dict[str, Any]:
    return {
        "date": o.day.isoformat(),
        "kind": o.kind.value,
        "reason": o.reason,
        "created_by": o.created_by,
        "created_at": o.created_at.isoformat(),
    }


def _date(raw: Any, name: str, problems: dict[str, str]) -> date | None:
    if not isinstance(raw, str):
        problems[name] = "expected a date YYYY-MM-DD"
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        problems[name] = "expected a date YYYY-MM-DD"
        return None


async def _refresh(request: web.Request) -> None:
    app = request.app
    await app[DEADLINES].calendar.reload(app[DB], now=app[CLOCK].now())


async def list_overrides(request: web.Request) -> web.StreamResponse:
    problems: dict[str, str] = {k: "unknown query parameter" for k in set(request.query) - {"from", "to"}}
    start = _date(request.query["from"], "from", problems) if "from" in request.query else None
    end = _date(request.query["to"], "to", problems) if "to" in request.query else None
    if problems:
        raise ValidationFailed("查询参数有误", details=problems)
    async with request.app[DB].session() as session:
        items = await calendar_store.list_overrides(session, start=start, end=end)
    coverage = request.app[DEADLINES].calendar.coverage(request.app[CLOCK].now())
    return web.json_response({"items": [override_view(o) for o in items], "coverage": coverage})


async def set_override(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ValidationFailed("请求体应为 JSON 对象", details={"body": "expected a JSON object"})
    allowed = {"date", "kind", "reason", "created_by"}
    problems: dict[str, str] = {
        k: f"unknown field; allowed: {', '.join(sorted(allowed))}" for k in body if k not in allowed
    }
    day = _date(body.get("date"), "date", problems) if "date" in body else None
    if "date" not in body:
        problems["date"] = "required"
    kind: OverrideKind | None = None
    try:
        kind = OverrideKind(str(body.get("kind")))
    except ValueError:
        problems["kind"] = "expected holiday or workday"
    reason = body.get("reason", "")
    if not isinstance(reason, str):
        problems["reason"] = "expected a string"
    created_by = body.get("created_by")
    if created_by is not None and not isinstance(created_by, str):
        problems["created_by"] = "expected a string"
    if problems:
        raise ValidationFailed(
            "请求参数有误：" + "；".join(f"{k}: {v}" for k, v in problems.items()), details=problems
        )
    assert day is not None and kind is not None
    async with request.app[DB].transaction() as session:
        saved, created = await calendar_store.set_override(
            session,
            day=day,
            kind=kind,
            reason=reason.strip(),
            created_by=created_by,
            now=request.app[CLOCK].now(),
        )
    await _refresh(request)
    return web.json_response(override_view(saved), status=201 if created else 200)


async def remove_override(request: web.Request) -> web.StreamResponse:
    problems: dict[str, str] = {}
    day = _date(request.match_info["date"], "date", problems)
    if day is None:
        raise ValidationFailed("日期格式应为 YYYY-MM-DD", details=problems)
    async with request.app[DB].transaction() as session:
        removed = await calendar_store.remove_override(session, day=day)
    if removed is None:
        raise NotFound(
            f"{day.isoformat()} 没有日历调整", details={"date": day.isoformat()}, code="override_not_found"
        )
    await _refresh(request)
    return web.json_response(override_view(removed))


async def check_calendar(app: web.Application) -> tuple[str, bool, str]:
    """Always ok: a missing year of holiday data is a warning in the detail, not an outage."""
    return "calendar", True, app[DEADLINES].calendar.coverage(app[CLOCK].now())


def setup_deadlines(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/calendar/overrides", list_overrides)
    r.add_post("/api/v1/calendar/overrides", set_override)
    r.add_delete("/api/v1/calendar/overrides/{date}", remove_override)
    app[READINESS].add(check_calendar)
