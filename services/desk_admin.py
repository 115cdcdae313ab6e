"""The office's desk: the org chart's import preview and the templates' overview.

- `OrgImports.preview(text)` reads an uploaded org file with the same validation as `oabot org
  import` (`org.loader`: every problem, with its line) and lists what importing it would change
  with the directory sync's diff rules (`org.directory_sync.diff_orgs`). It writes nothing.
  `apply(text)` reads it again and imports it in one transaction (`storage.org_repo.import_org`,
  the command's import), so what is applied is what was previewed, and nothing half-written.
- `template_overview` describes every template in use: its route (step names and who
  approves), whether it is built in or overrides / adds to the built-in set, and the problems
  `oabot templates validate` finds in the template directories.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

from approvals.definitions import ApproverKind, ApproverSpec, Template
from approvals.template_loader import builtin_templates_dir, load_templates, validate_dir
from org.directory_sync import OrgDiff, diff_orgs
from org.loader import OrgFileError, OrgProblem, parse_org_yaml
from org.model import Org
from storage.db import Database
from storage.org_repo import ImportReport, OrgNotImported, import_org, load_org

__all__ = ["OrgFileError", "OrgImports", "OrgPreview", "OrgProblem", "TemplateView", "template_overview"]

MAX_ORG_FILE = 2 * 1024 * 1024  # bytes of an uploaded org file
SOURCE = "上传的文件"


@dataclass(frozen=True)
class OrgPreview:
    org: Org
    diff: OrgDiff
    first_import: bool


class OrgImports:
    def __init__(self, db: Database, now: Callable[[], datetime]) -> None:
        self.db = db
        self.now = now

    async def preview(self, text: str) -> OrgPreview:
        """What importing `text` would change; raises OrgFileError listing every problem."""
        new = parse_org_yaml(text, SOURCE)
        async with self.db.session() as session:
            try:
                old: Org | None = await load_org(session)
            except OrgNotImported:
                old = None
        return OrgPreview(org=new, diff=diff_orgs(old, new), first_import=old is None)

    async def apply(self, text: str) -> ImportReport:
        """Import `text` (one transaction); raises OrgFileError and changes nothing then."""
        new = parse_org_yaml(text, SOURCE)
        async with self.db.transaction() as session:
            return await import_org(session, new, now=self.now())


# -- templates ------------------------------------------------------------------------------------
APPROVER_WORDS = {
    ApproverKind.USER: "指定人员",
    ApproverKind.ROLE: "角色",
    ApproverKind.ROLE_ALL: "角色全体",
    ApproverKind.MANAGER: "上级",
    ApproverKind.DEPT_HEAD: "部门负责人",
    ApproverKind.DEPT_HEAD_OTHER: "本部门其他负责人",
    ApproverKind.FORM_USER: "表单所选人员",
    ApproverKind.INITIATOR: "发起人",
}


def approver_words(spec: ApproverSpec, org: Org | None) -> str:
    word = APPROVER_WORDS.get(spec.kind, str(spec.kind))
    if spec.kind == ApproverKind.USER and org is not None and isinstance(spec.value, str):
        return org.display_name(spec.value)
    if spec.kind == ApproverKind.MANAGER:
        return "直属上级" if spec.value in (None, 1) else f"第 {spec.value} 级上级"
    if spec.kind in (ApproverKind.ROLE, ApproverKind.ROLE_ALL) and spec.value:
        return f"{word} {spec.value}"
    return word


@dataclass(frozen=True)
class TemplateView:
    key: str
    name: str
    category: str
    version: int
    origin: str  # 内置 / 覆盖内置 / 自定义
    source: str
    steps: tuple[tuple[str, str], ...]  # (step name, who approves)
    conditional: tuple[str, ...]  # names of steps taken only under a condition


def template_overview(
    templates: Iterable[Template], *, templates_dir: str | None, org: Org | None
) -> tuple[list[TemplateView], list[str]]:
    """Every template in use, and every problem found in the template directories."""
    builtin = builtin_templates_dir().resolve()
    builtin_keys = _builtin_keys()
    views = []
    for t in sorted(templates, key=lambda t: t.key):
        source = Path(t.source).resolve() if t.source else None
        if source is not None and builtin in source.parents:
            origin = "内置"
        else:
            origin = "覆盖内置" if t.key in builtin_keys else "自定义"
        steps = tuple(
            (s.name, "、".join(approver_words(a, org) for a in s.approvers) or "—") for s in t.steps
        )
        views.append(
            TemplateView(
                key=t.key,
                name=t.name,
                category=t.category,
                version=t.version,
                origin=origin,
                source=source.name if source else "",
                steps=steps,
                conditional=tuple(s.name for s in t.steps if s.when is not None),
            )
        )
    dirs = [builtin_templates_dir(), *([Path(templates_dir)] if templates_dir else [])]
    problems = [str(p) for d in dirs if d.exists() for p in validate_dir(d)]
    return views, problems


@cache
def _builtin_keys() -> frozenset[str]:
    return frozenset(load_templates([], include_builtin=True))
