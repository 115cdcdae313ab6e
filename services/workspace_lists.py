"""A person's workspace lists (待我处理, 我已处理, 我发起的, 抄送我的) and batch approval 批量同意.

`WorkspaceLists.page` answers one filtered, paginated list with the four tab counts, as typed
views with names and labels resolved; `batch_approve` approves several tasks at once, each still
going through `Workflow.act` with the version the person saw, and answers per task. The phone
pages and the chat commands both call these; neither decides an approval rule (the engine does).
Queries live in `storage.workspace_queries`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from approvals.definitions import Permission, StepKind
from approvals.engine import Action
from approvals.errors import (
    ApprovalError,
    NotAssignee,
    RequestFinished,
    StaleTask,
    TaskAlreadyDecided,
)
from approvals.model import ActionKind, Channel, RequestStatus, Urgency
from notifications.messages import message_for
from notifications.wording import REQUEST_STATUS_LABEL, URGENCY_LABEL, format_duration
from org.model import Org, User
from services.approvals import Workflow
from storage import workspace_queries as queries
from storage.db import Database
from storage.workspace_queries import DelegatedTo, ListCounts, ListRow, ListSlice, RequestFilter

logger = logging.getLogger(__name__)

PAGE_SIZE = 20
BATCH_LIMIT = 50  # tasks in one batch approval


class ListKind(StrEnum):
    TODO = "todo"  # 待我处理
    DONE = "done"  # 我已处理
    MINE = "mine"  # 我发起的
    CC = "cc"  # 抄送我的


LIST_LABEL = {
    ListKind.TODO: "待我处理",
    ListKind.DONE: "我已处理",
    ListKind.MINE: "我发起的",
    ListKind.CC: "抄送我的",
}


@dataclass(frozen=True)
class ListQuery:
    """What the person typed and picked: free text, template key, status code, a date range in
    the organisation's calendar (request submission dates, both ends included), the page (1-based)."""

    text: str = ""
    template: str = ""
    status: str = ""
    date_from: date | None = None
    date_to: date | None = None
    page: int = 1
    archived: bool = False  # 已归档: only archived requests (the lists leave them out otherwise)


@dataclass(frozen=True)
class ListItem:
    """One line of a list, ready to show."""

    request_id: str
    template: str
    template_name: str
    title: str
    initiator: str
    initiator_name: str
    status: RequestStatus
    status_label: str
    urgency: Urgency
    urgency_label: str
    created_at: datetime
    finished_at: datetime | None
    at: datetime | None  # activated (待我处理), my last decision, the CC, or the submission
    age: str  # how long ago `at` was, in words (待我处理: how long it has waited)
    task_id: str | None = None
    version: int | None = None
    step_name: str = ""
    acting_for_name: str = ""  # 待我处理: the person this task is held for (代…)
    due_at: datetime | None = None
    overdue: bool = False
    batchable: bool = False  # 待我处理: may be approved in a batch


@dataclass(frozen=True)
class ListPage:
    kind: ListKind
    items: list[ListItem]
    total: int
    page: int
    pages: int
    counts: ListCounts
    query: ListQuery


class BatchOutcome(StrEnum):
    APPROVED = "approved"  # 已同意 (or 已阅 / 已知悉, as the step says)
    ALREADY_HANDLED = "already_handled"  # someone, or an earlier tap, handled it; or it changed
    REFUSED = "refused"  # not approved, and why


BATCH_OUTCOME_LABEL = {
    BatchOutcome.APPROVED: "已同意",
    BatchOutcome.ALREADY_HANDLED: "已处理（别人或之前已处理）",
    BatchOutcome.REFUSED: "未同意",
}


@dataclass(frozen=True)
class BatchItemResult:
    task_id: str
    request_id: str
    title: str
    template_name: str
    outcome: BatchOutcome
    reason: str = ""  # why it was already handled or refused; what was done when approved

    @property
    def label(self) -> str:
        return BATCH_OUTCOME_LABEL[self.outcome]


@dataclass(frozen=True)
class BatchReport:
    items: list[BatchItemResult] = field(default_factory=list)

    def count(self, outcome: BatchOutcome) -> int:
        return sum(1 for i in self.items if i.outcome == outcome)


class WorkspaceLists:
    def __init__(self, workflow: Workflow, db: Database, tz: ZoneInfo, now: Callable[[], datetime]) -> None:
        self._workflow = workflow
        self._db = db
        self._tz = tz
        self._now = now

    # -- lists -----------------------------------------------------------------------------
    async def page(self, user: User, kind: ListKind, query: ListQuery = ListQuery()) -> ListPage:
        """One page of one of the person's lists, newest first, with every tab's count."""
        org = await self._workflow.org()
        delegated = await self._delegated_to(user.id)
        where = self._filter(query, org)
        page = max(1, query.page)
        offset = (page - 1) * PAGE_SIZE
        async with self._db.session() as s:
            found = await self._slice(s, kind, user.id, delegated, where, offset)
            counts = await queries.counts(s, user=user.id, delegated=delegated)
        now = self._now()
        return ListPage(
            kind=kind,
            items=[self._item(r, user.id, org, now) for r in found.rows],
            total=found.total,
            page=page,
            pages=max(1, math.ceil(found.total / PAGE_SIZE)),
            counts=counts,
            query=query,
        )

    async def _slice(
        self,
        s: AsyncSession,
        kind: ListKind,
        user: str,
        delegated: list[DelegatedTo],
        where: RequestFilter,
        offset: int,
    ) -> ListSlice:
        if kind == ListKind.TODO:
            return await queries.todo(
                s, user=user, delegated=delegated, where=where, limit=PAGE_SIZE, offset=offset
            )
        fetch = {ListKind.DONE: queries.decided, ListKind.MINE: queries.initiated, ListKind.CC: queries.cc}[
            kind
        ]
        return await fetch(s, user=user, where=where, limit=PAGE_SIZE, offset=offset)

    async def _delegated_to(self, user: str) -> list[DelegatedTo]:
        """Delegations in force now that let `user` act for someone else."""
        now = self._now()
        return [
            DelegatedTo(delegator=d.delegator, templates=tuple(d.templates))
            for d in await self._workflow.list_delegations(user=user)
            if d.delegate == user and d.starts_at <= now
        ]

    def _filter(self, query: ListQuery, org: Org) -> RequestFilter:
        text = query.text.strip()
        named = tuple(u.id for u in org.users.values() if text and text in u.name)
        return RequestFilter(
            text=text,
            initiators_named=named,
            template=query.template,
            status=query.status,
            created_from=self._day_start(query.date_from),
            created_before=self._day_start(query.date_to + timedelta(days=1) if query.date_to else None),
            archived=query.archived,
        )

    def _day_start(self, day: date | None) -> datetime | None:
        return datetime.combine(day, time(0), tzinfo=self._tz) if day else None

    def _template_name(self, key: str) -> str:
        try:
            return self._workflow.template(key).name
        except ApprovalError:
            return key

    def _item(self, r: ListRow, user: str, org: Org, now: datetime) -> ListItem:
        status = RequestStatus(r.status)
        urgency = Urgency(r.urgency)
        return ListItem(
            request_id=r.request_id,
            template=r.template_key,
            template_name=self._template_name(r.template_key),
            title=r.title,
            initiator=r.initiator,
            initiator_name=org.display_name(r.initiator),
            status=status,
            status_label=REQUEST_STATUS_LABEL[status],
            urgency=urgency,
            urgency_label=URGENCY_LABEL[urgency],
            created_at=r.created_at,
            finished_at=r.finished_at,
            at=r.at,
            age=format_duration(now - r.at) if r.at else "",
            task_id=r.task_id,
            version=r.task_version,
            step_name=r.step_name,
            acting_for_name=self._held_for(r, user, org),
            due_at=r.due_at,
            overdue=r.due_at is not None and r.due_at < now,
            batchable=r.task_id is not None and _batch_action(r) is not None,
        )

    @staticmethod
    def _held_for(r: ListRow, user: str, org: Org) -> str:
        """Whom `user` acts for on this task: the delegator when they hold it as a delegate."""
        if r.task_id is None or r.acting_for == user:
            return ""
        if r.assignee == user:
            return org.display_name(r.acting_for) if r.acting_for else ""
        return org.display_name(r.assignee)  # through a delegation that began after the task

    def template_choices(self) -> list[tuple[str, str]]:
        """(key, name) of every template, for the filter."""
        return [(t.key, t.name) for t in self._workflow.templates()]

    async def todo(self, user: User, *, limit: int = PAGE_SIZE) -> tuple[list[ListItem], int]:
        """The first `limit` tasks of 待我处理 (newest first) and how many there are in all."""
        org = await self._workflow.org()
        delegated = await self._delegated_to(user.id)
        async with self._db.session() as s:
            found = await queries.todo(s, user=user.id, delegated=delegated, limit=limit)
        now = self._now()
        return [self._item(r, user.id, org, now) for r in found.rows], found.total

    # -- batch approve ----------------------------------------------------------------------
    async def batch_approve(
        self,
        user: User,
        tasks: Sequence[tuple[str, int]],
        opinion: str | None = None,
        *,
        channel: Channel = Channel.API,
    ) -> BatchReport:
        """Approve each (task id, version the person saw) in order; one result per task.

        Each goes through `Workflow.act` on its own: one refusal does not stop the others, and a
        task handled meanwhile (by someone else, a delegate, an earlier tap) is reported as such.
        """
        picked = list(dict.fromkeys(tasks))[:BATCH_LIMIT]
        async with self._db.session() as s:
            rows = {r.task_id: r for r in await queries.tasks_by_id(s, task_ids=[t for t, _ in picked])}
        comment = (opinion or "").strip() or None
        results = [
            await self._approve_one(user, tid, ver, rows.get(tid), comment, channel) for tid, ver in picked
        ]
        report = BatchReport(results)
        logger.info(
            "batch approval",
            extra={
                "user": user.id,
                "tasks": [t for t, _ in picked],
                "approved": report.count(BatchOutcome.APPROVED),
                "already_handled": report.count(BatchOutcome.ALREADY_HANDLED),
                "refused": report.count(BatchOutcome.REFUSED),
            },
        )
        return report

    async def _approve_one(
        self,
        user: User,
        task_id: str,
        version: int,
        row: ListRow | None,
        comment: str | None,
        channel: Channel,
    ) -> BatchItemResult:
        if row is None:
            return BatchItemResult(task_id, "", "", "", BatchOutcome.REFUSED, "找不到这条待办")

        def result(outcome: BatchOutcome, reason: str = "") -> BatchItemResult:
            return BatchItemResult(
                task_id, row.request_id, row.title, self._template_name(row.template_key), outcome, reason
            )

        kind = _batch_action(row)
        if kind is None:
            return result(BatchOutcome.REFUSED, f"「{row.step_name}」需要打开详情页办理")
        try:
            await self._workflow.act(
                request_id=row.request_id,
                action=Action(
                    kind=kind,
                    actor=user.id,
                    task_id=task_id,
                    version=version,
                    comment=comment,
                    channel=channel,
                ),
            )
        except (TaskAlreadyDecided, StaleTask, RequestFinished) as exc:
            return result(BatchOutcome.ALREADY_HANDLED, message_for(exc))
        except NotAssignee:
            return result(BatchOutcome.REFUSED, "这条待办不是由您处理的")
        except ApprovalError as exc:
            return result(BatchOutcome.REFUSED, message_for(exc))
        return result(BatchOutcome.APPROVED, "已知悉" if kind == ActionKind.ACKNOWLEDGE else "")


def _batch_action(row: ListRow) -> ActionKind | None:
    """What 批量同意 does to this task: approve, acknowledge a 知会, or nothing (a handling step
    such as 已付款 is an act of its own, done from the request page)."""
    if row.permission == Permission.NOTIFY.value:
        return ActionKind.ACKNOWLEDGE
    if row.step_kind == StepKind.HANDLE.value:
        return None
    return ActionKind.APPROVE
