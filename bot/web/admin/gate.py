"""Who may use the desk, and its home page.

`office(request)` is the one check: the signed-in person (platform sign-in, personal link or the
demo's picker) must be an org admin (`org.model.is_org_admin`: active, holding OABOT_ADMIN_ROLE or
OABOT_OFFICE_ROLE). Anyone else gets a 403 page; an anonymous visitor is sent to sign in.

`POST /admin/session` trades an API token with the `admin` scope for a desk session, for offices
that sign in with a token rather than a platform: a personal token signs in its own person; an
integration token names the person in the form field `as`. Either way that person must be an org
admin. The session is the same server-side session the workspace uses.
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot.keys import API_TOKENS, SETTINGS, WORKFLOW
from bot.web.identity import current, safe_next, sign_in_url, start_session
from bot.web.workspace.sign_in import is_org_admin
from org.model import User
from services.api_tokens import Scope, TokenRefused

PAGE_HEADERS = {"Cache-Control": "no-store"}
NOT_OFFICE = "此页面仅对办公室（综合管理部）和系统管理员开放。"


def render(request: web.Request, name: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    """A desk page: `context` must hold `title`; `me` (the signed-in admin) is added by callers."""
    response = aiohttp_jinja2.render_template(name, request, context, status=status)
    response.headers.update(PAGE_HEADERS)
    return response


def refused(request: web.Request, message: str, *, status: int = 403, me: User | None = None) -> web.Response:
    return render(
        request, "admin/refused.html", {"title": "无权访问", "message": message, "me": me}, status=status
    )


async def office(request: web.Request) -> User:
    """The signed-in org admin; raises a redirect to sign in, or a 403 page for anyone else."""
    found = await current(request)
    if found is None:
        raise web.HTTPSeeOther(location=sign_in_url(request.path_qs))
    user = found[1]
    if not is_org_admin(request.app[SETTINGS], user):
        page = aiohttp_jinja2.render_string(
            "admin/refused.html", request, {"title": "无权访问", "message": NOT_OFFICE, "me": user}
        )
        raise web.HTTPForbidden(text=page, content_type="text/html", headers=PAGE_HEADERS)
    return user


async def home(request: web.Request) -> web.StreamResponse:
    me = await office(request)
    return render(request, "admin/home.html", {"title": "办公室工作台", "me": me})


async def token_session(request: web.Request) -> web.StreamResponse:
    """Exchange `Authorization: Bearer <admin token>` for a desk session (303 to `next`)."""
    header = request.headers.get("Authorization", "")
    secret = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    form = await request.post()
    named = form.get("as")
    try:
        principal = await request.app[API_TOKENS].resolve(secret)
    except TokenRefused:
        return refused(request, "令牌无效或已吊销。", status=401)
    if Scope.ADMIN not in principal.scopes:
        return refused(request, "此令牌没有 admin 权限，不能登录办公室工作台。", status=403)
    person = principal.user or (named if isinstance(named, str) and named else None)
    if person is None:
        return refused(request, "集成令牌需在表单字段 as 中指明登录的人员。", status=422)
    org = await request.app[WORKFLOW].org()
    user = org.users.get(person)
    if user is None or not is_org_admin(request.app[SETTINGS], user):
        return refused(request, NOT_OFFICE, status=403)
    nxt = form.get("next")
    response = web.Response(
        status=303, headers={"Location": safe_next(nxt if isinstance(nxt, str) else "/admin/")}
    )
    await start_session(request, response, user.id, via="token")
    return response


def setup_gate(app: web.Application) -> None:
    app.router.add_get("/admin/", home)
    app.router.add_post("/admin/session", token_session)
