"""The printable approval sheet 审批单 from the workspace, and the page its QR code opens.

`GET /m/r/{id}/sheet.pdf`: the PDF of a finished request, for anyone the workspace's rule lets
open the request (403 otherwise, 404 for an unknown request, 409 with words while it is still
running). `GET /verify/{id}/{digest}`: public but minimal: says whether the printed sheet still
matches the request's trail (与当前记录一致 / 不一致) with the request's title and finish date;
a signed-in person who may open the request also sees the facts as they stand now. What a
sheet holds and whether it matches are `services.sheets`' answers; drawing is `reports.sheet`'s.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from approvals.errors import RequestNotFound
from bot.keys import SETTINGS, WORKFLOW
from bot.web.identity import current, viewer
from notifications.messages import message_for
from org.model import User
from reports.sheet import CjkFontMissing
from services.sheets import SheetNotReady, Sheets
from services.workspace import RequestHidden, Workspace

logger = logging.getLogger(__name__)

HIDDEN = "您无权查看这条申请的审批单：只有发起人、审批人、抄送人、他们的代理人和管理员可以查看。"
NOT_FOUND = "这条申请不存在。"
NO_SUCH_SHEET = "没有找到这张审批单对应的已结束申请。"


def sheets(request: web.Request) -> Sheets:
    settings = request.app[SETTINGS]
    ws = Workspace(request.app[WORKFLOW], admin_roles=settings.admin_roles, escalate_to=settings.escalate_to)
    return Sheets(ws)


def _refused(request: web.Request, message: str, status: int, back: str) -> web.StreamResponse:
    context = {"title": "无法打印审批单", "back": back, "message": message}
    return aiohttp_jinja2.render_template("m/request_refused.html", request, context, status=status)


async def sheet_pdf(request: web.Request, user: User, *, back: str) -> web.StreamResponse:
    """The PDF of request `{id}` for `user`, or a page saying why not (shared with the desk)."""
    request_id = request.match_info["id"]
    service = sheets(request)
    try:
        sheet = await service.for_viewer(request_id, user)
        body = await service.pdf(sheet, public_url=request.app[SETTINGS].public_url)
    except RequestHidden:
        return _refused(request, HIDDEN, 403, back)
    except RequestNotFound:
        return _refused(request, NOT_FOUND, 404, back)
    except SheetNotReady as exc:
        return _refused(request, message_for(exc), 409, back)
    except CjkFontMissing as exc:
        logger.error("approval sheet without a CJK font", extra={"request_id": request_id})
        return _refused(request, str(exc), 503, back)
    return web.Response(
        body=body,
        content_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="sheet-{request_id}.pdf"',
            "Cache-Control": "no-store",
        },
    )


async def workspace_sheet(request: web.Request) -> web.StreamResponse:
    user = await viewer(request)
    return await sheet_pdf(request, user, back=f"/m/r/{request.match_info['id']}")


async def verify_page(request: web.Request) -> web.StreamResponse:
    request_id, digest = request.match_info["id"], request.match_info["digest"]
    found = await current(request)
    try:
        result = await sheets(request).verify(request_id, digest, found[1] if found else None)
    except RequestNotFound:
        missing = {"title": "审批单核验", "back": "", "message": NO_SUCH_SHEET}
        return aiohttp_jinja2.render_template("m/request_refused.html", request, missing, status=404)
    context: dict[str, Any] = {"title": "审批单核验", "back": "", "result": result, "request_id": request_id}
    response = aiohttp_jinja2.render_template("m/verify.html", request, context)
    response.headers["Cache-Control"] = "no-store"
    return response


def setup_sheet_pages(app: web.Application) -> None:
    app.router.add_get("/m/r/{id}/sheet.pdf", workspace_sheet)
    app.router.add_get("/verify/{id}/{digest}", verify_page)
