"""The appraisal view 考核统计 of a period: the statistics report (`reports.stats`, the one source
of the per-person and per-department numbers) plus what the office's page adds around it. Pure:
facts in, a JSON-ready dict out, so a publication can freeze exactly what the page shows.

What it adds, on top of the definitions in `reports.stats`:

- **overdue rate** of a row: overdue / (handled + tasks still open past due at the period end),
  i.e. the share of the tasks that counted for the person (or department) which were late.
  None when nothing counted.
- **trend by week**: the period cut into calendar weeks (Monday to Sunday, the first and last
  clipped to the period); each week's handled count, overdue count, requests initiated and
  median working hours, by the same definitions computed on that week alone.
- **slowest steps**: handled tasks of the period grouped by template and step index; the ten
  with the highest median working hours (ties: more tasks first, then the template key), each
  with its task count and 90th percentile. Steps handled fewer than `MIN_TASKS` times are left
  out: one slow task says little about a step.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from approvals.definitions import Template
from reports.stats import (
    Facts,
    Period,
    StatsReport,
    WorkingTime,
    _is_handled,
    _open_past_due,
    percentile,
    tally_facts,
)

MIN_TASKS = 1
TOP_STEPS = 10
StepName = Callable[[str, int], str]  # (template key, step index) -> "模板 · 步骤"


def step_namer(templates: Mapping[str, Template]) -> StepName:
    """Names steps "模板名 · 步骤名" from the templates in use (第 N 步 when unknown)."""

    def name(key: str, index: int) -> str:
        template = templates.get(key)
        if template is None:
            return f"{key} · 第 {index + 1} 步"
        step = template.steps[index].name if 0 <= index < len(template.steps) else f"第 {index + 1} 步"
        return f"{template.name} · {step}"

    return name


@dataclass(frozen=True)
class Week:
    period: Period
    facts: Facts


def weeks_of(period: Period) -> list[Period]:
    """Calendar weeks (Monday to Sunday) covering `period`, clipped to it."""
    out: list[Period] = []
    first = period.first
    while first <= period.last:
        sunday = first + timedelta(days=6 - first.weekday())
        last = min(sunday, period.last)
        out.append(Period(first, last, period.tz))
        first = last + timedelta(days=1)
    return out


def open_overdue(facts: Facts, period: Period, now: datetime) -> dict[str, int]:
    """Per assignee: tasks still open past due at the period end (or now, if earlier)."""
    counts: dict[str, int] = defaultdict(int)
    until = min(period.end, now)
    for t in facts.tasks:
        if _open_past_due(t, period.end, until):
            counts[t.assignee] += 1
    return dict(counts)


def _rate(overdue: int, counted: int) -> float | None:
    return None if counted == 0 else round(min(overdue, counted) / counted, 4)


def counted_tasks(report: StatsReport, facts: Facts, now: datetime) -> dict[str, int]:
    """Key "person:<id>" or "department:<id>" -> tasks that counted: handled + still open past due."""
    still = open_overdue(facts, report.period, now)
    counted: dict[str, int] = {}
    dept_open: dict[str, int] = defaultdict(int)
    for row in report.people:
        counted[f"person:{row.id}"] = row.handled + still.get(row.id, 0)
        if row.department is not None:
            dept_open[row.department] += still.get(row.id, 0)
    for row in report.departments:
        counted[f"department:{row.id}"] = row.handled + dept_open.get(row.id, 0)
    return counted


def overdue_rates(report: StatsReport, counted: dict[str, int]) -> dict[str, float | None]:
    """Key "person:<id>" or "department:<id>" -> overdue rate (module docstring)."""
    return {
        f"{row.kind}:{row.id}": _rate(row.overdue, counted.get(f"{row.kind}:{row.id}", 0))
        for row in report.rows
    }


def week_numbers(period: Period, facts: Facts, now: datetime, working_time: WorkingTime) -> dict[str, Any]:
    """One week's totals over everyone, by the definitions of `reports.stats`."""
    tallies = tally_facts(facts, start=period.start, end=period.end, now=now, working_time=working_time)
    working = [s for t in tallies.values() for s in t.working_s]
    median = percentile(working, 0.5)
    return {
        "from": period.first.isoformat(),
        "to": period.last.isoformat(),
        "handled": sum(t.handled for t in tallies.values()),
        "overdue": sum(t.overdue for t in tallies.values()),
        "initiated": sum(t.initiated for t in tallies.values()),
        "median_working_hours": None if median is None else round(median / 3600, 2),
    }


def slowest_steps(
    facts: Facts, period: Period, working_time: WorkingTime, name: StepName, *, limit: int = TOP_STEPS
) -> list[dict[str, Any]]:
    """The steps with the highest median working hours to a decision (module docstring)."""
    spans: dict[tuple[str, int], list[float]] = defaultdict(list)
    for t in facts.tasks:
        if not _is_handled(t, period.start, period.end) or t.activated_at is None or t.decided_at is None:
            continue
        if t.template_key is None or t.step_index is None:
            continue
        spans[(t.template_key, t.step_index)].append(
            working_time(t.activated_at, t.decided_at).total_seconds()
        )
    rows: list[dict[str, Any]] = []
    for (template, index), seconds in spans.items():
        if len(seconds) < MIN_TASKS:
            continue
        median = percentile(seconds, 0.5) or 0.0
        p90 = percentile(seconds, 0.9) or 0.0
        rows.append(
            {
                "template": template,
                "step": index,
                "name": name(template, index),
                "handled": len(seconds),
                "median_working_hours": round(median / 3600, 2),
                "p90_working_hours": round(p90 / 3600, 2),
            }
        )
    rows.sort(key=lambda r: (-r["median_working_hours"], -r["handled"], r["template"], r["step"]))
    return rows[:limit]


def appraisal(
    report: StatsReport,
    facts: Facts,
    weeks: Sequence[Week],
    *,
    now: datetime,
    working_time: WorkingTime,
    step_name: StepName,
) -> dict[str, Any]:
    """Everything the page shows, JSON-ready: the report's own dict (the API's numbers, unchanged)
    plus overdue rates, the weekly trend and the slowest steps."""
    counted = counted_tasks(report, facts, now)
    return {
        "report": report.to_dict(),
        "counted": counted,
        "overdue_rates": overdue_rates(report, counted),
        "weeks": [week_numbers(w.period, w.facts, now, working_time) for w in weeks],
        "slowest_steps": slowest_steps(facts, report.period, working_time, step_name),
    }
