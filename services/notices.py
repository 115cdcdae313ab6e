"""The notice service 通知: publish, receipts 已收到, default at the deadline, 催办, 收回, access
passwords and the record of views. Every entry point (REST, pages, card taps, CLI) calls this.

Final names (issue 12, NOTICES.md): `Notices(deps: NoticesDeps)` with keyword-only methods
`create(author, draft, channel) -> NoticeView`, `get(viewer, notice_id, channel) -> NoticeView`,
`unlock(viewer, notice_id, password, channel) -> NoticeView`, `acknowledge(person, notice_id,
channel) -> ReceiptView`, `tap(person, task_id, channel) -> str` (a card's 已收到),
`recall(author, notice_id) -> NoticeView`, `receipts(viewer, notice_id) -> ReceiptsView`,
`urge(author, notice_id) -> Urged`, `list_for(person, ...) -> list[NoticeSummary]`,
`list_authored(author) -> list[NoticeSummary]`, `unanswered_for(person) -> list[NoticeSummary]`
(the digests); `on_approval_outcome` is the `OutcomeHook` that publishes or refuses a notice
when its `notice_publish` request ends. n2's `services.notice_responses` uses `storage.notice_store`
and `Notices.load(...)`, `Notices.add_recipient(...)` (a 委派 delegate).

One transaction per change: the rows, the notice trail (`notice_events`), the outbox cards and
the `notice_default` timer are written together. Receipt moves are conditional updates guarded
by `notices.rules.RECEIPT_MOVES`, so a double tap, a tap racing the default timer, or two
scanners racing change a receipt once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from approvals.definitions import Template
from approvals.engine import Outcome
from deadlines.org_calendar import OrgCalendar
from deadlines.timer_kinds import FireResult, TimerKinds
from deadlines.timers import Timer
from notices.model import (
    Audience,
    Confidentiality,
    Meeting,
    NoticeKind,
    NoticeStatus,
    Poll,
    ReceiptState,
)
from notices.rules import DEFAULT_RULES, NoticeRules
from org.model import Org
from services.directory import Directory
from services.links import PersonalLinks
from storage.db import Database

logger = logging.getLogger(__name__)

PUBLISH_TEMPLATE = "notice_publish"  # the built-in approval template the office decides on


def notice_page(notice_id: str) -> str:
    """The workspace page of a notice, the path every card links to."""
    return f"/m/n/{notice_id}"


def receipts_page(notice_id: str) -> str:
    return f"/m/n/{notice_id}/receipts"


# -- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoticeDraft:
    """What an author writes. `password`: an optional access password (kept only as a slow hash)."""

    kind: NoticeKind
    title: str
    audience: Audience
    body: str = ""
    confidentiality: Confidentiality = Confidentiality.INTERNAL
    named_only: bool = False
    password: str | None = None
    ack_deadline: datetime | None = None  # None: `NoticeRules.ack_working_days` on the calendar
    pinned_until: datetime | None = None  # announcements
    meeting: Meeting | None = None
    poll: Poll | None = None


# -- views ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiptView:
    person: str
    name: str
    department: str  # the department's name
    state: ReceiptState
    state_label: str  # 未读 / 已读 / 已收到 / 默认已收到
    opened_at: datetime | None
    opened_via: str | None
    acknowledged_at: datetime | None
    acknowledged_via: str | None
    defaulted_at: datetime | None
    added_by: str | None = None
    added_by_name: str | None = None


@dataclass(frozen=True)
class ViewRecord:
    """One view of a restricted item."""

    person: str
    name: str
    at: datetime
    channel: str


@dataclass(frozen=True)
class NoticeEventView:
    at: datetime
    kind: str
    actor: str | None
    actor_name: str
    channel: str
    data: dict[str, Any]


@dataclass(frozen=True)
class NoticeView:
    """A notice as one viewer may see it. `body` is None while the viewer must still give the
    access password (`needs_password`), or is locked out (`locked_until`)."""

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
    restricted: bool
    named_only: bool
    has_password: bool
    needs_password: bool
    locked_until: datetime | None
    audience: Audience
    audience_text: str  # e.g. 办公室（含下级部门）、张三
    created_at: datetime
    published_at: datetime | None
    ack_deadline: datetime | None
    pinned_until: datetime | None
    recalled_at: datetime | None
    meeting: Meeting | None
    poll: Poll | None
    is_author: bool
    my_receipt: ReceiptView | None  # the viewer's own receipt, when they are a recipient
    can_acknowledge: bool
    can_recall: bool  # the author, nobody opened it yet
    total: int  # recipients
    acknowledged: int  # acknowledged + defaulted
    approval_request: str | None = None
    reject_reason: str | None = None


@dataclass(frozen=True)
class NoticeSummary:
    """A line of a notice list."""

    id: str
    kind: NoticeKind
    kind_label: str
    title: str
    author: str
    author_name: str
    status: NoticeStatus
    status_label: str
    restricted: bool
    published_at: datetime | None
    created_at: datetime
    ack_deadline: datetime | None
    pinned: bool  # an announcement still pinned
    my_state: ReceiptState | None  # the listed person's receipt (list_for)
    my_state_label: str | None
    total: int
    acknowledged: int


@dataclass(frozen=True)
class ReceiptsView:
    """The author's (or an org admin's) progress page: x of y acknowledged, who has not, who
    defaulted, the record of views of a restricted item, and the trail."""

    notice_id: str
    title: str
    status: NoticeStatus
    total: int
    acknowledged: int  # tapped 已收到
    defaulted: int
    opened: int  # opened but not answered
    unanswered: int  # sent or opened
    receipts: list[ReceiptView]  # everyone, unanswered first
    pending: list[ReceiptView]  # who has not answered
    defaulted_people: list[ReceiptView]
    views: list[ViewRecord]  # restricted items only
    trail: list[NoticeEventView]
    can_urge: bool
    urge_retry_at: datetime | None
    can_recall: bool


@dataclass(frozen=True)
class Urged:
    reminded: list[str]  # people ids
    names: list[str]


# -- the service -------------------------------------------------------------------------------


@dataclass
class NoticesDeps:
    db: Database
    directory: Directory
    links: PersonalLinks
    tz: ZoneInfo
    now: Callable[[], datetime]
    calendar: OrgCalendar
    rules: NoticeRules = DEFAULT_RULES
    admin_roles: frozenset[str] = frozenset()
    office_role: str = "office"
    kinds: TimerKinds | None = None  # registers `notice_default`
    # submits `notice_publish` requests; set by the wiring after the workflow is built
    submit_for_approval: Callable[..., Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Notices:
    def __init__(self, deps: NoticesDeps) -> None:
        self.d = deps

    async def org(self) -> Org:
        return await self.d.directory.org()

    # -- publishing ---------------------------------------------------------------------------
    async def create(self, *, author: str, draft: NoticeDraft, channel: str = "web") -> NoticeView:
        """Check the draft (audience, confidentiality, parts) and publish it at once, or submit
        it to the office (`notice_publish`) when the rules say so."""
        raise NotImplementedError

    async def on_approval_outcome(
        self, session: AsyncSession, out: Outcome, template: Template, org: Org, now: datetime
    ) -> None:
        """`Workflow` hook: a `notice_publish` request approved publishes its notice, rejected
        (or withdrawn) tells the author why; in the request's own transaction."""
        raise NotImplementedError

    # -- reading ------------------------------------------------------------------------------
    async def get(self, *, viewer: str, notice_id: str, channel: str = "web") -> NoticeView:
        """The notice as `viewer` may see it; a recipient's first view records opened (with the
        channel); every view of a restricted item is recorded. Recipients, the author and (for
        anything but a restricted item's content) org admins only."""
        raise NotImplementedError

    async def unlock(self, *, viewer: str, notice_id: str, password: str, channel: str = "web") -> NoticeView:
        """Give the access password: the notice with its body, or WrongPassword / LockedOut."""
        raise NotImplementedError

    async def load(self, notice_id: str) -> Any:
        """The stored notice (`notices.model.Notice`) with its receipts; NoticeNotFound."""
        raise NotImplementedError

    # -- answering ----------------------------------------------------------------------------
    async def acknowledge(self, *, person: str, notice_id: str, channel: str = "web") -> ReceiptView:
        """已收到: records acknowledged (and opened, if it was not) and closes the person's card."""
        raise NotImplementedError

    async def tap(self, *, person: str, task_id: str, channel: str) -> str:
        """A card's 已收到 tap; the answer to say in chat (a repeated or stale tap changes nothing)."""
        raise NotImplementedError

    # -- the author's side --------------------------------------------------------------------
    async def recall(self, *, author: str, notice_id: str) -> NoticeView:
        """收回 while nobody opened it; cards updated in place to 已收回."""
        raise NotImplementedError

    async def receipts(self, *, viewer: str, notice_id: str) -> ReceiptsView:
        raise NotImplementedError

    async def urge(self, *, author: str, notice_id: str) -> Urged:
        """催办: remind only those who have not answered, at most once per 30 minutes."""
        raise NotImplementedError

    # -- lists --------------------------------------------------------------------------------
    async def list_for(
        self, *, person: str, unanswered_only: bool = False, limit: int = 50
    ) -> list[NoticeSummary]:
        raise NotImplementedError

    async def list_authored(self, *, author: str, limit: int = 50) -> list[NoticeSummary]:
        raise NotImplementedError

    async def unanswered_for(self, person: str) -> list[NoticeSummary]:
        raise NotImplementedError

    # -- the default 已收到 timer ---------------------------------------------------------------
    async def fire_default(self, timer: Timer) -> FireResult:
        raise NotImplementedError
