"""The check-in REST API: `POST /api/v1/checkins` (integrations report a check-in) and
`GET /api/v1/checkins?date=&dept=&user=` (who checked in where and when, and what is missing).

Checks the shape of each body and query, makes one check-in service call, and translates the
check-in core's refusals into API errors. Authentication is the bearer token of every /api/
path (`bot.web.middleware`). Decides nothing itself.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import date
from functools import wraps
from typing import Any

from aiohttp import web

from bot.keys import CHECKINS
from bot.web.api import Body
from bot.web.api_errors import ApiError, ValidationFailed, read_json
from checkins import errors as core
from checkins.core import CheckinKind, make_fix
from checkins.trust import Source

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATUS: dict[type[core.CheckinError], int] = {
    core.FixInvalid: 422,
    core.TripNotFound: 404,
    core.TripNotApproved: 409,
    core.NotYourTrip: 403,
    core.LinkInvalid: 403,
    core.LinkExpired: 410,
    core.FreeCheckinNotAllowed: 403,
    core.FixQuotaExceeded: 422,
}

NEW_CHECKIN_KEYS = {
    "user",
    "lat",
    "lng",
    "accuracy_m",
    "coord_system",
    "trip_id",
    "request_id",
    "kind",
    "device_at",
    "label",
    "idempotency_key",
}


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(
        data, status=status, dumps=lambda obj: json.dumps(obj, ensure_ascii=False, default=str)
    )


def translate(exc: core.CheckinError) -> ApiError:
    status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
    details = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in exc.context.items()}
    return ApiError(exc.message, details=details or None, status=status, code=exc.code)


def checkin_handler(func: Handler) -> Handler:
    @wraps(func)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await func(request)
        except core.CheckinError as exc:
            raise translate(exc) from exc

    return wrapper


@checkin_handler
async def create_checkin(request: web.Request) -> web.StreamResponse:
    service = request.app[CHECKINS]
    body = Body(await read_json(request), NEW_CHECKIN_KEYS)
    user_id = body.str("user", required=True)
    for key in ("lat", "lng"):
        if body.data.get(key) is None:
            body.problems[key] = "required"
    trip_id = body.str("trip_id")
    request_id = body.str("request_id")
    kind = body.enum("kind", CheckinKind)
    device_at = body.datetime("device_at")
    label = body.str("label")
    coord_system = body.str("coord_system") or "wgs84"
    idem = body.str("idempotency_key")
    if trip_id and request_id:
        body.problems["request_id"] = "give trip_id or request_id, not both"
    body.check()
    assert user_id is not None
    org = await service.org()
    user = org.user(user_id)
    if user is None or not user.active:
        raise ValidationFailed(
            f"{user_id} 不是本单位在职人员", details={"user": "unknown or inactive user"}, code="unknown_user"
        )
    fix = make_fix(
        body.data["lat"],
        body.data["lng"],
        accuracy_m=body.data.get("accuracy_m"),
        coord_system=coord_system,
        source=Source.API,
        received_at=service.now(),
        device_at=device_at,
        channel="api",
        label=label,
    )
    trip = await service.resolve_trip(user=user.id, trip_id=trip_id, request_id=request_id)
    recorded = await service.record_via_api(
        user, fix, trip=trip, kind=kind, dedupe_key=f"api:{user.id}:{idem}" if idem else None
    )
    view = {
        **service.checkin_view(recorded.id, recorded.checkin, org),
        "message": recorded.reply,
        "created": recorded.created,
    }
    return _json(view, status=201 if recorded.created else 200)


@checkin_handler
async def list_checkins(request: web.Request) -> web.StreamResponse:
    service = request.app[CHECKINS]
    q = request.query
    problems = {k: "unknown query parameter" for k in set(q) - {"date", "dept", "user"}}
    day = service.now().astimezone(service.tz).date()
    if q.get("date"):
        try:
            day = date.fromisoformat(q["date"])
        except ValueError:
            problems["date"] = "expected a date YYYY-MM-DD"
    org = await service.org()
    users: list[str] | None = None
    if q.get("dept"):
        if org.department(q["dept"]) is None:
            problems["dept"] = "no such department"
        else:
            users = sorted(_members(org, q["dept"]))
    if q.get("user"):
        if org.user(q["user"]) is None:
            problems["user"] = "no such user"
        users = [q["user"]] if users is None else [u for u in users if u == q["user"]]
    if problems:
        raise ValidationFailed(
            "查询参数有误：" + "；".join(f"{k}: {v}" for k, v in problems.items()), details=problems
        )
    return _json(await service.day_view(day=day, users=users))


def _members(org: Any, dept: str) -> list[str]:
    """Everyone in the department and its sub-departments, past members included (their
    check-ins stay visible)."""
    depts = {dept, *org.sub_departments(dept)}
    return [u.id for u in org.users.values() if u.department in depts]


def _nullable(t: str) -> dict[str, Any]:
    return {"type": [t, "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


CHECKIN = {
    "type": "object",
    "required": [
        "id",
        "user",
        "kind",
        "at",
        "lat",
        "lng",
        "source",
        "verdict",
        "trust",
        "made_up",
        "map_url",
    ],
    "properties": {
        "id": {"type": "integer"},
        "user": {"type": "string"},
        "user_name": {"type": "string"},
        "department": _nullable("string"),
        "department_name": _nullable("string"),
        "kind": {"enum": [k.value for k in CheckinKind]},
        "kind_label": {"type": "string"},
        "at": {"type": "string", "description": "the device's time when it reported one, else the server's"},
        "received_at": {"type": "string"},
        "device_at": _nullable("string"),
        "lat": {"type": "number"},
        "lng": {"type": "number"},
        "coord_system": {"enum": ["wgs84", "gcj02"]},
        "wgs84": {"type": "object", "properties": {"lat": {"type": "number"}, "lng": {"type": "number"}}},
        "accuracy_m": _nullable("number"),
        "source": {"enum": [s.value for s in Source]},
        "source_label": {"type": "string"},
        "channel": {"type": "string"},
        "label": _nullable("string"),
        "verdict": {"enum": ["on_site", "off_site", "no_destination"]},
        "verdict_label": {"type": "string"},
        "distance_m": _nullable("number"),
        "target_site": _nullable("string"),
        "target_name": _nullable("string"),
        "radius_m": _nullable("number"),
        "trip_id": _nullable("string"),
        "request_id": _nullable("string"),
        "trust": {
            "type": "object",
            "required": ["score", "level", "flags", "reasons"],
            "properties": {
                "score": {"type": "integer", "minimum": 0, "maximum": 100},
                "level": {"enum": ["high", "medium", "low"]},
                "level_label": {"type": "string"},
                "flags": {"type": "array", "items": {"type": "string"}},
                "reasons": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "code": {"type": "string"},
                            "penalty": {"type": "integer"},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        },
        "made_up": {"type": "boolean"},
        "fix_request_id": _nullable("string"),
        "map_url": {"type": "string"},
        "message": {"type": "string", "description": "the confirmation the person would read"},
        "created": {"type": "boolean", "description": "false: a repeat of an earlier idempotency_key"},
    },
}

NEW_CHECKIN = {
    "type": "object",
    "additionalProperties": False,
    "required": ["user", "lat", "lng"],
    "properties": {
        "user": {"type": "string", "description": "org user id"},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lng": {"type": "number", "minimum": -180, "maximum": 180},
        "accuracy_m": {"type": "number", "minimum": 0},
        "coord_system": {"enum": ["wgs84", "gcj02"], "default": "wgs84"},
        "trip_id": {"type": "string"},
        "request_id": {
            "type": "string",
            "description": "the approved outing / vehicle_dispatch request instead of trip_id",
        },
        "kind": {
            "enum": ["arrival", "departure"],
            "description": "default: arrival until there is one, then departure",
        },
        "device_at": {"type": "string", "description": "the device's clock, ISO 8601 with offset"},
        "label": {"type": "string"},
        "idempotency_key": {"type": "string"},
    },
}

CHECKIN_DAY = {
    "type": "object",
    "required": ["date", "items", "missing"],
    "properties": {
        "date": {"type": "string"},
        "items": {"type": "array", "items": _ref("Checkin")},
        "missing": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "user": {"type": "string"},
                    "user_name": {"type": "string"},
                    "trip_id": _nullable("string"),
                    "kind": {"type": "string"},
                    "due_at": _nullable("string"),
                    "detail": {"type": "string"},
                },
            },
        },
    },
}

_ERROR = {"content": {"application/json": {"schema": _ref("Error")}}}


def _q(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": description,
    }


CHECKIN_PATHS: dict[str, dict[str, Any]] = {
    "/api/v1/checkins": {
        "post": {
            "summary": "Record a field check-in (source: api)",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("NewCheckin")}},
            },
            "responses": {
                "201": {
                    "description": "recorded",
                    "content": {"application/json": {"schema": _ref("Checkin")}},
                },
                "200": {
                    "description": "a repeat of an earlier idempotency_key",
                    "content": {"application/json": {"schema": _ref("Checkin")}},
                },
                "401": {"description": "missing or wrong bearer token", **_ERROR},
                "403": {
                    "description": "not the person's trip, or no trip and free check-ins not allowed",
                    **_ERROR,
                },
                "404": {"description": "no such trip or request", **_ERROR},
                "409": {"description": "the request is not approved", **_ERROR},
                "422": {"description": "invalid body or position (every problem listed)", **_ERROR},
            },
        },
        "get": {
            "summary": "Check-ins of a day, with trust and what is missing",
            "parameters": [
                _q("date", "YYYY-MM-DD, default today"),
                _q("dept", "department id (sub-departments included)"),
                _q("user", "user id"),
            ],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": _ref("CheckinDay")}}},
                "401": {"description": "missing or wrong bearer token", **_ERROR},
                "422": {"description": "invalid query", **_ERROR},
            },
        },
    },
}

CHECKIN_SCHEMAS: dict[str, Any] = {"Checkin": CHECKIN, "NewCheckin": NEW_CHECKIN, "CheckinDay": CHECKIN_DAY}


def setup_checkin_api(app: web.Application) -> None:
    app.router.add_post("/api/v1/checkins", create_checkin)
    app.router.add_get("/api/v1/checkins", list_checkins)
