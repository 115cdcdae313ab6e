"""What the workspace's request pages need from the approval service: who may open a request,
the request laid out for a decision, the actions the viewer may take, and acting from the page.

`can_view` is the access rule of `/m/r/{id}`: the initiator, anyone with a task on it (any
status, or the person it was held for), the people the template copies (cc, on approval), a
delegate acting for any of them, the managers of whoever holds a pending task (督办), and the
holders of the admin role. `Workspace` loads a request
through `Workflow`, formats its form by field kind, says who is holding it up, and turns a
refusal into the same words the chat cards use. It decides no approval rule: what may be done
comes from `engine.allowed_actions`, and every action goes through `Workflow.act`. It never
renders markup (the pages do) and keeps no state of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from approvals.definitions import FieldSpec, FieldType, StepSpec, Template
from approvals.engine import Action, Allowed, return_steps, supervisors_of
from approvals.errors import (
    ApprovalError,
    NotAssignee,
    RequestFinished,
    StaleTask,
    TaskAlreadyDecided,
)
from approvals.form_errors import FormInvalid
from approvals.model import ActionKind, Delegation, Request, Step, Task
from approvals.routing import resolve_approver
from notifications.messages import message_for
from notifications.wording import format_duration, status_label
from org.errors import Category, DomainError
from org.model import Org, User, is_org_admin
from services.approval_views import RequestView
from services.approvals import Workflow

logger = logging.getLogger(__name__)

DEFAULT_ADMIN_ROLE = "admin"
NOT_YOURS = "这条审批不是由您处理的，您的点击没有产生任何变更。"


class RequestHidden(ApprovalError):
    """The viewer has no reason to see this request."""

    code = "request_hidden"
    category = Category.FORBIDDEN


# -- access ------------------------------------------------------------------------------------
def is_admin(user: User, admin_roles: Collection[str]) -> bool:
    return is_org_admin(user, admin_roles)


def watchers(template: Template, req: Request, org: Org) -> set[str]:
    """The people the template copies on this request (cc, and those told on approval)."""
    found: set[str] = set()
    for spec in (*template.cc, *template.on_approved):
        found.update(resolve_approver(spec, org=org, initiator=req.initiator, form=req.form, notes=[]))
    return found


def can_view(
    view: RequestView,
    user: User,
    *,
    cc: Collection[str],
    delegations: Sequence[Delegation],
    admin_roles: Collection[str],
    now: datetime,
    supervisors: Collection[str] = (),
) -> bool:
    """Whether `user` may open the request: see the module docstring for who may.
    `supervisors`: the managers of the people holding its pending tasks (督办 opens the page)."""
    if not user.active:
        return False
    if is_admin(user, admin_roles) or user.id in supervisors:
        return True
    people = {view.initiator, *cc}
    for step in view.steps:
        for t in step.tasks:
            people.add(t.assignee)
            if t.acting_for:
                people.add(t.acting_for)
    if user.id in people:
        return True
    return any(d.delegate == user.id and d.covers(p, view.template, now) for d in delegations for p in people)


# -- the request, laid out ---------------------------------------------------------------------
@dataclass(frozen=True)
class ShownField:
    """One form field as a person reads it: its label and its value in words (or a list)."""

    label: str
    text: str
    items: tuple[str, ...] = ()


@dataclass(frozen=True)
class Holder:
    """Someone the request is waiting for now, and since when."""

    name: str
    acting_for: str
    step: str
    since: datetime | None
    waited: str


@dataclass(frozen=True)
class TaskChoice:
    """A pending task the viewer holds, with what they may do on it."""

    task_id: str
    version: int
    step: str
    action_label: str
    acting_for: str
    kinds: frozenset[ActionKind]
    opinion_required: bool
    return_to: tuple[tuple[str, str], ...]  # (value, label): "initiator" or an earlier step's index


@dataclass(frozen=True)
class RequestPage:
    view: RequestView
    template: Template
    org: Org
    fields: list[ShownField]
    holders: list[Holder]
    tasks: list[TaskChoice]
    request_actions: frozenset[ActionKind]
    viewer_is_admin: bool
    # the viewer may read it only: CC'd 抄送 or notified 知会他人, holding nothing in it
    viewer_reads_only: bool = False


def _money(value: Any) -> str:
    try:
        return f"¥{float(value):,.2f}"
    except (TypeError, ValueError):
        return str(value)


def _day(value: Any) -> str:
    try:
        return date.fromisoformat(str(value)[:10]).strftime("%Y-%m-%d")
    except ValueError:
        return str(value)


def _moment(value: Any, tz: ZoneInfo) -> str:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(tz)
    return moment.strftime("%Y-%m-%d %H:%M")


def _place(value: Any, org: Org) -> str:
    if isinstance(value, dict):
        site_id = value.get("site")
        if site_id:
            site = org.sites.get(str(site_id))
            return site.name if site else str(site_id)
        return str(value.get("address") or "")
    site = org.sites.get(str(value))
    return site.name if site else str(value)


def _items(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def show_field(spec: FieldSpec, value: Any, org: Org, tz: ZoneInfo) -> ShownField:
    """A form value in words by its field kind: dates, money, 是/否, names, lists."""
    kind = spec.type
    if kind in (FieldType.LIST, FieldType.USERS, FieldType.MULTISELECT):
        items = _items(value)
        if kind == FieldType.USERS:
            items = [org.display_name(u) for u in items]
        return ShownField(spec.label, "、".join(items), tuple(items) if kind == FieldType.LIST else ())
    text: str
    if kind == FieldType.MONEY:
        text = _money(value)
    elif kind == FieldType.DATE:
        text = _day(value)
    elif kind == FieldType.DATETIME:
        text = _moment(value, tz)
    elif kind == FieldType.DATERANGE and isinstance(value, dict):
        text = f"{_day(value.get('start', ''))} 至 {_day(value.get('end', ''))}"
    elif kind == FieldType.BOOL:
        text = "是" if value is True or value == "true" else "否"
    elif kind == FieldType.USER:
        text = org.display_name(str(value))
    elif kind == FieldType.DEPARTMENT:
        dept = org.department(str(value))
        text = dept.name if dept else str(value)
    elif kind in (FieldType.SITE, FieldType.LOCATION):
        text = _place(value, org)
    else:
        text = str(value)
    return ShownField(spec.label, text)


def shown_fields(template: Template, form: dict[str, Any], org: Org, tz: ZoneInfo) -> list[ShownField]:
    """The filled-in fields, in the template's order, with their template labels."""
    return [
        show_field(f, form[f.key], org, tz)
        for f in template.fields
        if f.key in form and form[f.key] not in (None, "", [])
    ]


def step_spec(template: Template, step: Step) -> StepSpec | None:
    return next((s for s in template.steps if s.key == step.key), None)


def opinion_required(template: Template, step: Step) -> bool:
    """Whether the template asks for a written opinion with an approval on this step."""
    spec = step_spec(template, step)
    return spec is not None and spec.opinion_required


def holders(req: Request, org: Org, now: datetime) -> list[Holder]:
    """The pending tasks that hold the request up now (知会 tasks never do), longest waiting first."""
    found = [
        Holder(
            name=org.display_name(t.assignee),
            acting_for=org.display_name(t.acting_for) if t.acting_for else "",
            step=req.steps[t.step_index].name,
            since=t.activated_at,
            waited=format_duration(now - t.activated_at) if t.activated_at else "",
        )
        for t in req.pending_tasks()
        if t.gates_step
    ]
    return sorted(found, key=lambda h: h.since or now)


def _for_whom(task: Task, viewer: str, org: Org) -> str:
    """Whom the viewer acts for on this task ("" for themselves)."""
    if viewer == task.assignee:
        return org.display_name(task.acting_for) if task.acting_for else ""
    if viewer == task.acting_for:
        return ""
    return org.display_name(task.assignee)  # a delegate of the assignee


def _task_choices(
    req: Request, template: Template, org: Org, allowed: Allowed, viewer: str
) -> list[TaskChoice]:
    choices = []
    for task_id, kinds in allowed.tasks.items():
        task = req.task(task_id)
        assert task is not None
        step = req.steps[task.step_index]
        earlier = return_steps(req, step)
        choices.append(
            TaskChoice(
                task_id=task.id,
                version=task.version,
                step=step.name,
                action_label=step.action_label,
                acting_for=_for_whom(task, viewer, org),
                kinds=kinds,
                opinion_required=opinion_required(template, step),
                return_to=(("initiator", "发起人"), *((str(s.index), s.name) for s in earlier)),
            )
        )
    return choices


# -- what a refusal says -----------------------------------------------------------------------
def refusal_text(exc: DomainError) -> str:
    """The words for a refused action: the same as a card's for a stale or decided task."""
    if isinstance(exc, TaskAlreadyDecided | StaleTask | RequestFinished):
        return f"已处理：{message_for(exc)}"
    if isinstance(exc, NotAssignee):
        return message_for(exc) if exc.reason == "not_assignee.reader" else NOT_YOURS
    return message_for(exc)


DONE_TEXT = {
    ActionKind.APPROVE: "已提交：{label}",
    ActionKind.REJECT: "已驳回",
    ActionKind.RETURN: "已退回",
    ActionKind.TRANSFER: "已转交",
    ActionKind.ADD_SIGNER: "已加签",
    ActionKind.WITHDRAW: "{withdrawn}",
    ActionKind.TERMINATE: "已终止",
    ActionKind.URGE: "已催办",
    ActionKind.COMMENT: "已发表评论",
    ActionKind.ACKNOWLEDGE: "已知悉",
    ActionKind.RESUBMIT: "已重新提交",
    ActionKind.ARCHIVE: "已归档",
    ActionKind.NOTIFY_OTHERS: "已知会：{names}",
}


class Workspace:
    """The request page's use of the workflow, for one viewer at a time."""

    def __init__(
        self,
        workflow: Workflow,
        *,
        admin_roles: Collection[str] = (DEFAULT_ADMIN_ROLE,),
        escalate_to: str = "",
    ) -> None:
        self.wf = workflow
        self.admin_roles = tuple(admin_roles)
        self.escalate_to = escalate_to  # gets 督办 past the top of the chain, so may open what it names

    async def visible(self, request_id: str, user: User) -> RequestView:
        """The request as `user` may read it; RequestHidden when they have no reason to see it."""
        return (await self.page(request_id, user)).view

    async def page(self, request_id: str, user: User) -> RequestPage:
        """Everything `/m/r/{id}` shows `user`; RequestHidden when they have no reason to see it."""
        admin = is_admin(user, self.admin_roles)
        req, delegations, allowed = await self.wf.allowed(request_id, user.id, is_admin=admin)
        view = await self.wf.get(request_id)
        org = await self.wf.org()
        template = self.wf.template(req.template_key)
        now = self.wf.d.now()
        cc = watchers(template, req, org) | req.reader_ids()
        bosses = {m for t in req.pending_tasks() for m in supervisors_of(org, t)}
        if self.escalate_to and req.pending_tasks():
            bosses.add(self.escalate_to)
        if not can_view(
            view,
            user,
            cc=cc,
            delegations=delegations,
            admin_roles=self.admin_roles,
            now=now,
            supervisors=bosses,
        ):
            logger.info("request page refused", extra={"request_id": request_id, "user": user.id})
            raise RequestHidden(request_id=request_id)
        return RequestPage(
            view=view,
            template=template,
            org=org,
            fields=shown_fields(template, req.form, org, self.wf.d.tz),
            holders=holders(req, org, now),
            tasks=_task_choices(req, template, org, allowed, user.id),
            request_actions=allowed.request,
            viewer_is_admin=admin,
            viewer_reads_only=user.id in cc and not allowed.tasks and not allowed.request,
        )

    async def record_open(self, page: RequestPage, user: User, channel: str) -> None:
        """`user` opened the request's page: the first open of anyone but its initiator is kept
        (a recall 收回 of a document is refused once someone it went to has opened it)."""
        if user.id != page.view.initiator:
            await self.wf.record_open(page.view.id, user.id, channel=channel)

    async def act(self, request_id: str, user: User, action: Action) -> str:
        """Apply `action` for `user` (after the page's own checks) and say how it went."""
        page = await self.page(request_id, user)
        choice = next((c for c in page.tasks if c.task_id == action.task_id), None)
        comment = (action.comment or "").strip()
        if action.kind == ActionKind.REJECT and not comment:
            return "驳回需要填写理由"
        if (
            action.kind == ActionKind.APPROVE
            and choice is not None
            and choice.opinion_required
            and not comment
        ):
            return "这一步需要填写审批意见"
        try:
            done = await self.wf.act(
                request_id=request_id, action=replace(action, is_admin=page.viewer_is_admin)
            )
        except (ApprovalError, FormInvalid) as exc:
            return refusal_text(exc)
        if action.kind == ActionKind.URGE and done.info:
            names = "、".join(page.org.display_name(u) for u in done.info.get("urged", []))
            return f"已催办：{names}"
        label = choice.action_label if choice else "同意"
        names = "、".join(page.org.display_name(u) for u in (done.info or {}).get("notified", []))
        return DONE_TEXT[action.kind].format(
            label=label, withdrawn=status_label(done.status, page.template), names=names
        )

    async def people(self, exclude: str) -> list[User]:
        """Active staff for a person picker, by name."""
        org = await self.wf.org()
        return sorted((u for u in org.users.values() if u.active and u.id != exclude), key=lambda u: u.id)
