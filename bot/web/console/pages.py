"""Console pages: pick a user, see their chat, tap cards, type commands, share a location,
start a request from any template with a form generated from its schema.

Handlers read the post, call a service (the workflow, the chat service, the console history)
and render a template from `bot/web/templates/console/`. They hold no markup and never touch
storage; every approval decision is the workflow's.

Who may use it: in demo mode (`oabot serve --demo`) anyone, through its person picker. Outside
demo mode (OABOT_CONSOLE=1 on a real deployment) `admin_gate` lets only a signed-in org admin in
(`bot.web.workspace.sign_in.is_org_admin`); an anonymous visitor is sent to the sign-in page and
anyone else gets a 403 page.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from approvals.errors import ApprovalError
from approvals.form_errors import FormInvalid
from approvals.model import Urgency
from bot.keys import CHAT, CONSOLE, SETTINGS, WORKFLOW
from bot.web.console.labels import Labels
from bot.web.forms import FieldView, form_from_post, shown_value, whole_number
from bot.web.identity import CSRF_FIELD, check_csrf, current, sign_in_url
from bot.web.middleware import Handler
from bot.web.templating import STATIC_DIR, setup_templates
from bot.web.workspace.sign_in import is_org_admin, problem_page
from handlers.events import CardAction, LocationShared, Sender, TextMessage
from notifications.messages import message_for
from notifications.wording import URGENCY_LABEL
from org.model import Org, User
from services.checkins import team_of

CONSOLE_PATH = "/console"
CSRF_KEY = web.RequestKey("oabot_console_csrf", str)


@web.middleware
async def admin_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outside demo mode, every console address needs an org admin's session."""
    settings = request.app[SETTINGS]
    inside = request.path == CONSOLE_PATH or request.path.startswith(CONSOLE_PATH + "/")
    if not inside or not settings.console or settings.demo:
        return await handler(request)
    found = await current(request)
    if found is None:
        raise web.HTTPSeeOther(location=sign_in_url(request.path_qs))
    if not is_org_admin(settings, found[1]):
        message = "控制台只对管理员开放。如需使用，请联系管理员。"
        return problem_page(request, message, status=403, title="没有权限")
    request[CSRF_KEY] = found[0].csrf
    if request.method == "POST":
        await check_csrf(request, str((await request.post()).get(CSRF_FIELD, "")))
    return await handler(request)


def _render(name: str, request: web.Request, context: dict[str, Any]) -> web.Response:
    """A console page; its forms carry the session's CSRF token (empty in demo mode, where the
    console has no sessions and the gate checks nothing)."""
    return aiohttp_jinja2.render_template(name, request, {**context, "csrf": str(request.get(CSRF_KEY, ""))})


def _enabled(request: web.Request) -> None:
    if not request.app[SETTINGS].console:
        raise web.HTTPNotFound(text="the console is off: set OABOT_CONSOLE=1 or run `oabot serve --demo`")


async def _user(request: web.Request) -> tuple[Org, User]:
    _enabled(request)
    org = await request.app[WORKFLOW].org()
    user = org.user(request.match_info["uid"])
    if user is None or not user.active:
        raise web.HTTPNotFound(text="no such active user")
    return org, user


def _home(user: User) -> str:
    return f"/console/u/{user.id}"


@dataclass(frozen=True)
class Person:
    """A line of the user picker."""

    id: str
    name: str
    title: str
    department: str


async def index(request: web.Request) -> web.StreamResponse:
    _enabled(request)
    org = await request.app[WORKFLOW].org()
    people = []
    for u in org.users.values():
        if u.active:
            dept = org.department(u.department)
            people.append(Person(u.id, u.name, u.title, dept.name if dept else ""))
    context = {"title": f"{org.name} · 选择用户", "back": None, "people": people}
    return _render("console/index.html", request, context)


# -- chat ----------------------------------------------------------------------------------------
async def _feed_context(request: web.Request, user: User) -> dict[str, Any]:
    messages = await request.app[CONSOLE].history(user.id)
    return {"messages": messages, "uid": user.id, "tz": request.app[SETTINGS].tz}


async def chat(request: web.Request) -> web.StreamResponse:
    org, user = await _user(request)
    context = {
        "title": f"{user.name} 的聊天",
        "back": "/console",
        "manages_someone": bool(team_of(org, user.id)),  # the 团队签到 button is for managers only
        **await _feed_context(request, user),
    }
    return _render("console/chat.html", request, context)


async def feed(request: web.Request) -> web.StreamResponse:
    _, user = await _user(request)
    return _render("console/feed.html", request, await _feed_context(request, user))


async def tap(request: web.Request) -> web.StreamResponse:
    _, user = await _user(request)
    data = await request.post()
    version = whole_number(data.get("version"))
    if version is None:
        raise web.HTTPBadRequest(text="bad card")
    event = CardAction(
        sender=Sender("console", user.id),
        event_id=str(data.get("event_id") or uuid.uuid4().hex),
        task_id=str(data.get("task_id", "")),
        version=version,
        action=str(data.get("action", "")),
    )
    await request.app[CHAT].handle(event)
    raise web.HTTPSeeOther(_home(user))


async def say(request: web.Request) -> web.StreamResponse:
    _, user = await _user(request)
    text = str((await request.post()).get("text", "")).strip()[:500]
    if text:
        await request.app[CONSOLE].record_incoming(user.id, text)
        await request.app[CHAT].handle(
            TextMessage(sender=Sender("console", user.id), event_id=uuid.uuid4().hex, text=text)
        )
    raise web.HTTPSeeOther(_home(user))


def _valid_position(lat: float, lng: float, accuracy: float | None) -> bool:
    on_earth = math.isfinite(lat) and math.isfinite(lng) and -90 <= lat <= 90 and -180 <= lng <= 180
    return on_earth and (accuracy is None or (math.isfinite(accuracy) and accuracy >= 0))


async def location(request: web.Request) -> web.StreamResponse:
    _, user = await _user(request)
    data = await request.post()
    workflow = request.app[WORKFLOW]
    try:
        lat, lng = float(str(data.get("lat"))), float(str(data.get("lng")))
        acc_raw = str(data.get("accuracy") or "")
        accuracy = float(acc_raw) if acc_raw else None
    except ValueError:
        await workflow.tell(user.id, "位置格式不对：纬度、经度应为数字，例如 31.2304 121.4737")
        raise web.HTTPSeeOther(_home(user)) from None
    if not _valid_position(lat, lng, accuracy):
        await workflow.tell(user.id, "位置无效：纬度应在 -90~90，经度在 -180~180，精度不能为负。")
        raise web.HTTPSeeOther(_home(user))
    system = "wgs84" if str(data.get("coord_system")) == "wgs84" else "gcj02"
    await request.app[CONSOLE].record_incoming(user.id, f"[位置] {lat:.5f}, {lng:.5f}", kind="location")
    await request.app[CHAT].handle(
        LocationShared(
            sender=Sender("console", user.id),
            event_id=uuid.uuid4().hex,
            lat=lat,
            lng=lng,
            accuracy_m=accuracy,
            coord_system=system,
        )
    )
    raise web.HTTPSeeOther(_home(user))


# -- starting a request ----------------------------------------------------------------------
async def templates(request: web.Request) -> web.StreamResponse:
    _, user = await _user(request)
    listed = sorted(request.app[WORKFLOW].startable_templates(), key=lambda t: (t.category, t.key))
    context = {"title": "发起申请", "back": _home(user), "uid": user.id, "templates": listed}
    return _render("console/templates.html", request, context)


def _urgency(raw: str) -> Urgency:
    return Urgency(raw) if raw in {u.value for u in Urgency} else Urgency.NORMAL


async def new_request(request: web.Request) -> web.StreamResponse:
    org, user = await _user(request)
    wf = request.app[WORKFLOW]
    try:
        template = wf.template(request.match_info["key"])
    except ApprovalError:
        raise web.HTTPNotFound(text="no such template") from None
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    top_error = ""
    if request.method == "POST":
        data = await request.post()
        values = form_from_post(template, data)
        try:
            created = await wf.submit(
                template_key=template.key,
                initiator=user.id,
                form=values,
                urgency=_urgency(str(data.get("urgency", "normal"))),
                idempotency_key=str(data.get("form_token") or "") or None,
                channel="console",
            )
            await wf.tell(
                user.id,
                f"已提交「{template.name}」：{created.title}（编号 {created.id}）",
                request_id=created.id,
            )
            raise web.HTTPSeeOther(_home(user))
        except FormInvalid as exc:
            errors = {p.key: p.message for p in exc.fields}
            top_error = "表单有误，请修改标红的项目。"
        except ApprovalError as exc:
            top_error = message_for(exc)
    context = {
        "title": template.name,
        "back": f"{_home(user)}/new",
        "org": org,
        "top_error": top_error,
        "unknown": [(k, v) for k, v in errors.items() if template.field(k) is None],
        "form": [FieldView(f, shown_value(f, values), errors.get(f.key)) for f in template.fields],
        "urgencies": [(u.value, URGENCY_LABEL[u]) for u in Urgency],
        "form_token": uuid.uuid4().hex,
    }
    return _render("console/new_request.html", request, context)


async def request_detail(request: web.Request) -> web.StreamResponse:
    _enabled(request)
    try:
        view = (await request.app[WORKFLOW].get(request.match_info["id"])).model_dump(mode="json")
    except ApprovalError:
        raise web.HTTPNotFound(text="no such request") from None
    viewer = request.query.get("as")
    context = {
        "title": "申请详情",
        "back": f"/console/u/{viewer}" if viewer else "/console",
        "view": view,
        "labels": Labels,
        "tz": request.app[SETTINGS].tz,
    }
    return _render("console/request.html", request, context)


def setup_console(app: web.Application) -> None:
    setup_templates(app)
    app.middlewares.append(admin_gate)
    r = app.router
    r.add_get("/console", index)
    r.add_get("/console/u/{uid}", chat)
    r.add_get("/console/u/{uid}/feed", feed)
    r.add_post("/console/u/{uid}/tap", tap)
    r.add_post("/console/u/{uid}/say", say)
    r.add_post("/console/u/{uid}/location", location)
    r.add_get("/console/u/{uid}/new", templates)
    r.add_get("/console/u/{uid}/new/{key}", new_request)
    r.add_post("/console/u/{uid}/new/{key}", new_request)
    r.add_get("/console/requests/{id}", request_detail)
    r.add_static("/console/static", STATIC_DIR)
