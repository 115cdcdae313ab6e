"""The browser side of identity: the session cookie, the signed-in person, CSRF checks.

Pages call `await viewer(request)` to get the signed-in `User`; without a live session the
visitor is sent to the sign-in page with the path they asked for (`/m/sign-in?next=...`, which
offers the platform sign-in or the demo's person picker). `start_session` sets the cookie after a
sign-in; `check_csrf` guards every state-changing form post.

The cookie is HttpOnly, SameSite=Lax, and Secure when the public URL is https. It holds only the
random session id; what it stands for lives in the key-value store (`services.identity`).
"""

from __future__ import annotations

import hmac
from urllib.parse import quote

from aiohttp import web

from bot.keys import SESSIONS, SETTINGS
from org.model import User
from services.identity import Session

COOKIE = "oabot_session"
SIGN_IN_PATH = "/m/sign-in"
CSRF_FIELD = "csrf"
# Per request: the live session and its person, read once.
VIEWER: web.RequestKey[tuple[Session, User] | None] = web.RequestKey("oabot_viewer")


def sign_in_url(next_path: str) -> str:
    return f"{SIGN_IN_PATH}?next={quote(safe_next(next_path), safe='/')}"


def safe_next(next_path: str | None) -> str:
    """Only a path on this site: never another host (no open redirect)."""
    if not next_path or not next_path.startswith("/") or next_path.startswith("//") or "\\" in next_path:
        return "/m/"
    return next_path


async def current(request: web.Request) -> tuple[Session, User] | None:
    """The live session and its person, or None (read once per request)."""
    if VIEWER in request:
        return request[VIEWER]
    found = await request.app[SESSIONS].get(request.cookies.get(COOKIE))
    request[VIEWER] = found
    return found


async def viewer(request: web.Request) -> User:
    """The signed-in person; redirects an anonymous visitor to the sign-in page."""
    found = await current(request)
    if found is None:
        raise web.HTTPSeeOther(location=sign_in_url(request.path_qs))
    return found[1]


async def start_session(
    request: web.Request, response: web.StreamResponse, user_id: str, *, via: str
) -> Session:
    """Sign `user_id` in: a new server-side session and its cookie on `response`."""
    session = await request.app[SESSIONS].start(user_id, via=via)
    secure = request.app[SETTINGS].public_url.startswith("https://")
    response.set_cookie(
        COOKIE,
        session.id,
        httponly=True,
        secure=secure,
        samesite="Lax",
        path="/",
        max_age=int((session.expires_at - session.created_at).total_seconds()),
    )
    return session


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    session_id = request.cookies.get(COOKIE)
    if session_id:
        await request.app[SESSIONS].end(session_id)
    response.del_cookie(COOKIE, path="/")


async def csrf_token(request: web.Request) -> str:
    found = await current(request)
    return found[0].csrf if found else ""


async def check_csrf(request: web.Request, posted: str | None) -> None:
    """Refuse a state-changing post whose CSRF token is not this session's (403)."""
    found = await current(request)
    if found is None or not posted or not hmac.compare_digest(found[0].csrf, posted):
        raise web.HTTPForbidden(text="这个页面已过期，请刷新后重试。")
