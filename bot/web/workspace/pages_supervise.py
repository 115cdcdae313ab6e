"""The 督办 pages: `/m/s/{task}/{version}`, what a manager does about one late task of their team,
and `/m/s/`, every overdue task of their team with the same actions (the managers' daily overdue
summary links there).

The 督办 card's 转交 button (and each item of the managers' overdue summary) opens it through the
manager's own link. It shows the task, and offers 催办, 转交 (a person picker over the manager's
team), 代为处理 when the template allows it, and 查看. A card that is out of date (the task was
handled or changed since) shows only that. Handlers check the CSRF token and call
`services.supervision.Supervision`; who may do what is the engine's answer, never decided here.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

import aiohttp_jinja2
from aiohttp import web

from approvals.engine import SupervisorMove
from approvals.errors import ApprovalError, NotSupervisor, RequestNotFound, TaskNotFound
from bot.keys import SUPERVISION
from bot.web.identity import check_csrf, csrf_token, viewer
from bot.web.workspace.pages_request import FLASH, _channel
from notifications.messages import message_for
from services.supervision import SupervisedTask

FLASH_BAD = "oabot_flash_bad"
LIST = "/m/s/"  # every overdue task of the viewer's team
_MOVES = {m.value: m for m in SupervisorMove}
_URGENCY_CODE = {"一般": "normal", "重要": "important", "紧急": "urgent"}


def _refused(request: web.Request, message: str, *, status: int) -> web.StreamResponse:
    context = {"title": "督办", "back": "/m/", "message": message}
    return aiohttp_jinja2.render_template("m/request_refused.html", request, context, status=status)


def _where(request: web.Request) -> tuple[str, int] | None:
    try:
        return request.match_info["task"], int(request.match_info["version"])
    except ValueError:
        return None


def _back(location: str, flash: str, *, bad: bool) -> web.Response:
    resp = web.Response(status=303, headers={"Location": location})
    resp.set_cookie(FLASH, quote(flash), max_age=60, httponly=True, samesite="Lax", path="/m/")
    if bad:
        resp.set_cookie(FLASH_BAD, "1", max_age=60, httponly=True, samesite="Lax", path="/m/")
    return resp


async def _task(request: web.Request) -> SupervisedTask | web.StreamResponse:
    user = await viewer(request)
    where = _where(request)
    if where is None:
        return _refused(request, "这个督办链接不完整，请从消息卡片重新打开。", status=404)
    try:
        return await request.app[SUPERVISION].task(user, *where)
    except NotSupervisor as exc:
        return _refused(request, message_for(exc), status=403)
    except (TaskNotFound, RequestNotFound):
        return _refused(request, "这条待办不存在。", status=404)


async def supervise_page(request: web.Request) -> web.StreamResponse:
    found = await _task(request)
    if not isinstance(found, SupervisedTask):
        return found
    flash = unquote(request.cookies.get(FLASH) or "")
    context = {
        "title": "督办",
        "back": "/m/",
        "t": found,
        "here": request.path,
        "urgency_code": _URGENCY_CODE.get(found.urgency, "normal"),
        "csrf": await csrf_token(request),
        "flash": flash,
        "flash_bad": bool(request.cookies.get(FLASH_BAD)),
        "open_reassign": request.query.get("do") == "transfer" or bool(found.team and not flash),
    }
    resp = aiohttp_jinja2.render_template("m/supervise.html", request, context)
    if flash:
        resp.del_cookie(FLASH, path="/m/")
        resp.del_cookie(FLASH_BAD, path="/m/")
    return resp


async def supervise_act(request: web.Request) -> web.StreamResponse:
    user = await viewer(request)
    data = await request.post()
    await check_csrf(request, str(data.get("csrf") or ""))
    found = await _task(request)
    if not isinstance(found, SupervisedTask):
        return found
    here = LIST if data.get("back") == "list" else request.path
    move = _MOVES.get(str(data.get("do") or ""))
    if move is None:
        return _back(here, "这个操作已失效，请刷新后重试。", bad=True)
    target = str(data.get("target") or "").strip() or None
    if move == SupervisorMove.TRANSFER and target is None:
        return _back(here, "请先选择要转交的人。", bad=True)
    try:
        done = await request.app[SUPERVISION].act(
            user,
            found.task_id,
            found.version,
            move,
            target=target,
            comment=str(data.get("comment") or "").strip()[:500] or None,
            channel=await _channel(request),
        )
    except ApprovalError as exc:
        return _back(here, message_for(exc), bad=True)
    return _back(LIST if here == LIST else f"/m/r/{found.request_id}", done, bad=False)


async def supervise_list(request: web.Request) -> web.StreamResponse:
    user = await viewer(request)
    items = await request.app[SUPERVISION].overdue(user)
    flash = unquote(request.cookies.get(FLASH) or "")
    context = {
        "title": "督办",
        "back": "/m/",
        "items": items,
        "csrf": await csrf_token(request),
        "flash": flash,
        "flash_bad": bool(request.cookies.get(FLASH_BAD)),
    }
    resp = aiohttp_jinja2.render_template("m/supervise_list.html", request, context)
    if flash:
        resp.del_cookie(FLASH, path="/m/")
        resp.del_cookie(FLASH_BAD, path="/m/")
    return resp


def setup_supervise_pages(app: web.Application) -> None:
    app.router.add_get("/m/s/", supervise_list)
    app.router.add_get("/m/s/{task}/{version}", supervise_page)
    app.router.add_post("/m/s/{task}/{version}", supervise_act)
