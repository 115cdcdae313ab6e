"""The REST route table: each route declares its body, query and response models, its errors
and the token scope it needs (`read` for GET routes and `act` for the others unless it says).

A module builds one `RouteTable`, decorates its handlers with `table.route(...)` and adds the
table to the app's router; `bot.web.openapi` generates the OpenAPI document from the tables.
Handlers read their input with `read_body` / `read_query` (pydantic models; every bad field is
listed in one 422) and answer with `reply(model)`. A route is served only to a caller whose
token has its scope (`principal_of(request)`, set by the auth middleware); `acting(...)` answers
whom a body that names a person acts as, by the token's rules (`services.api_tokens`). Nothing
here knows a business rule, and domain refusals pass through untouched to the error middleware.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar

from aiohttp import web
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
)

from approvals.engine import COMMENT_MAX as ENGINE_COMMENT_MAX
from bot.keys import PRINCIPAL
from bot.web.api_errors import Unauthorized, ValidationFailed
from bot.web.input_rules import read_json
from services.api_tokens import Acting, Principal, Scope

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)

# What each error status means when a route does not say more.
ERROR_TEXT = {
    400: "the body is not JSON, not UTF-8 text, or nested too deep; or the URL is over 8 KB",
    401: "missing, unknown or revoked bearer token",
    403: "the token lacks this route's scope, or the actor may not do this",
    404: "not found",
    409: "stale card, already decided, or request finished",
    410: "expired",
    422: "invalid body or query (every problem listed)",
    429: "too many requests: the token's rate limit, or an urge too soon (see Retry-After)",
    503: "busy or the database is unavailable; retry after Retry-After",
}


# The longest texts the API takes (characters), documented in the OpenAPI document through the
# models; longer ones are refused with 422 naming the field. Form fields have their own maxima
# (approvals.forms.MAX_LENGTH, overridable per template field).
ID_MAX = 64  # a user, department, template, task or trip id (the database columns hold 64)
TEXT_MAX = 200  # a short text: a label, a coordinate system
KEY_MAX = 200  # an idempotency key
COMMENT_MAX = ENGINE_COMMENT_MAX  # an opinion on a decision, an urge's words (any channel)
REASON_MAX = 200  # a delegation's or a calendar override's reason
LIST_MAX = 100  # the items of a list in a body (template keys of a delegation)
FORM_KEYS_MAX = 100  # the fields of a submitted form
NUMBER_MAX = 2**31 - 1  # a task version, a step index: what the database columns hold
OFFSET_MAX = 1_000_000  # how far a list may be paged
# The instants the API accepts, in UTC: wide enough for any office use, and far from the ends of
# Python's calendar, where converting an offset (0001-01-01T00:00:00+14:00) overflows.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2999, 12, 31, 23, 59, 59, tzinfo=UTC)


def _iso_time(value: Any) -> datetime:
    """A date-time comes as ISO 8601 text only (never a number), read as Python reads it."""
    try:
        return datetime.fromisoformat(value.strip())
    except (AttributeError, ValueError):
        raise ValueError(
            "expected an ISO 8601 date-time with offset, e.g. 2026-11-23T09:00:00+08:00"
        ) from None


def in_range(value: datetime) -> datetime:
    """An instant between EARLIEST and LATEST; refused before any arithmetic can overflow."""
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not EARLIEST <= in_utc <= LATEST:
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC)")
    return value


def _iso_day(value: Any) -> date:
    try:
        day = date.fromisoformat(value.strip())
    except (AttributeError, ValueError):
        raise ValueError("expected a date YYYY-MM-DD") from None
    if not EARLIEST.year <= day.year <= LATEST.year:
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return day


# A non-empty, trimmed string of at most TEXT_MAX characters; a number is not a string.
Text = Annotated[StrictStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=TEXT_MAX)]
# An id (user, template, task, trip, department): non-empty, trimmed, at most ID_MAX characters.
Id = Annotated[StrictStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=ID_MAX)]
# An id in a query string (any text, at most ID_MAX characters).
QueryId = Annotated[str, StringConstraints(max_length=ID_MAX)]
# An idempotency key: non-empty, trimmed, at most KEY_MAX characters.
IdempotencyKey = Annotated[
    StrictStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=KEY_MAX)
]
# Free words (a comment, a reason): at most COMMENT_MAX / REASON_MAX characters.
Comment = Annotated[StrictStr, StringConstraints(max_length=COMMENT_MAX)]
Reason = Annotated[StrictStr, StringConstraints(max_length=REASON_MAX)]
# A whole number a database column holds (a version, a step index).
Whole = Annotated[StrictInt, Field(ge=0, le=NUMBER_MAX)]
# An ISO 8601 date-time with its UTC offset, e.g. 2026-11-23T09:00:00+08:00, between 1900 and 2999.
AwareTime = Annotated[AwareDatetime, BeforeValidator(_iso_time), AfterValidator(in_range)]
# A date YYYY-MM-DD, in the years 1900 to 2999.
Day = Annotated[date, BeforeValidator(_iso_day)]


class Body(BaseModel):
    """Base of request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class Query(BaseModel):
    """Base of query strings: unknown parameters are refused."""

    model_config = ConfigDict(extra="forbid")


class Error(BaseModel):
    """The body of every error answer."""

    error: str
    message: str
    details: Any = None
    request_id: str | None = None


@dataclass(frozen=True)
class Reply:
    """One success answer of a route: its status, model (None: no fixed shape) and meaning."""

    status: int
    model: type[BaseModel] | None
    description: str = "OK"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    replies: tuple[Reply, ...]
    errors: dict[int, str]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    description: str | None = None
    scope: Scope = Scope.READ

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.path)


@dataclass
class RouteTable:
    """The routes of one REST module, in the order they were declared."""

    routes: list[Route] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        ok: type[BaseModel] | None | Iterable[Reply],
        errors: Iterable[int | tuple[int, str]] = (),
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        description: str | None = None,
        scope: Scope | None = None,
    ) -> Callable[[Handler], Handler]:
        """Declare a route; `ok` is the 200 model or the list of success replies; `scope` the
        token scope it needs (default: `read` for GET, `act` otherwise)."""
        replies = (
            tuple(ok)
            if ok is not None and not isinstance(ok, type)
            else (Reply(200, ok if isinstance(ok, type) else None),)
        )
        needs = scope or (Scope.READ if method == "GET" else Scope.ACT)
        # Any route may answer these: auth, the per-token rate limit, a database outage.
        error_text = {status: ERROR_TEXT[status] for status in (401, 403, 429, 503)}
        if body is not None:  # every body is read by read_body: JSON, UTF-8, not too deep, fields
            error_text |= {400: ERROR_TEXT[400], 422: ERROR_TEXT[422]}
        if query is not None:  # a query string over aiohttp's 8 KB request line is a 400
            error_text |= {400: ERROR_TEXT[400], 422: ERROR_TEXT[422]}
        for e in errors:
            status, text = e if isinstance(e, tuple) else (e, ERROR_TEXT[e])
            error_text[status] = text

        def add(handler: Handler) -> Handler:
            self.routes.append(
                Route(method, path, handler, summary, replies, error_text, body, query, description, needs)
            )
            return handler

        return add

    def add_to(self, router: web.UrlDispatcher) -> None:
        for r in self.routes:
            router.add_route(r.method, r.path, _guarded(r))


def _guarded(route: Route) -> Handler:
    """The route's handler, answering 403 first to a token without the route's scope."""

    async def handler(request: web.Request) -> web.StreamResponse:
        principal_of(request).require(route.scope)
        return await route.handler(request)

    return handler


def principal_of(request: web.Request) -> Principal:
    """The caller behind the request's bearer token (the auth middleware put it there)."""
    if PRINCIPAL not in request:
        raise Unauthorized()
    return request[PRINCIPAL]


def acting(
    request: web.Request, named: str | None, *, on_behalf_of: str | None = None, field: str = "actor"
) -> Acting:
    """Whom this call acts as: the person the body names in `field` (or `on_behalf_of`), as the
    caller's token allows (a personal token: only its person; acting for others: admin)."""
    return principal_of(request).acting_as(named, on_behalf_of=on_behalf_of, field=field)


def reading(request: web.Request, named: str | None, *, field: str) -> str | None:
    """Whose data this read may cover (a personal token: only its person's)."""
    return principal_of(request).reading_as(named, field=field)


def _problems(exc: ValidationError, unknown: str) -> dict[str, str]:
    problems: dict[str, str] = {}
    for e in exc.errors():
        key = str(e["loc"][0]) if e["loc"] else "body"  # the field, as the API has always named it
        if e["type"] == "missing":
            problems[key] = "required"
        elif e["type"] == "extra_forbidden":
            # a key inside a nested object (audience.teams) is named by its whole path
            problems[key] = unknown if len(e["loc"]) == 1 else "unknown field " + ".".join(map(str, e["loc"]))
        else:
            problems.setdefault(key, e["msg"].removeprefix("Value error, "))
    return problems


def refuse(heading: str, problems: dict[str, str]) -> ValidationFailed:
    """The 422 naming every problem, in the API's usual words."""
    return ValidationFailed(heading + "：" + "；".join(f"{k}: {v}" for k, v in problems.items()), problems)


async def read_body(request: web.Request, model: type[M]) -> M:
    """The JSON body as `model`, or one 422 listing every bad field (400 when it is not JSON)."""
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ValidationFailed("请求体应为 JSON 对象", details={"body": "expected a JSON object"})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise refuse("请求参数有误", _problems(exc, f"unknown field; allowed: {_allowed(model)}")) from None


def _allowed(model: type[BaseModel]) -> str:
    return ", ".join(sorted(f.alias or name for name, f in model.model_fields.items()))


def check_query(request: web.Request, model: type[M]) -> tuple[M | None, dict[str, str]]:
    """The query string as `model` and no problems, or None and every bad parameter."""
    try:
        return model.model_validate(dict(request.query)), {}
    except ValidationError as exc:
        return None, _problems(exc, f"unknown query parameter; allowed: {_allowed(model)}")


def read_query(request: web.Request, model: type[M]) -> M:
    """The query string as `model`, or one 422 listing every bad parameter."""
    query, problems = check_query(request, model)
    if query is None:
        raise refuse("查询参数有误", problems)
    return query


def reply(model: BaseModel, status: int = 200) -> web.Response:
    """The model as the JSON answer (fields under their aliases, e.g. `from`)."""
    return web.Response(
        text=model.model_dump_json(by_alias=True), status=status, content_type="application/json"
    )
