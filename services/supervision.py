"""Supervision 督办: what a manager does about a late task of someone in their team.

A 督办 card (and each item of the managers' daily overdue summary) offers 催办 (urge the holder),
转交 (give the task to someone in the manager's team, picked on `/m/s/<task>/<version>`),
代为处理 (take the task over when the template's `manager_may_act` allows it) and 查看. Card taps
(WeCom, DingTalk, the console) and the picker page both come here; every change goes through
`Workflow.supervise` (the engine decides who may do what: the holder's managers at any level,
org admins, and the person configured to get 督办 past the top of the chain). This module only
reads what the page shows and words the answer; it never writes approval state itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from approvals.definitions import Permission
from approvals.engine import SupervisorAction, SupervisorMove, may_take_over, supervisors_of
from approvals.errors import NotSupervisor, TaskNotFound
from approvals.model import Channel, TaskStatus
from notifications.wording import URGENCY_LABEL, lateness, supervise_done
from org.model import User, is_org_admin
from services.approvals import Workflow

logger = logging.getLogger(__name__)

# The card buttons that call back, and the move each one makes.
CARD_MOVES = {"supervise_urge": SupervisorMove.URGE, "take_over": SupervisorMove.TAKE_OVER}


def request_of(task_id: str) -> str:
    """The request a task id belongs to (`<request id>-<n>`)."""
    return task_id.rsplit("-", 1)[0]


@dataclass(frozen=True)
class TeamMember:
    id: str
    name: str
    title: str
    department: str


@dataclass(frozen=True)
class SupervisedTask:
    """A late task as its manager's 督办 page shows it."""

    task_id: str
    version: int  # the version the card showed
    current_version: int
    request_id: str
    template_name: str
    title: str
    urgency: str
    step: str
    holder: str
    initiator: str
    due: str
    late: str
    pending: bool  # False: already handled, the page only says so
    can_take_over: bool
    team: list[TeamMember]

    @property
    def stale(self) -> bool:
        """The card is out of date: the task was handled or changed since it was sent."""
        return not self.pending or self.version != self.current_version


@dataclass(frozen=True)
class OverdueItem:
    """One overdue task of a manager's team, as the 督办 list shows it."""

    task_id: str
    version: int
    request_id: str
    template_name: str
    title: str
    urgency: str
    holder: str
    due: str
    late: str
    can_take_over: bool


class Supervision:
    def __init__(
        self,
        workflow: Workflow,
        *,
        admin_roles: Collection[str],
        escalate_to: str = "",
        tz: ZoneInfo,
        now: Callable[[], datetime],
    ) -> None:
        self.wf = workflow
        self.admin_roles = tuple(admin_roles)
        self.escalate_to = escalate_to
        self.tz = tz
        self.now = now

    def _is_admin(self, user: User) -> bool:
        """Org admins, and the person who gets 督办 past the top of the chain, act on any task."""
        return is_org_admin(user, self.admin_roles) or (
            bool(self.escalate_to) and user.id == self.escalate_to
        )

    async def task(self, user: User, task_id: str, version: int) -> SupervisedTask:
        """The page of a 督办 card for `user`; NotSupervisor when they are not the holder's manager
        (nor an admin), TaskNotFound / RequestNotFound for a task that does not exist."""
        req = await self.wf.load(request_of(task_id))
        task = req.task(task_id)
        if task is None:
            raise TaskNotFound(request_id=req.id, task_id=task_id)
        org = await self.wf.org()
        admin = self._is_admin(user)
        if not admin and user.id not in supervisors_of(org, task):
            raise NotSupervisor(shown={"assignee_name": org.display_name(task.assignee)}, task_id=task_id)
        template = self.wf.template(req.template_key)
        holders = {task.assignee, task.acting_for}
        people = org.team_of(user.id) if not admin else sorted(org.users, key=lambda u: org.display_name(u))
        team = []
        for pid in people:
            person = org.user(pid)
            if person is None or not person.active or pid in holders or pid == user.id:
                continue
            dept = org.department(person.department) if person.department else None
            team.append(TeamMember(pid, person.name, person.title or "", dept.name if dept else ""))
        holder = org.display_name(task.assignee)
        if task.acting_for:
            holder += f"（代{org.display_name(task.acting_for)}）"
        return SupervisedTask(
            task_id=task.id,
            version=version,
            current_version=task.version,
            request_id=req.id,
            template_name=template.name,
            title=req.title,
            urgency=URGENCY_LABEL[req.urgency],
            step=req.steps[task.step_index].name,
            holder=holder,
            initiator=org.display_name(req.initiator),
            due=task.due_at.astimezone(self.tz).strftime("%m-%d %H:%M") if task.due_at else "—",
            late=lateness(task.due_at, self.now()) if task.due_at else "",
            pending=task.status == TaskStatus.PENDING and not req.is_final,
            can_take_over=may_take_over(template),
            team=team,
        )

    async def overdue(self, user: User) -> list[OverdueItem]:
        """Every overdue task held by someone `user` manages (by anyone, for an admin), the
        longest overdue first; 知会 tasks hold nothing up and are left out."""
        org = await self.wf.org()
        people = list(org.users) if self._is_admin(user) else org.team_of(user.id)
        now = self.now()
        found = []
        for person in people:
            for t in await self.wf.pending_tasks(person):
                if t.due_at is None or t.due_at > now or t.permission == Permission.NOTIFY:
                    continue
                holder = org.display_name(t.assignee)
                if t.acting_for:
                    holder += f"（代{org.display_name(t.acting_for)}）"
                found.append(
                    (
                        t.due_at,
                        OverdueItem(
                            task_id=t.task_id,
                            version=t.version,
                            request_id=t.request_id,
                            template_name=t.template_name,
                            title=t.title,
                            urgency=URGENCY_LABEL[t.urgency],
                            holder=holder,
                            due=t.due_at.astimezone(self.tz).strftime("%m-%d %H:%M"),
                            late=lateness(t.due_at, now),
                            can_take_over=t.template in self.wf.d.templates
                            and may_take_over(self.wf.template(t.template)),
                        ),
                    )
                )
        return [item for _, item in sorted(found, key=lambda pair: (pair[0], pair[1].task_id))]

    async def act(
        self,
        user: User,
        task_id: str,
        version: int,
        move: SupervisorMove,
        *,
        target: str | None = None,
        comment: str | None = None,
        channel: Channel = Channel.API,
    ) -> str:
        """Apply one 督办 action and say how it went; raises the engine's ApprovalError when it is
        refused (nothing changed)."""
        request_id = request_of(task_id)
        org = await self.wf.org()
        before = await self.wf.load(request_id)
        task = before.task(task_id)
        assignee = org.display_name(task.assignee) if task is not None else ""
        await self.wf.supervise(
            request_id=request_id,
            action=SupervisorAction(
                kind=move,
                actor=user.id,
                task_id=task_id,
                version=version,
                target=target,
                comment=comment,
                channel=channel,
                is_admin=self._is_admin(user),
            ),
        )
        return supervise_done(move.value, assignee=assignee, target=org.display_name(target))
