"""The workspace's request pages: `/m/r/{id}` (a request laid out for a decision, every action
the viewer may take, resubmitting after a return) and `/m/new` (start a request from a template,
with a live route preview).

Handlers read the post, check the session's CSRF token, call `services.workspace.Workspace` or
the workflow, and render a template from `bot/web/templates/m/`. Who may open a request and what
they may do are the service's and the engine's answers, never decided here; after an action the
page redirects back to the request with a one-time message (a short-lived cookie).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from itertools import groupby
from typing import Any
from urllib.parse import quote, unquote

import aiohttp_jinja2
from aiohttp import web

from approvals.definitions import Template, WithdrawPolicy
from approvals.engine import Action
from approvals.errors import ApprovalError, RequestNotFound
from approvals.form_errors import FormInvalid
from approvals.model import ActionKind, Channel, SignerPosition, Urgency
from bot.keys import SETTINGS, WORKFLOW
from bot.web.console.labels import SYSTEM_ACTOR, Labels
from bot.web.forms import FieldView, form_from_post, whole_number
from bot.web.identity import check_csrf, csrf_token, current, viewer
from notifications.messages import message_for
from notifications.wording import URGENCY_LABEL, status_label, via_label
from org.model import Org, User
from services.approval_views import RequestView, TrailEventView
from services.workspace import RequestHidden, Workspace

FLASH = "oabot_flash"
POSITION_LABEL = {
    SignerPosition.BEFORE: "前加签（新加的人先处理）",
    SignerPosition.AFTER: "后加签（我同意后再由新加的人处理）",
    SignerPosition.ALONGSIDE: "并加签（与我同时处理）",
}
POSITION_SHORT = {"before": "前加签", "after": "后加签", "alongside": "并加签"}
CHANNELS = {c.value for c in Channel}


def _workspace(request: web.Request) -> Workspace:
    settings = request.app[SETTINGS]
    return Workspace(
        request.app[WORKFLOW], admin_roles=settings.admin_roles, escalate_to=settings.escalate_to
    )


def _redirect(location: str, flash: str | None = None) -> web.Response:
    resp = web.Response(status=303, headers={"Location": location})
    if flash:
        resp.set_cookie(FLASH, quote(flash), max_age=60, httponly=True, samesite="Lax", path="/m/")
    return resp


# -- the trail in words -------------------------------------------------------------------------
@dataclass(frozen=True)
class TrailLine:
    at: str
    who: str
    what: str
    comment: str


# Events whose line names the person they went to (转交：王芳, 督办：李娜).
_NAMES_WHO = (
    "task_assigned", "transferred", "auto_transferred", "urged", "delegated", "taken_over", "supervised",
    "escalated", "handed_over", "delegation_created", "delegation_cancelled",
)  # fmt: skip
# Events whose line shows the document number they gave or voided (登记文号：办发〔2026〕3号).
_SHOWS_NUMBER = ("doc_number_assigned", "doc_number_voided")


def _what(e: TrailEventView, view: RequestView, org: Org) -> str:
    mark = "管理员" if e.data.get("as_admin") else "督办" if e.data.get("as_manager") else ""
    label = mark + Labels.trail_kind(e.kind)
    step = (
        view.steps[e.step_index].name if e.step_index is not None and e.step_index < len(view.steps) else ""
    )
    after = org.display_name(e.after) if e.after else ""
    if e.kind in ("step_started", "step_approved", "step_skipped") and step:
        return f"{label}：{step}"
    if e.kind in _NAMES_WHO and after:
        return f"{label}：{after}"
    if e.kind in _SHOWS_NUMBER and e.after:
        return f"{label}：{e.after}"
    if e.kind == "signer_added":
        return f"{POSITION_SHORT.get(str(e.data.get('position')), label)}：{after}"
    if e.kind == "returned" and e.data.get("target"):
        return f"{label}到{e.data['target']}"
    if e.kind in ("approved", "auto_approved") and e.data.get("label"):
        return str(e.data["label"]) + (f"（{step}）" if step else "")
    return label + (f"（{step}）" if step and e.kind in ("rejected", "acknowledged") else "")


def _repeats(e: TrailEventView, before: TrailEventView | None) -> bool:
    """A request's status change caused by the action just before it (驳回 then 已驳回, 退回到发起人
    then 已退回): same person, same words, so the page shows the action only."""
    return (
        before is not None
        and e.kind.startswith("request_")
        and e.actor == before.actor
        and e.comment == before.comment
        and e.actor != SYSTEM_ACTOR
    )


def trail_lines(view: RequestView, org: Org, tz: Any) -> list[TrailLine]:
    lines = []
    before: TrailEventView | None = None
    for e in view.trail or []:
        if _repeats(e, before):
            continue
        before = e
        who = Labels.actor(e.model_dump())
        if e.acting_for:
            who += f"（代 {org.display_name(e.acting_for)}）"
        if via := via_label(e.data.get("via")):
            who += f"（{via}）"
        at = e.at.astimezone(tz).strftime("%m-%d %H:%M")
        lines.append(TrailLine(at, who, _what(e, view, org), e.comment or ""))
    return lines


# -- /m/r/{id} ----------------------------------------------------------------------------------
def _form_views(template: Template, values: dict[str, Any]) -> list[FieldView]:
    return [FieldView(f, values.get(f.key, ""), None) for f in template.fields]


async def request_page(request: web.Request) -> web.StreamResponse:
    user = await viewer(request)
    request_id = request.match_info["id"]
    ws = _workspace(request)
    try:
        page = await ws.page(request_id, user)
    except RequestHidden:
        return _refused(
            request, "您无权查看这条申请：只有发起人、审批人、抄送人、他们的代理人和管理员可以查看。"
        )
    except RequestNotFound:
        return _refused(request, "这条申请不存在。", status=404)
    via = (await _channel(request)).value
    await ws.record_open(page, user, via if via != Channel.API else "page")
    tz = request.app[SETTINGS].tz
    view = page.view
    recall = page.template.policies.withdraw == WithdrawPolicy.UNTIL_OPENED
    context = {
        "title": page.template.name,  # the header stays one line; the page shows the full title
        "back": "/m/",
        "page": page,
        "view": view,
        "labels": Labels,
        "status": status_label(view.status, page.template),
        "urgency": URGENCY_LABEL[view.urgency],
        "doc_number": view.doc_number,
        "withdraw_label": "收回" if recall else "撤销",
        "trail": trail_lines(view, page.org, tz),
        "tz": tz,
        "csrf": await csrf_token(request),
        "people": await ws.people(user.id),
        "positions": list(POSITION_LABEL.items()),
        "A": ActionKind,
        "form": _form_views(page.template, view.form),
        "org": page.org,
        "flash": unquote(request.cookies.get(FLASH) or ""),
    }
    resp = aiohttp_jinja2.render_template("m/request.html", request, context)
    if context["flash"]:
        resp.del_cookie(FLASH, path="/m/")  # shown once
    return resp


def _refused(
    request: web.Request, message: str, *, status: int = 403, back: str = "/m/"
) -> web.StreamResponse:
    context = {"title": "无法查看", "back": back, "message": message}
    return aiohttp_jinja2.render_template("m/request_refused.html", request, context, status=status)


def _int(raw: Any) -> int | None:
    return whole_number(raw)


async def _channel(request: web.Request) -> Channel:
    found = await current(request)
    via = found[0].via if found else ""
    return Channel(via) if via in CHANNELS else Channel.API


async def act(request: web.Request) -> web.StreamResponse:
    user = await viewer(request)
    data = await request.post()
    await check_csrf(request, str(data.get("csrf") or ""))
    request_id = request.match_info["id"]
    here = f"/m/r/{request_id}"
    try:
        kind = ActionKind(str(data.get("action", "")))
    except ValueError:
        return _redirect(here, "这个操作已失效，请刷新后重试。")
    position = str(data.get("position") or "")
    ws = _workspace(request)
    form = None
    if kind == ActionKind.RESUBMIT:
        try:
            form = form_from_post(ws.wf.template((await ws.wf.load(request_id)).template_key), data)
        except ApprovalError as exc:
            return _redirect(here, message_for(exc))
    action = Action(
        kind=kind,
        actor=user.id,
        task_id=str(data.get("task_id") or "") or None,
        version=_int(data.get("version")),
        comment=str(data.get("comment") or "").strip() or None,
        target=str(data.get("target") or "") or None,
        targets=tuple(str(v) for v in data.getall("targets", []) if str(v).strip()),
        position=SignerPosition(position) if position in POSITION_SHORT else None,
        form=form,
        channel=await _channel(request),
    )
    try:
        message = await ws.act(request_id, user, action)
    except RequestHidden:
        return _refused(request, "您无权处理这条申请。")
    except RequestNotFound:
        return _refused(request, "这条申请不存在。", status=404)
    return _redirect(here, message)


# -- /m/new -------------------------------------------------------------------------------------
async def template_list(request: web.Request) -> web.StreamResponse:
    await viewer(request)
    listed = sorted(request.app[WORKFLOW].startable_templates(), key=lambda t: (t.category or "其他", t.name))
    groups = [(cat, list(ts)) for cat, ts in groupby(listed, key=lambda t: t.category or "其他")]
    context = {"title": "发起申请", "back": "/m/", "groups": groups}
    return aiohttp_jinja2.render_template("m/new.html", request, context)


@dataclass(frozen=True)
class Preview:
    """The route a submission would take, in words, or why it cannot be shown yet."""

    steps: list[dict[str, Any]]
    problem: str


async def _preview(request: web.Request, template: Template, user: User, form: dict[str, Any]) -> Preview:
    try:
        found = await request.app[WORKFLOW].preview(template_key=template.key, initiator=user.id, form=form)
    except FormInvalid as exc:
        return Preview(
            [], "填写完整后显示流程：" + "；".join(f"{p.label or p.key}{p.message}" for p in exc.fields)
        )
    except ApprovalError as exc:
        return Preview([], message_for(exc))
    org = await request.app[WORKFLOW].org()
    steps = [{**s, "auto_names": [org.display_name(p) for p in s["auto_approved"]]} for s in found["steps"]]
    return Preview(steps, "")


def _template(request: web.Request) -> Template | None:
    try:
        return request.app[WORKFLOW].template(request.match_info["key"])
    except ApprovalError:
        return None


NO_TEMPLATE = "没有这个申请模板（可能已停用或链接有误），请在「发起申请」中重新选择。"


def _urgency(raw: str) -> Urgency:
    return Urgency(raw) if raw in {u.value for u in Urgency} else Urgency.NORMAL


async def new_form(request: web.Request) -> web.StreamResponse:
    user = await viewer(request)
    template = _template(request)
    if template is None:
        return _refused(request, NO_TEMPLATE, status=404, back="/m/new")
    wf = request.app[WORKFLOW]
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    top_error = ""
    preview: Preview | None = None
    urgency = Urgency.NORMAL
    if request.method == "POST":
        data = await request.post()
        await check_csrf(request, str(data.get("csrf") or ""))
        values = form_from_post(template, data)
        urgency = _urgency(str(data.get("urgency", "")))
        if data.get("do") == "preview":
            preview = await _preview(request, template, user, values)
        else:
            try:
                created = await wf.submit(
                    template_key=template.key,
                    initiator=user.id,
                    form=values,
                    urgency=urgency,
                    idempotency_key=str(data.get("form_token") or "") or None,
                    channel=(await _channel(request)).value,
                )
                return _redirect(f"/m/r/{created.id}", f"已提交「{template.name}」")
            except FormInvalid as exc:
                errors = {p.key: p.message for p in exc.fields}
                top_error = "表单有误，请修改标红的项目。"
            except ApprovalError as exc:
                top_error = message_for(exc)
    context = {
        "title": template.name,
        "back": "/m/new",
        "template": template,
        "org": await wf.org(),
        "top_error": top_error,
        "form": [
            FieldView(f, values.get(f.key, _default(f.default)), errors.get(f.key)) for f in template.fields
        ],
        "urgencies": [(u.value, URGENCY_LABEL[u]) for u in Urgency],
        "urgency": urgency.value,
        "form_token": uuid.uuid4().hex,
        "csrf": await csrf_token(request),
        "preview": preview,
    }
    return aiohttp_jinja2.render_template("m/new_form.html", request, context)


def _default(default: Any) -> Any:
    # "$initiator..." defaults are filled in by the engine, not shown as text
    return "" if default is None or str(default).startswith("$") else default


async def new_preview(request: web.Request) -> web.StreamResponse:
    """The route preview fragment the form's script asks for as the person types."""
    user = await viewer(request)
    template = _template(request)
    if template is None:
        return _refused(request, NO_TEMPLATE, status=404, back="/m/new")
    data = await request.post()
    await check_csrf(request, str(data.get("csrf") or ""))
    preview = await _preview(request, template, user, form_from_post(template, data))
    return aiohttp_jinja2.render_template("m/new_preview.html", request, {"preview": preview})


def setup_request_pages(app: web.Application) -> None:
    r = app.router
    r.add_get("/m/r/{id}", request_page)
    r.add_post("/m/r/{id}/act", act)
    r.add_get("/m/new", template_list)
    r.add_get("/m/new/{key}", new_form)
    r.add_post("/m/new/{key}", new_form)
    r.add_post("/m/new/{key}/preview", new_preview)
