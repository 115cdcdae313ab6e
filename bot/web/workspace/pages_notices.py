"""The workspace's notice pages 通知: `/m/n/` (my notices: 收到的 / 我发的), `/m/n/{id}` (a notice:
opening it records opened; 已收到; the access-password prompt; the way to the RSVP or poll page),
`/m/n/new` (compose, with audience pickers), `/m/n/{id}/receipts` (the author's live progress,
一键催办 and 收回).

Handlers read the post, check the session's CSRF token, make one `services.notices.Notices` call
and render a template from `bot/web/templates/m/`. Who may read or act, what is restricted and
whether a recall is allowed are the service's answers, never decided here; its refusals are
shown in its own Chinese words (`notifications.messages.message_for`). After an action the page
redirects with a one-time message (a short-lived cookie), like the request pages.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any
from urllib.parse import quote, unquote

import aiohttp_jinja2
from aiohttp import web

from bot.keys import CLOCK, NOTICES, SETTINGS
from bot.web.identity import check_csrf, csrf_token, current, viewer
from bot.web.middleware import status_for
from notices.errors import (
    AudienceInvalid,
    ConfidentialityRefused,
    LockedOut,
    RestrictedAudience,
)
from notices.model import (
    BODY_MAX,
    TITLE_MAX,
    Audience,
    Confidentiality,
    DeptPick,
    Meeting,
    NoticeKind,
    NoticeStatus,
    Poll,
    Question,
    ReceiptState,
)
from notifications.messages import message_for
from notifications.notice_wording import CHANNEL_LABEL, CONFIDENTIALITY_LABEL, KIND_LABEL, RECEIPT_LABEL
from org.errors import DomainError
from org.model import Org, User
from services.notices import NoticeDraft, NoticeSummary, NoticeView, ReceiptsView, ReceiptView

FLASH = "oabot_nflash"
BAD = "!"  # a flash starting with this is a refusal (shown in red)
HOME = "/m/n/"
PLATFORM_CHANNELS = {"wecom", "dingtalk", "console"}
# The built-in templates' roles in words; a role not listed is shown by its holders' titles.
ROLE_LABEL = {
    "gm": "总经理",
    "deputy_gm": "副总经理",
    "admin_service_manager": "行政服务经理",
    "seal_dept_head": "印章管理部门负责人",
    "seal_keeper": "印章保管员",
    "fleet_dispatcher": "车队调度",
    "hr_manager": "行政人事经理",
    "doc_registrar": "公文登记员",
    "finance_manager": "财务经理",
    "field_staff": "外勤人员",
    "repair_handler": "维修处理人",
    "secretary": "秘书",
    "admin": "系统管理员",
    "office": "办公室",
}
STATUS_CLASS = {
    NoticeStatus.PUBLISHED: "approved",
    NoticeStatus.PENDING_APPROVAL: "running",
    NoticeStatus.REJECTED: "rejected",
    NoticeStatus.RECALLED: "withdrawn",
}


# -- small helpers ------------------------------------------------------------------------------
def _redirect(location: str, flash: str | None = None, *, bad: bool = False) -> web.Response:
    resp = web.Response(status=303, headers={"Location": location})
    if flash:
        value = quote((BAD if bad else "") + flash)
        resp.set_cookie(FLASH, value, max_age=60, httponly=True, samesite="Lax", path="/m/")
    return resp


def _flash(request: web.Request) -> tuple[str, bool]:
    raw = unquote(request.cookies.get(FLASH) or "")
    return raw.removeprefix(BAD), raw.startswith(BAD)


def _render(request: web.Request, name: str, context: dict[str, Any], status: int = 200) -> web.Response:
    flash, bad = _flash(request)
    context = {"flash": flash, "flash_bad": bad, "tz": request.app[SETTINGS].tz, **context}
    resp = aiohttp_jinja2.render_template(name, request, context, status=status)
    if flash:
        resp.del_cookie(FLASH, path="/m/")  # shown once
    return resp


def _refused(request: web.Request, exc: DomainError, *, back: str = HOME) -> web.Response:
    context = {"title": "无法查看", "back": back, "message": message_for(exc)}
    return aiohttp_jinja2.render_template("m/request_refused.html", request, context, status=status_for(exc))


async def _channel(request: web.Request) -> str:
    """How the viewer reached the page: their sign-in's platform, else the web."""
    found = await current(request)
    via = found[0].via if found else ""
    return via if via in PLATFORM_CHANNELS else "web"


def _id(request: web.Request) -> str:
    return request.match_info["id"]


# -- /m/n/ --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    """A line of a notice list, in words."""

    id: str
    href: str
    kind_label: str
    level_label: str
    title: str
    author_name: str
    at: datetime | None
    state: str
    state_label: str
    pinned: bool
    unread: bool
    deadline: datetime | None
    progress: str


def _inbox_item(s: NoticeSummary, now: datetime) -> Item:
    state = s.my_state or ReceiptState.SENT
    return Item(
        id=s.id,
        href=f"/m/n/{s.id}",
        kind_label=s.kind_label,
        level_label="仅限指定人员" if s.restricted else "",
        title=s.title,
        author_name=s.author_name,
        at=s.published_at or s.created_at,
        state=state.value,
        state_label=s.my_state_label or RECEIPT_LABEL[state],
        pinned=s.pinned,
        unread=state == ReceiptState.SENT,
        deadline=s.ack_deadline if not state.answered and s.ack_deadline and s.ack_deadline > now else None,
        progress="",
    )


def _sent_item(s: NoticeSummary) -> Item:
    published = s.status == NoticeStatus.PUBLISHED
    return Item(
        id=s.id,
        href=f"/m/n/{s.id}/receipts" if published else f"/m/n/{s.id}",
        kind_label=s.kind_label,
        level_label="仅限指定人员" if s.restricted else "",
        title=s.title,
        author_name=s.author_name,
        at=s.published_at or s.created_at,
        state=s.status.value,
        state_label=s.status_label,
        pinned=s.pinned,
        unread=False,
        deadline=None,
        progress=f"{s.acknowledged}/{s.total} 人已确认" if published else "",
    )


def inbox_order(items: list[Item]) -> list[Item]:
    """Pinned announcements on top, then unread, then the rest; newest first within each."""
    by_time = sorted(items, key=lambda i: i.at.timestamp() if i.at else 0.0, reverse=True)
    return sorted(by_time, key=lambda i: (not i.pinned, not i.unread))


async def notice_list(request: web.Request) -> web.StreamResponse:
    user = await viewer(request)
    service = request.app[NOTICES]
    box = "sent" if request.query.get("box") == "sent" else "inbox"
    inbox = await service.list_for(person=user.id)
    sent = await service.list_authored(author=user.id)
    now = request.app[CLOCK].now()
    items = (
        inbox_order([_inbox_item(s, now) for s in inbox]) if box == "inbox" else [_sent_item(s) for s in sent]
    )
    unanswered = sum(1 for s in inbox if not (s.my_state and s.my_state.answered))
    context = {
        "title": "通知",
        "back": "/m/",
        "box": box,
        "tabs": [("inbox", "收到的", HOME, unanswered), ("sent", "我发的", HOME + "?box=sent", len(sent))],
        "items": items,
    }
    return _render(request, "m/notices.html", context)


# -- /m/n/{id} ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class MeetingFacts:
    starts_at: datetime
    ends_at: datetime
    place: str
    agenda: str
    organiser_name: str


@dataclass(frozen=True)
class Page:
    """A notice as the page shows it."""

    id: str
    kind: str
    kind_label: str
    level_label: str
    status_label: str
    status_class: str
    title: str
    body: str | None
    restricted: bool
    has_password: bool
    author_name: str
    published_at: datetime | None
    ack_deadline: datetime | None
    pinned_until: datetime | None
    meeting: MeetingFacts | None
    is_author: bool
    is_recipient: bool
    approval_request: str  # the office's notice_publish request, shown to the author
    reject_reason: str
    my_state: str
    acknowledged_at: datetime | None
    can_ack: bool


def _page(v: NoticeView, org: Org) -> Page:
    mine = v.my_receipt
    m = v.meeting
    return Page(
        id=v.id,
        kind=v.kind.value,
        kind_label=v.kind_label,
        level_label=v.confidentiality_label,
        status_label="" if v.status == NoticeStatus.PUBLISHED else v.status_label,
        status_class=STATUS_CLASS.get(v.status, ""),
        title=v.title,
        body=v.body,
        restricted=v.restricted,
        has_password=v.has_password,
        author_name=v.author_name,
        published_at=v.published_at,
        ack_deadline=v.ack_deadline,
        pinned_until=v.pinned_until,
        meeting=MeetingFacts(m.starts_at, m.ends_at, m.place, m.agenda, org.display_name(m.organiser))
        if m
        else None,
        is_author=v.is_author,
        is_recipient=mine is not None,
        approval_request=(v.approval_request or "") if v.is_author else "",
        reject_reason=(v.reject_reason or "") if v.is_author else "",
        my_state=mine.state.value if mine else "",
        acknowledged_at=mine.acknowledged_at if mine else None,
        can_ack=v.can_acknowledge,
    )


async def _show(request: web.Request, view: NoticeView, *, problem: str = "") -> web.Response:
    if view.body is None and (view.needs_password or view.locked_until):
        locked = view.locked_until is not None
        if locked and not problem:
            until = view.locked_until.astimezone(request.app[SETTINGS].tz) if view.locked_until else None
            problem = f"密码错误次数过多，已暂时锁定，请于 {until:%H:%M} 后再试。" if until else ""
        context = {
            "title": view.kind_label,
            "back": HOME,
            "n_id": view.id,
            "n_title": view.title,
            "csrf": await csrf_token(request),
            "problem": problem,
            "locked": locked,
        }
        return _render(request, "m/notice_locked.html", context, status=403 if problem else 200)
    org = await request.app[NOTICES].org()
    context = {
        "title": view.kind_label,
        "back": HOME,
        "n": _page(view, org),
        "csrf": await csrf_token(request),
    }
    return _render(request, "m/notice.html", context)


async def notice_page(request: web.Request) -> web.StreamResponse:
    user = await viewer(request)
    try:
        view = await request.app[NOTICES].get(
            viewer=user.id, notice_id=_id(request), channel=await _channel(request)
        )
    except DomainError as exc:
        return _refused(request, exc)
    return await _show(request, view)


async def unlock(request: web.Request) -> web.StreamResponse:
    user = await viewer(request)
    data = await request.post()
    await check_csrf(request, str(data.get("csrf") or ""))
    service = request.app[NOTICES]
    channel = await _channel(request)
    password = str(data.get("password") or "")[:128]
    try:
        view = await service.unlock(
            viewer=user.id, notice_id=_id(request), password=password, channel=channel
        )
    except LockedOut as exc:
        view = await service.get(viewer=user.id, notice_id=_id(request), channel=channel)
        return await _show(request, view, problem=message_for(exc))
    except DomainError as exc:
        try:
            view = await service.get(viewer=user.id, notice_id=_id(request), channel=channel)
        except DomainError:
            return _refused(request, exc)
        return await _show(request, view, problem=message_for(exc))
    return await _show(request, view)


async def acknowledge(request: web.Request) -> web.StreamResponse:
    user = await viewer(request)
    data = await request.post()
    await check_csrf(request, str(data.get("csrf") or ""))
    # a password-protected item would ask for its password again: go back to the list instead
    here = HOME if data.get("after") == "list" else f"/m/n/{_id(request)}"
    try:
        await request.app[NOTICES].acknowledge(
            person=user.id, notice_id=_id(request), channel=await _channel(request)
        )
    except DomainError as exc:
        return _redirect(here, message_for(exc), bad=True)
    return _redirect(here, "已确认收到。")


# -- /m/n/{id}/receipts -------------------------------------------------------------------------
@dataclass(frozen=True)
class Person:
    name: str
    department: str
    note: str


@dataclass(frozen=True)
class Progress:
    id: str
    title: str
    kind_label: str
    status_label: str
    status_class: str
    total: int
    answered: int
    defaulted: int
    opened: int
    percent: int
    ack_deadline: datetime | None
    live: bool
    can_recall: bool
    openers: str  # who opened it (and when): why 收回 is no longer possible
    waiting: list[Person] = field(default_factory=list)
    acknowledged: list[Person] = field(default_factory=list)
    defaulted_people: list[Person] = field(default_factory=list)


def _when(at: datetime | None, tz: tzinfo) -> str:
    return at.astimezone(tz).strftime("%m-%d %H:%M") if at else ""


def _via(via: str | None) -> str:
    return CHANNEL_LABEL.get(via or "", "")


def _waiting(r: ReceiptView, tz: tzinfo) -> Person:
    if r.state == ReceiptState.OPENED:
        note = (
            f"{_when(r.opened_at, tz)} 已读（{_via(r.opened_via)}），未确认"
            if r.opened_via
            else "已读，未确认"
        )
    else:
        note = "未读"
    if r.added_by_name:
        note += f" · {r.added_by_name}委派"
    return Person(r.name, r.department, note)


def _openers(receipts: list[ReceiptView], tz: tzinfo) -> str:
    """Who opened it and when, first opener first: 吴昊（11-23 10:03）、陈静（…）."""
    opened = sorted((r.opened_at, r.name) for r in receipts if r.opened_at is not None)
    return "、".join(f"{name}（{_when(at, tz)}）" for at, name in opened)


def _progress(v: NoticeView, r: ReceiptsView, tz: tzinfo) -> Progress:
    answered = r.acknowledged + r.defaulted
    return Progress(
        id=r.notice_id,
        title=r.title,
        kind_label=v.kind_label,
        status_label="" if r.status == NoticeStatus.PUBLISHED else v.status_label,
        status_class=STATUS_CLASS.get(r.status, ""),
        total=r.total,
        answered=answered,
        defaulted=r.defaulted,
        opened=sum(1 for x in r.receipts if x.opened_at is not None),
        percent=round(100 * answered / r.total) if r.total else 0,
        ack_deadline=v.ack_deadline,
        live=r.status == NoticeStatus.PUBLISHED,
        can_recall=r.can_recall,
        openers=_openers(r.receipts, tz),
        waiting=[_waiting(x, tz) for x in r.pending],
        acknowledged=[
            Person(x.name, x.department, f"{_when(x.acknowledged_at, tz)} {_via(x.acknowledged_via)}".strip())
            for x in r.receipts
            if x.state == ReceiptState.ACKNOWLEDGED
        ],
        defaulted_people=[
            Person(x.name, x.department, f"{_when(x.defaulted_at, tz)} 逾期默认") for x in r.defaulted_people
        ],
    )


async def receipts_page(request: web.Request) -> web.StreamResponse:
    user = await viewer(request)
    service = request.app[NOTICES]
    try:
        found = await service.receipts(viewer=user.id, notice_id=_id(request))
        view = await service.get(viewer=user.id, notice_id=_id(request), channel=await _channel(request))
    except DomainError as exc:
        return _refused(request, exc)
    context = {
        "title": "阅读进度",
        "back": HOME + "?box=sent",
        "r": _progress(view, found, request.app[SETTINGS].tz),
        "csrf": await csrf_token(request),
    }
    return _render(request, "m/notice_receipts.html", context)


async def urge(request: web.Request) -> web.StreamResponse:
    user = await viewer(request)
    data = await request.post()
    await check_csrf(request, str(data.get("csrf") or ""))
    here = f"/m/n/{_id(request)}/receipts"
    try:
        urged = await request.app[NOTICES].urge(author=user.id, notice_id=_id(request))
    except DomainError as exc:
        return _redirect(here, message_for(exc), bad=True)
    if not urged.reminded:
        return _redirect(here, "所有人都已回复，无需催办。")
    return _redirect(here, f"已催办 {len(urged.reminded)} 人：{'、'.join(urged.names)}")


async def recall(request: web.Request) -> web.StreamResponse:
    user = await viewer(request)
    data = await request.post()
    await check_csrf(request, str(data.get("csrf") or ""))
    here = f"/m/n/{_id(request)}/receipts"
    try:
        await request.app[NOTICES].recall(author=user.id, notice_id=_id(request))
    except DomainError as exc:
        return _redirect(here, message_for(exc), bad=True)
    return _redirect(here, "已收回，接收人的卡片已显示「已收回」。")


# -- /m/n/new -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeptChoice:
    id: str
    name: str
    has_sub: bool
    depth: int


@dataclass(frozen=True)
class PersonChoice:
    id: str
    name: str
    title: str
    department: str


def _departments(org: Org) -> list[DeptChoice]:
    """Every active department, each under its parent (`depth` levels down)."""
    children: dict[str | None, list[str]] = {}
    for d in org.departments.values():
        if d.active:
            parent = d.parent if d.parent in org.departments else None
            children.setdefault(parent, []).append(d.id)
    out: list[DeptChoice] = []

    def walk(parent: str | None, depth: int) -> None:
        for dept_id in sorted(children.get(parent, []), key=lambda i: org.departments[i].name):
            out.append(DeptChoice(dept_id, org.departments[dept_id].name, bool(children.get(dept_id)), depth))
            walk(dept_id, depth + 1)

    walk(None, 0)
    return out


def _roles(org: Org) -> list[tuple[str, str]]:
    holders: dict[str, list[User]] = {}
    for u in org.users.values():
        if u.active:
            for role in u.roles:
                holders.setdefault(role, []).append(u)
    out = []
    for role, people in sorted(holders.items()):
        names = "、".join(u.name for u in people[:3]) + ("等" if len(people) > 3 else "")
        label = ROLE_LABEL.get(role) or (people[0].title or "角色")
        out.append((role, f"{label}（{names}）"))
    return out


def _people(org: Org) -> list[PersonChoice]:
    def dept(u: User) -> str:
        found = org.department(u.department)
        return found.name if found else ""

    active = sorted((u for u in org.users.values() if u.active), key=lambda u: (dept(u), u.name))
    return [PersonChoice(u.id, u.name, u.title, dept(u)) for u in active]


def _levels(org: Org) -> list[tuple[int, str]]:
    found = sorted({u.level for u in org.users.values() if u.active and u.level is not None})
    return [(level, f"{level} 级") for level in found]


def _local(raw: str, tz: tzinfo) -> datetime | None:
    """A datetime-local field (organisation time) as an aware instant; ValueError when unreadable."""
    raw = raw.strip()
    if not raw:
        return None
    moment = datetime.fromisoformat(raw)
    if moment.tzinfo is not None:
        raise ValueError(raw)
    return moment.replace(tzinfo=tz)


@dataclass
class Compose:
    """The compose form's values as typed (so a refused form comes back filled in)."""

    kind: str = NoticeKind.NOTICE.value
    title: str = ""
    body: str = ""
    everyone: bool = False
    departments: list[str] = field(default_factory=list)
    dept_sub: list[str] = field(default_factory=list)
    levels: list[int] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    people: list[str] = field(default_factory=list)
    confidentiality: str = Confidentiality.INTERNAL.value
    named_only: bool = False
    password: str = ""
    ack_deadline: str = ""
    pinned_until: str = ""
    starts_at: str = ""
    ends_at: str = ""
    place: str = ""
    agenda: str = ""
    question: str = ""
    options: str = ""
    multiple: bool = False
    free_text: bool = False
    anonymous: bool = False
    closes_at: str = ""

    @classmethod
    def read(cls, data: Mapping[str, Any], getall: Any) -> Compose:
        def text(key: str, most: int = 200) -> str:
            return str(data.get(key) or "").strip()[:most]

        levels = []
        for raw in getall("level"):
            if str(raw).isascii() and str(raw).isdigit() and len(str(raw)) < 5:
                levels.append(int(str(raw)))
        return cls(
            kind=text("kind"),
            title=text("title", TITLE_MAX + 1),
            body=str(data.get("body") or "")[: BODY_MAX + 1],
            everyone=bool(data.get("everyone")),
            departments=[str(v)[:64] for v in getall("dept")][:100],
            dept_sub=[str(v)[:64] for v in getall("dept_sub")][:100],
            levels=levels[:100],
            roles=[str(v)[:64] for v in getall("role")][:100],
            people=[str(v)[:64] for v in getall("person")][:2000],
            confidentiality=text("confidentiality"),
            named_only=bool(data.get("named_only")),
            password=str(data.get("password") or "")[:128],
            ack_deadline=text("ack_deadline", 40),
            pinned_until=text("pinned_until", 40),
            starts_at=text("starts_at", 40),
            ends_at=text("ends_at", 40),
            place=text("place"),
            agenda=text("agenda", 2000),
            question=text("question"),
            options=text("options", 2000),
            multiple=bool(data.get("multiple")),
            free_text=bool(data.get("free_text")),
            anonymous=bool(data.get("anonymous")),
            closes_at=text("closes_at", 40),
        )

    def draft(self, author: str, tz: tzinfo) -> tuple[NoticeDraft | None, dict[str, str]]:
        """The draft to publish, or the problems to show next to the fields."""
        errors: dict[str, str] = {}
        kinds = {k.value for k in NoticeKind}
        if self.kind not in kinds:
            errors["kind"] = "请选择类型。"
        if not self.title:
            errors["title"] = "请填写标题。"
        elif len(self.title) > TITLE_MAX:
            errors["title"] = f"标题最多 {TITLE_MAX} 个字。"
        if len(self.body) > BODY_MAX:
            errors["body"] = f"正文最多 {BODY_MAX} 个字。"
        if self.confidentiality not in {c.value for c in Confidentiality}:
            errors["confidentiality"] = "请选择密级。"
        times: dict[str, datetime | None] = {}
        for key in ("ack_deadline", "pinned_until", "starts_at", "ends_at", "closes_at"):
            try:
                times[key] = _local(getattr(self, key), tz)
            except ValueError:
                errors[key] = "时间格式不对，请重新选择。"
                times[key] = None
        meeting = poll = None
        if self.kind == NoticeKind.MEETING.value:
            meeting, problems = self._meeting(author, times)
            errors |= problems
        if self.kind == NoticeKind.POLL.value:
            poll, problems = self._poll(times)
            errors |= problems
        if errors:
            return None, errors
        audience = Audience(
            everyone=self.everyone,
            departments=tuple(DeptPick(d, d in self.dept_sub) for d in self.departments),
            levels=tuple(self.levels),
            roles=tuple(self.roles),
            people=tuple(self.people),
        )
        kind = NoticeKind(self.kind)
        return (
            NoticeDraft(
                kind=kind,
                title=self.title,
                audience=audience,
                body=self.body,
                confidentiality=Confidentiality(self.confidentiality),
                named_only=self.named_only,
                password=self.password or None,
                ack_deadline=times["ack_deadline"],
                pinned_until=times["pinned_until"] if kind == NoticeKind.ANNOUNCEMENT else None,
                meeting=meeting,
                poll=poll,
            ),
            {},
        )

    def _meeting(
        self, author: str, times: dict[str, datetime | None]
    ) -> tuple[Meeting | None, dict[str, str]]:
        errors: dict[str, str] = {}
        starts, ends = times["starts_at"], times["ends_at"]
        if starts is None:
            errors.setdefault("starts_at", "请选择会议开始时间。")
        if ends is None:
            errors.setdefault("ends_at", "请选择会议结束时间。")
        elif starts is not None and ends <= starts:
            errors["ends_at"] = "结束时间应晚于开始时间。"
        if not self.place:
            errors["place"] = "请填写会议地点。"
        if errors or starts is None or ends is None:
            return None, errors
        return Meeting(
            starts_at=starts, ends_at=ends, place=self.place, agenda=self.agenda, organiser=author
        ), {}

    def _poll(self, times: dict[str, datetime | None]) -> tuple[Poll | None, dict[str, str]]:
        errors: dict[str, str] = {}
        options = [line.strip()[:200] for line in self.options.splitlines() if line.strip()]
        if not self.question:
            errors["question"] = "请填写调查问题。"
        if len(options) < 2 and not self.free_text:
            errors["options"] = "请至少填写两个选项（每行一个），或允许填写意见。"
        if errors:
            return None, errors
        question = Question(
            id="q1",
            text=self.question,
            multiple=self.multiple,
            options=tuple(options[:50]),
            free_text=self.free_text,
        )
        return Poll(questions=(question,), anonymous=self.anonymous, closes_at=times["closes_at"]), {}


# Which compose field a refusal of the service belongs next to.
_FIELD_OF: list[tuple[type[DomainError], str]] = [
    (RestrictedAudience, "audience"),
    (AudienceInvalid, "audience"),
    (ConfidentialityRefused, "confidentiality"),
]


async def compose(request: web.Request) -> web.StreamResponse:
    user = await viewer(request)
    service = request.app[NOTICES]
    tz = request.app[SETTINGS].tz
    form = Compose()
    errors: dict[str, str] = {}
    top_error = ""
    if request.method == "POST":
        data = await request.post()
        await check_csrf(request, str(data.get("csrf") or ""))
        form = Compose.read(data, lambda key: [str(v) for v in data.getall(key, [])])
        draft, errors = form.draft(user.id, tz)
        if draft is not None:
            try:
                view = await service.create(
                    author=user.id,
                    draft=draft,
                    channel=await _channel(request),
                    idempotency_key=str(data.get("form_token") or "") or None,
                )
            except DomainError as exc:
                key = next((k for cls, k in _FIELD_OF if isinstance(exc, cls)), "")
                if key:
                    errors[key] = message_for(exc)
                top_error = message_for(exc)
            else:
                return _redirect(f"/m/n/{view.id}", _sent_words(view))
        if errors and not top_error:
            top_error = "有几处需要修改，请看标红的提示。"
        form.password = ""  # never sent back to the browser
    org = await service.org()
    context = {
        "title": "发通知",
        "back": HOME,
        "v": form,
        "errors": errors,
        "top_error": top_error,
        "kinds": [(k.value, KIND_LABEL[k]) for k in NoticeKind],
        "levels_conf": [(c.value, CONFIDENTIALITY_LABEL[c]) for c in Confidentiality],
        "departments": _departments(org),
        "levels": _levels(org),
        "roles": _roles(org),
        "people": _people(org),
        "title_max": TITLE_MAX,
        "body_max": BODY_MAX,
        "form_token": uuid.uuid4().hex,
        "csrf": await csrf_token(request),
    }
    return _render(request, "m/notice_new.html", context, status=422 if top_error else 200)


def _sent_words(view: NoticeView) -> str:
    if view.status == NoticeStatus.PENDING_APPROVAL:
        return f"「{view.title}」已提交办公室审核，审核通过后发出。"
    return f"「{view.title}」已发出，共 {view.total} 人。"


def setup_notice_pages(app: web.Application) -> None:
    r = app.router
    r.add_get("/m/n/", notice_list)
    r.add_get("/m/n/new", compose)
    r.add_post("/m/n/new", compose)
    r.add_get("/m/n/{id}", notice_page)
    r.add_post("/m/n/{id}/unlock", unlock)
    r.add_post("/m/n/{id}/ack", acknowledge)
    r.add_get("/m/n/{id}/receipts", receipts_page)
    r.add_post("/m/n/{id}/urge", urge)
    r.add_post("/m/n/{id}/recall", recall)
