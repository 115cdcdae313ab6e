"""Signing in from a phone: who is this person, and a session for them.

- `GET /m/sign-in?next=<path>`: inside WeCom (or when only WeCom is connected) a silent redirect to
  WeCom's OAuth2 `snsapi_base`, which comes back to `GET /m/sign-in/wecom?code=&state=`; inside
  DingTalk (or when only DingTalk is connected, with OABOT_DINGTALK_CORP_ID) a page that loads the
  JSAPI (OABOT_DINGTALK_JSAPI_URL), asks for a 免登 auth code and posts it with the page's state to
  `POST /m/sign-in/dingtalk` (JSON in and out). In demo mode (console on, `--demo`) the page is a
  person picker posting to `POST /m/sign-in`. A visitor with a live session goes straight to `next`.
- `GET /m/l/<token>`: a signed personal link from a card: a session for its person, then its path.
- `POST /m/sign-out` (CSRF): ends the session. `GET /`: the workspace, or the console in demo mode.

Every sign-in carries a `state` (`services.sign_in`: signed, single use, 10 minutes, bound to
`next`, which is only ever a path on this site) and the state's nonce in a short cookie, so a
sign-in finishes only in the browser that began it; platform codes are refused a second time.
The person is found by their platform account in the org file; anyone not in it, or inactive,
gets a page saying so. Tokens and codes are never logged (a personal link as its digest).

Org admins (`is_org_admin`): active holders of OABOT_ADMIN_ROLE or OABOT_OFFICE_ROLE.
Pages only: every check of a state, code or link is a service's or a platform module's.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot.keys import CLOCK, DB, HTTP, KV, LINKS, SETTINGS, SIGN_IN, WORKFLOW
from bot.platforms.dingtalk import auth_code
from bot.platforms.dingtalk.client import DingTalkApiError, DingTalkClient
from bot.platforms.wecom import oauth
from bot.platforms.wecom.client import WeComApiError, WeComClient
from bot.settings import Settings
from bot.web.identity import (
    SIGN_IN_PATH,
    check_csrf,
    current,
    end_session,
    safe_next,
    sign_in_url,
    start_session,
)
from bot.web.middleware import error_response, status_for
from bot.web.rate_limits import enforce_sign_in_account
from notifications.messages import message_for
from org.model import User
from org.model import is_org_admin as org_admin
from org.signed_links import LinkRefused, token_digest
from services.sign_in import CodeUsed, SignInGuard, SignInRefused

logger = logging.getLogger(__name__)

WECOM_CALLBACK = "/m/sign-in/wecom"
DINGTALK_CODE = "/m/sign-in/dingtalk"
SIGN_OUT = "/m/sign-out"
STATE_COOKIE = "oabot_sign_in"
PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
NOT_IN_DIRECTORY = "您不在本单位的通讯录中（或已停用），无法登录。如有疑问，请联系管理员。"


@dataclass(frozen=True)
class SignIn:
    """What the sign-in pages use, under `app[SIGN_IN]`: the guard and each connected platform."""

    guard: SignInGuard
    wecom: WeComClient | None
    dingtalk: DingTalkClient | None


def is_org_admin(settings: Settings, user: User) -> bool:
    """The one rule for org admins: active, holding OABOT_ADMIN_ROLE or OABOT_OFFICE_ROLE."""
    return org_admin(user, settings.admin_roles)


def demo_mode(settings: Settings) -> bool:
    return settings.demo and settings.console


# -- rendering --------------------------------------------------------------------------------
def _render(request: web.Request, name: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    response = aiohttp_jinja2.render_template(name, request, context, status=status)
    response.headers.update(PAGE_HEADERS)
    return response


def problem_page(
    request: web.Request, message: str, *, status: int, retry: str | None = None, title: str = "无法登录"
) -> web.Response:
    """A refusal people can read, with what to do next (`retry`: a link to try again)."""
    context = {"title": title, "back": None, "message": message, "retry": retry}
    return _render(request, "m/sign_in_problem.html", context, status=status)


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, **PAGE_HEADERS})


# -- the state's browser binding ----------------------------------------------------------------
def _bind_state(request: web.Request, response: web.StreamResponse, state: str) -> None:
    response.set_cookie(
        STATE_COOKIE,
        SignInGuard.nonce_of(state),
        httponly=True,
        secure=request.app[SETTINGS].public_url.startswith("https://"),
        samesite="Lax",
        path=SIGN_IN_PATH,
        max_age=600,
    )


async def _redeem(request: web.Request, state: str) -> str:
    """The path the sign-in was for; SignInRefused unless this browser began it with this state."""
    guard = request.app[SIGN_IN].guard
    next_path = await guard.redeem(state)
    if request.cookies.get(STATE_COOKIE) != SignInGuard.nonce_of(state):
        logger.warning("sign-in state came back in another browser", extra={"path": next_path})
        raise SignInRefused("sign_in_refused.other_browser")
    return safe_next(next_path)


async def _member(request: web.Request, platform: str, account: str | None) -> User | None:
    """The active person holding this platform account, or None (logged)."""
    org = await request.app[WORKFLOW].org()
    user = org.user_by_account(platform, account) if account else None
    if user is None or not user.active:
        logger.info("sign-in refused: not in the directory", extra={"platform": platform, "account": account})
        return None
    return user


async def _start(request: web.Request, response: web.StreamResponse, user: User, *, via: str) -> None:
    """Replace any session this browser had with one for `user` (within the per-person limit)."""
    await enforce_sign_in_account(request, user.id)
    await end_session(request, response)
    session = await start_session(request, response, user.id, via=via)
    response.del_cookie(STATE_COOKIE, path=SIGN_IN_PATH)
    logger.info("signed in", extra={"user": user.id, "via": via, "session": session.log_id})


def _not_in_directory(request: web.Request) -> web.Response:
    return problem_page(request, NOT_IN_DIRECTORY, status=403, title="不在通讯录中")


# -- GET /m/sign-in ---------------------------------------------------------------------------
def _platform_for(settings: Settings, user_agent: str) -> str | None:
    """Which sign-in this visitor gets: the app they are in, else whichever is connected."""
    dingtalk = settings.dingtalk is not None and bool(settings.dingtalk.corp_id)
    if dingtalk and ("dingtalk" in user_agent.lower() or settings.wecom is None):
        return "dingtalk"
    return "wecom" if settings.wecom is not None else None


async def sign_in_page(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    next_path = safe_next(request.query.get("next"))
    signed_out = request.query.get("out") == "1"
    if not signed_out and await current(request) is not None:
        return _redirect(next_path)
    if demo_mode(settings):
        return await _picker(request, next_path)
    if signed_out:
        return _render(request, "m/sign_in.html", _page("signed_out", next_path))
    platform = _platform_for(settings, request.headers.get("User-Agent", ""))
    if platform is None:
        return _render(request, "m/sign_in.html", _page("none", next_path))
    try:
        state = await request.app[SIGN_IN].guard.new_state(next_path)
    except SignInRefused as exc:
        return problem_page(request, message_for(exc), status=status_for(exc), retry=sign_in_url(next_path))
    if platform == "wecom" and settings.wecom is not None:
        redirect_uri = f"{settings.public_url.rstrip('/')}{WECOM_CALLBACK}"
        response = _redirect(oauth.authorize_url(settings.wecom, redirect_uri=redirect_uri, state=state))
    else:
        assert settings.dingtalk is not None
        context = _page("dingtalk", next_path) | {
            "state": state,
            "corp_id": settings.dingtalk.corp_id,
            "client_id": settings.dingtalk.app_key,
            "jsapi_url": settings.dingtalk.jsapi_url,
            "post_to": DINGTALK_CODE,
        }
        response = _render(request, "m/sign_in.html", context)
    _bind_state(request, response, state)
    return response


def _page(kind: str, next_path: str) -> dict[str, Any]:
    return {"title": "登录", "back": None, "kind": kind, "next": next_path, "retry": sign_in_url(next_path)}


@dataclass(frozen=True)
class Person:
    """A line of the demo's person picker."""

    id: str
    name: str
    title: str
    department: str


async def _picker(request: web.Request, next_path: str) -> web.Response:
    org = await request.app[WORKFLOW].org()
    people = [
        Person(u.id, u.name, u.title, dept.name if (dept := org.department(u.department)) else "")
        for u in org.users.values()
        if u.active
    ]
    context = _page("picker", next_path) | {"title": f"{org.name} · 选择身份", "people": people}
    return _render(request, "m/sign_in.html", context)


async def pick_person(request: web.Request) -> web.StreamResponse:
    """POST /m/sign-in: the demo's picker signs the chosen person in (demo mode only)."""
    if not demo_mode(request.app[SETTINGS]):
        raise web.HTTPNotFound()
    data = await request.post()
    org = await request.app[WORKFLOW].org()
    user = org.user(str(data.get("user", "")))
    if user is None or not user.active:
        return _not_in_directory(request)
    response = _redirect(safe_next(str(data.get("next", ""))))
    await _start(request, response, user, via="demo")
    return response


# -- the platforms' answers -------------------------------------------------------------------
def _refusal_status(exc: SignInRefused) -> int:
    return 401 if isinstance(exc, CodeUsed) else status_for(exc)


async def wecom_callback(request: web.Request) -> web.StreamResponse:
    """GET /m/sign-in/wecom?code=&state=: WeCom identified the visitor; exchange the code once."""
    client = request.app[SIGN_IN].wecom
    if client is None:
        raise web.HTTPNotFound()
    code = request.query.get("code", "")
    try:
        next_path = await _redeem(request, request.query.get("state", ""))
        if not code:
            return problem_page(
                request, "企业微信没有返回登录码，请重新打开页面。", status=401, retry=sign_in_url(next_path)
            )
        await request.app[SIGN_IN].guard.first_use("wecom", code)
        account = await oauth.user_id_for_code(client, code)
    except SignInRefused as exc:
        return problem_page(request, message_for(exc), status=_refusal_status(exc), retry=sign_in_url("/m/"))
    except oauth.CodeRefused:
        return problem_page(
            request, "登录码无效或已过期，请重新打开页面。", status=401, retry=sign_in_url("/m/")
        )
    except WeComApiError as exc:
        logger.warning("wecom sign-in: code exchange failed", extra={"error": str(exc)})
        return problem_page(
            request, "暂时无法向企业微信确认您的身份，请稍后重试。", status=503, retry=sign_in_url("/m/")
        )
    user = await _member(request, "wecom", account)
    if user is None:
        return _not_in_directory(request)
    response = _redirect(next_path)
    await _start(request, response, user, via="wecom")
    return response


async def dingtalk_code(request: web.Request) -> web.StreamResponse:
    """POST /m/sign-in/dingtalk {"code", "state"}: the 免登 code; answers {"next"} or a JSON refusal."""
    client = request.app[SIGN_IN].dingtalk
    if client is None:
        raise web.HTTPNotFound()
    try:
        body = await request.json()
    except ValueError:
        body = None
    code = str(body.get("code") or "") if isinstance(body, dict) else ""
    state = str(body.get("state") or "") if isinstance(body, dict) else ""
    if not code:
        return error_response(request, 401, "sign_in_code_missing", "没有收到钉钉的登录码，请重新打开页面。")
    try:
        next_path = await _redeem(request, state)
        await request.app[SIGN_IN].guard.first_use("dingtalk", code)
        account = await auth_code.user_id_for_code(client, code)
    except SignInRefused as exc:
        return error_response(request, _refusal_status(exc), exc.code, message_for(exc))
    except auth_code.CodeRefused:
        return error_response(request, 401, "sign_in_code_refused", "登录码无效或已过期，请重新打开页面。")
    except DingTalkApiError as exc:
        logger.warning("dingtalk sign-in: code exchange failed", extra={"error": str(exc)})
        return error_response(
            request, 503, "platform_unavailable", "暂时无法向钉钉确认您的身份，请稍后重试。"
        )
    user = await _member(request, "dingtalk", account)
    if user is None:
        return error_response(request, 403, "not_in_directory", NOT_IN_DIRECTORY)
    response = web.json_response({"next": next_path}, headers={"Cache-Control": "no-store"})
    await _start(request, response, user, via="dingtalk")
    return response


# -- personal links, sign-out, the root -------------------------------------------------------
async def personal_link(request: web.Request) -> web.StreamResponse:
    """GET /m/l/<token>: sign the link's person in and open its path."""
    token = request.match_info["token"]
    digest = token_digest(token)
    try:
        target = await request.app[LINKS].read(token)
    except LinkRefused as exc:
        logger.info("personal link refused", extra={"token_digest": digest, "reason": exc.code})
        # The message says what to do: open the newest card again (or sign in in the app).
        return problem_page(request, message_for(exc), status=status_for(exc), title="链接不能用了")
    next_path = safe_next(target.path)
    found = await current(request)
    if found is not None and found[1].id == target.user:
        return _redirect(next_path)
    org = await request.app[WORKFLOW].org()
    user = org.user(target.user)
    if user is None or not user.active:
        logger.info("personal link of someone inactive", extra={"token_digest": digest, "user": target.user})
        return _not_in_directory(request)
    logger.info("personal link opened", extra={"token_digest": digest, "user": user.id})
    response = _redirect(next_path)
    await _start(request, response, user, via="link")
    return response


async def sign_out(request: web.Request) -> web.StreamResponse:
    """POST /m/sign-out (csrf): end the session; the sign-in page then says so."""
    await check_csrf(request, str((await request.post()).get("csrf", "")))
    response = _redirect(f"{SIGN_IN_PATH}?out=1")
    await end_session(request, response)
    return response


async def root(request: web.Request) -> web.StreamResponse:
    return _redirect("/console" if demo_mode(request.app[SETTINGS]) else "/m/")


# -- wiring -----------------------------------------------------------------------------------
async def sign_in_ctx(app: web.Application) -> AsyncIterator[None]:
    """The guard and platform clients, once the store, database and HTTP client are open."""
    settings = app[SETTINGS]
    dingtalk = settings.dingtalk
    app[SIGN_IN] = SignIn(
        guard=SignInGuard(app[KV], app[DB], secret=settings.checkins.link_secret, now=app[CLOCK].now),
        wecom=WeComClient(app[HTTP], settings.wecom, app[KV]) if settings.wecom is not None else None,
        dingtalk=DingTalkClient(app[HTTP], app[KV], dingtalk)
        if dingtalk is not None and dingtalk.corp_id
        else None,
    )
    yield


def setup_sign_in(app: web.Application) -> None:
    app.cleanup_ctx.append(sign_in_ctx)
    r = app.router
    r.add_get("/", root)
    r.add_get(SIGN_IN_PATH, sign_in_page)
    r.add_post(SIGN_IN_PATH, pick_person)
    r.add_get(WECOM_CALLBACK, wecom_callback)
    r.add_post(DINGTALK_CODE, dingtalk_code)
    r.add_post(SIGN_OUT, sign_out)
    r.add_get("/m/l/{token}", personal_link)
