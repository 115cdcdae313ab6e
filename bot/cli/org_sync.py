"""`oabot org sync --from wecom|dingtalk [--dry-run] [--overlay FILE]` and `oabot org history`.

An edge: it builds the sync service (`bot.org_sync_wiring`) on this process's own database,
key-value store and HTTP client, runs one sync and prints what it did, or what it would do
(`--dry-run`): people added, changed, moved, deactivated, reactivated, departments added,
renamed, moved and removed, and where each leaver's open tasks go. A directory that cannot be
read completely (exit 1) or does not validate (exit 2, every problem listed) changes nothing.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from datetime import timedelta
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import httpx

from approvals.clock import SystemClock
from bot.app import open_database, open_kv
from bot.cli.config import database_ready, load_or_report
from bot.org_sync_wiring import build_org_sync
from bot.settings import Settings
from bot.trail_key import load_trail_keys
from bot.wiring import load_all_templates, make_deadline_fn, make_working_days
from deadlines.org_calendar import OrgCalendar
from org.loader import OrgFileError
from services.approvals import Workflow, WorkflowDeps
from services.deadlines import DeadlineHooks
from services.directory import Directory
from services.identity import Sessions
from services.links import PersonalLinks
from services.org_sync import (
    DirectoryReadFailed,
    Handover,
    SyncNotConfigured,
    SyncRecord,
    SyncReport,
    sync_history,
)

EXIT_OK = 0
EXIT_FAILED = 1  # the platform could not be read: nothing changed
EXIT_INVALID = 2  # bad settings or a directory that does not validate: nothing changed
TIMEOUT = httpx.Timeout(20.0, connect=10.0)


def register(actions: Any) -> None:
    syncing = actions.add_parser(
        "sync",
        help="make the directory match WeCom's or DingTalk's contacts",
        description=(
            "Read every department and member from the platform's contact API, merge the overlay "
            "(roles, levels, sites, managers the platform does not know), validate like `org import` "
            "and apply it in one transaction; people who left hand their open tasks over to their "
            "manager (离职交接). Nothing is written when the platform cannot be read or a problem is found."
        ),
    )
    syncing.add_argument("--from", dest="platform", required=True, choices=("wecom", "dingtalk"))
    syncing.add_argument("--dry-run", action="store_true", help="print the changes without writing anything")
    syncing.add_argument("--overlay", metavar="FILE", help="overlay YAML (default: OABOT_ORG_OVERLAY)")
    history = actions.add_parser("history", help="list the latest directory syncs")
    history.add_argument("--limit", type=int, default=20, help="how many syncs to list (default 20)")


def run_sync(
    platform: str,
    *,
    dry_run: bool = False,
    overlay: str | None = None,
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
        report = asyncio.run(_sync(settings, platform, dry_run=dry_run, overlay=overlay))
    except SyncNotConfigured:
        print(f"{platform} is not configured: set its OABOT_{platform.upper()}_* variables", file=err)
        return EXIT_INVALID
    except DirectoryReadFailed as exc:
        print(f"Cannot read the {platform} directory: {exc.detail}", file=err)
        print("Nothing was changed; run the sync again later.", file=err)
        return EXIT_FAILED
    except OrgFileError as exc:
        for line in exc.format_problems():
            print(line, file=err)
        count = len(exc.problems)
        print(f"{count} problem{'s' if count != 1 else ''} found; nothing was changed.", file=err)
        return EXIT_INVALID
    for line in format_sync(report, tz=settings.tz):
        print(line, file=out)
    return EXIT_OK


def run_history(
    *, limit: int = 20, demo: bool = False, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    settings = load_or_report(demo=demo, err=err)
    if settings is None or not database_ready(settings, err):
        return EXIT_INVALID
    records = asyncio.run(_history(settings, limit))
    for line in format_history(records, tz=settings.tz):
        print(line, file=out)
    return EXIT_OK


async def _sync(settings: Settings, platform: str, *, dry_run: bool, overlay: str | None) -> SyncReport:
    db = open_database(settings.database_url)
    kv = open_kv(settings)
    clock = SystemClock()
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            calendar = OrgCalendar(settings.tz, settings.working_hours)
            await calendar.reload(db, now=clock.now())
            trail_keys = load_trail_keys(settings)
            hooks = DeadlineHooks(calendar=calendar, tz=settings.tz, trail_key=trail_keys.current)
            directory = Directory(db, clock.now)
            workflow = Workflow(
                WorkflowDeps(
                    db=db,
                    templates=load_all_templates(settings),
                    tz=settings.tz,
                    now=clock.now,
                    directory=directory,
                    links=PersonalLinks(
                        db,
                        secret=settings.checkins.link_secret,
                        public_url=settings.public_url,
                        now=clock.now,
                    ),
                    deadline_fn=make_deadline_fn(calendar),
                    hooks=hooks.hooks,
                    working_days=make_working_days(calendar),
                    trail_keys=trail_keys,
                )
            )
            service = build_org_sync(
                settings,
                db=db,
                http=http,
                kv=kv,
                workflow=workflow,
                now=clock.now,
                sessions=Sessions(kv, directory, clock.now),
                overlay=overlay,
            )
            return await service.sync(platform, dry_run=dry_run, trigger=f"cli:{_who()}")
    finally:
        await kv.close()
        await db.dispose()


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


async def _history(settings: Settings, limit: int) -> list[SyncRecord]:
    db = open_database(settings.database_url)
    try:
        return await sync_history(db, limit=limit)
    finally:
        await db.dispose()


# -- what the person at the terminal reads -------------------------------------------------


def format_sync(report: SyncReport, *, tz: ZoneInfo) -> list[str]:
    """The changes a sync made (or, dry run, would make), one line each."""
    d = report.diff
    verb = "Would sync" if report.dry_run else "Synced"
    lines = [f"{verb} from {report.platform}: {report.people} people in {report.departments} departments."]
    lines.append(
        f"People: {len(d.added)} added, {len(d.changed)} changed ({len(d.moved)} moved), "
        f"{len(d.deactivated)} deactivated, {len(d.reactivated)} reactivated"
    )
    lines.extend(f"  + {p.id} {p.name}" for p in d.added)
    for p in d.changed:
        what = "; ".join(
            f"{f} {_shown(report, f, p.before.get(f))} -> {_shown(report, f, p.after.get(f))}"
            for f in p.fields
        )
        lines.append(f"  ~ {p.id} {p.name}: {what}" + (" (moved)" if "department" in p.fields else ""))
    lines.extend(
        f"  ^ {p.id} {p.name}: reactivated (sign-in restored; moved tasks stay moved)" for p in d.reactivated
    )
    handovers = {h.user: h for h in report.handovers}
    for p in d.deactivated:
        where = _handover(handovers.get(p.id), dry_run=report.dry_run)
        lines.append(f"  - {p.id} {p.name}: deactivated, sign-in and API tokens end; {where}")
    lines.append(
        f"Departments: {len(d.departments_added)} added, {len(d.departments_renamed)} renamed, "
        f"{len(d.departments_moved)} moved, {len(d.departments_removed)} removed"
    )
    lines.extend(f"  + {dept} {report.names.get(dept, dept)}" for dept in d.departments_added)
    lines.extend(f"  ~ {dept}: {before} -> {after}" for dept, before, after in d.departments_renamed)
    lines.extend(
        f"  ~ {dept}: under {_shown(report, 'department', a)} (was {_shown(report, 'department', b)})"
        for dept, b, a in d.departments_moved
    )
    lines.extend(f"  - {dept} {report.names.get(dept, dept)}" for dept in d.departments_removed)
    if report.overlay_unused:
        lines.append(
            f"Overlay entries for people not in {report.platform} (ignored): {', '.join(report.overlay_unused)}"
        )
    if report.dry_run:
        lines.append("Dry run: nothing was written.")
    elif report.sync_id is not None:
        lines.append(f"Recorded as sync #{report.sync_id} (`oabot org history`).")
    return lines


def _handover(h: Handover | None, *, dry_run: bool) -> str:
    """Where a leaver's open tasks go."""
    if h is None or not h.tasks:
        return "no open tasks"
    tasks = f"{h.tasks} open task{'s' if h.tasks != 1 else ''}"
    if h.successor is None:
        return f"{tasks} stay: no active manager or hand-over person"
    return f"{tasks} {'would move' if dry_run else 'moved'} to {h.successor_name} ({h.successor}), 离职交接"


def _shown(report: SyncReport, field: str, value: object) -> str:
    if value in (None, "", [], {}):
        return "(none)"
    if field == "department":
        return report.names.get(str(value), str(value))
    if field == "manager":
        return f"{report.person_names.get(str(value), str(value))} ({value})"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}:{v}" for k, v in value.items())
    return str(value)


def format_history(records: list[SyncRecord], *, tz: ZoneInfo) -> list[str]:
    if not records:
        return ["No directory sync has run yet."]
    lines = []
    for r in records:
        at = r.started_at.astimezone(tz)
        took = max(timedelta(0), r.finished_at - r.started_at).total_seconds()
        lines.append(
            f"#{r.id} {at:%Y-%m-%d %H:%M} {r.platform} {r.scope} {r.status} by {r.trigger} ({took:.1f} s): {r.summary}"
        )
    return lines
