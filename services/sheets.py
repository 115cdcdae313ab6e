"""The printable approval sheet 审批单 and its verification: what the PDF of a finished request
prints, who may have it, and whether a printed sheet still matches the request's trail.

`Sheets.for_viewer` lays a finished request out as a `reports.sheet.Sheet` (form labels and
values as the request page shows them, each decided task with its approver, decision, opinion
and time) for someone the workspace's rule lets open the request (`Workspace.page`, so the
office and admins too). `Sheets.verify` recomputes the sheet's digest from the current request
and compares it with the one in a QR code; anyone may ask, but only people who may open the
request get more than its title and finish date, and a stranger gets those only for a digest that
matches (request ids are short: a wrong digest tells a stranger nothing). Drawing the PDF is `reports.sheet`'s; the
pages and the command line are in `bot`. Nothing here writes.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from approvals.errors import ApprovalError, RequestNotFound
from approvals.model import FINAL_STATUSES, StepStatus, TaskStatus
from notifications.wording import SHEET_DECISION_LABEL, SHEET_SKIPPED_STEP, status_label
from org.errors import Category
from org.model import Org, User
from reports.sheet import (
    Sheet,
    SheetNote,
    SheetRow,
    SheetStep,
    find_cjk_font,
    render_sheet,
    sheet_digest,
    verify_url,
)
from services.approval_views import RequestView, StepView, TaskView
from services.workspace import RequestHidden, RequestPage, Workspace, shown_fields

logger = logging.getLogger(__name__)

TIME_FORMAT = "%Y-%m-%d %H:%M"
# Form fields that carry a document number 文号 (来文字号 on 收文); the sheet prints the first found.
DOC_NUMBER_FIELDS = ("doc_number",)
# Tasks that ended without this person deciding (a sibling decided, still queued) are not printed.
UNDECIDED = frozenset({TaskStatus.QUEUED, TaskStatus.PENDING, TaskStatus.CLOSED})


class SheetNotReady(ApprovalError):
    """The request is still running (or returned): a sheet is printed once it has finished."""

    code = "sheet_not_ready"
    category = Category.CONFLICT


@dataclass(frozen=True)
class Verification:
    """The answer of `/verify/<request>/<digest>`: whether it matches, and what may be shown.

    `title` and `finished_at` are empty for an anonymous visitor whose digest does not match:
    request ids are short, so a wrong digest must not tell strangers what a request is about."""

    matches: bool
    title: str
    finished_at: str
    sheet: Sheet | None  # the current facts, for people who may open the request; else None


def _local(moment: datetime | None, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime(TIME_FORMAT) if moment else ""


def _decision(step: StepView, task: TaskView) -> str:
    if task.status == TaskStatus.APPROVED:
        return step.action_label or SHEET_DECISION_LABEL[TaskStatus.APPROVED]
    return SHEET_DECISION_LABEL.get(task.status, "")


def _approver(task: TaskView, org: Org) -> str:
    name = org.display_name(task.decided_by) if task.decided_by else task.assignee_name
    if task.acting_for and task.acting_for != task.decided_by:
        name += f"（代 {org.display_name(task.acting_for)}）"
    return name


def sheet_steps(view: RequestView, org: Org, tz: ZoneInfo) -> tuple[SheetStep, ...]:
    """Every step in order: each decided task as a line, a skipped step as one line saying so."""
    lines: list[SheetStep] = []
    for step in view.steps:
        if step.status == StepStatus.SKIPPED:
            lines.append(SheetStep(step.name, "", SHEET_SKIPPED_STEP, "", ""))
            continue
        for task in step.tasks:
            if task.status in UNDECIDED:
                continue
            lines.append(
                SheetStep(
                    step.name,
                    _approver(task, org),
                    _decision(step, task),
                    task.comment or "",
                    _local(task.decided_at, tz),
                )
            )
    return tuple(lines)


def build_sheet(page: RequestPage, tz: ZoneInfo) -> Sheet:
    """The facts a sheet prints for a finished request (`SheetNotReady` for a running one)."""
    view = page.view
    if view.status not in FINAL_STATUSES:
        raise SheetNotReady(request_id=view.id, status=view.status.value)
    trail = view.trail or []
    doc_number = next((str(view.form[k]) for k in DOC_NUMBER_FIELDS if view.form.get(k)), None)
    if view.doc_number is not None:  # the number this system gave the document (发文)
        issued = view.doc_number
        doc_number = issued.number + ("（已作废）" if issued.status == "void" else "")
    fields = shown_fields(page.template, view.form, page.org, tz)
    return Sheet(
        request_id=view.id,
        title=view.title,
        template_name=page.template.name,
        status=status_label(view.status, page.template),
        initiator=view.initiator_name,
        created_at=_local(view.created_at, tz),
        finished_at=_local(view.finished_at, tz),
        doc_number=doc_number,
        fields=tuple(SheetRow(f.label, "、".join(f.items) if f.items else f.text) for f in fields),
        steps=sheet_steps(view, page.org, tz),
        trail_head=f"{len(trail)}:{trail[-1].hash if trail else ''}",
        notes=tuple(
            SheetNote(e.actor_name or "", _local(e.at, tz), e.comment or "")
            for e in trail
            if e.kind == "commented" and e.comment
        ),
    )


class Sheets:
    """Approval sheets for one workflow, with the workspace's access rule."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace

    @property
    def tz(self) -> ZoneInfo:
        return self.ws.wf.d.tz

    async def for_viewer(self, request_id: str, user: User) -> Sheet:
        """The sheet of a finished request `user` may open; RequestHidden / RequestNotFound /
        SheetNotReady otherwise."""
        page = await self.ws.page(request_id, user)
        return build_sheet(page, self.tz)

    async def _page(self, request_id: str) -> RequestPage:
        """The request laid out with no viewer's access check (the caller has done it)."""
        view = await self.ws.wf.get(request_id)
        template = self.ws.wf.template(view.template)
        org = await self.ws.wf.org()
        return RequestPage(view, template, org, [], [], [], frozenset(), viewer_is_admin=False)

    async def for_office(self, request_id: str) -> Sheet:
        """The sheet for the command line (`oabot sheet`), whose operator holds the database."""
        return build_sheet(await self._page(request_id), self.tz)

    async def pdf(self, sheet: Sheet, *, public_url: str, font: str | None = None) -> bytes:
        """The sheet as PDF, its QR code pointing at `public_url`'s verification page.
        `reports.sheet.CjkFontMissing` when no CJK font is found (its message says what to install)."""
        found: Path = await asyncio.to_thread(find_cjk_font, font)
        url = verify_url(public_url, sheet.request_id, sheet_digest(sheet))
        printed_at = _local(self.ws.wf.d.now(), self.tz)
        # parsing and subsetting the font take about a second of CPU (benchmarks/sheet.py): off the loop
        return await asyncio.to_thread(render_sheet, sheet, font=found, verify=url, printed_at=printed_at)

    async def verify(self, request_id: str, digest: str, user: User | None) -> Verification:
        """Whether a sheet with `digest` matches the request now. RequestNotFound for an unknown
        or unfinished request (nothing to verify); `sheet` only for people who may open it."""
        page = await self._page(request_id)
        view = page.view
        if view.status not in FINAL_STATUSES:
            raise RequestNotFound(request_id=request_id)
        current = build_sheet(page, self.tz)
        # compare_digest refuses non-ASCII text: a hash typed or mangled by hand is just wrong
        matches = digest.isascii() and hmac.compare_digest(sheet_digest(current), digest.lower())
        logger.info("sheet verified", extra={"request_id": request_id, "matches": matches})
        shown: Sheet | None = None
        if user is not None:
            try:
                await self.ws.page(request_id, user)
                shown = current
            except RequestHidden:
                shown = None
        if not matches and shown is None:
            return Verification(False, "", "", None)
        return Verification(matches, view.title, current.finished_at, shown)
