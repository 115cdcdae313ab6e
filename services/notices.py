"""The notice service 通知: publish, receipts 已收到, default at the deadline, 催办, 收回, access
passwords and the record of views. Every entry point (REST, pages, card taps, CLI) calls this.

Final names (issue 12, NOTICES.md): `Notices(deps: NoticesDeps)` with keyword-only methods
`create(author, draft, channel) -> NoticeView`, `get(viewer, notice_id, channel) -> NoticeView`,
`unlock(viewer, notice_id, password, channel) -> NoticeView`, `acknowledge(person, notice_id,
channel) -> ReceiptView`, `tap(person, task_id, channel) -> str | None` (a card's 已收到:
None when recorded, else the words to answer),
`recall(author, notice_id) -> NoticeView`, `receipts(viewer, notice_id) -> ReceiptsView`,
`urge(author, notice_id) -> Urged`, `list_for(person, ...) -> list[NoticeSummary]`,
`list_authored(author) -> list[NoticeSummary]`, `unanswered_for(person) -> list[NoticeSummary]`,
`digest_items() -> list[deadlines.digest.NoticeItem]` (the digests), `ack_deadline(published_at)`;
`on_approval_outcome` is the `OutcomeHook` that publishes or refuses a notice
when its `notice_publish` request ends. n2's `services.notice_responses` uses `storage.notice_store`
and `Notices.load(notice_id)`, `Notices.add_recipient_in(session, notice_id=, person=, added_by=,
now=)` (a 委派 delegate: receipt, card, trail). Page paths: `notice_page(id)` `/m/n/<id>`,
`receipts_page(id)`. Refusals: `notices.errors` (words: `notifications.messages.message_for`).

One transaction per change: the rows, the notice trail (`notice_events`), the outbox cards and
the `notice_default` timer are written together. Receipt moves are conditional updates guarded
by `notices.rules.RECEIPT_MOVES`, so a double tap, a tap racing the default timer, or two
scanners racing change a receipt once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from approvals.definitions import Template
from approvals.engine import Action, Outcome
from approvals.errors import ActionNotAllowed, ApprovalError
from approvals.model import ActionKind, Channel, Request, RequestStatus
from deadlines import timers
from deadlines.digest import NoticeItem
from deadlines.org_calendar import OrgCalendar
from deadlines.timer_kinds import FireResult, TimerKinds
from deadlines.timers import Timer, TimerKind, TimerStatus
from notices import rules as notices_rules
from notices.errors import (
    AudienceInvalid,
    IllegalReceiptMove,
    LockedOut,
    NotAuthor,
    NothingToUrge,
    NoticeBusy,
    NoticeError,
    NoticeInvalid,
    NoticeNotFound,
    NoticeNotPublished,
    NotRecipient,
    RecallRefused,
    UrgeTooSoon,
    WrongPassword,
)
from notices.model import (
    Audience,
    Confidentiality,
    Meeting,
    Notice,
    NoticeEvent,
    NoticeEventKind,
    NoticeKind,
    NoticeStatus,
    Poll,
    Receipt,
    ReceiptState,
    parse_card_task_id,
)
from notices.rules import DEFAULT_RULES, NoticeRules
from notifications.messages import message_for
from notifications.notice_wording import (
    CONFIDENTIALITY_LABEL,
    KIND_LABEL,
    OUTCOME_ACKNOWLEDGED,
    OUTCOME_DEFAULTED,
    OUTCOME_RECALLED,
    RECEIPT_LABEL,
    STATUS_LABEL,
    audience_text,
    notice_card_message,
    openers_text,
    published_text,
    rejected_text,
    urge_text,
)
from org.model import Org, is_org_admin
from services.approvals import Workflow
from services.directory import Directory
from services.links import PersonalLinks
from storage import approval_store
from storage import notice_store as store
from storage.approval_models import OutboxRow
from storage.approval_store import ConcurrentUpdate
from storage.db import Database
from storage.notice_models import NoticeReceiptRow

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
    office_role: str = "hr_manager"  # who approves `notice_publish` (OABOT_OFFICE_ROLE)
    kinds: TimerKinds | None = None  # registers `notice_default`
    workflow: Workflow | None = None  # submits `notice_publish`; None: everything goes out directly


@dataclass(frozen=True)
class _Staged:
    """A notice waiting for its `notice_publish` submission's transaction to write it."""

    notice: Notice
    password_hash: str | None
    channel: str
    idem: str | None = None  # the create's idempotency key, stored with the notice


class _StatusChanged(Exception):
    """The notice was recalled while a receipt was being opened: roll the open back."""


def new_notice_id(now: datetime) -> str:
    """`n<yyyymmdd>-<8 hex>`, like request ids."""
    return f"n{now:%Y%m%d}-{uuid.uuid4().hex[:8]}"


class Notices:
    def __init__(self, deps: NoticesDeps) -> None:
        self.d = deps
        self._staged: dict[str, _Staged] = {}
        # Run in the publish transaction after the receipts and cards are written, e.g.
        # `NoticeResponses.schedule_meeting_reminders(session, notice, now)` (added by the wiring).
        self.publish_hooks: list[Callable[[AsyncSession, Notice, datetime], Awaitable[object]]] = []
        if deps.kinds is not None:
            deps.kinds.register(TimerKind.NOTICE_DEFAULT, self.fire_default)

    async def org(self) -> Org:
        return await self.d.directory.org()

    def _is_admin(self, org: Org, person: str) -> bool:
        return is_org_admin(org.user(person), self.d.admin_roles)

    # -- publishing ---------------------------------------------------------------------------
    async def create(
        self, *, author: str, draft: NoticeDraft, channel: str = "web", idempotency_key: str | None = None
    ) -> NoticeView:
        """Check the draft (audience, confidentiality, parts) and publish it at once, or submit
        it to the office (`notice_publish`) when the rules say so.

        `idempotency_key` (per author, in the idempotency table requests use): a repeat, or a
        call racing the first, writes nothing and answers with the notice the first one made."""
        org = await self.org()
        idem = f"notice:{author}:{idempotency_key}" if idempotency_key else None
        if idem and (earlier := await self._remembered(idem)) is not None:
            return await self._read(org, author, earlier, channel, unlocked=False, record=False)
        now = self.d.now()
        rules = self.d.rules
        if not org.is_active(author):
            raise NoticeInvalid("notice_invalid.author", user=author)
        notices_rules.check_draft(
            title=draft.title,
            body=draft.body,
            kind=draft.kind,
            now=now,
            ack_deadline=draft.ack_deadline,
            pinned_until=draft.pinned_until,
            has_meeting=draft.meeting is not None,
            has_poll=draft.poll is not None,
        )
        if draft.poll is not None:
            notices_rules.check_poll(draft.poll)
        if draft.meeting is not None:
            notices_rules.check_meeting(draft.meeting, now=now)
        notices_rules.check_confidentiality(
            draft.confidentiality, named_only=draft.named_only, audience=draft.audience, rules=rules
        )
        recipients = notices_rules.resolve_audience(org, draft.audience, exclude=(author,))
        password_hash = _password_hash(draft.password) if draft.password else None
        notice = Notice(
            id=new_notice_id(now),
            kind=draft.kind,
            title=draft.title.strip(),
            body=draft.body,
            author=author,
            audience=draft.audience,
            recipients=(),
            confidentiality=draft.confidentiality,
            named_only=draft.named_only,
            has_password=password_hash is not None,
            status=NoticeStatus.PENDING_APPROVAL,
            created_at=now,
            ack_deadline=draft.ack_deadline,
            pinned_until=draft.pinned_until,
            meeting=draft.meeting,
            poll=draft.poll,
        )
        approval = self.d.workflow is not None and notices_rules.needs_approval(
            org, author=author, kind=draft.kind, audience=draft.audience, rules=rules
        )
        if approval:
            await self._submit(notice, password_hash, channel, org, len(recipients), idem, idempotency_key)
        else:
            try:
                async with self.d.db.transaction() as s:
                    await store.insert_notice(
                        s, notice=notice, password_hash=password_hash, channel=channel, now=now
                    )
                    await self._event(s, notice.id, NoticeEventKind.CREATED, author, channel, now)
                    await self._publish_in(s, notice.id, org, now, actor=author, channel=channel)
                    if idem:
                        await self._remember(s, idem, notice.id, now)
            except approval_store.IdempotencyConflict:
                pass  # a call with the same key won the race: its notice is the answer
        made = (await self._remembered(idem) if idem else None) or notice.id
        if made != notice.id:
            return await self._read(org, author, made, channel, unlocked=False, record=False)
        logger.info(
            "notice created",
            extra={
                "notice_id": notice.id,
                "author": author,
                "approval": approval,
                "recipients": len(recipients),
            },
        )
        return await self._read(org, author, notice.id, channel, unlocked=False, record=False)

    async def _remembered(self, idem: str) -> str | None:
        """The notice an idempotency key made, if any."""
        async with self.d.db.session() as s:
            stored = await approval_store.idempotent_response(s, key=idem)
        return str(stored["notice_id"]) if stored and stored.get("notice_id") else None

    @staticmethod
    async def _remember(session: AsyncSession, idem: str, notice_id: str, now: datetime) -> None:
        """Store the key with the notice it made, in the notice's own transaction
        (IdempotencyConflict when a racing call stored it first)."""
        await approval_store.remember_response(
            session, key=idem, request_id=notice_id, response={"notice_id": notice_id}, now=now
        )

    async def _submit(
        self,
        notice: Notice,
        password_hash: str | None,
        channel: str,
        org: Org,
        count: int,
        idem: str | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        """Submit the `notice_publish` request; its transaction writes the notice (the hook)."""
        workflow = self.d.workflow
        assert workflow is not None
        office = org.role_holders(self.d.office_role) or org.role_holders("hr_manager")
        form = {
            "notice_id": notice.id,
            "kind": KIND_LABEL[notice.kind],
            "subject": notice.title,
            "audience": audience_text(org, notice.audience)[:2000],
            "confidentiality": CONFIDENTIALITY_LABEL[notice.confidentiality],
            "recipients": count,
            # a restricted or password-protected text stays on its page, out of the request
            "summary": ""
            if self._restricted(notice) or password_hash is not None
            else " ".join(notice.body.split())[:500],
            "office": office,
        }
        self._staged[notice.id] = _Staged(notice, password_hash, channel, idem)
        try:
            # With a key, the request is keyed too: of two racing calls, the one whose notice
            # key is taken gets the winner's request back from the workflow (nothing written).
            await workflow.submit(
                template_key=PUBLISH_TEMPLATE,
                initiator=notice.author,
                form=form,
                channel=channel if channel in _CHANNELS else Channel.API.value,
                idempotency_key=f"{PUBLISH_TEMPLATE}:{idempotency_key}" if idempotency_key else None,
            )
        finally:
            self._staged.pop(notice.id, None)

    async def check_submission(
        self, session: AsyncSession, req: Request, template: Template, org: Org, now: datetime
    ) -> None:
        """`Workflow` validator: only this service submits `notice_publish` (while publishing a
        notice); a person filing it by hand is refused: notices are published in 通知."""
        if template.key == PUBLISH_TEMPLATE and str(req.form.get("notice_id")) not in self._staged:
            raise ActionNotAllowed("action_not_allowed.system_template", template=template.name)

    async def on_approval_outcome(
        self, session: AsyncSession, out: Outcome, template: Template, org: Org, now: datetime
    ) -> None:
        """`Workflow` hook: a `notice_publish` request approved publishes its notice, rejected
        (or withdrawn, terminated) tells the author why; in the request's own transaction."""
        if template.key != PUBLISH_TEMPLATE:
            return
        req = out.request
        staged = self._staged.pop(str(req.form.get("notice_id")), None)
        if staged is not None:
            notice = replace(staged.notice, approval_request=req.id)
            await store.insert_notice(
                session, notice=notice, password_hash=staged.password_hash, channel=staged.channel, now=now
            )
            await self._event(session, notice.id, NoticeEventKind.CREATED, notice.author, staged.channel, now)
            await self._event(
                session,
                notice.id,
                NoticeEventKind.SUBMITTED,
                notice.author,
                staged.channel,
                now,
                request_id=req.id,
            )
            if staged.idem:
                await self._remember(session, staged.idem, notice.id, now)
        row = await store.notice_by_request(session, request_id=req.id)
        if row is None or row.status != NoticeStatus.PENDING_APPROVAL.value:
            return  # not a notice's request (made by hand), or decided already
        if req.status == RequestStatus.APPROVED:
            decided = _last_decision(req)
            await self._event(
                session,
                row.id,
                NoticeEventKind.APPROVED,
                decided[0] if decided else "system",
                "system",
                now,
                request_id=req.id,
            )
            count = await self._publish_in(session, row.id, org, now, actor="system", channel="system")
            if staged is None:  # approved later by the office: tell the author it went out
                notice = store.notice_of(row)
                await self._tell(session, row.author, published_text(notice, recipients=count), row.id, now)
        elif req.status in (RequestStatus.REJECTED, RequestStatus.WITHDRAWN, RequestStatus.TERMINATED):
            decided = _last_decision(req)
            reason = decided[1] if decided else None
            if not await store.update_notice(
                session,
                notice_id=row.id,
                version=row.version,
                now=now,
                status=NoticeStatus.REJECTED.value,
                reject_reason=reason,
            ):
                raise ConcurrentUpdate(row.id)
            await self._event(
                session,
                row.id,
                NoticeEventKind.REJECTED,
                decided[0] if decided else "system",
                "system",
                now,
                request_id=req.id,
                status=req.status.value,
                reason=reason,
            )
            if req.status != RequestStatus.WITHDRAWN:
                notice = store.notice_of(row)
                await self._tell(session, row.author, rejected_text(notice, reason=reason), row.id, now)

    async def _publish_in(
        self, session: AsyncSession, notice_id: str, org: Org, now: datetime, *, actor: str, channel: str
    ) -> int:
        """Resolve the audience now (and store it), write a receipt and a card per recipient,
        the trail and the default timer. The number of recipients."""
        stored = await store.load_notice(session, notice_id=notice_id)
        assert stored is not None
        notice = stored.notice
        people = notices_rules.resolve_audience(org, notice.audience, exclude=(notice.author,))
        deadline = (
            notice.ack_deadline
            if notice.ack_deadline and notice.ack_deadline > now
            else self.ack_deadline(now)
        )
        if not await store.update_notice(
            session,
            notice_id=notice.id,
            version=notice.version,
            now=now,
            status=NoticeStatus.PUBLISHED.value,
            published_at=now,
            ack_deadline=deadline,
        ):
            raise ConcurrentUpdate(notice.id)
        notice = replace(notice, status=NoticeStatus.PUBLISHED, published_at=now, ack_deadline=deadline)
        receipts = await store.insert_receipts(session, notice_id=notice.id, people=people, now=now)
        for r in receipts:
            await self._send_card(session, notice, org, r, now)
        await self._event(
            session,
            notice.id,
            NoticeEventKind.PUBLISHED,
            actor,
            channel,
            now,
            recipients=len(people),
            ack_deadline=deadline.isoformat(),
        )
        await timers.schedule_once(
            session,
            kind=TimerKind.NOTICE_DEFAULT,
            key=_default_key(notice.id),
            due_at=deadline,
            now=now,
            ref=notice.id,
        )
        for hook in self.publish_hooks:
            await hook(session, notice, now)
        return len(people)

    def ack_deadline(self, published_at: datetime) -> datetime:
        """When an unanswered receipt defaults to received: the end of the working day
        `NoticeRules.ack_working_days` working days after publishing (the org's calendar)."""
        calendar = self.d.calendar.current
        return notices_rules.ack_deadline(
            published_at,
            tz=self.d.tz,
            is_working_day=calendar.is_working_day,
            day_end=calendar.periods[-1][1],
            working_days=self.d.rules.ack_working_days,
        ).astimezone(UTC)

    def _restricted(self, notice: Notice) -> bool:
        return notices_rules.is_restricted(
            notice.confidentiality, named_only=notice.named_only, rules=self.d.rules
        )

    # -- reading ------------------------------------------------------------------------------
    async def load(self, notice_id: str) -> Notice:
        """The stored notice (with its recipients); NoticeNotFound."""
        async with self.d.db.session() as s:
            stored = await store.load_notice(s, notice_id=notice_id)
        if stored is None:
            raise NoticeNotFound(notice_id=notice_id)
        return stored.notice

    async def get(self, *, viewer: str, notice_id: str, channel: str = "web") -> NoticeView:
        """The notice as `viewer` may see it; a recipient's first view records opened (with the
        channel); every view of a restricted item is recorded. Recipients, the author and org
        admins only (a restricted item's content: recipients and the author only)."""
        org = await self.org()
        try:
            return await self._read(org, viewer, notice_id, channel, unlocked=False)
        except _StatusChanged:
            return await self._read(org, viewer, notice_id, channel, unlocked=False, record=False)

    async def unlock(self, *, viewer: str, notice_id: str, password: str, channel: str = "web") -> NoticeView:
        """Give the access password: the notice with its body (the open recorded), or
        WrongPassword (tries left) / LockedOut (until when); every try is in the trail."""
        org = await self.org()
        now = self.d.now()
        refusal: NoticeError | None = None
        async with self.d.db.transaction() as s:
            stored = await store.load_notice(s, notice_id=notice_id)
            if stored is None:
                raise NoticeNotFound(notice_id=notice_id)
            # locked: guesses sent at once are counted one after another, never past the limit
            row = await store.receipt_row(s, notice_id=notice_id, person=viewer, for_update=True)
            if stored.notice.author == viewer or stored.password_hash is None:
                pass  # nothing to unlock
            elif row is None:
                raise NotRecipient(notice_id=notice_id)
            else:
                if notices_rules.is_locked(row.locked_until, now):
                    assert row.locked_until is not None
                    raise LockedOut(
                        until=row.locked_until, shown={"until_local": row.locked_until.astimezone(self.d.tz)}
                    )
                if _password_matches(password, stored.password_hash):
                    await store.set_password_state(
                        s, notice_id=notice_id, person=viewer, failures=0, locked_until=None
                    )
                    await self._event(s, notice_id, NoticeEventKind.UNLOCKED, viewer, channel, now)
                else:
                    failures, locked = notices_rules.after_wrong_password(
                        row.password_failures, now, self.d.rules
                    )
                    await store.set_password_state(
                        s, notice_id=notice_id, person=viewer, failures=failures, locked_until=locked
                    )
                    await self._event(s, notice_id, NoticeEventKind.UNLOCK_FAILED, viewer, channel, now)
                    if locked is not None:
                        await self._event(
                            s, notice_id, NoticeEventKind.LOCKED, viewer, channel, now, until=locked
                        )
                        refusal = LockedOut(until=locked, shown={"until_local": locked.astimezone(self.d.tz)})
                    else:
                        left = self.d.rules.password_tries - failures
                        refusal = WrongPassword(notice_id=notice_id, tries_left=left)
        if refusal is not None:
            raise refusal
        try:
            return await self._read(org, viewer, notice_id, channel, unlocked=True)
        except _StatusChanged:
            return await self._read(org, viewer, notice_id, channel, unlocked=True, record=False)

    async def _read(
        self, org: Org, viewer: str, notice_id: str, channel: str, *, unlocked: bool, record: bool = True
    ) -> NoticeView:
        now = self.d.now()
        async with self.d.db.transaction() as s:
            stored = await store.load_notice(s, notice_id=notice_id)
            if stored is None:
                raise NoticeNotFound(notice_id=notice_id)
            notice = stored.notice
            row = await store.receipt_row(s, notice_id=notice_id, person=viewer)
            is_author = viewer == notice.author
            admin = self._is_admin(org, viewer)
            if row is None and not is_author and not admin:
                raise NotRecipient(notice_id=notice_id)
            restricted = self._restricted(notice)
            locked_until = (
                row.locked_until
                if row is not None and notices_rules.is_locked(row.locked_until, now)
                else None
            )
            needs_password = notice.has_password and not is_author and not unlocked
            may_read = _may_read(
                notice,
                is_author=is_author,
                recipient=row is not None,
                admin=admin,
                unlocked=unlocked,
                restricted=restricted,
            )
            if record and may_read and notice.status == NoticeStatus.PUBLISHED:
                await self._record_view(s, notice, row, viewer, channel, now, restricted)
            row = await store.receipt_row(s, notice_id=notice_id, person=viewer)
            progress = (await store.progress_of(s, notice_ids=[notice_id])).get(notice_id, {})
        return self._view(
            org,
            notice,
            viewer=viewer,
            row=row,
            progress=progress,
            body=notice.body if may_read else None,
            needs_password=needs_password and row is not None,
            locked_until=locked_until,
            restricted=restricted,
        )

    async def _record_view(
        self,
        s: AsyncSession,
        notice: Notice,
        row: NoticeReceiptRow | None,
        viewer: str,
        channel: str,
        now: datetime,
        restricted: bool,
    ) -> None:
        """A recipient's view (`_record_open`), or anyone else's view of a restricted item."""
        if row is not None:
            await self._record_open(s, notice, row, channel, now, restricted)
        elif restricted:
            await store.add_view(s, notice_id=notice.id, person=viewer, at=now, channel=channel)
            await self._event(s, notice.id, NoticeEventKind.VIEWED, viewer, channel, now)

    async def _record_open(
        self,
        s: AsyncSession,
        notice: Notice,
        row: NoticeReceiptRow,
        channel: str,
        now: datetime,
        restricted: bool,
    ) -> None:
        """A recipient's view: opened the first time, and every view of a restricted item."""
        first = await store.move_receipt(
            s,
            notice_id=notice.id,
            person=row.person,
            from_states=notices_rules.move_from(ReceiptState.OPENED),
            values={"state": ReceiptState.OPENED.value, "opened_at": now, "opened_via": channel[:16]},
        )
        if first:
            if await store.notice_status(s, notice_id=notice.id) != NoticeStatus.PUBLISHED.value:
                raise _StatusChanged(notice.id)  # recalled meanwhile: nothing is recorded
            await self._event(s, notice.id, NoticeEventKind.OPENED, row.person, channel, now)
        if restricted:
            await store.add_view(s, notice_id=notice.id, person=row.person, at=now, channel=channel)
            if not first:
                await self._event(s, notice.id, NoticeEventKind.VIEWED, row.person, channel, now)

    # -- recipients added later (a meeting's 委派 delegate) ------------------------------------
    async def add_recipient_in(
        self,
        session: AsyncSession,
        *,
        notice_id: str,
        person: str,
        added_by: str,
        now: datetime,
        channel: str = "web",
        org: Org | None = None,
    ) -> Receipt | None:
        """Inside the caller's transaction (`services.notice_responses`' 委派): address `person`
        too, with a receipt recording who added them, their own card, and the trail. None when
        they were addressed already (nothing written)."""
        org = org or await self.org()
        if not org.is_active(person):
            raise AudienceInvalid("audience_invalid.person", person=person)
        if await store.receipt_row(session, notice_id=notice_id, person=person) is not None:
            return None
        stored = await store.load_notice(session, notice_id=notice_id)
        if stored is None:
            raise NoticeNotFound(notice_id=notice_id)
        notice = stored.notice
        if notice.status != NoticeStatus.PUBLISHED:
            raise _not_published(notice)
        (receipt,) = await store.insert_receipts(
            session, notice_id=notice_id, people=[person], now=now, added_by=added_by
        )
        await self._send_card(session, notice, org, receipt, now)
        await self._event(
            session, notice_id, NoticeEventKind.DELEGATED, added_by, channel, now, person=person
        )
        return receipt

    # -- answering ----------------------------------------------------------------------------
    async def acknowledge(self, *, person: str, notice_id: str, channel: str = "web") -> ReceiptView:
        """已收到: records acknowledged (and opened, if it was not) and closes the person's card
        in place; a second 已收到, or one after the default, is refused and changes nothing."""
        org = await self.org()
        now = self.d.now()
        async with self.d.db.transaction() as s:
            stored = await store.load_notice(s, notice_id=notice_id)
            if stored is None:
                raise NoticeNotFound(notice_id=notice_id)
            notice = stored.notice
            row = await store.receipt_row(s, notice_id=notice_id, person=person)
            if row is None:
                raise NotRecipient(notice_id=notice_id)
            if notice.status != NoticeStatus.PUBLISHED:
                raise _not_published(notice)
            current = store.receipt_of(row)
            moved = notices_rules.move_receipt(
                current, ReceiptState.ACKNOWLEDGED, now=now, channel=channel[:16]
            )
            ok = await store.move_receipt(
                s,
                notice_id=notice_id,
                person=person,
                from_states=notices_rules.move_from(ReceiptState.ACKNOWLEDGED),
                values={
                    "state": moved.state.value,
                    "acknowledged_at": moved.acknowledged_at,
                    "acknowledged_via": moved.acknowledged_via,
                    "opened_at": moved.opened_at,
                    "opened_via": moved.opened_via,
                },
            )
            if not ok:  # answered meanwhile (another tap, the default timer)
                await s.refresh(row)
                raise _already(store.receipt_of(row))
            if current.opened_at is None:
                if await store.notice_status(s, notice_id=notice_id) != NoticeStatus.PUBLISHED.value:
                    raise _not_published(replace(notice, status=NoticeStatus.RECALLED))
                await self._event(s, notice_id, NoticeEventKind.OPENED, person, channel, now)
            await self._event(s, notice_id, NoticeEventKind.ACKNOWLEDGED, person, channel, now)
            await self._close_card(s, notice, org, current, OUTCOME_ACKNOWLEDGED, now)
        logger.info("notice acknowledged", extra={"notice_id": notice_id, "user": person, "channel": channel})
        return self._receipt_view(org, moved)

    async def tap(self, *, person: str, task_id: str, channel: str) -> str | None:
        """A card's 已收到 tap: None when it was recorded (the card closes in place), else the
        words to answer in chat (a repeated or stale tap changes nothing)."""
        parsed = parse_card_task_id(task_id)
        if parsed is None:
            return message_for(NoticeNotFound("notice_not_found.card"))
        notice_id, card_no = parsed
        async with self.d.db.session() as s:
            row = await store.receipt_row(s, notice_id=notice_id, person=person)
        if row is None or row.card_no != card_no:
            return message_for(NotRecipient("not_recipient.card", notice_id=notice_id))
        try:
            await self.acknowledge(person=person, notice_id=notice_id, channel=channel)
        except NoticeError as exc:
            return message_for(exc)
        return None

    # -- the author's side --------------------------------------------------------------------
    async def recall(self, *, author: str, notice_id: str) -> NoticeView:
        """收回 while nobody opened it; cards updated in place to 已收回. Refused, naming who
        opened it and when, once anyone did."""
        org = await self.org()
        now = self.d.now()
        withdraw: str | None = None
        async with self.d.db.transaction() as s:
            stored = await store.load_notice(s, notice_id=notice_id, for_update=True)
            if stored is None:
                raise NoticeNotFound(notice_id=notice_id)
            notice = stored.notice
            if author != notice.author and not self._is_admin(org, author):
                raise NotAuthor("not_author.recall", notice_id=notice_id)
            if notice.status in (NoticeStatus.RECALLED, NoticeStatus.REJECTED):
                raise _not_published(notice)
            # Lock every receipt first: an open racing this recall either ends before (and is
            # seen below) or finds the notice recalled and rolls back.
            await store.touch_receipts(s, notice_id=notice_id, states=tuple(ReceiptState))
            receipts = await store.receipts_of(s, notice_id=notice_id)
            try:
                notices_rules.check_recall(notice, receipts)
            except RecallRefused as exc:
                openers = exc.context["openers"]
                raise RecallRefused(
                    notice_id=notice_id,
                    openers=[(p, at.isoformat()) for p, at in openers],
                    shown={"openers_text": openers_text(org, openers, self.d.tz), "count": len(openers)},
                ) from None
            if not await store.update_notice(
                s,
                notice_id=notice_id,
                version=notice.version,
                now=now,
                status=NoticeStatus.RECALLED.value,
                recalled_at=now,
            ):
                raise NoticeBusy(notice_id=notice_id)
            await self._event(s, notice_id, NoticeEventKind.RECALLED, author, "web", now)
            await timers.cancel_by_key(s, key=_default_key(notice_id), now=now)
            for r in receipts:
                await self._close_card(s, notice, org, r, OUTCOME_RECALLED, now)
            if notice.status == NoticeStatus.PENDING_APPROVAL:
                withdraw = notice.approval_request
        if withdraw is not None and self.d.workflow is not None:
            await self._withdraw_request(withdraw, notice.author)
        logger.info("notice recalled", extra={"notice_id": notice_id, "user": author})
        return await self._read(org, author, notice_id, "web", unlocked=False, record=False)

    async def _withdraw_request(self, request_id: str, initiator: str) -> None:
        """A notice recalled while the office had it: its request is withdrawn too."""
        assert self.d.workflow is not None
        try:
            await self.d.workflow.act(
                request_id=request_id,
                action=Action(kind=ActionKind.WITHDRAW, actor=initiator, channel=Channel.SYSTEM),
            )
        except ApprovalError:
            logger.warning("notice_publish request not withdrawn", extra={"request_id": request_id})

    async def receipts(self, *, viewer: str, notice_id: str) -> ReceiptsView:
        """The author's (or an org admin's) progress: x of y acknowledged, who has not, who
        defaulted, the views of a restricted item, and the trail."""
        org = await self.org()
        now = self.d.now()
        async with self.d.db.session() as s:
            stored = await store.load_notice(s, notice_id=notice_id)
            if stored is None:
                raise NoticeNotFound(notice_id=notice_id)
            notice = stored.notice
            if viewer != notice.author and not self._is_admin(org, viewer):
                raise NotAuthor("not_author.receipts", notice_id=notice_id)
            receipts = await store.receipts_of(s, notice_id=notice_id)
            views = await store.views_of(s, notice_id=notice_id)
            events = await store.events_of(s, notice_id=notice_id)
        shown = [self._receipt_view(org, r) for r in receipts]
        order = {
            ReceiptState.SENT: 0,
            ReceiptState.OPENED: 1,
            ReceiptState.DEFAULTED: 2,
            ReceiptState.ACKNOWLEDGED: 3,
        }
        shown.sort(key=lambda v: (order[v.state], v.name, v.person))
        count = Counter(r.state for r in receipts)
        retry = notices_rules.urge_retry_at(notice.urged_at, now, self.d.rules)
        unanswered = count[ReceiptState.SENT] + count[ReceiptState.OPENED]
        return ReceiptsView(
            notice_id=notice.id,
            title=notice.title,
            status=notice.status,
            total=len(receipts),
            acknowledged=count[ReceiptState.ACKNOWLEDGED],
            defaulted=count[ReceiptState.DEFAULTED],
            opened=count[ReceiptState.OPENED],
            unanswered=unanswered,
            receipts=shown,
            pending=[v for v in shown if not v.state.answered],
            defaulted_people=[v for v in shown if v.state == ReceiptState.DEFAULTED],
            views=[ViewRecord(v.person, org.display_name(v.person), v.at, v.channel) for v in views],
            trail=[
                NoticeEventView(
                    at=e.at,
                    kind=e.kind.value,
                    actor=e.actor,
                    actor_name=org.display_name(e.actor) if e.actor and e.actor != "system" else "系统",
                    channel=e.channel,
                    data=e.data,
                )
                for e in events
            ],
            can_urge=notice.status == NoticeStatus.PUBLISHED and unanswered > 0 and retry is None,
            urge_retry_at=retry,
            can_recall=notice.status in (NoticeStatus.PUBLISHED, NoticeStatus.PENDING_APPROVAL)
            and all(r.opened_at is None for r in receipts),
        )

    async def urge(self, *, author: str, notice_id: str) -> Urged:
        """催办: remind only those who have not answered, at most once per 30 minutes per notice."""
        org = await self.org()
        now = self.d.now()
        async with self.d.db.transaction() as s:
            stored = await store.load_notice(s, notice_id=notice_id, for_update=True)
            if stored is None:
                raise NoticeNotFound(notice_id=notice_id)
            notice = stored.notice
            if author != notice.author and not self._is_admin(org, author):
                raise NotAuthor("not_author.urge", notice_id=notice_id)
            if notice.status != NoticeStatus.PUBLISHED:
                raise _not_published(notice)
            retry = notices_rules.urge_retry_at(notice.urged_at, now, self.d.rules)
            if retry is not None:
                raise UrgeTooSoon(
                    retry_at=retry, notice_id=notice_id, shown={"retry_local": retry.astimezone(self.d.tz)}
                )
            people = [
                r.person for r in await store.receipts_of(s, notice_id=notice_id) if not r.state.answered
            ]
            if not people:
                raise NothingToUrge(notice_id=notice_id)
            if not await store.update_notice(
                s, notice_id=notice_id, version=notice.version, now=now, urged_at=now
            ):
                raise UrgeTooSoon(
                    retry_at=now + self.d.rules.urge_interval,
                    notice_id=notice_id,
                    shown={"retry_local": (now + self.d.rules.urge_interval).astimezone(self.d.tz)},
                )
            text = urge_text(notice, author_name=org.display_name(author))
            for person in people:
                await self._tell(s, person, text, notice_id, now)
            await self._event(s, notice_id, NoticeEventKind.URGED, author, "web", now, people=people)
        logger.info("notice urged", extra={"notice_id": notice_id, "user": author, "reminded": len(people)})
        return Urged(reminded=people, names=[org.display_name(p) for p in people])

    # -- lists --------------------------------------------------------------------------------
    async def list_for(
        self, *, person: str, unanswered_only: bool = False, limit: int = 50
    ) -> list[NoticeSummary]:
        """The notices addressed to `person`, newest first (recalled ones too, marked so)."""
        org = await self.org()
        now = self.d.now()
        states = (ReceiptState.SENT, ReceiptState.OPENED) if unanswered_only else None
        statuses = (
            (NoticeStatus.PUBLISHED,) if unanswered_only else (NoticeStatus.PUBLISHED, NoticeStatus.RECALLED)
        )
        async with self.d.db.session() as s:
            rows = await store.notices_for(s, person=person, states=states, statuses=statuses, limit=limit)
            progress = await store.progress_of(s, notice_ids=[n.id for n, _ in rows])
        return [
            self._summary(org, store.notice_of(n), progress.get(n.id, {}), now, ReceiptState(r.state))
            for n, r in rows
        ]

    async def list_authored(self, *, author: str, limit: int = 50) -> list[NoticeSummary]:
        org = await self.org()
        now = self.d.now()
        async with self.d.db.session() as s:
            rows = await store.notices_by(s, author=author, limit=limit)
            progress = await store.progress_of(s, notice_ids=[n.id for n in rows])
        return [self._summary(org, store.notice_of(n), progress.get(n.id, {}), now, None) for n in rows]

    async def any_notices(self) -> bool:
        """Whether any notice was ever written (any status)."""
        async with self.d.db.session() as s:
            return await store.count_notices(s) > 0

    def working_days_ahead(self, count: int) -> list[date]:
        """The next `count` working days after today (the org's calendar, 调休 included)."""
        calendar = self.d.calendar.current
        day = self.d.now().astimezone(self.d.tz).date()
        found: list[date] = []
        for _ in range(count * 7 + 30):  # a long holiday is at most a few weeks
            day += timedelta(days=1)
            if calendar.is_working_day(day):
                found.append(day)
                if len(found) == count:
                    break
        return found

    def working_periods(self) -> tuple[tuple[time, time], ...]:
        """A working day's periods, wall-clock times in the org's timezone."""
        return self.d.calendar.current.periods

    async def unanswered_for(self, person: str) -> list[NoticeSummary]:
        return await self.list_for(person=person, unanswered_only=True, limit=200)

    async def digest_items(self) -> list[NoticeItem]:
        """Every unanswered receipt of a published notice, for the 10:00 / 15:30 digests."""
        org = await self.org()
        async with self.d.db.session() as s:
            rows = await store.unanswered(s)
        return [
            NoticeItem(
                notice_id=n.id,
                recipient=r.person,
                kind_label=KIND_LABEL[NoticeKind(n.kind)],
                title=n.title,
                author_name=org.display_name(n.author),
                published_at=n.published_at,
                ack_deadline=n.ack_deadline,
            )
            for n, r in rows
        ]

    # -- the default 已收到 timer ---------------------------------------------------------------
    async def fire_default(self, timer: Timer) -> FireResult:
        """The deadline passed: every unanswered receipt becomes defaulted (once, whatever the
        replicas: the claim and the conditional update), recorded, and its card closed."""
        org = await self.org()
        now = self.d.now()
        notice_id = timer.ref or ""
        async with self.d.db.transaction() as s:
            if not await timers.finish(s, timer, now=now):
                return FireResult.LOST
            stored = await store.load_notice(s, notice_id=notice_id)
            if stored is None or stored.notice.status != NoticeStatus.PUBLISHED:
                await timers.set_status(s, timer.id, status=TimerStatus.CANCELLED)
                return FireResult.CANCELLED
            notice = stored.notice
            before = {r.person: r for r in await store.receipts_of(s, notice_id=notice_id)}
            people = await store.move_all(
                s,
                notice_id=notice_id,
                from_states=notices_rules.move_from(ReceiptState.DEFAULTED),
                values={"state": ReceiptState.DEFAULTED.value, "defaulted_at": now},
            )
            for person in people:
                await self._event(
                    s, notice_id, NoticeEventKind.DEFAULTED, "system", "system", now, person=person
                )
                await self._close_card(s, notice, org, before[person], OUTCOME_DEFAULTED, now)
        logger.info("notice receipts defaulted", extra={"notice_id": notice_id, "defaulted": len(people)})
        return FireResult.FIRED

    # -- helpers ------------------------------------------------------------------------------
    async def _event(
        self,
        session: AsyncSession,
        notice_id: str,
        kind: NoticeEventKind,
        actor: str | None,
        channel: str,
        now: datetime,
        **data: Any,
    ) -> None:
        await store.add_event(
            session,
            event=NoticeEvent(
                notice_id=notice_id, at=now, kind=kind, actor=actor, channel=channel, data=data
            ),
        )

    async def _send_card(
        self, session: AsyncSession, notice: Notice, org: Org, r: Receipt, now: datetime
    ) -> None:
        """A recipient's card (`task_card` shape), linking through their own signed link."""
        await self._card_row(session, notice, org, r, now, outcome=None)

    async def _close_card(
        self, session: AsyncSession, notice: Notice, org: Org, receipt: Receipt, outcome: str, now: datetime
    ) -> None:
        """The person's card, closed in place with `outcome` (已收到 / 默认已收到 / 已收回)."""
        await self._card_row(session, notice, org, receipt, now, outcome=outcome)

    async def _card_row(
        self,
        session: AsyncSession,
        notice: Notice,
        org: Org,
        r: Receipt,
        now: datetime,
        *,
        outcome: str | None,
    ) -> None:
        """The outbox row of a person's card: new (`task_card`), or closed with `outcome`."""
        link = await self.d.links.url(r.person, notice_page(notice.id), session=session)
        kind, task_id, payload = notice_card_message(
            notice,
            card_no=r.card_no,
            org=org,
            tz=self.d.tz,
            link=link,
            restricted=self._restricted(notice),
            outcome=outcome,
        )
        session.add(
            OutboxRow.due_now(kind=kind, recipient=r.person, task_id=task_id, payload=payload, now=now)
        )

    async def _tell(
        self, session: AsyncSession, person: str, text: str, notice_id: str, now: datetime
    ) -> None:
        link = await self.d.links.url(person, notice_page(notice_id), session=session)
        session.add(
            OutboxRow.due_now(
                kind="text",
                recipient=person,
                payload={"text": text, "notice_id": notice_id, "link": link},
                now=now,
            )
        )

    def _receipt_view(self, org: Org, r: Receipt) -> ReceiptView:
        user = org.user(r.person)
        dept = org.department(user.department) if user else None
        return ReceiptView(
            person=r.person,
            name=org.display_name(r.person),
            department=dept.name if dept else "",
            state=r.state,
            state_label=RECEIPT_LABEL[r.state],
            opened_at=r.opened_at,
            opened_via=r.opened_via,
            acknowledged_at=r.acknowledged_at,
            acknowledged_via=r.acknowledged_via,
            defaulted_at=r.defaulted_at,
            added_by=r.added_by,
            added_by_name=org.display_name(r.added_by) if r.added_by else None,
        )

    def _view(
        self,
        org: Org,
        notice: Notice,
        *,
        viewer: str,
        row: NoticeReceiptRow | None,
        progress: dict[str, int],
        body: str | None,
        needs_password: bool,
        locked_until: datetime | None,
        restricted: bool,
    ) -> NoticeView:
        mine = store.receipt_of(row) if row is not None else None
        total = sum(progress.values())
        opened_any = progress.get(ReceiptState.SENT.value, 0) < total
        return NoticeView(
            id=notice.id,
            kind=notice.kind,
            kind_label=KIND_LABEL[notice.kind],
            title=notice.title,
            body=body,
            author=notice.author,
            author_name=org.display_name(notice.author),
            status=notice.status,
            status_label=STATUS_LABEL[notice.status],
            confidentiality=notice.confidentiality,
            confidentiality_label=CONFIDENTIALITY_LABEL[notice.confidentiality],
            restricted=restricted,
            named_only=notice.named_only,
            has_password=notice.has_password,
            needs_password=needs_password,
            locked_until=locked_until,
            audience=notice.audience,
            audience_text=audience_text(org, notice.audience),
            created_at=notice.created_at,
            published_at=notice.published_at,
            ack_deadline=notice.ack_deadline,
            pinned_until=notice.pinned_until,
            recalled_at=notice.recalled_at,
            meeting=notice.meeting if body is not None else None,  # content, like the body
            poll=notice.poll if body is not None else None,
            is_author=viewer == notice.author,
            my_receipt=self._receipt_view(org, mine) if mine is not None else None,
            can_acknowledge=mine is not None
            and notice.status == NoticeStatus.PUBLISHED
            and not mine.state.answered,
            can_recall=viewer == notice.author
            and notice.status in (NoticeStatus.PUBLISHED, NoticeStatus.PENDING_APPROVAL)
            and not opened_any,
            total=total,
            acknowledged=progress.get(ReceiptState.ACKNOWLEDGED.value, 0)
            + progress.get(ReceiptState.DEFAULTED.value, 0),
            approval_request=notice.approval_request,
            reject_reason=notice.reject_reason,
        )

    def _summary(
        self, org: Org, notice: Notice, progress: dict[str, int], now: datetime, mine: ReceiptState | None
    ) -> NoticeSummary:
        return NoticeSummary(
            id=notice.id,
            kind=notice.kind,
            kind_label=KIND_LABEL[notice.kind],
            title=notice.title,
            author=notice.author,
            author_name=org.display_name(notice.author),
            status=notice.status,
            status_label=STATUS_LABEL[notice.status],
            restricted=self._restricted(notice),
            published_at=notice.published_at,
            created_at=notice.created_at,
            ack_deadline=notice.ack_deadline,
            pinned=notice.kind == NoticeKind.ANNOUNCEMENT
            and notice.status == NoticeStatus.PUBLISHED
            and (notice.pinned_until is None or notice.pinned_until > now),
            my_state=mine,
            my_state_label=RECEIPT_LABEL[mine] if mine is not None else None,
            total=sum(progress.values()),
            acknowledged=progress.get(ReceiptState.ACKNOWLEDGED.value, 0)
            + progress.get(ReceiptState.DEFAULTED.value, 0),
        )


_CHANNELS = frozenset(c.value for c in Channel)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def _default_key(notice_id: str) -> str:
    return f"notice_default:{notice_id}"


def _password_hash(password: str) -> str:
    """A slow salted hash of an access password: `scrypt$n$r$p$salt$hash`."""
    if not 4 <= len(password) <= 64:
        raise NoticeInvalid("notice_invalid.password", least=4, most=64)
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def _password_matches(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        found = hashlib.scrypt(
            password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except (ValueError, UnicodeError):
        return False
    return scheme == "scrypt" and hmac.compare_digest(found.hex(), digest)


def _may_read(
    notice: Notice, *, is_author: bool, recipient: bool, admin: bool, unlocked: bool, restricted: bool
) -> bool:
    """Who reads the body: the author; a recipient (past the access password, if any); an org
    admin, for anything but a restricted or password-protected item."""
    if is_author:
        return True
    if recipient:
        return unlocked or not notice.has_password
    return admin and not restricted and not notice.has_password


def _last_decision(req: Request) -> tuple[str, str | None] | None:
    """(who, their comment) of the request's latest decision."""
    decided = [t for t in req.tasks if t.decided_at is not None]
    if not decided:
        return None
    last = max(decided, key=lambda t: t.decided_at or req.created_at)
    return (last.decided_by or last.assignee, last.comment)


def _already(receipt: Receipt) -> IllegalReceiptMove:
    """The refusal of a 已收到 that lost the race to another answer."""
    if receipt.state == ReceiptState.DEFAULTED:
        return IllegalReceiptMove("receipt_move.defaulted", current=receipt.state.value)
    if receipt.state == ReceiptState.ACKNOWLEDGED:
        return IllegalReceiptMove("receipt_move.acknowledged", current=receipt.state.value)
    return IllegalReceiptMove(current=receipt.state.value)


def _not_published(notice: Notice) -> NoticeNotPublished:
    return NoticeNotPublished(
        notice_id=notice.id, status=notice.status.value, shown={"status_label": STATUS_LABEL[notice.status]}
    )
