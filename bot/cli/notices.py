"""`oabot notices list|show|receipts`: the office's look at notices 通知 from the command line.

- `list --person P [--unanswered]`: the notices addressed to P, with P's receipt;
  `list --author P`: what P published, with its progress (x/y acknowledged).
- `show ID`: one notice's facts (kind, status, author, audience, confidentiality, deadline) and its
  text; a restricted item's text is not printed (it is read on its page, where every view is recorded).
- `receipts ID`: who acknowledged, who has not answered, who defaulted.

Reads through `services.notices.Notices`, as the author would see the progress (no receipt is
touched: nothing here records an open). Unknown notices and people, and an uninitialised or
unreadable database, print one line each on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import datetime, tzinfo
from typing import Any, TypeVar

from approvals.clock import SystemClock
from bot.app import open_database
from bot.cli.config import database_ready, load_or_report
from bot.settings import Settings
from bot.wiring import notice_rules
from deadlines.org_calendar import OrgCalendar
from notices.model import ReceiptState
from notifications.messages import message_for
from notifications.notice_wording import CHANNEL_LABEL, CONFIDENTIALITY_LABEL, KIND_LABEL, STATUS_LABEL
from org.errors import DomainError
from services.directory import Directory
from services.links import PersonalLinks
from services.notices import Notices, NoticesDeps, NoticeSummary, ReceiptView
from storage.org_repo import OrgNotImported

EXIT_PROBLEM = 2
T = TypeVar("T")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "notices",
        help="list notices, show one, or its read receipts (已收到)",
        description="Notices 通知 / 公告 / 会议通知 / 调查: a person's list, one notice, its receipts.",
    )
    sub = parser.add_subparsers(dest="notices_command", metavar="SUBCOMMAND")
    listing = sub.add_parser("list", help="a person's notices (--person) or what they published (--author)")
    who = listing.add_mutually_exclusive_group(required=True)
    who.add_argument("--person", metavar="USER", help="notices addressed to this user id, with their receipt")
    who.add_argument("--author", metavar="USER", help="notices this user id published, with their progress")
    listing.add_argument("--unanswered", action="store_true", help="with --person: only those not answered")
    listing.add_argument("--limit", type=int, default=50, metavar="N", help="at most N (default 50)")
    listing.set_defaults(func=run_list)
    show = sub.add_parser("show", help="one notice's facts and text")
    show.add_argument("notice", metavar="ID", help="the notice id, e.g. n20261130-0123abcd")
    show.set_defaults(func=run_show)
    receipts = sub.add_parser("receipts", help="who acknowledged, who has not, who defaulted")
    receipts.add_argument("notice", metavar="ID", help="the notice id")
    receipts.set_defaults(func=run_receipts)
    parser.set_defaults(func=lambda args: (parser.print_help(sys.stderr), EXIT_PROBLEM)[1])


def service_for(settings: Settings, db: Any) -> Notices:
    """The notice service over `db` as the server builds it, for reading."""
    clock = SystemClock()
    return Notices(
        NoticesDeps(
            db=db,
            directory=Directory(db, clock.now),
            links=PersonalLinks(
                db, secret=settings.checkins.link_secret, public_url=settings.public_url, now=clock.now
            ),
            tz=settings.tz,
            now=clock.now,
            calendar=OrgCalendar(settings.tz, settings.working_hours),
            admin_roles=settings.admin_roles,
            office_role=settings.office_role,
            rules=notice_rules(settings),
        )
    )


def _run(args: argparse.Namespace, work: Callable[[Notices, Settings], Awaitable[T]]) -> T | int:
    """Run `work` with the service; an exit status after saying what went wrong."""
    settings = load_or_report(demo=args.demo)
    if settings is None or not database_ready(settings):
        return EXIT_PROBLEM

    async def go() -> T:
        db = open_database(settings.database_url)
        try:
            return await work(service_for(settings, db), settings)
        finally:
            await db.dispose()

    try:
        return asyncio.run(go())
    except DomainError as exc:
        print(message_for(exc), file=sys.stderr)
    except OrgNotImported:
        print("no organisation imported yet: run `oabot org import FILE` first", file=sys.stderr)
    except Exception as exc:  # an unreachable or unmigrated database: say what to do
        print(
            f"cannot read the notices: {type(exc).__name__}: {exc}\n"
            "check OABOT_DATABASE_URL and run `oabot migrate`",
            file=sys.stderr,
        )
    return EXIT_PROBLEM


# -- output -----------------------------------------------------------------------------------------
def _width(text: str) -> int:
    """Columns a terminal gives `text`: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def columns(rows: list[list[str]]) -> list[str]:
    """Rows of cells as aligned text lines (CJK-aware)."""
    if not rows:
        return []
    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c + " " * (widths[i] - _width(c)) for i, c in enumerate(r)).rstrip() for r in rows]


def _when(at: datetime | None, tz: tzinfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if at else "-"


def _line(s: NoticeSummary, tz: tzinfo, *, sent: bool) -> list[str]:
    state = f"{s.acknowledged}/{s.total} acknowledged" if sent else (s.my_state_label or "-")
    return [
        s.id,
        s.kind_label + (" 置顶" if s.pinned else ""),
        s.status_label,
        _when(s.published_at or s.created_at, tz),
        s.author_name,
        state,
        s.title,
    ]


def run_list(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 1000:
        print(f"--limit={args.limit}: give a number from 1 to 1000", file=sys.stderr)
        return EXIT_PROBLEM

    async def work(service: Notices, settings: Settings) -> list[str]:
        person = args.person or args.author
        if (await service.org()).user(person) is None:
            raise _Unknown(f"{person}: no such user in the organisation")
        if args.author:
            found = await service.list_authored(author=person, limit=args.limit)
        else:
            found = await service.list_for(person=person, unanswered_only=args.unanswered, limit=args.limit)
        header = [
            "id",
            "kind",
            "status",
            "published",
            "author",
            "progress" if args.author else "receipt",
            "title",
        ]
        return columns([header, *(_line(s, settings.tz, sent=bool(args.author)) for s in found)])

    return _print(args, work, empty="no notices")


class _Unknown(Exception):
    """An argument naming nothing (printed as it is)."""


def _print(
    args: argparse.Namespace, work: Callable[[Notices, Settings], Awaitable[list[str]]], *, empty: str
) -> int:
    async def guarded(service: Notices, settings: Settings) -> list[str] | str:
        try:
            return await work(service, settings)
        except _Unknown as exc:
            return str(exc)

    out = _run(args, guarded)
    if isinstance(out, int):
        return out
    if isinstance(out, str):
        print(out, file=sys.stderr)
        return EXIT_PROBLEM
    if len(out) <= 1:
        print(empty)
        return 0
    for line in out:
        print(line)
    return 0


async def _notice_and_author(service: Notices, notice_id: str) -> tuple[Any, str]:
    stored = await service.load(notice_id)
    notice = getattr(stored, "notice", stored)
    return notice, notice.author


def run_show(args: argparse.Namespace) -> int:
    async def work(service: Notices, settings: Settings) -> list[str]:
        notice, author = await _notice_and_author(service, args.notice)
        # the progress view is the author's: it records nothing (no open, no view)
        progress = await service.receipts(viewer=author, notice_id=args.notice)
        org = await service.org()
        tz = settings.tz
        lines = [
            f"{notice.id}  {notice.title}",
            f"kind: {KIND_LABEL[notice.kind]}   status: {STATUS_LABEL[notice.status]}   "
            f"confidentiality: {CONFIDENTIALITY_LABEL[notice.confidentiality]}",
            f"author: {org.display_name(notice.author)} ({notice.author})",
            f"created: {_when(notice.created_at, tz)}   published: {_when(notice.published_at, tz)}",
            f"acknowledge by: {_when(notice.ack_deadline, tz)}",
            f"receipts: {progress.acknowledged + progress.defaulted}/{progress.total} answered "
            f"({progress.acknowledged} acknowledged, {progress.defaulted} defaulted, {progress.unanswered} not yet)",
        ]
        if notice.pinned_until:
            lines.append(f"pinned until: {_when(notice.pinned_until, tz)}")
        protected = notice.restricted or notice.has_password
        if notice.meeting:
            m = notice.meeting
            where = "" if protected else f" at {m.place}"  # the place is content, like the text
            lines.append(f"meeting: {_when(m.starts_at, tz)} to {_when(m.ends_at, tz)}{where}")
        if protected:
            lines += [
                "",
                "(restricted or password-protected: read it on its page, where every view is recorded)",
            ]
        else:
            lines += ["", notice.body]
        return lines

    return _print(args, work, empty="")


def _receipt_row(r: ReceiptView, tz: tzinfo) -> list[str]:
    at = {
        ReceiptState.ACKNOWLEDGED: r.acknowledged_at,
        ReceiptState.DEFAULTED: r.defaulted_at,
        ReceiptState.OPENED: r.opened_at,
    }.get(r.state)
    via = r.acknowledged_via if r.state == ReceiptState.ACKNOWLEDGED else r.opened_via
    return [
        r.person,
        r.name,
        r.department,
        r.state_label,
        _when(at, tz),
        CHANNEL_LABEL.get(via or "", via or "-"),
    ]


def run_receipts(args: argparse.Namespace) -> int:
    async def work(service: Notices, settings: Settings) -> list[str]:
        _, author = await _notice_and_author(service, args.notice)
        progress = await service.receipts(viewer=author, notice_id=args.notice)
        rows = [["person", "name", "department", "state", "at", "via"]]
        rows += [_receipt_row(r, settings.tz) for r in progress.receipts]
        summary = (
            f"{progress.title}: {progress.acknowledged + progress.defaulted}/{progress.total} answered "
            f"({progress.acknowledged} acknowledged, {progress.defaulted} defaulted, "
            f"{progress.unanswered} not yet)"
        )
        return [summary, *columns(rows)]

    return _print(args, work, empty="")
