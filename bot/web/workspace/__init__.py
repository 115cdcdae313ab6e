"""The phone workspace under `/m/`: the pages a person uses from a card or the app's menu.

Every page is server-rendered (Jinja2, autoescaped, `bot/web/templates/m/`), works at 360-414 px
wide and loads nothing from outside. Every page knows its viewer through `bot.web.identity.viewer`
(a session from a platform sign-in, a signed personal link, or the demo's person picker); every
state-changing form carries the session's CSRF token. Pages call services only.

Modules add their routes in `setup_workspace`: `pages_request` (a request, every action on it,
starting one), `pages_supervise` (a manager's 督办 page: 催办, 转交 with a person picker,
代为处理), `sheet_pages` (the printable approval sheet and its /verify page), `pages_lists` (待我处理 / 我已处理 / 我发起的 / 抄送我的, batch approve), `sign_in`
(the sign-in page and the platform sign-ins), `pages_notices` (通知: my notices, a notice, compose,
the author's progress), `pages_notice_responses` (a meeting's 回执 with 委派, a poll's ballot and
results chart, the organiser's attendance list and CSV).
"""

from __future__ import annotations

from aiohttp import web

from bot.web.templating import STATIC_DIR, setup_templates
from bot.web.workspace.pages_lists import setup_lists
from bot.web.workspace.pages_notice_responses import setup_notice_response_pages
from bot.web.workspace.pages_notices import setup_notice_pages
from bot.web.workspace.pages_request import setup_request_pages
from bot.web.workspace.pages_supervise import setup_supervise_pages
from bot.web.workspace.sheet_pages import setup_sheet_pages
from bot.web.workspace.sign_in import setup_sign_in


def setup_workspace(app: web.Application) -> None:
    setup_templates(app)
    app.router.add_static("/m/static/", STATIC_DIR, append_version=False)
    setup_lists(app)
    setup_request_pages(app)
    setup_supervise_pages(app)
    setup_sign_in(app)
    setup_sheet_pages(app)
    setup_notice_pages(app)
    setup_notice_response_pages(app)
