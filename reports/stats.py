"""Statistics per person and per department for a period 统计: the numbers the office publishes
and uses in appraisals. Pure: plain facts in (tasks, reminder events, requests, the org), numbers
and summary texts out. No I/O, no database or aiohttp imports, and no wall clock: `now` and the
working-time function come in as arguments.

What each number means:

- **period**: `from` and `to` are calendar dates in the organisation's timezone, both included;
  the period runs from `from` 00:00 up to (not including) 00:00 of the day after `to`.
- **handled**: tasks the person decided in the period: approved (which includes handled/read),
  rejected, returned, transferred or acknowledged, with `decided_by` = the person and
  `decided_at` in the period. A delegate acting for someone counts for the delegate, who did the
  work. Tasks decided by the system (auto-approval) and tasks closed by something else (a
  sibling's decision in an any-sign 或签 step, a withdrawal) count for nobody.
- **time to decision**: `decided_at - activated_at` of each handled task, in wall-clock hours
  and in working hours (the organisation's working calendar). Reported as the median and the
  90th percentile, with linear interpolation between the two nearest ranks (numpy's default; the
  median of an even count is the mean of the middle two), rounded to 0.01 h. Empty (None) when
  nothing was handled.
- **overdue**: tasks with a due time that were either
  (a) handled in the period after their due time (counted for the person who decided them), or
  (b) still pending at the period end (or now, when the period has not ended) and past their due
      time by then (counted for the assignee).
  A task left pending past due over several periods counts in each of them, and once more in
  the period it is finally decided late. Tasks closed by something else are left out of (b):
  the moment they closed is not recorded per task.
- **reminders received**: trail events of the kinds `reminded`, `supervised` 督办, `escalated`
  and `urged` 催办 in the period, each counted for the person named in the event's `after` field,
  the person pinged: the assignee an initiator urged, whom the deadline job reminded or
  supervised, or to whom a task was escalated.
- **requests initiated**: requests created in the period with the person as initiator.
- **department**: a person's department is the one in the current org directory. A department
  row adds up its direct members (sub-departments have rows of their own); its median and 90th
  percentile are taken over all its members' handled tasks together, not averaged.
- **who is listed**: every active member of the departments reported; someone who left or who
  is not in the directory only when they have something to count.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from approvals.engine import SYSTEM  # the actor of automatic decisions
from approvals.model import TaskStatus
from org.model import Org

HANDLED_STATUSES = frozenset(
    {
        TaskStatus.APPROVED.value,
        TaskStatus.REJECTED.value,
        TaskStatus.RETURNED.value,
        TaskStatus.TRANSFERRED.value,
        TaskStatus.ACKNOWLEDGED.value,
    }
)
REMINDER_KINDS = frozenset({"reminded", "supervised", "escalated", "urged"})
# Dates a period may use: the instants stay representable in UTC on every database.
MIN_DATE = date(1970, 1, 1)
MAX_DATE = date(9998, 12, 31)
CSV_COLUMNS = (
    "kind",
    "id",
    "name",
    "department",
    "handled",
    "median_hours",
    "p90_hours",
    "median_working_hours",
    "p90_working_hours",
    "overdue",
    "reminders",
    "initiated",
)
SUMMARY_MAX_PEOPLE = 20  # a chat message stays readable; the CSV has everyone

WorkingTime = Callable[[datetime, datetime], timedelta]
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# -- inputs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskFact:
    """One task as stored (the columns the numbers need)."""

    id: str
    request_id: str
    assignee: str
    status: str
    activated_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    due_at: datetime | None
    template_key: str | None = None  # the request's template and the step the task is in,
    step_index: int | None = None  # for the slowest steps (reports.appraisal)


@dataclass(frozen=True)
class PingFact:
    """A trail event that pinged someone (reminder, supervision, escalation, urge)."""

    kind: str
    at: datetime
    person: str
    request_id: str


@dataclass(frozen=True)
class RequestFact:
    id: str
    initiator: str
    created_at: datetime


@dataclass(frozen=True)
class Facts:
    tasks: tuple[TaskFact, ...] = ()
    pings: tuple[PingFact, ...] = ()
    requests: tuple[RequestFact, ...] = ()


class PeriodInvalid(ValueError):
    """The dates do not make a period; `problems` maps "from"/"to" to what is wrong."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


class UnknownDepartment(LookupError):
    def __init__(self, department: str, known: Sequence[str]) -> None:
        super().__init__(f"no department {department!r}")
        self.department = department
        self.known = list(known)


@dataclass(frozen=True)
class Period:
    """Calendar days `first` to `last`, both included, in `tz`."""

    first: date
    last: date
    tz: ZoneInfo

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), tzinfo=self.tz)

    @property
    def end(self) -> datetime:
        """00:00 of the day after `last`: the period is [start, end)."""
        return datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=self.tz)

    @property
    def iso_week(self) -> str:
        """The ISO week of the first day, e.g. 2026-W48 (the key of a weekly summary)."""
        year, week, _ = self.first.isocalendar()
        return f"{year}-W{week:02d}"


def parse_period(first: str | None, last: str | None, tz: ZoneInfo) -> Period:
    """A period from two YYYY-MM-DD strings; raises PeriodInvalid listing every problem."""
    problems: dict[str, str] = {}
    a = _parse_date(first, "from", problems)
    b = _parse_date(last, "to", problems)
    if a is not None and b is not None and b < a:
        problems["to"] = f"ends before the start date {a.isoformat()}"
    if problems or a is None or b is None:
        raise PeriodInvalid(problems)
    return Period(a, b, tz)


def _parse_date(text: str | None, key: str, problems: dict[str, str]) -> date | None:
    if text is None or not text.strip():
        problems[key] = "required: a date YYYY-MM-DD"
        return None
    text = text.strip()
    if not _DATE_RE.match(text):
        problems[key] = "expected a date YYYY-MM-DD, e.g. 2026-11-01"
        return None
    try:
        value = date.fromisoformat(text)
    except ValueError:
        problems[key] = "is not a real date (expected YYYY-MM-DD)"
        return None
    if not MIN_DATE <= value <= MAX_DATE:
        problems[key] = f"expected a date between {MIN_DATE} and {MAX_DATE}"
        return None
    return value


def previous_week(now: datetime, tz: ZoneInfo) -> Period:
    """Monday to Sunday of the week before the one `now` falls in (local to `tz`)."""
    today = now.astimezone(tz).date()
    monday = today - timedelta(days=today.weekday())
    return Period(monday - timedelta(days=7), monday - timedelta(days=1), tz)


# -- outputs --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StatsRow:
    kind: str  # "department" | "person"
    id: str
    name: str
    department: str | None  # department id; a department row carries its own
    handled: int
    median_hours: float | None
    p90_hours: float | None
    median_working_hours: float | None
    p90_working_hours: float | None
    overdue: int
    reminders: int
    initiated: int

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CSV_COLUMNS if name != "kind"}

    def csv_cells(self) -> list[str]:
        return ["" if (v := getattr(self, name)) is None else str(v) for name in CSV_COLUMNS]


@dataclass(frozen=True)
class StatsReport:
    period: Period
    department: str | None  # the --dept filter, if any
    rows: tuple[StatsRow, ...]  # each department row followed by its members

    @property
    def departments(self) -> list[StatsRow]:
        return [r for r in self.rows if r.kind == "department"]

    @property
    def people(self) -> list[StatsRow]:
        return [r for r in self.rows if r.kind == "person"]

    def row(self, kind: str, row_id: str) -> StatsRow | None:
        return next((r for r in self.rows if r.kind == kind and r.id == row_id), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.period.first.isoformat(),
            "to": self.period.last.isoformat(),
            "timezone": self.period.tz.key,
            "start": self.period.start.isoformat(),
            "end": self.period.end.isoformat(),
            "department": self.department,
            "departments": [r.to_dict() for r in self.departments],
            "people": [r.to_dict() for r in self.people],
        }


# -- the computation ------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) by linear interpolation between closest ranks; None when empty."""
    if not values:
        return None
    if not 0 <= q <= 1:
        raise ValueError(f"q must be between 0 and 1, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class _Tally:
    handled: int = 0
    wall_s: list[float] = field(default_factory=list)
    working_s: list[float] = field(default_factory=list)
    overdue: int = 0
    reminders: int = 0
    initiated: int = 0

    @property
    def empty(self) -> bool:
        return not (self.handled or self.overdue or self.reminders or self.initiated)

    def absorb(self, other: _Tally) -> None:
        self.handled += other.handled
        self.wall_s += other.wall_s
        self.working_s += other.working_s
        self.overdue += other.overdue
        self.reminders += other.reminders
        self.initiated += other.initiated


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


def _is_handled(t: TaskFact, start: datetime, end: datetime) -> bool:
    return (
        t.decided_at is not None
        and start <= t.decided_at < end
        and t.status in HANDLED_STATUSES
        and t.decided_by is not None
        and t.decided_by != SYSTEM
    )


def _open_past_due(t: TaskFact, end: datetime, until: datetime) -> bool:
    """Pending at `end` (activated before it, decided at or after it, or not yet) and due before
    `until` (the period end, or now when that is earlier)."""
    if t.due_at is None or t.activated_at is None or t.activated_at >= end:
        return False
    if t.decided_at is None:
        still_open = t.status == TaskStatus.PENDING.value
    else:
        still_open = t.decided_at >= end
    return still_open and t.due_at < until


def tally_facts(
    facts: Facts, *, start: datetime, end: datetime, now: datetime, working_time: WorkingTime | None = None
) -> dict[str, _Tally]:
    """Per person id, the counts and durations of the definitions in the module docstring."""
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    until = min(end, now)
    for t in facts.tasks:
        if _is_handled(t, start, end):
            assert t.decided_at is not None and t.decided_by is not None
            tally = tallies[t.decided_by]
            tally.handled += 1
            if t.activated_at is not None:
                tally.wall_s.append((t.decided_at - t.activated_at).total_seconds())
                if working_time is not None:
                    tally.working_s.append(working_time(t.activated_at, t.decided_at).total_seconds())
            if t.due_at is not None and t.decided_at > t.due_at:
                tally.overdue += 1
        if _open_past_due(t, end, until):
            tallies[t.assignee].overdue += 1
    for p in facts.pings:
        if p.kind in REMINDER_KINDS and p.person and p.person != SYSTEM and start <= p.at < end:
            tallies[p.person].reminders += 1
    for r in facts.requests:
        if start <= r.created_at < end:
            tallies[r.initiator].initiated += 1
    return dict(tallies)


def compute(
    facts: Facts,
    org: Org,
    period: Period,
    *,
    now: datetime,
    working_time: WorkingTime | None = None,
    department: str | None = None,
) -> StatsReport:
    """The report for `period`: department rows, each followed by its members' rows.

    `department` limits it to one department and its direct members (UnknownDepartment if the
    directory has no such department). Without a `working_time` function the working-hour
    columns are None.
    """
    if department is not None and department not in org.departments:
        raise UnknownDepartment(department, list(org.departments))
    tallies = tally_facts(facts, start=period.start, end=period.end, now=now, working_time=working_time)
    with_working = working_time is not None

    members: dict[str | None, list[str]] = defaultdict(list)
    for user in org.users.values():
        if user.active or (user.id in tallies and not tallies[user.id].empty):
            home = user.department if user.department in org.departments else None
            members[home].append(user.id)
    strangers = sorted(p for p, tally in tallies.items() if p not in org.users and not tally.empty)
    members[None].extend(strangers)

    if department is not None:
        dept_ids: Iterable[str] = [department]
    else:
        dept_ids = [d.id for d in org.departments.values() if d.active or members.get(d.id)]

    rows: list[StatsRow] = []
    for dept_id in dept_ids:
        people = members.get(dept_id, [])
        total = _Tally()
        for person in people:
            total.absorb(tallies.get(person, _Tally()))
        rows.append(_row("department", dept_id, org.departments[dept_id].name, dept_id, total, with_working))
        rows.extend(
            _row("person", p, org.display_name(p), dept_id, tallies.get(p, _Tally()), with_working)
            for p in people
        )
    if department is None:
        rows.extend(
            _row("person", p, org.display_name(p), None, tallies.get(p, _Tally()), with_working)
            for p in members.get(None, [])
        )
    return StatsReport(period=period, department=department, rows=tuple(rows))


def _row(kind: str, row_id: str, name: str, dept: str | None, tally: _Tally, with_working: bool) -> StatsRow:
    return StatsRow(
        kind=kind,
        id=row_id,
        name=name,
        department=dept,
        handled=tally.handled,
        median_hours=_hours(percentile(tally.wall_s, 0.5)),
        p90_hours=_hours(percentile(tally.wall_s, 0.9)),
        median_working_hours=_hours(percentile(tally.working_s, 0.5)) if with_working else None,
        p90_working_hours=_hours(percentile(tally.working_s, 0.9)) if with_working else None,
        overdue=tally.overdue,
        reminders=tally.reminders,
        initiated=tally.initiated,
    )


# -- summaries for people (sent through the outbox by the weekly job) ----------------------------
def _h(value: float | None) -> str:
    return "—" if value is None else f"{value:g} 小时"


def _numbers(row: StatsRow) -> str:
    timing = f"用时中位 {_h(row.median_hours)}、90% {_h(row.p90_hours)}" if row.handled else "用时 —"
    if row.handled and row.median_working_hours is not None:
        timing += f"（工作时间中位 {_h(row.median_working_hours)}）"
    return (
        f"处理 {row.handled} 件，{timing}，超时 {row.overdue} 件，"
        f"收到催办 {row.reminders} 次，发起 {row.initiated} 件"
    )


def _heading(report: StatsReport, scope: str, title: str = "审批周报") -> str:
    p = report.period
    return f"【{title}】{scope} {p.first.isoformat()} 至 {p.last.isoformat()}"


def department_summary(report: StatsReport, department: str, title: str = "审批周报") -> str:
    """What a department head is sent: the department's numbers, then each member's."""
    dept_row = report.row("department", department)
    if dept_row is None:
        raise UnknownDepartment(department, [r.id for r in report.departments])
    people = [r for r in report.people if r.department == department]
    lines = [_heading(report, dept_row.name, title), f"部门合计：{_numbers(dept_row)}"]
    lines += [f"{r.name}：{_numbers(r)}" for r in people[:SUMMARY_MAX_PEOPLE]]
    if len(people) > SUMMARY_MAX_PEOPLE:
        lines.append(f"……另有 {len(people) - SUMMARY_MAX_PEOPLE} 人，完整名单请导出统计表")
    return "\n".join(lines)


def office_summary(report: StatsReport, org_name: str, title: str = "审批周报") -> str:
    """What the office is sent: one line per department; per person in the exported table."""
    lines = [_heading(report, org_name, title)]
    lines += [f"{r.name}：{_numbers(r)}" for r in report.departments]
    lines.append("逐人明细可用 `oabot stats --csv` 导出。")
    return "\n".join(lines)


def weekly_messages(
    report: StatsReport, org: Org, office_role: str, title: str = "审批周报"
) -> dict[str, str]:
    """Recipient -> text, one message each: holders of `office_role` get the whole organisation's
    summary; each active head (leader or deputy) of a reported department gets that department's.
    Someone who is both gets both in one message, the organisation's first."""
    parts: dict[str, list[str]] = {}
    for person in org.role_holders(office_role):
        parts.setdefault(person, []).append(office_summary(report, org.name, title))
    for row in report.departments:
        for head in org.heads_of(row.id):
            parts.setdefault(head, []).append(department_summary(report, row.id, title))
    return {person: "\n\n".join(texts) for person, texts in parts.items()}
