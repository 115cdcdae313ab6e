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
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot.keys import CHECKINS, HTTP, KV, SETTINGS
from bot.platforms.dingtalk.client import DingTalkApiError, DingTalkClient
from bot.platforms.dingtalk.jsapi import DingTalkJsApiTickets
from bot.platforms.wecom.client import WeComApiError, WeComClient
from bot.platforms.wecom.jsapi import JsApiTickets
from bot.settings import Settings
from bot.web.api_errors import InvalidJson, ValidationFailed
from bot.web.identity import current, sign_in_url
from bot.web.input_rules import read_json
from bot.web.middleware import status_for
from bot.web.routes import in_range
from bot.web.templating import setup_templates
from bot.web.workspace.sign_in import demo_mode
from checkins.core import CheckinKind, make_fix
from checkins.errors import CheckinError, NotYourTrip
from checkins.geo import WGS84, format_distance
from checkins.links import LinkClaims
from checkins.trust import Source
from notifications.checkin_wording import KIND_LABEL, team_cards
from notifications.messages import message_for
from services.checkins import CheckinService, team_of

PAGE_HEADERS = {"Cache-Control": "no-store"}
# Where the page got the position: the app's own location API, else the browser's.
PAGE_CHANNELS = {"wecom": "wecom_jssdk", "dingtalk": "dingtalk_jsapi", "browser": "page"}
JSAPI: web.AppKey[Tickets] = web.AppKey("checkin_jsapi_tickets")

logger = logging.getLogger(__name__)


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


# -- who is checking in ---------------------------------------------------------------------------
def platform_sign_in(settings: Settings) -> bool:
    """Whether people sign in through WeCom or DingTalk here (outside the demo's person picker)."""
    if demo_mode(settings):
        return False
    dingtalk = settings.dingtalk is not None and bool(settings.dingtalk.corp_id)
    return settings.wecom is not None or dingtalk


async def _person(request: web.Request, claims: LinkClaims) -> str | None:
    """The person checking in, when something besides the link names them: the signed-in person
    when platform sign-in is configured, or the console's `?as=`. They must be the link's person
    (the service checks again). A page visitor without a session is sent to sign in first."""
    narrowed = request.query.get("as") or None
    if narrowed is not None and narrowed != claims.user:
        raise NotYourTrip("not_your_trip.link", trip_id=claims.trip)
    if not platform_sign_in(request.app[SETTINGS]):
        return narrowed
    found = await current(request)
    if found is None:
        if request.method == "GET":
            raise web.HTTPSeeOther(location=sign_in_url(request.path_qs))
        raise NotYourTrip("not_your_trip.not_signed_in", trip_id=claims.trip)
    signed_in = found[1]
    if signed_in.id != claims.user:
        org = await request.app[CHECKINS].org()
        raise NotYourTrip(
            "not_your_trip.signed_in",
            shown={"viewer_name": signed_in.name, "traveller_name": org.display_name(claims.user)},
            trip_id=claims.trip,
            viewer=signed_in.id,
        )
    return signed_in.id


def _in_app(settings: Settings, user_agent: str) -> str | None:
    """Which connected app the page is open in (by its user agent; with one app connected, that
    one): `wecom`, `dingtalk` or None."""
    agent = user_agent.lower()
    dingtalk = settings.dingtalk is not None and bool(settings.dingtalk.corp_id)
    if dingtalk and ("dingtalk" in agent or settings.wecom is None):
        return "dingtalk"
    if settings.wecom is not None and ("wxwork" in agent or not dingtalk):
        return "wecom"
    return None


async def _location_apis(request: web.Request) -> dict[str, Any]:
    """What the page needs to ask the app it runs in for the position: WeCom's `wx.config` or
    DingTalk's `dd.config` (each signed with its jsapi_ticket for this very address) and the
    script's address. Nothing outside both apps; a ticket that cannot be had leaves the page on
    the browser's geolocation (DingTalk: on `dd` without config)."""
    settings = request.app[SETTINGS]
    app = _in_app(settings, request.headers.get("User-Agent", ""))
    url = settings.public_url.rstrip("/") + request.path_qs
    timestamp = int(request.app[CHECKINS].now().timestamp())
    tickets = request.app[JSAPI]
    if app == "wecom" and tickets.wecom is not None and settings.wecom is not None:
        try:
            cfg = await tickets.wecom.config(url, timestamp=timestamp)
        except WeComApiError as exc:
            logger.warning(
                "no wecom jsapi ticket; the page uses browser geolocation", extra={"error": str(exc)}
            )
            return {}
        wx = {
            "appId": cfg.app_id,
            "timestamp": cfg.timestamp,
            "nonceStr": cfg.nonce,
            "signature": cfg.signature,
        }
        return {"wecom": wx, "wecom_sdk": settings.wecom.jssdk_url}
    if app == "dingtalk" and settings.dingtalk is not None and settings.dingtalk.corp_id:
        dd: dict[str, Any] = {"corpId": settings.dingtalk.corp_id}
        if tickets.dingtalk is not None:
            try:
                cfg = await tickets.dingtalk.config(url, timestamp=timestamp)
            except DingTalkApiError as exc:
                logger.warning(
                    "no dingtalk jsapi ticket; dd is used without config", extra={"error": str(exc)}
                )
            else:
                dd.update(
                    agentId=tickets.dingtalk.agent_id,
                    timeStamp=cfg.timestamp,
                    nonceStr=cfg.nonce,
                    signature=cfg.signature,
                )
        return {"dingtalk": dd, "dingtalk_sdk": settings.dingtalk.jsapi_url}
    return {}


# -- the check-in page ---------------------------------------------------------------------------
async def checkin_page(request: web.Request) -> web.StreamResponse:
    service = request.app[CHECKINS]
    token = request.match_info["token"]
    try:
        claims, trip = await service.trip_for_link(token)
        await _person(request, claims)
        await service.link_unused(claims)
    except CheckinError as exc:
        return _error_page(request, exc)
    org = await service.org()
    label = KIND_LABEL[CheckinKind(claims.kind)]
    apis = await _location_apis(request)
    context = {
        "title": f"外勤打卡 · {label}",
        "label": label,
        "claims": claims,
        "trip": trip,
        "traveller": org.display_name(trip.traveller),
        "tz": service.tz,
        "apis": {k: v for k, v in apis.items() if not k.endswith("_sdk")},
        "sdk_urls": [v for k, v in apis.items() if k.endswith("_sdk") and v],
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
    via = data.get("via")
    fix = make_fix(
        data.get("lat"),
        data.get("lng"),
        accuracy_m=data.get("accuracy_m"),
        coord_system=data.get("coord_system") or WGS84,
        source=Source.BROWSER,
        received_at=service.now(),
        device_at=_device_time(data.get("device_at")),
        channel=PAGE_CHANNELS.get(via, "page") if isinstance(via, str) else "page",
    )
    token = request.match_info["token"]
    claims = await service.read_link(token)
    recorded = await service.record_via_link(
        token,
        fix,
        nonce=str(nonce)[:64] if isinstance(nonce, str) and nonce else None,
        viewer=await _person(request, claims),
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


async def _team_page(request: web.Request, manager: str, base: str, back: tuple[str, str]) -> web.Response:
    service = request.app[CHECKINS]
    org = await service.org()
    day = _day(request, service)
    view = await service.day_view(day=day, users=team_of(org, manager))
    context = {
        "title": f"团队外勤签到 · {day:%m-%d}",
        "manager": org.display_name(manager),
        "base": base,
        "back": back,
        "day": day,
        "view": view,
        "people": team_cards(view),
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
    return await _team_page(request, claims.user, request.path, ("/m/", "返回工作台"))


async def console_team_page(request: web.Request) -> web.StreamResponse:
    if not request.app[SETTINGS].console:
        raise web.HTTPNotFound(text="the console is off: set OABOT_CONSOLE=1 or run `oabot serve --demo`")
    org = await request.app[CHECKINS].org()
    uid = request.match_info["uid"]
    if not org.is_active(uid):
        raise web.HTTPNotFound(text="no such active user")
    return await _team_page(request, uid, request.path, (f"/console/u/{uid}", "返回聊天"))


@dataclass(frozen=True)
class Tickets:
    """The jsapi_ticket caches of the connected apps (None: not connected, or for DingTalk no
    corpId and agentId to sign `dd.config` with)."""

    wecom: JsApiTickets | None
    dingtalk: DingTalkJsApiTickets | None


async def jsapi_ctx(app: web.Application) -> AsyncIterator[None]:
    """The apps' jsapi_ticket caches, once the store and HTTP client are open."""
    settings = app[SETTINGS]
    wecom, dingtalk = settings.wecom, settings.dingtalk
    app[JSAPI] = Tickets(
        wecom=JsApiTickets(WeComClient(app[HTTP], wecom, app[KV]), app[KV], corp_id=wecom.corp_id)
        if wecom is not None
        else None,
        dingtalk=DingTalkJsApiTickets(
            DingTalkClient(app[HTTP], app[KV], dingtalk),
            app[KV],
            corp_id=dingtalk.corp_id,
            agent_id=dingtalk.agent_id,
        )
        if dingtalk is not None and dingtalk.corp_id and dingtalk.agent_id
        else None,
    )
    yield


def setup_checkin_pages(app: web.Application) -> None:
    setup_templates(app)
    app.cleanup_ctx.append(jsapi_ctx)
    r = app.router
    r.add_get("/checkin/{token}", checkin_page)
    r.add_post("/checkin/{token}", post_checkin)
    r.add_get("/checkins/team/{token}", team_page)
    r.add_get("/console/u/{uid}/checkins", console_team_page)
