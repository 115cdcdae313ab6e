"""Route planning: template + form + initiator + org → the steps and the people on them.

Resolves approvers (named user, role, manager N up, department heads, 自选 from a form field,
the initiator), applies conditions and the no-approver policy, and explains each decision in
words so the preview and the trail can show it. Pure.
"""

from __future__ import annotations

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
    people = _resolve_one(spec, org=org, initiator=initiator, form=form, notes=notes)
    people = [p for p in people if org.is_active(p)]
    if not people and spec.fallback is not None:
        people = resolve_approver(spec.fallback, org=org, initiator=initiator, form=form, notes=notes)
        if people:
            notes.append(f"按备选规则由 {'、'.join(org.display_name(p) for p in people)} 处理")
    return people


def _resolve_one(
    spec: ApproverSpec, *, org: Org, initiator: str, form: dict[str, Any], notes: list[str]
) -> list[str]:
    kind, value = spec.kind, spec.value
    if kind == ApproverKind.USER:
        return [str(value)] if value else []
    if kind == ApproverKind.ROLE:
        return _first(org.role_holders(str(value)))
    if kind == ApproverKind.ROLE_ALL:
        return org.role_holders(str(value))
    if kind == ApproverKind.MANAGER:
        levels = int(value or 1)
        m = org.manager_of(initiator, levels)
        return [m] if m else []
    if kind == ApproverKind.DEPT_HEAD:
        dept = _department_for(str(value or "initiator"), org, initiator, form)
        return _first(org.heads_of(dept)) if dept else []
    if kind == ApproverKind.DEPT_HEAD_OTHER:
        user = org.user(initiator)
        if user is None:
            return []
        heads = org.heads_of(user.department)
        if initiator not in heads:
            return _first(heads)
        others = [h for h in heads if h != initiator]
        if others:
            notes.append("拟稿人是部门负责人，由本部门另一位负责人核稿")
            return _first(others)
        notes.append("拟稿人是本部门唯一负责人，由本人核稿（此步骤照常记录）")
        return [initiator]
    if kind == ApproverKind.FORM_USER:
        picked = form.get(str(value))
        if isinstance(picked, str):
            return [picked]
        if isinstance(picked, list):
            return [p for p in picked if isinstance(p, str)]
        return []
    if kind == ApproverKind.INITIATOR:
        return [initiator]
    return []  # pragma: no cover - enum is exhaustive


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
