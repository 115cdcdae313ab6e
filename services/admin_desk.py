"""The office's desk 办公室工作台: every request with filters, the overdue board, delegations and
the outbox's health, and the admin's actions on a request.

Pages (`bot.web.admin`) and the CLI call this; queries live in `storage.admin_queries`. Every
change to a request goes through the workflow (`Workflow.supervise` for a reassignment 转交 or an
urge 催办 made as an admin, `Workflow.act` with `is_admin` to terminate), so the trail records the
admin as the actor with the reason they gave. Nothing here decides an approval rule.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from approvals.engine import Action, SupervisorAction, SupervisorMove
from approvals.errors import ApprovalError
from approvals.model import ActionKind, Channel, RequestStatus, Urgency
from notifications.messages import message_for
from notifications.wording import REQUEST_STATUS_LABEL, URGENCY_LABEL, format_duration
from org.model import Org, User
from services.approval_views import DelegationView
from services.approvals import Workflow
from storage import admin_queries as q
from storage.admin_queries import DeskFilter, DeskRow
from storage.db import Database

PAGE_SIZE = 25
SORT_LABEL = {
    "created": "提交时间",
    "finished": "结束时间",
    "title": "标题",
    "status": "状态",
    "urgency": "紧急程度",
    "template": "模板",
}
OUTBOX_STATUS_LABEL = {"pending": "待发送", "retrying": "重试中", "sending": "发送中", "dead": "发送失败"}
PLATFORM_LABEL = {"wecom": "企业微信", "dingtalk": "钉钉", "console": "控制台", "": "未绑定平台"}


class DeskRefused(Exception):
    """An admin action the desk itself refuses before asking the workflow (no reason given)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class DeskQuery:
    """The list's filters as the office picked them (dates in the organisation's calendar, both
    ends included), the sort and the page (1-based)."""

    text: str = ""
    template: str = ""
    status: str = ""
    urgency: str = ""
    department: str = ""
    initiator: str = ""
    approver: str = ""
    stuck_at: str = ""
    overdue: bool = False
    date_from: date | None = None
    date_to: date | None = None
    sort: str = "created"
    descending: bool = True
    page: int = 1


@dataclass(frozen=True)
class DeskItem:
    request_id: str
    template_name: str
    title: str
    initiator_name: str
    department_name: str
    status_label: str
    urgency_label: str
    created_at: datetime
    finished_at: datetime | None
    holders: str  # who holds it now (names)


@dataclass(frozen=True)
class DeskPage:
    items: list[DeskItem]
    total: int
    page: int
    pages: int


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True)
class Choices:
    templates: list[Choice]
    statuses: list[Choice]
    urgencies: list[Choice]
    departments: list[Choice]
    people: list[Choice]
    sorts: list[Choice]


@dataclass(frozen=True)
class HeldTask:
    task_id: str
    version: int
    request_id: str
    template_name: str
    title: str
    step: str
    holder: str
    holder_name: str
    department_name: str
    held: str  # working time since it reached the holder
    late: str  # working time past the deadline
    held_hours: float


@dataclass(frozen=True)
class HeldGroup:
    label: str
    tasks: list[HeldTask]


@dataclass(frozen=True)
class OverdueBoard:
    by_person: list[HeldGroup]
    by_department: list[HeldGroup]
    total: int


@dataclass(frozen=True)
class DelegationLine:
    id: str
    delegator: str
    delegate: str
    starts_at: datetime
    ends_at: datetime
    templates: str
    reason: str
    active: bool  # started already (else upcoming)


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: str
    recipient: str
    request_id: str | None
    status_label: str
    dead: bool
    attempts: int
    created_at: datetime
    last_error: str


@dataclass(frozen=True)
class PlatformHealth:
    platform: str
    label: str
    counts: dict[str, int]
    items: list[OutboxItem]
    last_error: str = ""


@dataclass(frozen=True)
class OutboxHealth:
    platforms: list[PlatformHealth] = field(default_factory=list)


def department_name(org: Org, user_id: str) -> str:
    user = org.user(user_id)
    dept = org.department(user.department) if user is not None and user.department else None
    return dept.name if dept is not None else ""


class AdminDesk:
    def __init__(
        self,
        workflow: Workflow,
        db: Database,
        *,
        tz: ZoneInfo,
        now: Callable[[], datetime],
        working_time: Callable[[datetime, datetime], timedelta],
        admin_roles: tuple[str, ...] = (),
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.page_size = page_size
        self.wf = workflow
        self.db = db
        self.tz = tz
        self.now = now
        self.working_time = working_time
        self.admin_roles = admin_roles

    # -- the request list --------------------------------------------------------------------
    def _day_start(self, d: date) -> datetime:
        return datetime.combine(d, time(0), tzinfo=self.tz)

    def desk_filter(self, query: DeskQuery, org: Org) -> DeskFilter:
        initiators = tuple(org.members_of(query.department, include_sub=True)) if query.department else None
        return DeskFilter(
            text=query.text,
            template=query.template,
            status=query.status,
            urgency=query.urgency,
            initiators=initiators,
            initiator=query.initiator,
            approver=query.approver,
            stuck_at=query.stuck_at,
            overdue_at=self.now() if query.overdue else None,
            created_from=self._day_start(query.date_from) if query.date_from else None,
            created_before=self._day_start(query.date_to + timedelta(days=1)) if query.date_to else None,
        )

    def _item(self, row: DeskRow, org: Org) -> DeskItem:
        template = self.wf.d.templates.get(row.template_key)
        return DeskItem(
            request_id=row.request_id,
            template_name=template.name if template else "（已删除的模板）",
            title=row.title,
            initiator_name=org.display_name(row.initiator),
            department_name=department_name(org, row.initiator),
            status_label=REQUEST_STATUS_LABEL.get(RequestStatus(row.status), "其他"),
            urgency_label=URGENCY_LABEL.get(Urgency(row.urgency), "一般"),
            created_at=row.created_at.astimezone(self.tz),
            finished_at=row.finished_at.astimezone(self.tz) if row.finished_at else None,
            holders="",
        )

    async def requests(self, query: DeskQuery) -> DeskPage:
        org = await self.wf.org()
        where = self.desk_filter(query, org)
        async with self.db.session() as s:
            rows, total = await q.requests(
                s,
                where=where,
                sort=query.sort,
                descending=query.descending,
                limit=self.page_size,
                offset=(query.page - 1) * self.page_size,
            )
            holding = await q.tasks_of(s, request_ids=[r.request_id for r in rows])
        held: dict[str, list[str]] = defaultdict(list)
        for t in holding:
            if t.status == "pending":
                held[t.request_id].append(org.display_name(t.assignee))
        items = [replace_holders(self._item(r, org), held.get(r.request_id, [])) for r in rows]
        return DeskPage(items, total, query.page, max(1, math.ceil(total / self.page_size)))

    async def choices(self) -> Choices:
        org = await self.wf.org()
        people = sorted((u for u in org.users.values()), key=lambda u: (not u.active, u.id))
        return Choices(
            templates=[Choice(t.key, t.name) for t in sorted(self.wf.templates(), key=lambda t: t.name)],
            statuses=[Choice(s.value, label) for s, label in REQUEST_STATUS_LABEL.items()],
            urgencies=[Choice(u.value, label) for u, label in URGENCY_LABEL.items()],
            departments=[Choice(d.id, d.name) for d in org.departments.values()],
            people=[Choice(u.id, u.name + ("" if u.active else "（已离职）")) for u in people],
            sorts=[Choice(k, v) for k, v in SORT_LABEL.items()],
        )

    # -- admin actions on one request ------------------------------------------------------------
    async def reassign(
        self, admin: User, *, task_id: str, version: int | None, target: str, reason: str
    ) -> str:
        """转交 a pending task to `target` as an admin; the trail records the admin and the reason."""
        if not reason.strip():
            raise DeskRefused("请填写转交理由：它会记入审批记录。")
        if not target:
            raise DeskRefused("请选择接手的人。")
        org = await self.wf.org()
        await self.wf.supervise(
            request_id=task_id.rsplit("-", 1)[0],
            action=SupervisorAction(
                kind=SupervisorMove.TRANSFER,
                actor=admin.id,
                task_id=task_id,
                version=version,
                target=target,
                comment=reason.strip(),
                channel=Channel.API,
                is_admin=True,
            ),
        )
        return f"已转交给 {org.display_name(target)}"

    async def terminate(self, admin: User, *, request_id: str, reason: str) -> str:
        if not reason.strip():
            raise DeskRefused("请填写终止理由：它会记入审批记录。")
        await self.wf.act(
            request_id=request_id,
            action=Action(
                kind=ActionKind.TERMINATE,
                actor=admin.id,
                comment=reason.strip(),
                channel=Channel.API,
                is_admin=True,
            ),
        )
        return "已终止这条申请"

    async def urge(self, admin: User, *, task_id: str, version: int | None, reason: str = "") -> str:
        """催办 the holder of a pending task, as an admin (at most once per half hour per task)."""
        org = await self.wf.org()
        request_id = task_id.rsplit("-", 1)[0]
        task = (await self.wf.load(request_id)).task(task_id)
        await self.wf.supervise(
            request_id=request_id,
            action=SupervisorAction(
                kind=SupervisorMove.URGE,
                actor=admin.id,
                task_id=task_id,
                version=version,
                comment=reason.strip() or None,
                channel=Channel.API,
                is_admin=True,
            ),
        )
        return f"已催办：{org.display_name(task.assignee if task else None)}"

    # -- who holds what -------------------------------------------------------------------------
    async def overdue(self) -> OverdueBoard:
        """Every pending task past its deadline, with working time held and late, grouped by the
        holder and by the holder's department; the longest held first."""
        org = await self.wf.org()
        now = self.now()
        async with self.db.session() as s:
            found = await q.overdue_tasks(s, now=now)
        tasks = []
        for t in found:
            template = self.wf.d.templates.get(t.template_key)
            steps = t.state.get("steps", [])
            step = steps[t.step_index].get("name", "") if 0 <= t.step_index < len(steps) else ""
            held = self.working_time(t.activated_at or t.created_at, now)
            late = self.working_time(t.due_at, now) if t.due_at else timedelta(0)
            holder = org.display_name(t.assignee)
            if t.acting_for:
                holder += f"（代{org.display_name(t.acting_for)}）"
            tasks.append(
                HeldTask(
                    task_id=t.task_id,
                    version=t.version,
                    request_id=t.request_id,
                    template_name=template.name if template else "",
                    title=t.title,
                    step=str(step),
                    holder=t.assignee,
                    holder_name=holder,
                    department_name=department_name(org, t.assignee) or "未分配部门",
                    held=_hours(held),
                    late=_hours(late),
                    held_hours=held.total_seconds() / 3600,
                )
            )
        tasks.sort(key=lambda h: (-h.held_hours, h.task_id))
        return OverdueBoard(
            _grouped(tasks, lambda h: h.holder_name), _grouped(tasks, lambda h: h.department_name), len(tasks)
        )

    # -- delegations -------------------------------------------------------------------------
    async def delegations(self) -> list[DelegationLine]:
        org = await self.wf.org()
        now = self.now()
        names = {t.key: t.name for t in self.wf.templates()}
        found = await self.wf.list_delegations()
        return [
            _delegation_line(d, org, names, now) for d in sorted(found, key=lambda d: (d.starts_at, d.id))
        ]

    async def end_delegation(self, delegation_id: str) -> str:
        d = await self.wf.cancel_delegation(delegation_id)
        org = await self.wf.org()
        return f"已提前结束：{org.display_name(d.delegate)} 代 {org.display_name(d.delegator)}"

    # -- the outbox ---------------------------------------------------------------------------
    async def outbox(self, *, limit: int = 200) -> OutboxHealth:
        org = await self.wf.org()
        async with self.db.session() as s:
            lines = await q.unsent(s, limit=limit)
            failures = await q.last_failures(s, limit=limit)
        by: dict[str, list[OutboxItem]] = defaultdict(list)
        counts: dict[str, dict[str, int]] = defaultdict(lambda: {"待发送": 0, "重试中": 0, "发送失败": 0})
        for line in lines:
            platform = _platform(line, org)
            status = "retrying" if line.status == "pending" and line.attempts else line.status
            label = OUTBOX_STATUS_LABEL[status]
            counts[platform][label] = counts[platform].get(label, 0) + 1
            by[platform].append(
                OutboxItem(
                    id=line.id,
                    kind=line.kind,
                    recipient=org.display_name(line.recipient),
                    request_id=line.request_id,
                    status_label=label,
                    dead=line.status == "dead",
                    attempts=line.attempts,
                    created_at=line.created_at.astimezone(self.tz),
                    last_error=line.last_error or "",
                )
            )
        last: dict[str, str] = {}
        for f in failures:
            last.setdefault(_platform(f, org), f.last_error or "")
        platforms = sorted(set(by) | set(last))
        return OutboxHealth(
            [
                PlatformHealth(p, PLATFORM_LABEL.get(p, p), counts[p], by.get(p, []), last.get(p, ""))
                for p in platforms
            ]
        )

    async def retry(self, outbox_id: int) -> bool:
        async with self.db.transaction() as s:
            return await q.revive(s, outbox_id=outbox_id, now=self.now())


def replace_holders(item: DeskItem, names: list[str]) -> DeskItem:
    return DeskItem(**{**item.__dict__, "holders": "、".join(names)})


def _hours(delta: timedelta) -> str:
    return format_duration(max(delta, timedelta(0)))


def _grouped(tasks: list[HeldTask], key: Callable[[HeldTask], str]) -> list[HeldGroup]:
    groups: dict[str, list[HeldTask]] = defaultdict(list)
    for t in tasks:
        groups[key(t)].append(t)
    return [HeldGroup(k, v) for k, v in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))]


def _delegation_line(d: DelegationView, org: Org, names: Mapping[str, str], now: datetime) -> DelegationLine:
    return DelegationLine(
        id=d.id,
        delegator=org.display_name(d.delegator),
        delegate=org.display_name(d.delegate),
        starts_at=d.starts_at,
        ends_at=d.ends_at,
        templates="、".join(names.get(k, k) for k in d.templates) or "全部模板",
        reason=d.reason,
        active=d.starts_at <= now,
    )


def _platform(line: q.OutboxLine, org: Org) -> str:
    if line.payload_platform:
        return line.payload_platform
    user = org.user(line.recipient)
    return sorted(user.accounts)[0] if user is not None and user.accounts else ""


def refusal(exc: ApprovalError | DeskRefused) -> str:
    """An action's refusal in words."""
    return exc.text if isinstance(exc, DeskRefused) else message_for(exc)
