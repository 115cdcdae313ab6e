"""`oabot calendar add-holiday DATE [--reason R]`, `add-workday DATE`, `remove DATE`, `list`:
the organisation's own days off and working days on top of the official holiday schedule.

An edge like the other commands: it reads the settings, calls `storage.calendar_store`, prints
what happened. A running service picks the change up within a minute (its deadlines already
computed keep their times); `list` also says whether the installed holiday data covers the
years shown.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, date, datetime
from typing import Any, TextIO

from sqlalchemy.exc import SQLAlchemyError

from bot.app import open_database  # honours a PostgreSQL schema in the URL
from bot.cli.config import database_ready, load_or_report
from bot.settings import Settings
from deadlines import timers
from deadlines.calendar import WorkingCalendar
from storage import calendar_store
from storage.calendar_store import Override, OverrideKind
from storage.db import Database

EXIT_OK = 0
EXIT_FAILED = 1  # the database could not be used, or there was nothing to remove
EXIT_INVALID = 2  # bad settings or arguments, or an uninitialised database

KIND_LABEL = {OverrideKind.HOLIDAY: "holiday (day off)", OverrideKind.WORKDAY: "workday"}


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date YYYY-MM-DD") from None


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "calendar",
        help="add or remove the organisation's extra holidays and working days",
        description=(
            "Working days follow the official Chinese holiday schedule (with its make-up working "
            "days 调休). Add the organisation's own exceptions here; they win over the schedule."
        ),
    )
    actions = parser.add_subparsers(dest="calendar_action", metavar="ACTION")
    for name, kind, text in (
        ("add-holiday", OverrideKind.HOLIDAY, "make DATE a day off"),
        ("add-workday", OverrideKind.WORKDAY, "make DATE a working day"),
    ):
        adding = actions.add_parser(
            name, help=text, description=f"{text[0].upper()}{text[1:]} (replacing any earlier override)."
        )
        adding.add_argument("date", metavar="DATE", type=_date, help="YYYY-MM-DD")
        adding.add_argument("--reason", default="", help="why, e.g. 公司年会")
        adding.set_defaults(kind=kind)
    removing = actions.add_parser(
        "remove", help="remove DATE's override", description="Remove DATE's override."
    )
    removing.add_argument("date", metavar="DATE", type=_date, help="YYYY-MM-DD")
    listing = actions.add_parser(
        "list", help="list the overrides", description="List the overrides, oldest first."
    )
    listing.add_argument("--year", type=int, help="only this year")
    parser.set_defaults(func=lambda args: _run(args, parser))


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.calendar_action in ("add-holiday", "add-workday"):
        return run_add(args.date, args.kind, reason=args.reason, demo=args.demo)
    if args.calendar_action == "remove":
        return run_remove(args.date, demo=args.demo)
    if args.calendar_action == "list":
        return run_list(year=args.year, demo=args.demo)
    parser.print_help(sys.stderr)
    return EXIT_INVALID


def run_add(
    day: date,
    kind: OverrideKind,
    *,
    reason: str = "",
    demo: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    settings = load_or_report(demo=demo, err=err)
    if settings is None or not database_ready(settings, err):
        return EXIT_INVALID

    async def go(session: Any) -> tuple[Override, bool]:
        now = datetime.now(UTC)
        saved = await calendar_store.set_override(
            session, day=day, kind=kind, reason=reason.strip(), created_by="cli", now=now
        )
        # The running service re-plans pending due times at its next timer scan.
        await timers.schedule_replan(session, day=day, change=kind.value, now=now)
        return saved

    try:
        saved, created = asyncio.run(_in_transaction(settings, go))
    except (SQLAlchemyError, OSError) as exc:
        return _database_problem(exc, err)
    verb = "added" if created else "replaced"
    print(f"{verb}: {_line(saved)}", file=out)
    return EXIT_OK


def run_remove(day: date, *, demo: bool = False, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    settings = load_or_report(demo=demo, err=err)
    if settings is None or not database_ready(settings, err):
        return EXIT_INVALID

    async def go(session: Any) -> Override | None:
        removed = await calendar_store.remove_override(session, day=day)
        if removed is not None:
            await timers.schedule_replan(
                session, day=day, change=f"removed_{removed.kind.value}", now=datetime.now(UTC)
            )
        return removed

    try:
        removed = asyncio.run(_in_transaction(settings, go))
    except (SQLAlchemyError, OSError) as exc:
        return _database_problem(exc, err)
    if removed is None:
        print(f"{day.isoformat()} has no override; nothing removed", file=err)
        return EXIT_FAILED
    print(f"removed: {_line(removed)}", file=out)
    return EXIT_OK


def run_list(
    *, year: int | None = None, demo: bool = False, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    settings = load_or_report(demo=demo, err=err)
    if settings is None or not database_ready(settings, err):
        return EXIT_INVALID
    start = date(year, 1, 1) if year else None
    end = date(year, 12, 31) if year else None

    async def go(session: Any) -> list[Override]:
        return await calendar_store.list_overrides(session, start=start, end=end)

    try:
        items = asyncio.run(_in_transaction(settings, go))
    except (SQLAlchemyError, OSError) as exc:
        return _database_problem(exc, err)
    if not items:
        print("no overrides" + (f" in {year}" if year else "") + ": the official schedule applies", file=out)
    for o in items:
        print(_line(o), file=out)
    calendar = WorkingCalendar(settings.tz, settings.working_hours)
    today = datetime.now(UTC).astimezone(settings.tz).date()
    for d in [date(year or today.year, 12, 31)] + [o.day for o in items]:
        calendar.is_working_day(d)
    warning = calendar.coverage_warning()
    if warning:
        print(f"warning: {warning}", file=err)
    return EXIT_OK


def _line(o: Override) -> str:
    reason = f"  {o.reason}" if o.reason else ""
    return f"{o.day.isoformat()} {o.day:%a}  {KIND_LABEL[o.kind]}{reason}"


async def _in_transaction(settings: Settings, work: Any) -> Any:
    database: Database = open_database(settings.database_url)
    try:
        async with database.transaction() as session:
            return await work(session)
    finally:
        await database.dispose()


def _database_problem(exc: Exception, err: TextIO) -> int:
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    print(f"Cannot use the database: {detail}", file=err)
    print("Is it running, and has `oabot migrate` created the tables?", file=err)
    return EXIT_FAILED
