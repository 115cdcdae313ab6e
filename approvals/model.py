"""The state of approval requests: requests, steps, tasks, delegations, trail events, notices.

Plain dataclasses and the enums of their statuses and actions. Only `approvals.engine` changes
them, and their statuses only through `approvals.transitions`; `storage.approval_store` turns
them into rows and back (the steps go into a JSON state blob marked with
`STATE_SCHEMA_VERSION`). No I/O and no behaviour beyond simple queries of the state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from approvals.definitions import Permission, StepKind, StepMode

STATE_SCHEMA_VERSION = 1


class Urgency(StrEnum):
    NORMAL = "normal"  # 一般: the whole sign-off within 24 h
    IMPORTANT = "important"  # 重要: 12 h
    URGENT = "urgent"  # 紧急: 6 h


URGENCY_HOURS = {Urgency.NORMAL: 24, Urgency.IMPORTANT: 12, Urgency.URGENT: 6}


class RequestStatus(StrEnum):
    RUNNING = "running"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    TERMINATED = "terminated"
    RETURNED = "returned"  # returned to the initiator, waiting for a resubmission


FINAL_STATUSES = frozenset(
    {RequestStatus.APPROVED, RequestStatus.REJECTED, RequestStatus.WITHDRAWN, RequestStatus.TERMINATED}
)


class StepStatus(StrEnum):
    WAITING = "waiting"
    ACTIVE = "active"
    APPROVED = "approved"
    REJECTED = "rejected"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"  # the request ended (withdrawn, returned, terminated) before it finished


class TaskStatus(StrEnum):
    QUEUED = "queued"  # waits for another task (依次, 加签) before it can be acted on
    PENDING = "pending"  # actionable now
    APPROVED = "approved"  # includes handled / read, by the step's label
    REJECTED = "rejected"
    RETURNED = "returned"
    TRANSFERRED = "transferred"
    ACKNOWLEDGED = "acknowledged"  # 知会 task confirmed
    CLOSED = "closed"  # closed by something else: sibling decided, withdrawn, request ended


OPEN_TASK_STATUSES = frozenset({TaskStatus.QUEUED, TaskStatus.PENDING})


class ActionKind(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    RETURN = "return"
    TRANSFER = "transfer"
    ADD_SIGNER = "add_signer"
    WITHDRAW = "withdraw"
    TERMINATE = "terminate"
    URGE = "urge"
    COMMENT = "comment"
    ACKNOWLEDGE = "acknowledge"
    RESUBMIT = "resubmit"
    ARCHIVE = "archive"  # 归档: a finished request becomes read-only and leaves the active lists
    NOTIFY_OTHERS = "notify_others"  # 知会他人: picked people get an FYI card and may read it


# Actions that name a task (and its version); the others act on the request as a whole.
TASK_ACTIONS = frozenset(
    {
        ActionKind.APPROVE,
        ActionKind.REJECT,
        ActionKind.RETURN,
        ActionKind.TRANSFER,
        ActionKind.ADD_SIGNER,
        ActionKind.ACKNOWLEDGE,
    }
)


class SignerPosition(StrEnum):
    BEFORE = "before"  # 前加签: the new signer decides before me
    AFTER = "after"  # 后加签: after I approve, the new signer decides
    ALONGSIDE = "alongside"  # 并加签: alongside me in this step


class Channel(StrEnum):
    API = "api"
    CONSOLE = "console"
    WECOM = "wecom"
    DINGTALK = "dingtalk"
    SYSTEM = "system"


@dataclass
class Task:
    id: str
    request_id: str
    step_index: int
    assignee: str
    permission: Permission
    status: TaskStatus
    created_at: datetime
    version: int = 1
    acting_for: str | None = None  # the delegator when a delegate holds the task
    after_task: str | None = None  # QUEUED until this task is approved
    origin: str = "route"  # route | add_signer | transfer | return
    added_by: str | None = None
    activated_at: datetime | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None  # who really acted (a delegate, or "system")
    comment: str | None = None
    close_reason: str | None = None
    due_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_TASK_STATUSES

    @property
    def gates_step(self) -> bool:
        """知会 tasks never hold a step up; superseded tasks no longer count."""
        return self.permission != Permission.NOTIFY and self.status not in (TaskStatus.TRANSFERRED,)

    def bump(self) -> None:
        self.version += 1


@dataclass
class Step:
    index: int
    key: str
    name: str
    mode: StepMode
    kind: StepKind
    permission: Permission
    action_label: str
    can_reject: bool
    time_limit_hours: float
    assignees: list[str]  # resolved when the route was planned
    status: StepStatus = StepStatus.WAITING
    round: int = 1
    notes: list[str] = field(default_factory=list)  # policy decisions, in words
    superseded: list[str] = field(default_factory=list)  # tasks of an earlier pass (before a return)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class ReaderReason(StrEnum):
    """Why someone who holds no task may read a request."""

    CC = "cc"  # the template's CC 抄送
    NOTIFIED = "notified"  # 知会他人: a participant picked them


@dataclass(frozen=True)
class Reader:
    """Someone who may read a request and never act on it (抄送 / 知会他人), from when, by whom."""

    user: str
    reason: ReaderReason
    at: datetime
    by: str | None = None  # who picked them (知会他人); None for the template's CC


@dataclass
class Request:
    id: str
    template_key: str
    template_version: int
    title: str
    form: dict[str, Any]
    initiator: str
    urgency: Urgency
    status: RequestStatus
    created_at: datetime
    steps: list[Step] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    version: int = 1
    round: int = 1
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    last_seq: int = 0
    last_hash: str = ""
    urged_at: dict[str, datetime] = field(default_factory=dict)  # task id -> last urge
    channel: str = Channel.API
    archived_at: datetime | None = None  # 归档: read-only from then on, out of the active lists
    archived_by: str | None = None
    readers: list[Reader] = field(default_factory=list)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    def reader_ids(self) -> set[str]:
        return {r.user for r in self.readers}

    def task(self, task_id: str) -> Task | None:
        for t in self.tasks:
            if t.id == task_id:
                return t
        return None

    def step_tasks(self, step: Step) -> list[Task]:
        return [t for t in self.tasks if t.step_index == step.index]

    def live_step_tasks(self, step: Step) -> list[Task]:
        """The step's tasks of its current pass (a return to an earlier step starts a new pass)."""
        return [t for t in self.tasks if t.step_index == step.index and t.id not in step.superseded]

    def round_steps(self) -> list[Step]:
        return [s for s in self.steps if s.round == self.round]

    def pending_tasks(self) -> list[Task]:
        return [t for t in self.tasks if t.status == TaskStatus.PENDING]

    def deadline(self) -> datetime:
        return self.created_at + timedelta(hours=URGENCY_HOURS[self.urgency])


@dataclass(frozen=True)
class Delegation:
    """代理: `delegate` acts for `delegator` from `starts_at` until `ends_at`."""

    id: str
    delegator: str
    delegate: str
    starts_at: datetime
    ends_at: datetime
    templates: tuple[str, ...] = ()  # empty = every template
    move_pending: bool = False
    reason: str = ""
    created_at: datetime | None = None
    cancelled_at: datetime | None = None
    source_request: str | None = None  # e.g. the approved leave request that created it

    def covers(self, user: str, template_key: str, at: datetime) -> bool:
        return (
            self.cancelled_at is None
            and self.delegator == user
            and self.starts_at <= at < self.ends_at
            and (not self.templates or template_key in self.templates)
        )


@dataclass(frozen=True)
class TrailEvent:
    """One append-only, hash-chained line of a request's trail 留痕."""

    request_id: str
    seq: int
    kind: str
    at: datetime
    actor: str | None
    acting_for: str | None = None
    channel: str = Channel.API
    task_id: str | None = None
    step_index: int | None = None
    before: str | None = None
    after: str | None = None
    comment: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = ""
    hash: str = ""
    # The keyed seal (`approvals.trail`), added when the event is stored; None on legacy rows.
    key_id: str | None = None
    mac: str | None = None


class NoticeKind(StrEnum):
    TASK_CARD = "task_card"  # a new actionable card for the assignee
    CARD_CLOSED = "card_closed"  # the assignee's card no longer offers buttons
    RESULT = "result"  # the request finished (or was returned): tell the initiator
    CC = "cc"  # the template's CC 抄送: told at submission and/or completion (data `moment`)
    FYI = "fyi"  # 知会他人: a participant asked that this person be told (data `by`, `comment`)
    APPROVED_NOTICE = "approved_notice"  # e.g. the fleet dispatcher, after approval
    URGE = "urge"  # 催办 from the initiator
    PROGRESS = "progress"  # a step completed: tell the initiator (template `progress`)
    TEXT = "text"


@dataclass(frozen=True)
class Notice:
    """Something to tell someone, written to the outbox in the same transaction as the change."""

    kind: NoticeKind
    recipient: str
    request_id: str
    task_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
