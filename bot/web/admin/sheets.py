"""The office's copy of the printable approval sheet 审批单: `GET /admin/requests/{id}/sheet.pdf`.

The desk's gate (`office`) first; then the same sheet as the workspace's (the office holds an
admin role, so the workspace rule lets it open any request), from `bot.web.workspace.sheet_pages`.
"""

from __future__ import annotations

from aiohttp import web

from bot.web.admin.gate import office
from bot.web.workspace.sheet_pages import sheet_pdf


async def admin_sheet(request: web.Request) -> web.StreamResponse:
    me = await office(request)
    return await sheet_pdf(request, me, back=f"/admin/requests/{request.match_info['id']}")


def setup_sheets(app: web.Application) -> None:
    app.router.add_get("/admin/requests/{id}/sheet.pdf", admin_sheet)
