"""Test helpers: the demo org as an `Org`, and small template builders."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from approvals.definitions import (
    ApproverKind,
    ApproverSpec,
    FieldSpec,
    FieldType,
    Permission,
    Policies,
    StepKind,
    StepMode,
    StepSpec,
    Template,
)
from org.model import Org

ROOT = Path(__file__).resolve().parent.parent
DEMO_ORG_FILE = ROOT / "bot" / "data" / "demo_org.yaml"
TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai


def demo_org() -> Org:
    from org.loader import load_org_file

    return load_org_file(DEMO_ORG_FILE)


def who(kind: str, value: str | int | None = None) -> ApproverSpec:
    return ApproverSpec(kind=ApproverKind(kind), value=value)


def step(
    key: str,
    *approvers: ApproverSpec,
    mode: str = "sequential",
    kind: str = "approve",
    permission: str = "approve",
    **kw: Any,
) -> StepSpec:
    return StepSpec(
        key=key,
        name=kw.pop("name", key),
        approvers=tuple(approvers),
        mode=StepMode(mode),
        kind=StepKind(kind),
        permission=Permission(permission),
        **kw,
    )


def template(*steps: StepSpec, policies: Policies | None = None, **kw: Any) -> Template:
    return Template(
        key=kw.pop("key", "t"),
        name=kw.pop("name", "测试审批"),
        fields=kw.pop("fields", (FieldSpec(key="reason", label="事由", type=FieldType.TEXT),)),
        steps=tuple(steps),
        policies=policies or Policies(),
        **kw,
    )
