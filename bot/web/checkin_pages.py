"""The check-in pages: the signed mobile page a trip card's 到达打卡 / 离开打卡 button opens, and
the managers' page of their team's check-ins.

- `GET /checkin/{token}`: a small page for phones (works in the WeCom and DingTalk in-app
  browsers and in the console) that asks the browser for its position, with accuracy, when the
  person taps the button, and `POST`s it back to the same address as JSON. The token is the
  signed link (`checkins.links`): it names the person, the trip and arrival or departure, and
  expires. Nothing else identifies the person, so the page never accepts a different one
  (`?as=` may only narrow it: the console passes the simulated user and a link of someone
  else's is refused).
- `GET /checkins/team/{token}?date=`: a manager's signed view (sent with their daily summary
  and off-site notices): who checked in where and when, on site or not, the trust score and its
  reasons, a map link, and who is missing. `GET /console/u/{uid}/checkins` shows the same page
  in the console.

Pages are rendered from `bot/web/templates/checkin/` (autoescaped; no markup in Python).
Edges only: every decision is the check-in service's (and its core's).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot.keys import CHECKINS, SETTINGS
from bot.web.api_errors import InvalidJson, ValidationFailed
from bot.web.input_rules import read_json
from bot.web.middleware import status_for
from bot.web.routes import in_range
from bot.web.templating import setup_templates
from checkins.core import CheckinKind, make_fix
from checkins.errors import CheckinError, NotYourTrip
from checkins.geo import WGS84, format_distance
from checkins.trust import Source
from notifications.checkin_wording import KIND_LABEL
from notifications.messages import message_for
from services.checkins import CheckinService, team_of

PAGE_HEADERS = {"Cache-Control": "no-store"}


def _render(request: web.Request, name: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    response = aiohttp_jinja2.render_template(name, request, context, status=status)
    response.headers.update(PAGE_HEADERS)
    return response


def _problem_page(
    request: web.Request, title: str, message: str, *, status: int, code: str | None = None
) -> web.Response:
    context = {"title": title, "message": message, "code": code}
    return _render(request, "checkin/problem.html", context, status=status)


def _error_page(request: web.Request, exc: CheckinError) -> web.Response:
    return _problem_page(request, "外勤打卡", message_for(exc), status=status_for(exc), code=exc.code)


# -- the check-in page ---------------------------------------------------------------------------
async def checkin_page(request: web.Request) -> web.StreamResponse:
    service = request.app[CHECKINS]
    token = request.match_info["token"]
    try:
        claims, trip = await service.trip_for_link(token)
        viewer = request.query.get("as")
        if viewer and viewer != claims.user:
            raise NotYourTrip("not_your_trip.link", trip_id=trip.id)
    except CheckinError as exc:
        return _error_page(request, exc)
    org = await service.org()
    label = KIND_LABEL[CheckinKind(claims.kind)]
    context = {
        "title": f"外勤打卡 · {label}",
        "label": label,
        "claims": claims,
        "trip": trip,
        "traveller": org.display_name(trip.traveller),
        "tz": service.tz,
    }
    return _render(request, "checkin/checkin.html", context)


def _device_time(raw: Any) -> datetime | None:
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        raise ValidationFailed(
            "device_at 应为 ISO 8601 时间", details={"device_at": "expected an ISO 8601 date-time"}
        )
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValidationFailed(
            "device_at 应为 ISO 8601 时间", details={"device_at": "expected an ISO 8601 date-time"}
        ) from None
    if moment.tzinfo is None:
        raise ValidationFailed("device_at 需要带时区", details={"device_at": "needs a UTC offset"})
    try:
        return in_range(moment)
    except ValueError as exc:
        raise ValidationFailed(f"device_at 超出范围：{exc}", details={"device_at": str(exc)}) from None


async def post_checkin(request: web.Request) -> web.StreamResponse:
    service = request.app[CHECKINS]
    try:
        data = await read_json(request)
    except InvalidJson as exc:  # the page shows the message to the person
        raise InvalidJson(f"请求格式不对：应为 JSON（{exc.message}）", exc.details) from None
    if not isinstance(data, dict):
        raise ValidationFailed("请求格式不对：应为 JSON 对象")
    nonce = data.get("nonce")
    fix = make_fix(
        data.get("lat"),
        data.get("lng"),
        accuracy_m=data.get("accuracy_m"),
        coord_system=data.get("coord_system") or WGS84,
        source=Source.BROWSER,
        received_at=service.now(),
        device_at=_device_time(data.get("device_at")),
        channel="page",
    )
    recorded = await service.record_via_link(
        request.match_info["token"],
        fix,
        nonce=str(nonce)[:64] if isinstance(nonce, str) and nonce else None,
        viewer=request.query.get("as") or None,
    )
    c = recorded.checkin
    return web.json_response(
        {
            "id": recorded.id,
            "message": recorded.reply,
            "kind": c.kind.value,
            "verdict": c.verdict.value,
            "distance_m": round(c.distance_m, 1) if c.distance_m is not None else None,
            "created": recorded.created,
        },
        status=201 if recorded.created else 200,
        dumps=lambda o: json.dumps(o, ensure_ascii=False),
    )


# -- the managers' page ------------------------------------------------------------------------------
def _day(request: web.Request, service: CheckinService) -> date:
    raw = request.query.get("date")
    if raw:
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    return service.now().astimezone(service.tz).date()


async def _team_page(request: web.Request, manager: str, base: str) -> web.Response:
    service = request.app[CHECKINS]
    org = await service.org()
    day = _day(request, service)
    context = {
        "title": f"{org.display_name(manager)} 的团队外勤签到 · {day:%m-%d}",
        "base": base,
        "day": day,
        "view": await service.day_view(day=day, users=team_of(org, manager)),
        "tz": service.tz,
        "distance": format_distance,
        "verdict_class": {"on_site": "ok", "off_site": "bad"},
    }
    return _render(request, "checkin/team.html", context)


async def team_page(request: web.Request) -> web.StreamResponse:
    service = request.app[CHECKINS]
    try:
        claims = await service.read_link(request.match_info["token"])
    except CheckinError as exc:
        return _error_page(request, exc)
    if claims.kind != "team":
        return _problem_page(request, "外勤签到", "这个链接不是团队签到链接。", status=403)
    return await _team_page(request, claims.user, request.path)


async def console_team_page(request: web.Request) -> web.StreamResponse:
    if not request.app[SETTINGS].console:
        raise web.HTTPNotFound(text="the console is off: set OABOT_CONSOLE=1 or run `oabot serve --demo`")
    org = await request.app[CHECKINS].org()
    uid = request.match_info["uid"]
    if not org.is_active(uid):
        raise web.HTTPNotFound(text="no such active user")
    return await _team_page(request, uid, request.path)


def setup_checkin_pages(app: web.Application) -> None:
    setup_templates(app)
    r = app.router
    r.add_get("/checkin/{token}", checkin_page)
    r.add_post("/checkin/{token}", post_checkin)
    r.add_get("/checkins/team/{token}", team_page)
    r.add_get("/console/u/{uid}/checkins", console_team_page)
