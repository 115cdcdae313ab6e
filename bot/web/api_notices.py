"""The notices REST API (`/api/v1/notices`): publish a notice 通知 / announcement 公告 / meeting
notice 会议通知 / poll 调查, list one's notices, read one, answer 已收到, and the author's side
(progress, 催办, 收回).

Each route reads its body or query as a pydantic model (unknown fields refused, every problem
listed in one 422), makes one `services.notices.Notices` call and answers with a response model;
the routes are declared in `ROUTES` (documented by `bot.web.openapi`). Whom a call acts as follows
the token rules of every route (`bot.web.routes.acting` / `reading`): a personal token acts and
reads as its person only; an integration names the person, and acting for someone (which opening
a notice is: it records "opened") takes the admin scope. The notice service's refusals pass
through to the error middleware, which words them in Chinese. Decides nothing itself.
"""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr, StringConstraints

from bot.keys import NOTICE_RESPONSES, NOTICES, SETTINGS
from bot.web.routes import (
    LIST_MAX,
    REASON_MAX,
    AwareTime,
    Body,
    Id,
    IdempotencyKey,
    Query,
    QueryId,
    Reply,
    RouteTable,
    Text,
    acting,
    principal_of,
    read_body,
    read_query,
    reading,
    refuse,
    reply,
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
    OffsetUnit,
    Poll,
    Question,
    ReceiptState,
    RemindOffset,
    RsvpAnswer,
)
from notices.polls import Answer
from services.api_tokens import Acting
from services.approval_views import IsoTime
from services.notice_responses import ResultsView
from services.notices import NoticeDraft, NoticeSummary, NoticeView, ReceiptsView, ReceiptView

ROUTES = RouteTable()
CHANNEL = "api"
PEOPLE_MAX = 2000  # named people of one audience
PASSWORD_MAX = 128
AGENDA_MAX = 2000
QUESTIONS_MAX = 50
OPTIONS_MAX = 50
LEVEL_MAX = 1000
LIST_LIMIT = 200

Title = Annotated[StrictStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX)]
NoticeBody = Annotated[StrictStr, StringConstraints(max_length=BODY_MAX)]
Password = Annotated[StrictStr, StringConstraints(min_length=1, max_length=PASSWORD_MAX)]
Agenda = Annotated[StrictStr, StringConstraints(max_length=AGENDA_MAX)]
Level = Annotated[StrictInt, Field(ge=0, le=LEVEL_MAX)]
ON_BEHALF_OF = "the person an admin integration token acts for (recorded on the trail)"
PERSON = "user id; default: a personal token's person"


# -- bodies ------------------------------------------------------------------------------------
class DepartmentPick(Body):
    id: Id = Field(description="department id")
    with_sub: StrictBool = Field(True, description="include its sub-departments")


class AudienceIn(Body):
    """Who is addressed; resolved to active people when the notice is published."""

    everyone: StrictBool = False
    departments: list[DepartmentPick] = Field(default_factory=list, max_length=LIST_MAX)
    levels: list[Level] = Field(default_factory=list, max_length=LIST_MAX, description="job levels")
    roles: list[Id] = Field(default_factory=list, max_length=LIST_MAX, description="role keys")
    people: list[Id] = Field(default_factory=list, max_length=PEOPLE_MAX, description="user ids")

    def audience(self) -> Audience:
        return Audience(
            everyone=self.everyone,
            departments=tuple(DeptPick(d.id, d.with_sub) for d in self.departments),
            levels=tuple(self.levels),
            roles=tuple(self.roles),
            people=tuple(self.people),
        )


class RemindIn(Body):
    amount: StrictInt = Field(ge=1, le=10_000)
    unit: OffsetUnit


class MeetingIn(Body):
    """A meeting notice's facts; attendees answer with RSVP 回执."""

    starts_at: AwareTime
    ends_at: AwareTime
    place: Text
    agenda: Agenda = ""
    organiser: Id | None = Field(None, description="user id; default: the author")
    remind_before: list[RemindIn] | None = Field(
        None, max_length=10, description="default: 1 working hour and 15 minutes before"
    )

    def meeting(self, author: str) -> Meeting:
        extra: dict[str, Any] = {}
        if self.remind_before is not None:
            extra["remind_before"] = tuple(RemindOffset(r.amount, r.unit) for r in self.remind_before)
        return Meeting(
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            place=self.place,
            agenda=self.agenda,
            organiser=self.organiser or author,
            **extra,
        )


class QuestionIn(Body):
    id: Id | None = Field(None, description="default: q1, q2, ... in order")
    text: Text
    multiple: StrictBool = Field(False, description="several options may be chosen")
    options: list[Text] = Field(default_factory=list, max_length=OPTIONS_MAX)
    free_text: StrictBool = Field(False, description="a free-text answer is allowed")


class PollIn(Body):
    questions: list[QuestionIn] = Field(min_length=1, max_length=QUESTIONS_MAX)
    anonymous: StrictBool = False
    closes_at: AwareTime | None = None

    def poll(self) -> Poll:
        return Poll(
            questions=tuple(
                Question(
                    id=q.id or f"q{i}",
                    text=q.text,
                    multiple=q.multiple,
                    options=tuple(q.options),
                    free_text=q.free_text,
                )
                for i, q in enumerate(self.questions, start=1)
            ),
            anonymous=self.anonymous,
            closes_at=self.closes_at,
        )


class NewNotice(Body):
    kind: NoticeKind = NoticeKind.NOTICE
    title: Title
    body: NoticeBody = ""
    audience: AudienceIn
    confidentiality: Confidentiality = Confidentiality.INTERNAL
    named_only: StrictBool = Field(False, description="named people only; cards show the title only")
    password: Password | None = Field(None, description="an access password asked for on the page")
    ack_deadline: AwareTime | None = Field(
        None, description="default: the end of the next working day; unanswered then counts as received"
    )
    pinned_until: AwareTime | None = Field(None, description="announcements: pinned on top until then")
    meeting: MeetingIn | None = Field(None, description="required for kind meeting")
    poll: PollIn | None = Field(None, description="required for kind poll")
    author: Id | None = Field(None, description=PERSON)
    on_behalf_of: Id | None = Field(None, description=ON_BEHALF_OF)
    idempotency_key: IdempotencyKey | None = Field(
        None,
        description="a repeat with the same key (same author) publishes nothing and answers the first notice",
    )

    def problems(self) -> dict[str, str]:
        """What the kind needs besides well-formed fields."""
        problems: dict[str, str] = {}
        if self.kind == NoticeKind.MEETING and self.meeting is None:
            problems["meeting"] = "required for a meeting notice"
        if self.kind != NoticeKind.MEETING and self.meeting is not None:
            problems["meeting"] = "only for kind meeting"
        if self.kind == NoticeKind.POLL and self.poll is None:
            problems["poll"] = "required for a poll"
        if self.kind != NoticeKind.POLL and self.poll is not None:
            problems["poll"] = "only for kind poll"
        if self.kind != NoticeKind.ANNOUNCEMENT and self.pinned_until is not None:
            problems["pinned_until"] = "only for kind announcement"
        if self.meeting is not None and self.meeting.ends_at <= self.meeting.starts_at:
            problems["meeting"] = "ends_at must be after starts_at"
        return problems

    def draft(self, author: str) -> NoticeDraft:
        return NoticeDraft(
            kind=self.kind,
            title=self.title,
            audience=self.audience.audience(),
            body=self.body,
            confidentiality=self.confidentiality,
            named_only=self.named_only,
            password=self.password,
            ack_deadline=self.ack_deadline,
            pinned_until=self.pinned_until,
            meeting=self.meeting.meeting(author) if self.meeting else None,
            poll=self.poll.poll() if self.poll else None,
        )


class AsPerson(Body):
    """Who answers (ack)."""

    person: Id | None = Field(None, description=PERSON)
    on_behalf_of: Id | None = Field(None, description=ON_BEHALF_OF)


class AsAuthor(Body):
    """Who acts as the notice's author (recall, urge)."""

    author: Id | None = Field(None, description=PERSON)
    on_behalf_of: Id | None = Field(None, description=ON_BEHALF_OF)


class Unlock(Body):
    password: Password
    person: Id | None = Field(None, description=PERSON)
    on_behalf_of: Id | None = Field(None, description=ON_BEHALF_OF)


class RsvpIn(Body):
    """A meeting 回执: attend 参加, decline 不参加 (reason required), leave 请假, delegate 委派他人参加."""

    answer: RsvpAnswer
    reason: Annotated[StrictStr, StringConstraints(strip_whitespace=True, max_length=REASON_MAX)] | None = (
        None
    )
    delegate: Id | None = Field(None, description="answer delegate: who attends instead (user id)")
    person: Id | None = Field(None, description=PERSON)
    on_behalf_of: Id | None = Field(None, description=ON_BEHALF_OF)


class BallotAnswer(Body):
    question: Id = Field(description="the question id")
    choices: list[Annotated[StrictInt, Field(ge=0, le=OPTIONS_MAX)]] = Field(
        default_factory=list, max_length=OPTIONS_MAX, description="0-based option indexes"
    )
    text: Annotated[StrictStr, StringConstraints(max_length=AGENDA_MAX)] | None = Field(
        None, description="the free-text answer, where the question allows one"
    )


class BallotIn(Body):
    """A poll ballot: one answer per question; voting again before the poll closes replaces it."""

    answers: list[BallotAnswer] = Field(min_length=1, max_length=QUESTIONS_MAX)
    person: Id | None = Field(None, description=PERSON)
    on_behalf_of: Id | None = Field(None, description=ON_BEHALF_OF)

    def problems(self) -> dict[str, str]:
        ids = [a.question for a in self.answers]
        return {"answers": "one answer per question"} if len(ids) != len(set(ids)) else {}

    def ballot(self) -> dict[str, Answer]:
        return {a.question: Answer(tuple(a.choices), a.text) for a in self.answers}


class NoticeQuery(Query):
    person: QueryId | None = Field(None, description="whose notices; default: a personal token's person")
    box: str = Field(
        "inbox", pattern="^(inbox|sent)$", description="inbox: addressed to them; sent: authored"
    )
    unanswered: str = Field("false", pattern="^(true|false)$", description="inbox: only those not answered")
    limit: int = Field(50, ge=1, le=LIST_LIMIT)


class PersonQuery(Query):
    person: QueryId | None = Field(None, description="who reads; default: a personal token's person")


# -- answers -----------------------------------------------------------------------------------
class DepartmentPickOut(BaseModel):
    id: str
    with_sub: bool


class AudienceOut(BaseModel):
    everyone: bool
    departments: list[DepartmentPickOut]
    levels: list[int]
    roles: list[str]
    people: list[str]

    @classmethod
    def of(cls, a: Audience) -> AudienceOut:
        return cls(
            everyone=a.everyone,
            departments=[DepartmentPickOut(id=d.id, with_sub=d.with_sub) for d in a.departments],
            levels=list(a.levels),
            roles=list(a.roles),
            people=list(a.people),
        )


class RemindOut(BaseModel):
    amount: int
    unit: OffsetUnit


class MeetingOut(BaseModel):
    starts_at: IsoTime
    ends_at: IsoTime
    place: str
    agenda: str
    organiser: str
    remind_before: list[RemindOut]

    @classmethod
    def of(cls, m: Meeting) -> MeetingOut:
        return cls(
            starts_at=m.starts_at,
            ends_at=m.ends_at,
            place=m.place,
            agenda=m.agenda,
            organiser=m.organiser,
            remind_before=[RemindOut(amount=r.amount, unit=r.unit) for r in m.remind_before],
        )


class QuestionOut(BaseModel):
    id: str
    text: str
    multiple: bool
    options: list[str]
    free_text: bool


class PollOut(BaseModel):
    questions: list[QuestionOut]
    anonymous: bool
    closes_at: IsoTime | None

    @classmethod
    def of(cls, p: Poll) -> PollOut:
        return cls(
            questions=[
                QuestionOut(
                    id=q.id, text=q.text, multiple=q.multiple, options=list(q.options), free_text=q.free_text
                )
                for q in p.questions
            ],
            anonymous=p.anonymous,
            closes_at=p.closes_at,
        )


class Receipt(BaseModel):
    """One recipient's 已收到 state: sent → opened → acknowledged, or defaulted at the deadline."""

    person: str
    name: str
    department: str = Field(description="the department's name")
    state: ReceiptState
    state_label: str
    opened_at: IsoTime | None
    opened_via: str | None
    acknowledged_at: IsoTime | None
    acknowledged_via: str | None
    defaulted_at: IsoTime | None
    added_by: str | None = Field(description="a delegate added through 委派: who delegated")

    @classmethod
    def of(cls, r: ReceiptView) -> Receipt:
        return cls(
            person=r.person,
            name=r.name,
            department=r.department,
            state=r.state,
            state_label=r.state_label,
            opened_at=r.opened_at,
            opened_via=r.opened_via,
            acknowledged_at=r.acknowledged_at,
            acknowledged_via=r.acknowledged_via,
            defaulted_at=r.defaulted_at,
            added_by=r.added_by,
        )


class Notice(BaseModel):
    """A notice as the caller's person may see it; `body` is null while the access password is
    still needed (`needs_password`) or they are locked out (`locked_until`)."""

    id: str
    kind: NoticeKind
    kind_label: str
    title: str
    body: str | None
    author: str
    author_name: str
    status: NoticeStatus
    status_label: str
    confidentiality: Confidentiality
    confidentiality_label: str
    restricted: bool = Field(description="named people only; cards show the title only")
    named_only: bool
    has_password: bool
    needs_password: bool
    locked_until: IsoTime | None
    audience: AudienceOut
    audience_text: str
    created_at: IsoTime
    published_at: IsoTime | None
    ack_deadline: IsoTime | None
    pinned_until: IsoTime | None
    recalled_at: IsoTime | None
    meeting: MeetingOut | None
    poll: PollOut | None
    is_author: bool
    my_receipt: Receipt | None = Field(description="the reader's own receipt, when addressed")
    can_acknowledge: bool
    can_recall: bool
    total: int = Field(description="recipients")
    acknowledged: int = Field(description="acknowledged or defaulted")
    approval_request: str | None = Field(description="the office's notice_publish request, if one was needed")
    reject_reason: str | None
    page: str = Field(description="the notice's workspace page")

    @classmethod
    def of(cls, v: NoticeView, public_url: str) -> Notice:
        return cls(
            id=v.id,
            kind=v.kind,
            kind_label=v.kind_label,
            title=v.title,
            body=v.body,
            author=v.author,
            author_name=v.author_name,
            status=v.status,
            status_label=v.status_label,
            confidentiality=v.confidentiality,
            confidentiality_label=v.confidentiality_label,
            restricted=v.restricted,
            named_only=v.named_only,
            has_password=v.has_password,
            needs_password=v.needs_password,
            locked_until=v.locked_until,
            audience=AudienceOut.of(v.audience),
            audience_text=v.audience_text,
            created_at=v.created_at,
            published_at=v.published_at,
            ack_deadline=v.ack_deadline,
            pinned_until=v.pinned_until,
            recalled_at=v.recalled_at,
            meeting=MeetingOut.of(v.meeting) if v.meeting else None,
            poll=PollOut.of(v.poll) if v.poll else None,
            is_author=v.is_author,
            my_receipt=Receipt.of(v.my_receipt) if v.my_receipt else None,
            can_acknowledge=v.can_acknowledge,
            can_recall=v.can_recall,
            total=v.total,
            acknowledged=v.acknowledged,
            approval_request=v.approval_request,
            reject_reason=v.reject_reason,
            page=f"{public_url.rstrip('/')}/m/n/{v.id}",
        )


class NoticeLine(BaseModel):
    """A notice in a list."""

    id: str
    kind: NoticeKind
    kind_label: str
    title: str
    author: str
    author_name: str
    status: NoticeStatus
    status_label: str
    restricted: bool
    created_at: IsoTime
    published_at: IsoTime | None
    ack_deadline: IsoTime | None
    pinned: bool = Field(description="an announcement still pinned on top")
    my_state: ReceiptState | None = Field(description="inbox: the person's receipt")
    my_state_label: str | None
    total: int
    acknowledged: int

    @classmethod
    def of(cls, s: NoticeSummary) -> NoticeLine:
        return cls(
            id=s.id,
            kind=s.kind,
            kind_label=s.kind_label,
            title=s.title,
            author=s.author,
            author_name=s.author_name,
            status=s.status,
            status_label=s.status_label,
            restricted=s.restricted,
            created_at=s.created_at,
            published_at=s.published_at,
            ack_deadline=s.ack_deadline,
            pinned=s.pinned,
            my_state=s.my_state,
            my_state_label=s.my_state_label,
            total=s.total,
            acknowledged=s.acknowledged,
        )


class NoticeList(BaseModel):
    person: str
    box: str
    items: list[NoticeLine]


class ViewLine(BaseModel):
    person: str
    name: str
    at: IsoTime
    channel: str


class Receipts(BaseModel):
    """The author's progress: x of y acknowledged, who has not answered, who defaulted."""

    notice_id: str
    title: str
    status: NoticeStatus
    total: int
    acknowledged: int = Field(description="tapped 已收到")
    defaulted: int = Field(description="no answer by the deadline: counted as received")
    opened: int = Field(description="opened, not answered")
    unanswered: int
    receipts: list[Receipt] = Field(description="everyone, unanswered first")
    pending: list[Receipt] = Field(description="who has not answered")
    views: list[ViewLine] = Field(description="every view of a restricted item")
    can_urge: bool
    urge_retry_at: IsoTime | None
    can_recall: bool

    @classmethod
    def of(cls, r: ReceiptsView) -> Receipts:
        return cls(
            notice_id=r.notice_id,
            title=r.title,
            status=r.status,
            total=r.total,
            acknowledged=r.acknowledged,
            defaulted=r.defaulted,
            opened=r.opened,
            unanswered=r.unanswered,
            receipts=[Receipt.of(x) for x in r.receipts],
            pending=[Receipt.of(x) for x in r.pending],
            views=[ViewLine(person=v.person, name=v.name, at=v.at, channel=v.channel) for v in r.views],
            can_urge=r.can_urge,
            urge_retry_at=r.urge_retry_at,
            can_recall=r.can_recall,
        )


class RsvpResult(BaseModel):
    notice_id: str
    person: str
    answer: RsvpAnswer
    message: str = Field(description="the confirmation the person would read")


class OptionResult(BaseModel):
    index: int
    label: str
    count: int
    percent: float = Field(description="of those who answered the question, 0-100")


class QuestionResult(BaseModel):
    text: str
    multiple: bool
    voters: int
    options: list[OptionResult]
    texts: list[str] = Field(description="the free-text answers")
    svg: str = Field(description="the bar chart, an SVG document (no script)")


class ChoiceOut(BaseModel):
    name: str
    department: str
    question: str
    choices: str
    text: str


class PollResults(BaseModel):
    """A poll's results: counts and percentages per option, as a chart too; for a named poll its
    author also sees who chose what (`who`)."""

    notice_id: str
    title: str
    anonymous: bool
    closed: bool
    closes: str = Field(description="when it closes, in the organisation's time, or 不限")
    voters: int
    invited: int
    questions: list[QuestionResult]
    who: list[ChoiceOut] | None
    is_author: bool

    @classmethod
    def of(cls, r: ResultsView) -> PollResults:
        return cls(
            notice_id=r.notice_id,
            title=r.title,
            anonymous=r.anonymous,
            closed=r.closed,
            closes=r.closes,
            voters=r.voters,
            invited=r.invited,
            questions=[
                QuestionResult(
                    text=q.text,
                    multiple=q.multiple,
                    voters=q.voters,
                    options=[
                        OptionResult(index=o.index, label=o.label, count=o.count, percent=o.percent)
                        for o in q.options
                    ],
                    texts=list(q.texts),
                    svg=q.svg,
                )
                for q in r.questions
            ],
            who=[
                ChoiceOut(
                    name=c.name, department=c.department, question=c.question, choices=c.choices, text=c.text
                )
                for c in r.who
            ]
            if r.who is not None
            else None,
            is_author=r.is_author,
        )


class UrgeResult(BaseModel):
    reminded: list[str] = Field(description="user ids reminded (only those who had not answered)")
    names: list[str]


# -- helpers -----------------------------------------------------------------------------------
def _as(request: web.Request, named: str | None, on_behalf_of: str | None, field: str) -> Acting:
    return acting(request, named, on_behalf_of=on_behalf_of, field=field)


def _reader(request: web.Request, named: str | None) -> str:
    """Whose notices a read covers: a personal token's person, or the person an integration names."""
    person = reading(request, named, field="person")
    if person is None:
        raise refuse("查询参数有误", {"person": "required with an integration token (a user id)"})
    return person


def _opener(request: web.Request, named: str | None) -> str:
    """Who opens a notice: opening records "opened" for a recipient, so an integration reading it
    for someone acts for them (admin scope), like any other write."""
    if principal_of(request).user is None and named is None:
        raise refuse("查询参数有误", {"person": "required with an integration token (a user id)"})
    return acting(request, named, field="person").user


def _public_url(request: web.Request) -> str:
    return request.app[SETTINGS].public_url


# -- routes ------------------------------------------------------------------------------------
@ROUTES.route(
    "POST",
    "/api/v1/notices",
    summary="Publish a notice, announcement, meeting notice or poll",
    description="Goes out at once, or to the office for approval (status pending_approval) when the "
    "rules say so: everyone, several departments, any announcement. 机密 and above are refused; "
    "秘密 and named-only items go to named people only.",
    body=NewNotice,
    ok=[Reply(201, Notice, "created")],
    errors=((400, "refused: the confidentiality level does not go through the system"), 403, 404, 422),
)
async def create_notice(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, NewNotice)
    if problems := body.problems():
        raise refuse("请求参数有误", problems)
    who = _as(request, body.author, body.on_behalf_of, "author")
    view = await request.app[NOTICES].create(
        author=who.user, draft=body.draft(who.user), channel=CHANNEL, idempotency_key=body.idempotency_key
    )
    return reply(Notice.of(view, _public_url(request)), status=201)


@ROUTES.route(
    "GET",
    "/api/v1/notices",
    summary="A person's notices: addressed to them (inbox) or written by them (sent)",
    query=NoticeQuery,
    ok=NoticeList,
    errors=(403,),
)
async def list_notices(request: web.Request) -> web.StreamResponse:
    q = read_query(request, NoticeQuery)
    person = _reader(request, q.person)
    service = request.app[NOTICES]
    if q.box == "sent":
        found = await service.list_authored(author=person, limit=q.limit)
    else:
        found = await service.list_for(person=person, unanswered_only=q.unanswered == "true", limit=q.limit)
    return reply(NoticeList(person=person, box=q.box, items=[NoticeLine.of(s) for s in found]))


@ROUTES.route(
    "GET",
    "/api/v1/notices/{id}",
    summary="A notice as the person may see it (a recipient's first read records opened)",
    query=PersonQuery,
    ok=Notice,
    errors=(403, 404),
)
async def get_notice(request: web.Request) -> web.StreamResponse:
    q = read_query(request, PersonQuery)
    viewer = _opener(request, q.person)
    view = await request.app[NOTICES].get(viewer=viewer, notice_id=request.match_info["id"], channel=CHANNEL)
    return reply(Notice.of(view, _public_url(request)))


@ROUTES.route(
    "POST",
    "/api/v1/notices/{id}/unlock",
    summary="Give a notice's access password (5 wrong tries lock the person out for 15 minutes)",
    body=Unlock,
    ok=Notice,
    errors=(403, 404, (429, "locked out after too many wrong passwords")),
)
async def unlock_notice(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, Unlock)
    who = _as(request, body.person, body.on_behalf_of, "person")
    view = await request.app[NOTICES].unlock(
        viewer=who.user, notice_id=request.match_info["id"], password=body.password, channel=CHANNEL
    )
    return reply(Notice.of(view, _public_url(request)))


@ROUTES.route(
    "POST",
    "/api/v1/notices/{id}/ack",
    summary="Acknowledge a notice 已收到",
    body=AsPerson,
    ok=Receipt,
    errors=(403, 404, (409, "not published (pending, recalled) or already answered")),
)
async def acknowledge_notice(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, AsPerson)
    who = _as(request, body.person, body.on_behalf_of, "person")
    receipt = await request.app[NOTICES].acknowledge(
        person=who.user, notice_id=request.match_info["id"], channel=CHANNEL
    )
    return reply(Receipt.of(receipt))


@ROUTES.route(
    "POST",
    "/api/v1/notices/{id}/recall",
    summary="Recall a notice 收回 while nobody has opened it",
    body=AsAuthor,
    ok=Notice,
    errors=(403, 404, (409, "someone opened it already (details name who and when), or not published")),
)
async def recall_notice(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, AsAuthor)
    who = _as(request, body.author, body.on_behalf_of, "author")
    view = await request.app[NOTICES].recall(author=who.user, notice_id=request.match_info["id"])
    return reply(Notice.of(view, _public_url(request)))


@ROUTES.route(
    "GET",
    "/api/v1/notices/{id}/receipts",
    summary="The author's progress: who acknowledged, who has not, who defaulted",
    query=PersonQuery,
    ok=Receipts,
    errors=(403, 404),
)
async def notice_receipts(request: web.Request) -> web.StreamResponse:
    q = read_query(request, PersonQuery)
    viewer = _reader(request, q.person)
    found = await request.app[NOTICES].receipts(viewer=viewer, notice_id=request.match_info["id"])
    return reply(Receipts.of(found))


@ROUTES.route(
    "POST",
    "/api/v1/notices/{id}/urge",
    summary="Remind 催办 those who have not answered (once per 30 minutes)",
    body=AsAuthor,
    ok=UrgeResult,
    errors=(403, 404, 409, (429, "urged less than 30 minutes ago")),
)
async def urge_notice(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, AsAuthor)
    who = _as(request, body.author, body.on_behalf_of, "author")
    urged = await request.app[NOTICES].urge(author=who.user, notice_id=request.match_info["id"])
    return reply(UrgeResult(reminded=list(urged.reminded), names=list(urged.names)))


@ROUTES.route(
    "POST",
    "/api/v1/notices/{id}/rsvp",
    summary="Answer a meeting notice 回执: attend, decline (with a reason), leave, or delegate",
    body=RsvpIn,
    ok=RsvpResult,
    errors=(403, 404, (409, "not published, or the meeting has started")),
)
async def rsvp_notice(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, RsvpIn)
    who = _as(request, body.person, body.on_behalf_of, "person")
    message = await request.app[NOTICE_RESPONSES].rsvp(
        who.user,
        request.match_info["id"],
        body.answer,
        reason=body.reason or None,
        delegate=body.delegate,
        channel=CHANNEL,
    )
    return reply(
        RsvpResult(notice_id=request.match_info["id"], person=who.user, answer=body.answer, message=message)
    )


@ROUTES.route(
    "POST",
    "/api/v1/notices/{id}/vote",
    summary="Vote in a poll 调查 (again before it closes: the new ballot replaces the old); the results",
    body=BallotIn,
    ok=PollResults,
    errors=(403, 404, (409, "not published")),
)
async def vote_notice(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, BallotIn)
    if problems := body.problems():
        raise refuse("请求参数有误", problems)
    who = _as(request, body.person, body.on_behalf_of, "person")
    results = await request.app[NOTICE_RESPONSES].vote(
        who.user, request.match_info["id"], body.ballot(), channel=CHANNEL
    )
    return reply(PollResults.of(results))


@ROUTES.route(
    "GET",
    "/api/v1/notices/{id}/results",
    summary="A poll's results (those who voted and its author), with the chart as SVG",
    query=PersonQuery,
    ok=PollResults,
    errors=(403, 404),
)
async def poll_results(request: web.Request) -> web.StreamResponse:
    q = read_query(request, PersonQuery)
    viewer = _reader(request, q.person)
    found = await request.app[NOTICE_RESPONSES].results(viewer, request.match_info["id"])
    return reply(PollResults.of(found))


def setup_notices_api(app: web.Application) -> None:
    ROUTES.add_to(app.router)
