"""`oabot org import FILE` and `oabot org show`: load the organisation directory, and look at it
(`oabot org sync` and `oabot org history` live in `bot.cli.org_sync`).

The command is an edge: it reads settings and the file, calls `org.loader` to validate and
`storage.org_repo` to write, and prints what happened. A bad file is reported line by line
(`FILE:LINE: message`) with exit status 2 and the database untouched, and so is a database
that was never initialised; nothing here decides anything about the organisation itself.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.cli import org_sync
from bot.cli.config import database_ready, load_or_report
from bot.settings import Settings
from org.loader import OrgFileError, load_org_file
from org.model import Org
from storage.base import utcnow
from storage.db import Database
from storage.org_repo import Changes, ImportReport, OrgNotImported, get_org_meta, import_org, load_org

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1  # the database could not be used, or there is nothing to show
EXIT_INVALID = 2  # bad settings, an uninitialised database or a bad org file: nothing was written


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "org",
        help="import, sync or show the organisation directory",
        description=(
            "Import the organisation directory from a YAML file or sync it from WeCom or DingTalk, "
            "or show what is stored and the syncs so far."
        ),
    )
    actions = parser.add_subparsers(dest="org_action", metavar="ACTION")
    importing = actions.add_parser(
        "import",
        help="validate FILE and make the directory match it",
        description=(
            "Validate FILE and make the stored directory match it: new people are added, changed "
            "ones updated, people missing from the file deactivated (never deleted). Any problem "
            "in the file is reported as FILE:LINE: message and nothing is written (exit status 2)."
        ),
    )
    importing.add_argument("file", metavar="FILE", help="org YAML file, like bot/data/demo_org.yaml")
    importing.add_argument(
        "--dry-run", action="store_true", help="report what would change without writing anything"
    )
    showing = actions.add_parser(
        "show",
        help="print departments with their heads and members",
        description="Print the department tree with leaders and deputies, members, and sites.",
    )
    showing.add_argument(
        "--all", action="store_true", help="also list people, departments and sites that are inactive"
    )
    org_sync.register(actions)
    parser.set_defaults(func=lambda args: _run(args, parser))


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.org_action == "import":
        return run_import(args.file, dry_run=args.dry_run, demo=args.demo)
    if args.org_action == "show":
        return run_show(include_inactive=args.all, demo=args.demo)
    if args.org_action == "sync":
        return org_sync.run_sync(args.platform, dry_run=args.dry_run, overlay=args.overlay, demo=args.demo)
    if args.org_action == "history":
        return org_sync.run_history(limit=args.limit, demo=args.demo)
    parser.print_help(sys.stderr)
    return EXIT_INVALID


def run_import(
    path: str,
    *,
    dry_run: bool = False,
    demo: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    settings = load_or_report(demo=demo, err=err)
    if settings is None or not database_ready(settings, err):
        return EXIT_INVALID
    try:
        org = load_org_file(path)
    except OrgFileError as exc:
        for line in exc.format_problems():
            print(line, file=err)
        count = len(exc.problems)
        print(f"{count} problem{'s' if count != 1 else ''} found; nothing was imported.", file=err)
        return EXIT_INVALID
    try:
        report = asyncio.run(_import(settings, org, dry_run=dry_run))
    except (SQLAlchemyError, OSError) as exc:
        _database_problem(settings, exc, err)
        return EXIT_FAILED
    for line in format_report(report, org, source=path, dry_run=dry_run):
        print(line, file=out)
    return EXIT_OK


def run_show(
    *,
    include_inactive: bool = False,
    demo: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    settings = load_or_report(demo=demo, err=err)
    if settings is None or not database_ready(settings, err):
        return EXIT_INVALID
    try:
        org, imported_at = asyncio.run(_load(settings))
    except OrgNotImported:
        print("No organisation has been imported yet; run `oabot org import FILE` first.", file=err)
        return EXIT_FAILED
    except (SQLAlchemyError, OSError) as exc:
        _database_problem(settings, exc, err)
        return EXIT_FAILED
    for line in format_org(org, imported_at=imported_at, include_inactive=include_inactive):
        print(line, file=out)
    return EXIT_OK


def _database_problem(settings: Settings, exc: Exception, err: TextIO) -> None:
    logger.debug("database error", exc_info=exc)
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    url = make_url(settings.database_url).render_as_string(hide_password=True)
    print(f"Cannot use the database {url}: {detail}", file=err)
    print("Is it running, and has `oabot migrate` created the tables?", file=err)


async def _import(settings: Settings, org: Org, *, dry_run: bool) -> ImportReport:
    database = Database(settings.database_url)
    try:
        async with database.session() as session:  # one transaction; closing unfinished rolls back
            report = await import_org(session, org, now=utcnow())
            if dry_run:
                await session.rollback()
            else:
                await session.commit()
            return report
    finally:
        await database.dispose()


async def _load(settings: Settings) -> tuple[Org, datetime]:
    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            meta = await get_org_meta(session)
            if meta is None:
                raise OrgNotImported("no organisation has been imported")
            return await load_org(session), meta.imported_at
    finally:
        await database.dispose()


# -- what the person at the terminal reads -------------------------------------------------


def format_report(report: ImportReport, org: Org, *, source: str, dry_run: bool = False) -> list[str]:
    """The summary printed after an import: counts, then who was added/updated/deactivated."""
    verb = "Would import" if dry_run else "Imported"
    lines = [f"{verb} {source} ({org.name})."]
    lines.append(
        f"People: {len(report.added)} added, {len(report.updated)} updated, "
        f"{len(report.deactivated)} deactivated, {report.unchanged} unchanged"
    )
    for mark, ids in (("+", report.added), ("~", report.updated), ("-", report.deactivated)):
        lines.extend(f"  {mark} {user_id} {report.names.get(user_id, user_id)}" for user_id in ids)
    lines.append(_counts("Departments", report.departments))
    lines.append(_counts("Sites", report.sites))
    if dry_run:
        lines.append("Dry run: nothing was written.")
    return lines


def _counts(label: str, changes: Changes) -> str:
    return (
        f"{label}: {len(changes.added)} added, {len(changes.updated)} updated, "
        f"{len(changes.deactivated)} deactivated"
    )


def format_org(org: Org, *, imported_at: datetime | None = None, include_inactive: bool = False) -> list[str]:
    """The department tree: each department with its heads, its members, then its sub-departments."""
    header = f"{org.name} (time zone {org.timezone})"
    if imported_at is not None:
        local = imported_at.astimezone(ZoneInfo(org.timezone))
        header += f", imported {local:%Y-%m-%d %H:%M}"
    lines = [header]
    shown = {d.id for d in org.departments.values() if d.active or include_inactive}
    children: dict[str | None, list[str]] = {}
    for d in org.departments.values():
        if d.id in shown:
            parent = d.parent if d.parent in shown else None
            children.setdefault(parent, []).append(d.id)

    def person(user_id: str) -> str:
        return f"{org.display_name(user_id)} ({user_id})"

    def walk(dept_id: str, depth: int) -> None:
        d = org.departments[dept_id]
        indent = "  " * depth
        heads = f"leader: {person(d.leader) if d.leader else 'none'}"
        if d.deputies:
            heads += f"; deputies: {', '.join(person(x) for x in d.deputies)}"
        inactive = " (inactive)" if not d.active else ""
        lines.append(f"{indent}{d.name} [{d.id}]{inactive} - {heads}")
        for u in org.users.values():
            if u.department != dept_id or not (u.active or include_inactive):
                continue
            parts = [f"{indent}  * {person(u.id)}"]
            if u.title:
                parts.append(u.title)
            if u.roles:
                parts.append(f"roles: {', '.join(u.roles)}")
            if u.level is not None:
                parts.append(f"level {u.level}")
            lines.append(", ".join(parts) + ("" if u.active else " (inactive)"))
        for child in children.get(dept_id, []):
            walk(child, depth + 1)

    for root in children.get(None, []):
        walk(root, 0)
    sites = [s for s in org.sites.values() if s.active or include_inactive]
    if sites:
        lines.append("Sites:")
        for s in sites:
            inactive = " (inactive)" if not s.active else ""
            lines.append(
                f"  {s.name} [{s.id}]{inactive} - {s.lat}, {s.lng} ({s.coord_system}), "
                f"radius {s.radius_m:g} m"
            )
    people = sum(1 for u in org.users.values() if u.active)
    lines.append(
        f"{people} active people in {sum(1 for d in org.departments.values() if d.active)} departments."
    )
    return lines
