"""Route planning: template + form + initiator + org → the steps and the people on them.

Resolves approvers (named user, role, manager N up, department heads, 自选 from a form field,
the initiator), applies conditions and the no-approver policy, and explains each decision in
words so the preview and the trail can show it. Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from approvals.conditions import evaluate
from approvals.definitions import ApproverKind, ApproverSpec, NoApproverPolicy, StepSpec, Template
from approvals.errors import NoApprover
from org.model import Org


@dataclass
class PlannedStep:
    spec: StepSpec
    assignees: list[str]
    notes: list[str] = field(default_factory=list)
    skipped: bool = False


def initiator_context(org: Org, initiator: str) -> dict[str, Any]:
    user = org.user(initiator)
    if user is None:
        return {}
    heads = org.heads_of(user.department, active_only=True)
    is_head = initiator in heads
    return {
        "id": initiator,
        "department": user.department,
        "level": user.level,
        "roles": list(user.roles),
        "is_department_head": is_head,
        "is_sole_department_head": is_head and len(heads) == 1,
    }


def _first(items: list[str]) -> list[str]:
    return items[:1]


def _department_for(selector: str, org: Org, initiator: str, form: dict[str, Any]) -> str | None:
    if selector == "initiator":
        user = org.user(initiator)
        return user.department if user else None
    if selector.startswith("field:"):
        value = form.get(selector.removeprefix("field:"))
        return value if isinstance(value, str) else None
    return selector


def resolve_approver(
    spec: ApproverSpec, *, org: Org, initiator: str, form: dict[str, Any], notes: list[str]
) -> list[str]:
    """People for one approver spec, active only, falling back when it finds nobody."""
    people = _RESOLVERS[spec.kind](spec.value, _Context(org, initiator, form, notes))
    for gone in (p for p in people if org.user(p) is not None and not org.is_active(p)):
        notes.append(f"{org.display_name(gone)} 已离职，不再作为审批人")
    people = [p for p in people if org.is_active(p)]
    if not people and spec.fallback is not None:
        people = resolve_approver(spec.fallback, org=org, initiator=initiator, form=form, notes=notes)
        if people:
            notes.append(f"按备选规则由 {'、'.join(org.display_name(p) for p in people)} 处理")
    return people


@dataclass(frozen=True)
class _Context:
    """What every approver resolver may look at; `notes` collects explanations for the trail."""

    org: Org
    initiator: str
    form: dict[str, Any]
    notes: list[str]


def _user(value: str | int | None, ctx: _Context) -> list[str]:
    return [str(value)] if value else []


def _role(value: str | int | None, ctx: _Context) -> list[str]:
    return _first(ctx.org.role_holders(str(value)))


def _role_all(value: str | int | None, ctx: _Context) -> list[str]:
    return ctx.org.role_holders(str(value))


def _manager(value: str | int | None, ctx: _Context) -> list[str]:
    found = ctx.org.manager_of(ctx.initiator, int(value or 1))
    return [found] if found else []


def _dept_head(value: str | int | None, ctx: _Context) -> list[str]:
    dept = _department_for(str(value or "initiator"), ctx.org, ctx.initiator, ctx.form)
    if not dept:
        return []
    heads = ctx.org.heads_of(dept, active_only=False)
    # A head who left is named (and skipped with a note by resolve_approver) only when no
    # other head of the department is active.
    return _first([h for h in heads if ctx.org.is_active(h)] or heads)


def _dept_head_other(value: str | int | None, ctx: _Context) -> list[str]:
    """发文 核稿: another head of the initiator's department; the sole head reviews it personally."""
    user = ctx.org.user(ctx.initiator)
    if user is None:
        return []
    heads = ctx.org.heads_of(user.department)
    if ctx.initiator not in heads:
        return _first(heads)
    others = [h for h in heads if h != ctx.initiator]
    if others:
        ctx.notes.append("拟稿人是部门负责人，由本部门另一位负责人核稿")
        return _first(others)
    ctx.notes.append("拟稿人是本部门唯一负责人，由本人核稿（此步骤照常记录）")
    return [ctx.initiator]


def _form_user(value: str | int | None, ctx: _Context) -> list[str]:
    picked = ctx.form.get(str(value))
    if isinstance(picked, str):
        return [picked]
    if isinstance(picked, list):
        return [p for p in picked if isinstance(p, str)]
    return []


def _initiator(value: str | int | None, ctx: _Context) -> list[str]:
    return [ctx.initiator]


_RESOLVERS: dict[ApproverKind, Callable[[str | int | None, _Context], list[str]]] = {
    ApproverKind.USER: _user,
    ApproverKind.ROLE: _role,
    ApproverKind.ROLE_ALL: _role_all,
    ApproverKind.MANAGER: _manager,
    ApproverKind.DEPT_HEAD: _dept_head,
    ApproverKind.DEPT_HEAD_OTHER: _dept_head_other,
    ApproverKind.FORM_USER: _form_user,
    ApproverKind.INITIATOR: _initiator,
}


def plan_route(template: Template, form: dict[str, Any], initiator: str, org: Org) -> list[PlannedStep]:
    """The steps this request will go through. Raises NoApprover under the `refuse` policy."""
    ctx = initiator_context(org, initiator)
    planned: list[PlannedStep] = []
    for spec in template.steps:
        if spec.when is not None and not evaluate(spec.when, form, initiator_ctx=ctx):
            continue
        notes: list[str] = []
        people: list[str] = []
        for approver in spec.approvers:
            for p in resolve_approver(approver, org=org, initiator=initiator, form=form, notes=notes):
                if p not in people:
                    people.append(p)
        step = PlannedStep(spec=spec, assignees=people, notes=notes)
        if not people:
            policy = spec.no_approver or template.policies.no_approver
            if policy == NoApproverPolicy.REFUSE:
                raise NoApprover(shown={"step_name": spec.name}, step=spec.key, template=template.key)
            if policy == NoApproverPolicy.ADMIN:
                admin_role = template.policies.admin_role
                admins = org.role_holders(admin_role) if admin_role else []
                if not admins:
                    raise NoApprover(
                        "no_approver.no_admin",
                        shown={"step_name": spec.name, "admin_role": admin_role},
                        step=spec.key,
                        template=template.key,
                    )
                step.assignees = admins
                step.notes.append(
                    f"找不到审批人，按模板规则转交管理员 {'、'.join(org.display_name(a) for a in admins)}"
                )
            else:
                step.skipped = True
                step.notes.append("找不到审批人，按模板规则跳过此步骤")
        planned.append(step)
    return planned
