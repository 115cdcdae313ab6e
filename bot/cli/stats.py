"""`oabot stats --from DATE --to DATE [--dept DEPT] [--csv FILE]`: the statistics table.

Prints one row per department followed by its members (the numbers `GET /api/v1/stats`
returns; definitions in reports/stats.py) and, with --csv, writes the same rows as CSV
(UTF-8 with a byte-order mark, so spreadsheet programs show the Chinese names). Bad dates,
an unknown department, an uninitialised or unreadable database print one line each and exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import unicodedata
from pathlib import Path
from typing import Any

from approvals.clock import SystemClock
from bot.app import open_database
from bot.cli.config import database_ready, load_or_report
from reports.stats import CSV_COLUMNS, PeriodInvalid, StatsReport, StatsRow, UnknownDepartment
from services.stats import StatsService
from storage.org_repo import OrgNotImported

EXIT_PROBLEM = 2
TABLE_COLUMNS = (
    ("handled", "handled"),
    ("median_hours", "median h"),
    ("p90_hours", "p90 h"),
    ("median_working_hours", "median wh"),
    ("p90_working_hours", "p90 wh"),
    ("overdue", "overdue"),
    ("reminders", "reminders"),
    ("initiated", "initiated"),
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="per person and per department numbers for a period",
        description="Tasks handled, median and 90th-percentile time to decision (wall-clock and working "
        "hours), overdue tasks, reminders received and requests initiated, per person and per department.",
    )
    parser.add_argument(
        "--from", dest="first", metavar="DATE", help="first day, YYYY-MM-DD (organisation time)"
    )
    parser.add_argument("--to", dest="last", metavar="DATE", help="last day, YYYY-MM-DD (included)")
    parser.add_argument("--dept", metavar="DEPT", help="only this department (id) and its members")
    parser.add_argument("--csv", metavar="FILE", help="also write the rows to FILE as CSV")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_or_report(demo=args.demo)
    if settings is None or not database_ready(settings):
        return EXIT_PROBLEM
    service = StatsService(tz=settings.tz, working_hours=settings.working_hours)
    try:
        period = service.period(args.first, args.last)
    except PeriodInvalid as exc:
        given = {"from": args.first, "to": args.last}
        for key, problem in exc.problems.items():
            value = given[key]
            print(f"--{key}={value!r}: {problem}" if value else f"--{key}: {problem}", file=sys.stderr)
        return EXIT_PROBLEM

    async def go() -> StatsReport:
        db = open_database(settings.database_url)
        try:
            _, report = await service.load(db, period, now=SystemClock().now(), department=args.dept)
            return report
        finally:
            await db.dispose()

    try:
        report = asyncio.run(go())
    except UnknownDepartment as exc:
        print(
            f"--dept={exc.department!r}: no such department; known: {', '.join(exc.known)}", file=sys.stderr
        )
        return EXIT_PROBLEM
    except OrgNotImported as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_PROBLEM
    except Exception as exc:  # an unreachable or unmigrated database: say what to do
        print(
            f"cannot read the statistics: {type(exc).__name__}: {exc}\n"
            "check OABOT_DATABASE_URL and run `oabot migrate`",
            file=sys.stderr,
        )
        return EXIT_PROBLEM

    for line in table(report):
        print(line)
    if args.csv:
        try:
            write_csv(report, Path(args.csv))
        except OSError as exc:
            print(f"--csv={args.csv!r}: cannot write it: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_PROBLEM
        print(f"wrote {len(report.rows)} rows to {args.csv}", file=sys.stderr)
    return 0


# -- output -----------------------------------------------------------------------------------------
def write_csv(report: StatsReport, path: Path) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(row.csv_cells() for row in report.rows)


def _width(text: str) -> int:
    """Columns a terminal gives `text`: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def _label(row: StatsRow) -> str:
    return f"{row.name} ({row.id})" if row.kind == "department" else f"  {row.name} ({row.id})"


def table(report: StatsReport) -> list[str]:
    """The report as aligned text lines: a title, a header, then one line per row."""
    period = report.period
    title = f"{period.first.isoformat()} to {period.last.isoformat()} ({period.tz.key})"
    headers = ["department / person", *(h for _, h in TABLE_COLUMNS)]
    body = [[_label(r), *(_cell(getattr(r, name)) for name, _ in TABLE_COLUMNS)] for r in report.rows]
    widths = [max(_width(cells[i]) for cells in [headers, *body]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        first = cells[0] + " " * (widths[0] - _width(cells[0]))
        rest = [" " * (widths[i] - _width(c)) + c for i, c in enumerate(cells) if i > 0]
        return "  ".join([first, *rest]).rstrip()

    return [title, line(headers), *(line(cells) for cells in body)]
