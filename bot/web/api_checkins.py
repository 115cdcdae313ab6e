"""The check-in REST API: `POST /api/v1/checkins` (integrations report a check-in) and
`GET /api/v1/checkins?date=&dept=&user=` (who checked in where and when, and what is missing).

Reads each body and query as a pydantic model, makes one check-in service call, and answers
with a response model; the routes are declared in `ROUTES` (documented by `bot.web.openapi`).
The check-in core's refusals pass through to the error middleware. Authentication is the bearer
token of every /api/ path (`bot.web.middleware`); a personal token checks in only its own person.
Decides nothing itself.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from bot.keys import CHECKINS
from bot.web.api_errors import ValidationFailed
from bot.web.routes import (
    AwareTime,
    Body,
    Day,
    Id,
    IdempotencyKey,
    Query,
    QueryId,
    Reply,
    RouteTable,
    Text,
    acting,
    check_query,
    read_body,
    refuse,
    reply,
)
from checkins.core import CheckinKind, make_fix
from checkins.trust import Source
from org.model import Org

ROUTES = RouteTable()


class NewCheckin(Body):
    user: Id | None = Field(
        None, description="org user id; default: a personal token's person; someone else: admin scope"
    )
    lat: Any = Field(description="latitude, -90 to 90")
    lng: Any = Field(description="longitude, -180 to 180")
    accuracy_m: Any = Field(None, description="metres, not negative")
    coord_system: Text = Field("wgs84", description="wgs84 or gcj02")
    trip_id: Id | None = None
    request_id: Id | None = Field(
        None, description="the approved outing / vehicle_dispatch request instead of trip_id"
    )
    kind: CheckinKind | None = Field(None, description="default: arrival until there is one, then departure")
    device_at: AwareTime | None = Field(None, description="the device's clock, ISO 8601 with offset")
    label: Text | None = None
    idempotency_key: IdempotencyKey | None = None

    def problems(self) -> dict[str, str]:
        problems = {key: "required" for key in ("lat", "lng") if getattr(self, key) is None}
        if self.trip_id and self.request_id:
            problems["request_id"] = "give trip_id or request_id, not both"
        return problems


class CheckinQuery(Query):
    date: Day | None = Field(None, description="YYYY-MM-DD, default today")
    dept: QueryId | None = Field(None, description="department id (sub-departments included)")
    user: QueryId | None = Field(None, description="user id")


class Point(BaseModel):
    lat: float
    lng: float


class TrustReason(BaseModel):
    code: str
    penalty: int
    message: str


class Trust(BaseModel):
    score: int = Field(ge=0, le=100)
    level: str
    level_label: str
    flags: list[str]
    reasons: list[TrustReason]


class Checkin(BaseModel):
    id: int
    user: str
    user_name: str
    department: str | None
    department_name: str | None
    kind: CheckinKind
    kind_label: str
    at: str = Field(description="the device's time when it reported one, else the server's")
    received_at: str
    device_at: str | None
    lat: float
    lng: float
    coord_system: str
    wgs84: Point
    accuracy_m: float | None
    source: Source
    source_label: str
    channel: str
    label: str | None
    verdict: str
    verdict_label: str
    distance_m: float | None
    target_site: str | None
    target_name: str | None
    radius_m: float | None
    trip_id: str | None
    request_id: str | None
    trust: Trust
    made_up: bool
    fix_request_id: str | None
    map_url: str


class RecordedCheckin(Checkin):
    message: str = Field(description="the confirmation the person would read")
    created: bool = Field(description="false: a repeat of an earlier idempotency_key")


class MissingCheckin(BaseModel):
    user: str
    user_name: str
    trip_id: str | None
    kind: str
    due_at: str | None
    detail: str


class CheckinDay(BaseModel):
    date: str
    items: list[Checkin]
    missing: list[MissingCheckin]


@ROUTES.route(
    "POST",
    "/api/v1/checkins",
    summary="Record a field check-in (source: api)",
    body=NewCheckin,
    ok=[
        Reply(201, RecordedCheckin, "recorded"),
        Reply(200, RecordedCheckin, "a repeat of an earlier idempotency_key"),
    ],
    errors=(
        (403, "not the person's trip, or no trip and free check-ins not allowed"),
        (404, "no such trip or request"),
        (409, "the request is not approved"),
        (422, "invalid body or position (every problem listed)"),
    ),
)
async def create_checkin(request: web.Request) -> web.StreamResponse:
    service = request.app[CHECKINS]
    body = await read_body(request, NewCheckin)
    if problems := body.problems():
        raise refuse("请求参数有误", problems)
    who = acting(request, body.user, field="user").user
    org = await service.org()
    user = org.user(who)
    if user is None or not user.active:
        raise ValidationFailed(
            f"{who} 不是本单位在职人员",
            details={"user": "unknown or inactive user"},
            code="unknown_user",
        )
    fix = make_fix(
        body.lat,
        body.lng,
        accuracy_m=body.accuracy_m,
        coord_system=body.coord_system,
        source=Source.API,
        received_at=service.now(),
        device_at=body.device_at,
        channel="api",
        label=body.label,
    )
    trip = await service.resolve_trip(user=user.id, trip_id=body.trip_id, request_id=body.request_id)
    idem = body.idempotency_key
    recorded = await service.record_via_api(
        user, fix, trip=trip, kind=body.kind, dedupe_key=f"api:{user.id}:{idem}" if idem else None
    )
    view = RecordedCheckin.model_validate(
        {
            **service.checkin_view(recorded.id, recorded.checkin, org),
            "message": recorded.reply,
            "created": recorded.created,
        }
    )
    return reply(view, status=201 if recorded.created else 200)


@ROUTES.route(
    "GET",
    "/api/v1/checkins",
    summary="Check-ins of a day, with trust and what is missing",
    query=CheckinQuery,
    ok=CheckinDay,
    errors=((422, "invalid query"),),
)
async def list_checkins(request: web.Request) -> web.StreamResponse:
    service = request.app[CHECKINS]
    q = request.query
    parsed, problems = check_query(request, CheckinQuery)
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
    if parsed is None or problems:
        raise refuse("查询参数有误", problems)
    day = parsed.date or service.now().astimezone(service.tz).date()
    return reply(CheckinDay.model_validate(await service.day_view(day=day, users=users)))


def _members(org: Org, dept: str) -> list[str]:
    """Everyone in the department and its sub-departments, past members included (their
    check-ins stay visible)."""
    depts = {dept, *org.sub_departments(dept)}
    return [u.id for u in org.users.values() if u.department in depts]


def setup_checkin_api(app: web.Application) -> None:
    ROUTES.add_to(app.router)
