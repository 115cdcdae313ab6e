"""The desk's requests: `/admin/requests` (every request, filtered, sorted and paginated by GET
query parameters, so a view can be bookmarked), `/admin/requests/{id}` (the request as the
workspace shows it, plus the admin's 转交 / 终止 / 催办), and the list's exports
`/admin/requests.xlsx` and `/admin/requests.csv` (the same filters, streamed).

Handlers parse the query (a bad value answers 400 and changes nothing), call
`services.admin_desk` / `services.admin_export`, and render `templates/admin/`. Every post
carries the session's CSRF token.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Mapping
from datetime import date
from typing import Any
from urllib.parse import quote, unquote, urlencode

from aiohttp import web

from approvals.errors import ApprovalError, RequestNotFound
from approvals.model import RequestStatus, TaskStatus, Urgency
from bot.keys import CLOCK, DB, DEADLINES, SETTINGS, WORKFLOW
from bot.web.admin.gate import office, render
from bot.web.console.labels import Labels
from bot.web.forms import whole_number
from bot.web.identity import check_csrf, csrf_token
from bot.web.workspace.pages_request import trail_lines
from notifications.wording import REQUEST_STATUS_LABEL, URGENCY_LABEL
from services.admin_desk import AdminDesk, DeskQuery, DeskRefused, refusal
from services.admin_export import DeskExport, csv_line, write_xlsx
from services.workspace import RequestHidden, Workspace

FLASH = "oabot_desk_flash"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FILTER_KEYS = (
    "q", "template", "status", "urgency", "dept", "initiator", "approver", "stuck", "overdue", "from", "to",
    "sort", "order",
)  # fmt: skip


def desk(request: web.Request) -> AdminDesk:
    settings = request.app[SETTINGS]
    return AdminDesk(
        request.app[WORKFLOW],
        request.app[DB],
        tz=settings.tz,
        now=request.app[CLOCK].now,
        working_time=request.app[DEADLINES].calendar.working_time_between,
        admin_roles=tuple(settings.admin_roles),
    )


def flash_redirect(location: str, text: str) -> web.Response:
    resp = web.Response(status=303, headers={"Location": location})
    resp.set_cookie(FLASH, quote(text), max_age=60, httponly=True, samesite="Lax", path="/admin/")
    return resp


def take_flash(request: web.Request, resp: web.StreamResponse) -> str:
    """The one-time message after an action (and forget it)."""
    text = unquote(request.cookies.get(FLASH) or "")
    if text:
        resp.del_cookie(FLASH, path="/admin/")
    return text


class BadQuery(ValueError):
    pass


def _date(raw: str, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadQuery(f"{name}不是有效日期（例如 2026-11-30）") from None


def _one_of(raw: str, allowed: set[str], name: str) -> str:
    if raw and raw not in allowed:
        raise BadQuery(f"没有这个{name}")
    return raw


def parse_query(params: Mapping[str, str], request: web.Request) -> DeskQuery:
    """The list's query parameters; BadQuery names the first one that is wrong."""
    wf = request.app[WORKFLOW]
    page = whole_number(params.get("page") or "1")
    if page is None or page < 1 or page > 100_000:
        raise BadQuery("页码无效")
    first, last = _date(params.get("from", ""), "开始日期"), _date(params.get("to", ""), "结束日期")
    if first and last and first > last:
        raise BadQuery("开始日期晚于结束日期")
    text = params.get("q", "").strip()
    if len(text) > 100:
        raise BadQuery("搜索词太长（最多 100 字）")
    return DeskQuery(
        text=text,
        template=_one_of(params.get("template", ""), set(wf.d.templates), "模板"),
        status=_one_of(params.get("status", ""), {s.value for s in RequestStatus}, "状态"),
        urgency=_one_of(params.get("urgency", ""), {u.value for u in Urgency}, "紧急程度"),
        department=params.get("dept", ""),
        initiator=params.get("initiator", ""),
        approver=params.get("approver", ""),
        stuck_at=params.get("stuck", ""),
        overdue=params.get("overdue", "") in ("1", "on", "true"),
        date_from=first,
        date_to=last,
        sort=_one_of(
            params.get("sort", ""), {"created", "finished", "title", "status", "urgency", "template"}, "排序"
        )
        or "created",
        descending=params.get("order", "desc") != "asc",
        page=page,
    )


async def _checked_query(request: web.Request) -> DeskQuery:
    query = parse_query(request.query, request)
    org = await request.app[WORKFLOW].org()
    if query.department and query.department not in org.departments:
        raise BadQuery("没有这个部门")
    for name, value in (("发起人", query.initiator), ("审批人", query.approver), ("停留人", query.stuck_at)):
        if value and value not in org.users:
            raise BadQuery(f"没有这个{name}")
    return query


def _bad(request: web.Request, me: Any, message: str) -> web.Response:
    return render(
        request, "admin/refused.html", {"title": "查询条件有误", "message": message, "me": me}, status=400
    )


async def list_page(request: web.Request) -> web.StreamResponse:
    me = await office(request)
    try:
        query = await _checked_query(request)
    except BadQuery as exc:
        return _bad(request, me, str(exc))
    d = desk(request)
    found = await d.requests(query)
    kept = {k: v for k, v in request.query.items() if k in FILTER_KEYS and v}
    context = {
        "title": "申请",
        "me": me,
        "query": query,
        "params": kept,
        "found": found,
        "choices": await d.choices(),
        "qs": urlencode(kept),
        "page_link": lambda n: "?" + urlencode({**kept, "page": n}),
        "sort_link": lambda key: (
            "?"
            + urlencode(
                {**kept, "sort": key, "order": "asc" if query.sort == key and query.descending else "desc"}
            )
        ),
        "tz": request.app[SETTINGS].tz,
    }
    return render(request, "admin/requests.html", context)


def _pending(view: Any) -> list[Any]:
    return [t for s in view.steps for t in s.tasks if t.status == TaskStatus.PENDING]


async def detail_page(request: web.Request) -> web.StreamResponse:
    me = await office(request)
    settings = request.app[SETTINGS]
    ws = Workspace(request.app[WORKFLOW], admin_roles=settings.admin_roles, escalate_to=settings.escalate_to)
    try:
        page = await ws.page(request.match_info["id"], me)
    except RequestNotFound:
        return render(
            request,
            "admin/refused.html",
            {"title": "找不到申请", "message": "这条申请不存在。", "me": me},
            status=404,
        )
    except RequestHidden:  # an org admin sees every request; kept for a changed role mid-session
        return render(
            request,
            "admin/refused.html",
            {"title": "无权查看", "message": "您无权查看这条申请。", "me": me},
            status=403,
        )
    view = page.view
    context = {
        "title": view.title,
        "me": me,
        "page": page,
        "view": view,
        "labels": Labels,
        "status": REQUEST_STATUS_LABEL.get(view.status, "其他"),
        "urgency": URGENCY_LABEL[view.urgency],
        "trail": trail_lines(view, page.org, settings.tz),
        "tz": settings.tz,
        "csrf": await csrf_token(request),
        "pending": _pending(view),
        "people": await ws.people(me.id),
        "running": view.status == RequestStatus.RUNNING,
        "flash": unquote(request.cookies.get(FLASH) or ""),
    }
    resp = render(request, "admin/request.html", context)
    if context["flash"]:
        resp.del_cookie(FLASH, path="/admin/")  # shown once
    return resp


async def act(request: web.Request) -> web.StreamResponse:
    me = await office(request)
    data = await request.post()
    await check_csrf(request, str(data.get("csrf") or ""))
    request_id = request.match_info["id"]
    here = f"/admin/requests/{request_id}"
    d = desk(request)
    what = str(data.get("do") or "")
    reason = str(data.get("reason") or "")
    task_id = str(data.get("task_id") or "")
    version = whole_number(data.get("version"))
    if task_id and not task_id.startswith(request_id + "-"):
        return flash_redirect(here, "这个任务不属于这条申请。")
    try:
        if what == "reassign":
            text = await d.reassign(
                me, task_id=task_id, version=version, target=str(data.get("target") or ""), reason=reason
            )
        elif what == "terminate":
            text = await d.terminate(me, request_id=request_id, reason=reason)
        elif what == "urge":
            text = await d.urge(me, task_id=task_id, version=version, reason=reason)
        else:
            return flash_redirect(here, "这个操作已失效，请刷新后重试。")
    except (ApprovalError, DeskRefused) as exc:
        text = refusal(exc)
    back = str(data.get("back") or "")
    return flash_redirect(back if back in ("/admin/overdue",) else here, text)


# -- exports -------------------------------------------------------------------------------------
async def _export(request: web.Request) -> tuple[Any, DeskExport, Any]:
    me = await office(request)
    query = await _checked_query(request)
    d = desk(request)
    org = await request.app[WORKFLOW].org()
    exporter = DeskExport(
        request.app[DB],
        org=org,
        templates=request.app[WORKFLOW].d.templates,
        tz=request.app[SETTINGS].tz,
        working_time=d.working_time,
        now=d.now,
    )
    where = d.desk_filter(query, org)
    return me, exporter, await exporter.sheet(where, sort=query.sort, descending=query.descending)


def _attachment(name: str) -> str:
    return f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote('申请导出')}-{name}"


async def export_csv(request: web.Request) -> web.StreamResponse:
    try:
        _, _, sheet = await _export(request)
    except BadQuery as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": _attachment("requests.csv"),
        }
    )
    await resp.prepare(request)
    await resp.write(("\ufeff" + csv_line(sheet.columns)).encode())  # BOM: Excel reads UTF-8
    async for batch in sheet.rows():
        await resp.write("".join(csv_line(r) for r in batch).encode())
    await resp.write_eof()
    return resp


async def export_xlsx(request: web.Request) -> web.StreamResponse:
    try:
        _, _, sheet = await _export(request)
    except BadQuery as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    fd, path = tempfile.mkstemp(suffix=".xlsx")
    os.close(fd)
    try:
        await write_xlsx(sheet, path)
        resp = web.StreamResponse(
            headers={"Content-Type": XLSX_TYPE, "Content-Disposition": _attachment("requests.xlsx")}
        )
        resp.content_length = await asyncio.to_thread(os.path.getsize, path)
        await resp.prepare(request)
        fh = await asyncio.to_thread(open, path, "rb")
        try:
            while chunk := await asyncio.to_thread(fh.read, 256 * 1024):
                await resp.write(chunk)
        finally:
            fh.close()
        await resp.write_eof()
        return resp
    finally:
        os.unlink(path)


def setup_request_desk(app: web.Application) -> None:
    r = app.router
    r.add_get("/admin/requests", list_page)
    r.add_get("/admin/requests.xlsx", export_xlsx)
    r.add_get("/admin/requests.csv", export_csv)
    r.add_get("/admin/requests/{id}", detail_page)
    r.add_post("/admin/requests/{id}/act", act)
