"""The office's desk under `/admin/`: desktop-first pages (usable on a tablet) for org admins and
members of the office role, signed in as themselves.

Every page starts with `await office(request)` (`bot.web.admin.gate`), which sends an anonymous
visitor to the sign-in page and answers 403 to anyone who is not an org admin. Pages are
server-rendered (`bot/web/templates/admin/`, extending `admin/base.html`), load nothing from
outside and call services only. Charts are inline SVG drawn on the server.

Modules add their routes in `setup_admin`: `gate` (the desk's home and the exchange of an admin
API token for a session), `requests` (every request, one request's admin actions, the exports),
`board` (overdue tasks, delegations, the outbox), `stats_pages` (statistics, exports,
publication), `reference_pages` (org chart and its import, templates, calendar), `sheets` (the
printable approval sheet).
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from bot.web.admin.board import setup_boards
from bot.web.admin.gate import setup_gate
from bot.web.admin.reference_pages import setup_reference_pages
from bot.web.admin.requests import setup_request_desk
from bot.web.admin.sheets import setup_sheets
from bot.web.admin.stats_pages import setup_stats_pages
from bot.web.templating import STATIC_DIR, setup_templates

# The side menu of every desk page (`admin/base.html`): address and label.
ADMIN_MENU = (
    ("/admin/requests", "申请"),
    ("/admin/overdue", "超期"),
    ("/admin/stats", "统计"),
    ("/admin/org", "组织"),
    ("/admin/templates", "模板"),
    ("/admin/calendar", "日历"),
    ("/admin/delegations", "委托"),
    ("/admin/outbox", "消息"),
)


def setup_admin(app: web.Application) -> None:
    setup_templates(app)
    aiohttp_jinja2.get_env(app).globals["admin_menu"] = ADMIN_MENU
    app.router.add_static("/admin/static/", STATIC_DIR, append_version=False)
    setup_gate(app)
    setup_request_desk(app)
    setup_boards(app)
    setup_stats_pages(app)
    setup_reference_pages(app)
    setup_sheets(app)
