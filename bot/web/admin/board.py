"""The desk's boards: `/admin/overdue` (who holds what past its deadline, for how many working
hours, by person and by department, with 催办 and 督办), `/admin/delegations` (active and
upcoming delegations 代理, ending one early) and `/admin/outbox` (messages waiting, retrying or
dead, by platform; retrying a dead one). Reads and changes go through `services.admin_desk`.
"""

from __future__ import annotations

from urllib.parse import unquote

from aiohttp import web

from approvals.errors import ApprovalError
from bot.keys import SETTINGS
from bot.web.admin.gate import office, render
from bot.web.admin.requests import FLASH, desk, flash_redirect
from bot.web.forms import whole_number
from bot.web.identity import check_csrf, csrf_token
from services.admin_desk import refusal


async def _page(request: web.Request, name: str, title: str, **context: object) -> web.StreamResponse:
    flash = unquote(request.cookies.get(FLASH) or "")
    resp = render(
        request,
        name,
        {
            "title": title,
            "csrf": await csrf_token(request),
            "flash": flash,
            "tz": request.app[SETTINGS].tz,
            **context,
        },
    )
    if flash:
        resp.del_cookie(FLASH, path="/admin/")
    return resp


async def overdue_page(request: web.Request) -> web.StreamResponse:
    me = await office(request)
    board = await desk(request).overdue()
    return await _page(request, "admin/overdue.html", "超期未办", me=me, board=board)


async def delegations_page(request: web.Request) -> web.StreamResponse:
    me = await office(request)
    found = await desk(request).delegations()
    return await _page(request, "admin/delegations.html", "委托代理", me=me, delegations=found)


async def end_delegation(request: web.Request) -> web.StreamResponse:
    await office(request)
    data = await request.post()
    await check_csrf(request, str(data.get("csrf") or ""))
    try:
        text = await desk(request).end_delegation(request.match_info["id"])
    except ApprovalError as exc:
        text = refusal(exc)
    return flash_redirect("/admin/delegations", text)


async def outbox_page(request: web.Request) -> web.StreamResponse:
    me = await office(request)
    health = await desk(request).outbox()
    return await _page(request, "admin/outbox.html", "消息发送", me=me, health=health)


async def retry_message(request: web.Request) -> web.StreamResponse:
    await office(request)
    data = await request.post()
    await check_csrf(request, str(data.get("csrf") or ""))
    outbox_id = whole_number(request.match_info["id"])
    if outbox_id is None:
        raise web.HTTPNotFound(text="没有这条消息")
    done = await desk(request).retry(outbox_id)
    return flash_redirect(
        "/admin/outbox", "已重新排队发送" if done else "这条消息不是发送失败状态，未做改动。"
    )


def setup_boards(app: web.Application) -> None:
    r = app.router
    r.add_get("/admin/overdue", overdue_page)
    r.add_get("/admin/delegations", delegations_page)
    r.add_post("/admin/delegations/{id}/end", end_delegation)
    r.add_get("/admin/outbox", outbox_page)
    r.add_post("/admin/outbox/{id}/retry", retry_message)
