"""The desk's export of the filtered request list: one row per request, one column per form field
(by its label, across the templates in the list), plus the route and the timing.

`DeskExport.sheet` reads the requests 200 at a time (`storage.admin_queries.batches`), so a large
export never holds the whole list; `write_csv` / `write_xlsx` write those rows as they come (the
XLSX in xlsxwriter's constant-memory mode). The web page streams them; `oabot export requests`
writes a file with a progress bar. Labels are Chinese; no internal code reaches the sheet.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

import xlsxwriter

from approvals.definitions import Template
from approvals.model import RequestStatus, TaskStatus, Urgency
from deadlines.calendar import PeriodLike
from deadlines.org_calendar import OrgCalendar
from notifications.wording import REQUEST_STATUS_LABEL, URGENCY_LABEL
from org.model import Org
from services.admin_desk import department_name
from services.documents import shown_number
from services.workspace import show_field
from storage import admin_queries as q
from storage import document_store
from storage.admin_queries import DeskFilter, DeskRow
from storage.db import Database
from storage.document_store import IssuedNumber
from storage.org_repo import OrgNotImported as OrgNotImported  # raised by export_requests
from storage.org_repo import load_org

BATCH = 200
TASK_LABEL = {
    TaskStatus.QUEUED: "待处理",
    TaskStatus.PENDING: "处理中",
    TaskStatus.APPROVED: "同意",
    TaskStatus.REJECTED: "驳回",
    TaskStatus.RETURNED: "退回",
    TaskStatus.TRANSFERRED: "转交",
    TaskStatus.ACKNOWLEDGED: "已知悉",
    TaskStatus.CLOSED: "已关闭",
}
_TASK_CODES = {s.value for s in TaskStatus}
_STATUS_CODES = {s.value for s in RequestStatus}
_URGENCY_CODES = {u.value for u in Urgency}
FIXED = [
    "编号",
    "模板",
    "标题",
    "发起人",
    "部门",
    "状态",
    "紧急程度",
    "提交时间",
    "结束时间",
    "用时（工作小时）",
    "流程",
]
DOC_NUMBER_COLUMN = "文号"  # after 流程, when a template in the list numbers its documents


@dataclass(frozen=True)
class Sheet:
    columns: list[str]
    total: int
    rows: Callable[[], AsyncIterator[list[list[str]]]]  # batches of rows, read once


class DeskExport:
    def __init__(
        self,
        db: Database,
        *,
        org: Org,
        templates: dict[str, Template],
        tz: ZoneInfo,
        working_time: Callable[[datetime, datetime], timedelta],
        now: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.org = org
        self.templates = templates
        self.tz = tz
        self.working_time = working_time
        self.now = now

    async def sheet(self, where: DeskFilter, *, sort: str = "created", descending: bool = False) -> Sheet:
        async with self.db.session() as s:
            keys = await q.template_keys(s, where=where)
            _, total = await q.requests(s, where=where, sort=sort, descending=descending, limit=1, offset=0)
        labels: list[str] = []
        numbered = any((t := self.templates.get(k)) is not None and t.numbering is not None for k in keys)
        for key in keys:
            template = self.templates.get(key)
            for f in template.fields if template else ():
                if f.label not in labels:
                    labels.append(f.label)

        async def rows() -> AsyncIterator[list[list[str]]]:
            async with self.db.session() as s:
                async for batch in q.batches(s, where=where, sort=sort, descending=descending, size=BATCH):
                    tasks = await q.tasks_of(s, request_ids=[r.request_id for r in batch])
                    by: dict[str, list[q.TaskLine]] = {}
                    for t in tasks:
                        by.setdefault(t.request_id, []).append(t)
                    numbers = (
                        await document_store.numbers_of(s, request_ids=[r.request_id for r in batch])
                        if numbered
                        else {}
                    )
                    yield [
                        self._row(r, by.get(r.request_id, []), labels, numbers if numbered else None)
                        for r in batch
                    ]

        return Sheet(FIXED + ([DOC_NUMBER_COLUMN] if numbered else []) + labels, total, rows)

    def _when(self, at: datetime | None) -> str:
        return at.astimezone(self.tz).strftime("%Y-%m-%d %H:%M") if at else ""

    def _route(self, row: DeskRow, tasks: list[q.TaskLine]) -> str:
        steps = row.state.get("steps", [])
        parts = []
        for t in tasks:
            step = steps[t.step_index].get("name", "") if 0 <= t.step_index < len(steps) else ""
            label = TASK_LABEL.get(TaskStatus(t.status), "") if t.status in _TASK_CODES else ""
            when = self._when(t.decided_at)
            parts.append(
                f"{step}：{self.org.display_name(t.assignee)}（{label}{' ' + when if when else ''}）"
            )
        return "；".join(parts)

    def _row(
        self,
        row: DeskRow,
        tasks: list[q.TaskLine],
        labels: list[str],
        numbers: dict[str, IssuedNumber] | None = None,
    ) -> list[str]:
        """One request's line; `numbers` (documents' 文号, by request) adds the 文号 column."""
        template = self.templates.get(row.template_key)
        end = row.finished_at or self.now()
        hours = self.working_time(row.created_at, end).total_seconds() / 3600
        values: dict[str, str] = {}
        for f in template.fields if template else ():
            if f.key in row.form:
                shown = show_field(f, row.form[f.key], self.org, self.tz)
                values[f.label] = "、".join(shown.items) if shown.items else shown.text
        status = RequestStatus(row.status) if row.status in _STATUS_CODES else None
        urgency = Urgency(row.urgency) if row.urgency in _URGENCY_CODES else Urgency.NORMAL
        return [
            row.request_id,
            template.name if template else "",
            row.title,
            self.org.display_name(row.initiator),
            department_name(self.org, row.initiator),
            REQUEST_STATUS_LABEL.get(status, "其他") if status else "其他",
            URGENCY_LABEL[urgency],
            self._when(row.created_at),
            self._when(row.finished_at),
            f"{hours:.1f}",
            self._route(row, tasks),
            *([shown_number(numbers.get(row.request_id)) or ""] if numbers is not None else []),
        ] + [values.get(label, "") for label in labels]


def csv_line(values: list[str]) -> str:
    """One CSV line (RFC 4180 quoting), for a streamed response."""
    out = _Line()
    csv.writer(out, lineterminator="\r\n").writerow(values)
    return out.text


class _Line:
    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> int:
        self.text += s
        return len(s)


async def write_csv(sheet: Sheet, out: IO[str], progress: Callable[[int, int], None] | None = None) -> int:
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(sheet.columns)
    done = 0
    async for batch in sheet.rows():
        writer.writerows(batch)
        done += len(batch)
        if progress:
            progress(done, sheet.total)
    return done


async def write_xlsx(sheet: Sheet, path: str, progress: Callable[[int, int], None] | None = None) -> int:
    """Write the sheet to an XLSX file at `path` (constant memory: rows go to disk as written)."""
    book = xlsxwriter.Workbook(path, {"constant_memory": True})
    ws = book.add_worksheet("申请")
    bold = book.add_format({"bold": True})
    ws.write_row(0, 0, sheet.columns, bold)
    ws.freeze_panes(1, 0)
    done = 0
    async for batch in sheet.rows():
        for values in batch:
            done += 1
            ws.write_row(done, 0, values)
        if progress:
            progress(done, sheet.total)
    book.close()
    return done


@dataclass(frozen=True)
class ExportPlan:
    """`oabot export requests`: what to export (submission dates, organisation time, both ends
    included) and where to."""

    first: date | None
    last: date | None
    out: Path


async def export_requests(
    db: Database,
    plan: ExportPlan,
    *,
    templates: dict[str, Template],
    tz: ZoneInfo,
    working_hours: Sequence[PeriodLike],
    now: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write the requests submitted in the plan's dates to a CSV or XLSX file (by its suffix);
    how many rows. Raises OrgNotImported before writing anything when there is no directory."""
    calendar = OrgCalendar(tz, working_hours)
    await calendar.reload(db, now=now)
    async with db.session() as s:
        org = await load_org(s)
    exporter = DeskExport(
        db, org=org, templates=templates, tz=tz, working_time=calendar.working_time_between, now=lambda: now
    )
    where = DeskFilter(
        created_from=datetime.combine(plan.first, time(0), tzinfo=tz) if plan.first else None,
        created_before=datetime.combine(plan.last + timedelta(days=1), time(0), tzinfo=tz)
        if plan.last
        else None,
    )
    sheet = await exporter.sheet(where)
    if plan.out.suffix.lower() == ".xlsx":
        return await write_xlsx(sheet, str(plan.out), progress)
    with plan.out.open("w", encoding="utf-8-sig", newline="") as fh:
        return await write_csv(sheet, fh, progress)
