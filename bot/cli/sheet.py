"""`oabot sheet REQUEST --out FILE.pdf`: write the printable approval sheet 审批单 of a finished
request, as the office prints it from the desk (same facts, same QR verification link).

Reads the database only. Needs a CJK font (fonts-noto-cjk, or `--font FILE`); without one it
says what to install and writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from approvals.clock import SystemClock
from approvals.errors import RequestNotFound
from bot.app import open_database
from bot.cli.config import database_ready, load_or_report
from bot.settings import Settings
from bot.wiring import load_all_templates
from notifications.messages import message_for
from reports.sheet import CjkFontMissing
from services.approvals import Workflow, WorkflowDeps
from services.directory import Directory
from services.links import PersonalLinks
from services.sheets import SheetNotReady, Sheets
from services.workspace import Workspace
from storage.org_repo import OrgNotImported

EXIT_PROBLEM = 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sheet",
        help="write the printable approval sheet (PDF) of a finished request",
        description="Write the approval sheet 审批单 of a finished request as PDF, with its QR verification link.",
    )
    parser.add_argument("request", metavar="REQUEST", help="the request id, e.g. r_0123abcd")
    parser.add_argument("--out", required=True, metavar="FILE", help="where to write the PDF")
    parser.add_argument("--font", metavar="FILE", help="a CJK font file (default: fonts-noto-cjk's)")
    parser.set_defaults(func=run)


async def _render(settings: Settings, request_id: str, font: str | None) -> bytes:
    db = open_database(settings.database_url)
    clock = SystemClock()
    try:
        directory = Directory(db, clock.now)
        links = PersonalLinks(
            db, secret=settings.checkins.link_secret, public_url=settings.public_url, now=clock.now
        )
        deps = WorkflowDeps(
            db=db,
            templates=load_all_templates(settings),
            tz=settings.tz,
            now=clock.now,
            directory=directory,
            links=links,
            admin_roles=settings.admin_roles,
        )
        sheets = Sheets(Workspace(Workflow(deps), admin_roles=settings.admin_roles))
        sheet = await sheets.for_office(request_id)
        return await sheets.pdf(sheet, public_url=settings.public_url, font=font)
    finally:
        await db.dispose()


def run(args: argparse.Namespace) -> int:
    settings = load_or_report(demo=args.demo)
    if settings is None or not database_ready(settings):
        return EXIT_PROBLEM
    out = Path(args.out)
    if not out.parent.is_dir():
        print(f"--out {args.out}: the folder {out.parent} does not exist", file=sys.stderr)
        return EXIT_PROBLEM
    try:
        body = asyncio.run(_render(settings, args.request, args.font))
    except RequestNotFound:
        print(f"{args.request}: no such request", file=sys.stderr)
        return EXIT_PROBLEM
    except SheetNotReady as exc:
        print(f"{args.request}: {message_for(exc)}", file=sys.stderr)
        return EXIT_PROBLEM
    except CjkFontMissing as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_PROBLEM
    except OrgNotImported:
        print("no organisation imported yet: run `oabot org import FILE` first", file=sys.stderr)
        return EXIT_PROBLEM
    out.write_bytes(body)
    print(f"wrote {out} ({len(body)} bytes)")
    return 0
