"""`oabot export requests --from DATE --to DATE --out FILE.xlsx|FILE.csv`: the requests submitted
in a period, one row per request, one column per form field, plus the route and the timing (the
same sheet as the desk's export, `services.admin_export`). Rows are read 200 at a time and
written as they come; a progress line on stderr counts them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date
from pathlib import Path
from typing import Any

from approvals.clock import SystemClock
from bot.app import open_database
from bot.cli.config import database_ready, load_or_report
from bot.wiring import load_all_templates
from services.admin_export import ExportPlan, OrgNotImported, export_requests

EXIT_PROBLEM = 2


def register(subparsers: Any) -> None:
    export = subparsers.add_parser("export", help="export data to a spreadsheet")
    sub = export.add_subparsers(dest="export_command", metavar="WHAT")
    requests = sub.add_parser(
        "requests",
        help="requests submitted in a period, one row each (form fields, route, timing) as XLSX or CSV",
    )
    requests.add_argument(
        "--from", dest="first", metavar="DATE", help="first day, YYYY-MM-DD (organisation time)"
    )
    requests.add_argument("--to", dest="last", metavar="DATE", help="last day, YYYY-MM-DD (included)")
    requests.add_argument("--out", required=True, metavar="FILE", help="FILE.xlsx or FILE.csv")
    requests.set_defaults(func=run_requests)
    export.set_defaults(func=lambda args: (export.print_help(sys.stderr), 2)[1])


def _day(raw: str | None, flag: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{flag}={raw!r}: not a date (YYYY-MM-DD)") from None


def _progress(done: int, total: int) -> None:
    print(f"\rexported {done}/{total} requests", end="", file=sys.stderr, flush=True)


def run_requests(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix.lower() not in (".xlsx", ".csv"):
        print(f"--out={args.out!r}: the file name must end in .xlsx or .csv", file=sys.stderr)
        return EXIT_PROBLEM
    try:
        first, last = _day(args.first, "--from"), _day(args.last, "--to")
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_PROBLEM
    if first and last and first > last:
        print("--from is after --to", file=sys.stderr)
        return EXIT_PROBLEM
    settings = load_or_report(demo=args.demo)
    if settings is None or not database_ready(settings):
        return EXIT_PROBLEM

    async def go() -> int:
        db = open_database(settings.database_url)
        try:
            return await export_requests(
                db,
                ExportPlan(first, last, out),
                templates=load_all_templates(settings),
                tz=settings.tz,
                working_hours=settings.working_hours,
                now=SystemClock().now(),
                progress=_progress,
            )
        finally:
            await db.dispose()

    try:
        count = asyncio.run(go())
    except OrgNotImported as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_PROBLEM
    except OSError as exc:
        print(f"\ncannot write {out}: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    print("", file=sys.stderr)
    print(f"exported {count} request(s) to {out}")
    return 0
