"""The notice vocabulary: kinds, confidentiality levels, statuses, audiences, receipts.

Plain frozen dataclasses and enums that every layer above shares (storage turns them into rows,
services into views, pages into words). No rules live here beyond what a value is (a level's
rank, whether an audience names only people); the rules are in `notices.rules`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 1  # of the meeting / poll JSON stored with a notice

TITLE_MAX = 120
BODY_MAX = 20000


class NoticeKind(StrEnum):
    """通知, 公告 (pinned until an expiry), 会议通知, 调查."""

    NOTICE = "notice"
    ANNOUNCEMENT = "announcement"
    MEETING = "meeting"
    POLL = "poll"


class Confidentiality(StrEnum):
    """公开 < 内部 < 秘密 < 机密 < 绝密 (compare with `rank`)."""

    PUBLIC = "public"
    INTERNAL = "internal"
    SECRET = "secret"
    CONFIDENTIAL = "confidential"
    TOP_SECRET = "top_secret"

    @property
    def rank(self) -> int:
        return CONFIDENTIALITY_ORDER.index(self)

    def at_least(self, other: Confidentiality) -> bool:
        return self.rank >= other.rank


CONFIDENTIALITY_ORDER: tuple[Confidentiality, ...] = (
    Confidentiality.PUBLIC,
    Confidentiality.INTERNAL,
    Confidentiality.SECRET,
    Confidentiality.CONFIDENTIAL,
    Confidentiality.TOP_SECRET,
)


class NoticeStatus(StrEnum):
    PENDING_APPROVAL = "pending_approval"  # waiting for the office (`notice_publish` request)
    PUBLISHED = "published"
    REJECTED = "rejected"  # the office refused it; never published
    RECALLED = "recalled"  # 收回 by its author before anyone opened it


class ReceiptState(StrEnum):
    """sent → opened → acknowledged; sent / opened → defaulted at the deadline (no reply counts
    as received, and that it was defaulted is recorded)."""

    SENT = "sent"
    OPENED = "opened"
    ACKNOWLEDGED = "acknowledged"
    DEFAULTED = "defaulted"

    @property
    def answered(self) -> bool:
        return self in (ReceiptState.ACKNOWLEDGED, ReceiptState.DEFAULTED)


class NoticeEventKind(StrEnum):
    """What the append-only notice trail (`notice_events`) records."""

    CREATED = "created"
    SUBMITTED = "submitted"  # sent to the office for approval
    APPROVED = "approved"
    REJECTED = "rejected"
    PUBLISHED = "published"
    OPENED = "opened"  # a recipient's first open
    VIEWED = "viewed"  # any later view (and every view of a restricted item)
    ACKNOWLEDGED = "acknowledged"
    DEFAULTED = "defaulted"
    RECALLED = "recalled"
    RECALL_REFUSED = "recall_refused"
    URGED = "urged"
    UNLOCK_FAILED = "unlock_failed"
    UNLOCKED = "unlocked"
    LOCKED = "locked"
    # n2 (meetings / polls) records these
    RSVP = "rsvp"
    DELEGATED = "delegated"
    VOTED = "voted"
    REMINDED = "reminded"
    CLOSED = "closed"


class RsvpAnswer(StrEnum):
    """A meeting 回执: 参加 / 不参加 (reason required) / 请假 / 委派他人参加."""

    ATTEND = "attend"
    DECLINE = "decline"
    LEAVE = "leave"
    DELEGATE = "delegate"


class OffsetUnit(StrEnum):
    WORKING_HOURS = "working_hours"
    MINUTES = "minutes"


@dataclass(frozen=True)
class RemindOffset:
    """How long before a meeting starts its attendees are reminded."""

    amount: int
    unit: OffsetUnit


DEFAULT_MEETING_REMINDERS = (
    RemindOffset(1, OffsetUnit.WORKING_HOURS),
    RemindOffset(15, OffsetUnit.MINUTES),
)


@dataclass(frozen=True)
class DeptPick:
    """A department of an audience, with or without its sub-departments."""

    id: str
    with_sub: bool = True


@dataclass(frozen=True)
class Audience:
    """Who a notice is addressed to, as the author picked it (resolved to people at publish)."""

    everyone: bool = False
    departments: tuple[DeptPick, ...] = ()
    levels: tuple[int, ...] = ()
    roles: tuple[str, ...] = ()
    people: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.everyone or self.departments or self.levels or self.roles or self.people)

    @property
    def people_only(self) -> bool:
        """Only named people: nobody is addressed through a group."""
        return not (self.everyone or self.departments or self.levels or self.roles)

    def to_json(self) -> dict[str, Any]:
        return {
            "everyone": self.everyone,
            "departments": [{"id": d.id, "with_sub": d.with_sub} for d in self.departments],
            "levels": list(self.levels),
            "roles": list(self.roles),
            "people": list(self.people),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Audience:
        return cls(
            everyone=bool(data.get("everyone")),
            departments=tuple(
                DeptPick(str(d["id"]), bool(d.get("with_sub", True))) for d in data.get("departments") or ()
            ),
            levels=tuple(int(v) for v in data.get("levels") or ()),
            roles=tuple(str(r) for r in data.get("roles") or ()),
            people=tuple(str(p) for p in data.get("people") or ()),
        )


@dataclass(frozen=True)
class Meeting:
    starts_at: datetime
    ends_at: datetime
    place: str
    agenda: str = ""
    organiser: str = ""
    remind_before: tuple[RemindOffset, ...] = DEFAULT_MEETING_REMINDERS

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "place": self.place,
            "agenda": self.agenda,
            "organiser": self.organiser,
            "remind_before": [{"amount": r.amount, "unit": r.unit.value} for r in self.remind_before],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Meeting:
        return cls(
            starts_at=datetime.fromisoformat(str(data["starts_at"])),
            ends_at=datetime.fromisoformat(str(data["ends_at"])),
            place=str(data.get("place") or ""),
            agenda=str(data.get("agenda") or ""),
            organiser=str(data.get("organiser") or ""),
            remind_before=tuple(
                RemindOffset(int(r["amount"]), OffsetUnit(str(r["unit"])))
                for r in data.get("remind_before") or ()
            ),
        )


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    multiple: bool = False
    options: tuple[str, ...] = ()
    free_text: bool = False


@dataclass(frozen=True)
class Poll:
    questions: tuple[Question, ...]
    anonymous: bool = False
    closes_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "anonymous": self.anonymous,
            "closes_at": self.closes_at.isoformat() if self.closes_at else None,
            "questions": [
                {
                    "id": q.id,
                    "text": q.text,
                    "multiple": q.multiple,
                    "options": list(q.options),
                    "free_text": q.free_text,
                }
                for q in self.questions
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Poll:
        closes = data.get("closes_at")
        return cls(
            anonymous=bool(data.get("anonymous")),
            closes_at=datetime.fromisoformat(str(closes)) if closes else None,
            questions=tuple(
                Question(
                    id=str(q["id"]),
                    text=str(q.get("text") or ""),
                    multiple=bool(q.get("multiple")),
                    options=tuple(str(o) for o in q.get("options") or ()),
                    free_text=bool(q.get("free_text")),
                )
                for q in data.get("questions") or ()
            ),
        )


@dataclass(frozen=True)
class Notice:
    id: str
    kind: NoticeKind
    title: str
    body: str
    author: str
    audience: Audience
    recipients: tuple[str, ...]  # resolved at publish; empty while pending approval
    confidentiality: Confidentiality
    named_only: bool
    has_password: bool
    status: NoticeStatus
    created_at: datetime
    published_at: datetime | None = None
    ack_deadline: datetime | None = None  # aware UTC
    pinned_until: datetime | None = None  # announcements
    recalled_at: datetime | None = None
    meeting: Meeting | None = None
    poll: Poll | None = None
    urged_at: datetime | None = None  # the last 催办
    approval_request: str | None = None  # the `notice_publish` request, when one was needed
    reject_reason: str | None = None
    version: int = 1

    @property
    def restricted(self) -> bool:
        """秘密 and above, or flagged named-people-only: named people only, cards show the title only."""
        return self.named_only or self.confidentiality.at_least(Confidentiality.SECRET)


@dataclass(frozen=True)
class Receipt:
    notice_id: str
    person: str
    state: ReceiptState
    card_no: int  # the n of this person's card id `nt<notice>-<n>`
    opened_at: datetime | None = None
    opened_via: str | None = None  # the channel: web | wecom | dingtalk | console | api
    acknowledged_at: datetime | None = None
    acknowledged_via: str | None = None
    defaulted_at: datetime | None = None
    added_by: str | None = None  # a delegate added via 委派: the person who delegated
    version: int = 1


@dataclass(frozen=True)
class NoticeEvent:
    """One line of a notice's append-only trail."""

    notice_id: str
    at: datetime
    kind: NoticeEventKind
    actor: str | None = None  # a person, or "system"
    channel: str = "system"
    data: dict[str, Any] = field(default_factory=dict)


# -- ids ------------------------------------------------------------------------------------
NOTICE_ID = re.compile(r"^n\d{8}-[0-9a-f]{8}$")
CARD_PREFIX = "nt"
_CARD_ID = re.compile(r"^nt(n\d{8}-[0-9a-f]{8})-(\d{1,6})$")


def card_task_id(notice_id: str, card_no: int) -> str:
    """The task id of a person's card of a notice: `nt<notice id>-<n>` (only [0-9a-z-], so it
    fits WeCom's task_id parts and DingTalk's outTrackId)."""
    return f"{CARD_PREFIX}{notice_id}-{card_no}"


def parse_card_task_id(task_id: str) -> tuple[str, int] | None:
    """(notice id, card number) of a notice card's task id; None for any other task id."""
    m = _CARD_ID.match(task_id)
    return (m.group(1), int(m.group(2))) if m else None


def is_notice_card(task_id: str) -> bool:
    return parse_card_task_id(task_id) is not None
