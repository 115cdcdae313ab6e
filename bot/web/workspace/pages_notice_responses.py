"""The meeting and poll pages of a notice: `/m/n/{id}/rsvp` (回执: 参加 / 不参加 with a reason /
请假 / 委派他人参加 with a person picker), `/m/n/{id}/poll` (the ballot; after voting, the
results with their SVG charts inline) and `/m/n/{id}/attendance` (+ `.csv`, the organiser's
参会名单).

Handlers read the post, check the session's CSRF token, call
`services.notice_responses.NoticeResponses` and render a template from `bot/web/templates/m/`.
Who may answer, vote, see results or the attendance list is the service's answer, never decided
here; a refusal is shown in words (a bad answer re-shows the form with what was typed and changes
nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiDictProxy

from bot.keys import NOTICE_RESPONSES
from bot.web.identity import check_csrf, csrf_token, current, viewer
from bot.web.workspace.pages_request import FLASH
from notices.errors import LockedOut, PasswordRequired, WrongPassword
from notices.meetings import RsvpRefused
from notices.model import RsvpAnswer
from notices.polls import Answer
from notifications.meeting_wording import RSVP_LABEL
from notifications.messages import message_for
from org.errors import Category, DomainError
from services.notice_responses import NoticeResponses, PollPage

STATUS = {Category.NOT_FOUND: 404, Category.FORBIDDEN: 403, Category.GONE: 410}
ANSWERS = {a.value: a for a in RsvpAnswer}


def _service(request: web.Request) -> NoticeResponses:
    return request.app[NOTICE_RESPONSES]


def _id(request: web.Request) -> str:
    return request.match_info["id"]


async def _channel(request: web.Request) -> str:
    found = await current(request)
    return (found[0].via if found else "") or "web"


def _refused(request: web.Request, exc: DomainError) -> web.StreamResponse:
    context = {"title": "无法查看", "back": "/m/", "message": message_for(exc)}
    status = STATUS.get(exc.category, 409)
    return aiohttp_jinja2.render_template("m/request_refused.html", request, context, status=status)


def _redirect(location: str, flash: str) -> web.Response:
    resp = web.Response(status=303, headers={"Location": location})
    resp.set_cookie(FLASH, quote(flash), max_age=60, httponly=True, samesite="Lax", path="/m/")
    return resp


def _flash(request: web.Request, resp: web.StreamResponse, context: dict[str, Any]) -> web.StreamResponse:
    if context.get("flash"):
        resp.del_cookie(FLASH, path="/m/")  # shown once
    return resp


PASSWORD_ERRORS = (PasswordRequired, WrongPassword, LockedOut)


def _password_form(request: web.Request, exc: DomainError, csrf: str) -> web.StreamResponse:
    """The access password prompt of a protected meeting or poll (asked again with each answer)."""
    context = {
        "title": "请输入访问密码",
        "back": f"/m/n/{_id(request)}",
        "action": request.path,
        "message": message_for(exc),
        "asked": not isinstance(exc, PasswordRequired),
        "csrf": csrf,
    }
    return aiohttp_jinja2.render_template("m/notice_answer_password.html", request, context)


async def _posted(request: web.Request) -> MultiDictProxy[Any] | None:
    """The post (its CSRF token checked), or None for a GET."""
    if request.method != "POST":
        return None
    data = await request.post()
    await check_csrf(request, str(data.get("csrf") or ""))
    return data


def _done(request: web.Request, password: str | None, flash: str) -> web.StreamResponse | None:
    """After an answer: back to the page (a redirect, so a reload does not post again), except
    on a protected item, whose page needs the password again and is shown at once."""
    return None if password else _redirect(request.path, flash)


# -- /m/n/{id}/rsvp -------------------------------------------------------------------------------
@dataclass
class Answered:
    """What answering did: the confirmation, or the refusal in words with what was typed."""

    flash: str = ""
    error: str = ""
    typed: dict[str, str] = field(default_factory=dict)
    moved: web.StreamResponse | None = None


async def _answer_rsvp(
    request: web.Request, user_id: str, data: MultiDictProxy[Any], password: str | None, channel: str
) -> Answered:
    """Record the posted 回执. A refusal about the answer itself comes back as words (the form is
    shown again); one about the notice or the password is raised."""
    typed = {k: str(data.get(k) or "") for k in ("answer", "reason", "delegate")}
    answer = ANSWERS.get(typed["answer"])
    try:
        if answer is None:
            raise RsvpRefused("rsvp_refused.unknown_answer")
        flash = await _service(request).rsvp(
            user_id,
            _id(request),
            answer,
            reason=typed["reason"] or None,
            delegate=typed["delegate"] or None,
            channel=channel,
            password=password,
        )
    except DomainError as exc:
        if exc.category in STATUS or isinstance(exc, PASSWORD_ERRORS):
            raise
        return Answered(error=message_for(exc), typed=typed)
    return Answered(flash=flash, moved=_done(request, password, flash))


async def rsvp_page(request: web.Request) -> web.StreamResponse:
    user = await viewer(request)
    csrf = await csrf_token(request)
    channel = await _channel(request)
    data = await _posted(request)
    password = (str(data.get("password") or "") or None) if data is not None else None
    answered = Answered(flash=unquote(request.cookies.get(FLASH) or ""))
    try:
        if data is not None and data.get("do") != "unlock":
            answered = await _answer_rsvp(request, user.id, data, password, channel)
            if answered.moved is not None:
                return answered.moved
        page = await _service(request).rsvp_page(user.id, _id(request), password=password, channel=channel)
    except PASSWORD_ERRORS as exc:
        return _password_form(request, exc, csrf)
    except DomainError as exc:
        return _refused(request, exc)
    typed = answered.typed
    context = {
        "title": "会议回执",
        "back": f"/m/n/{page.notice_id}",
        "page": page,
        "answers": [(a.value, RSVP_LABEL[a]) for a in RsvpAnswer],
        "chosen": typed.get("answer") or (page.answer.value if page.answer else ""),
        "reason": typed.get("reason", page.reason or ""),
        "delegate": typed.get("delegate", page.delegate or ""),
        "error": answered.error,
        "csrf": csrf,
        "password": password or "",
        "flash": answered.flash,
    }
    resp = aiohttp_jinja2.render_template("m/notice_rsvp.html", request, context)
    return _flash(request, resp, context)


# -- /m/n/{id}/poll -------------------------------------------------------------------------------
def ballot_from_post(page: PollPage, data: MultiDictProxy[Any]) -> dict[str, Answer]:
    """The ballot as posted: `q-<question>` option indexes, `t-<question>` free text. Anything
    that is not a whole number (ASCII digits) is dropped here and the service then says what is missing."""
    ballot: dict[str, Answer] = {}
    for q in page.questions:
        picked = []
        for raw in data.getall(f"q-{q.id}", []):
            text = str(raw).strip()
            if text.isascii() and text.isdigit() and len(text) < 6:
                picked.append(int(text))
        free = str(data.get(f"t-{q.id}") or "").strip() or None
        ballot[q.id] = Answer(tuple(picked), free)
    return ballot


async def poll_page(request: web.Request) -> web.StreamResponse:
    user = await viewer(request)
    svc = _service(request)
    csrf = await csrf_token(request)
    channel = await _channel(request)
    error, flash = "", unquote(request.cookies.get(FLASH) or "")
    posted: dict[str, Answer] | None = None
    data = await _posted(request)
    password = (str(data.get("password") or "") or None) if data is not None else None
    try:
        page = await svc.poll_page(user.id, _id(request), password=password, channel=channel)
        if data is not None and data.get("do") != "unlock":
            posted = ballot_from_post(page, data)
            try:
                await svc.vote(user.id, page.notice_id, posted, channel=channel, password=password)
                flash, posted = "已提交，结果如下", None
                if (moved := _done(request, password, flash)) is not None:
                    return moved
                page = await svc.poll_page(user.id, _id(request), password=password, channel=channel)
            except DomainError as exc:
                if exc.category in (Category.NOT_FOUND, Category.FORBIDDEN) or isinstance(
                    exc, PASSWORD_ERRORS
                ):
                    raise
                error = message_for(exc)
    except PASSWORD_ERRORS as exc:
        return _password_form(request, exc, csrf)
    except DomainError as exc:
        return _refused(request, exc)
    context = {
        "title": "调查",
        "back": f"/m/n/{page.notice_id}",
        "page": page,
        "mine": posted if posted is not None else page.mine,
        "editing": bool(error) or request.query.get("change") == "1" or page.results is None,
        "error": error,
        "csrf": csrf,
        "password": password or "",
        "flash": flash,
    }
    resp = aiohttp_jinja2.render_template("m/notice_poll.html", request, context)
    return _flash(request, resp, context)


# -- /m/n/{id}/attendance -------------------------------------------------------------------------
async def attendance_page(request: web.Request) -> web.StreamResponse:
    user = await viewer(request)
    try:
        view = await _service(request).attendance(user.id, _id(request))
    except DomainError as exc:
        return _refused(request, exc)
    context = {"title": "参会名单", "back": f"/m/n/{view.notice_id}", "view": view}
    return aiohttp_jinja2.render_template("m/notice_attendance.html", request, context)


async def attendance_csv(request: web.Request) -> web.StreamResponse:
    user = await viewer(request)
    try:
        name, body = await _service(request).attendance_csv(user.id, _id(request))
    except DomainError as exc:
        return _refused(request, exc)
    return web.Response(
        body=body,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"},
    )


def setup_notice_response_pages(app: web.Application) -> None:
    r = app.router
    r.add_get("/m/n/{id}/rsvp", rsvp_page)
    r.add_post("/m/n/{id}/rsvp", rsvp_page)
    r.add_get("/m/n/{id}/poll", poll_page)
    r.add_post("/m/n/{id}/poll", poll_page)
    r.add_get("/m/n/{id}/attendance", attendance_page)
    r.add_get("/m/n/{id}/attendance.csv", attendance_csv)
