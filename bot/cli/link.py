"""`oabot link USER [PATH]`: print a personal link that signs USER in and opens PATH.

For the first sign-in of an administrator before WeCom or DingTalk sign-in is set up (the console
outside demo mode needs an org admin's session), and for support ("open this link on your
phone"). The link is as good as a password until it expires: send it only to its person.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta
from typing import Any

from approvals.clock import SystemClock
from bot.app import open_database
from bot.cli.config import database_ready, load_or_report
from org.signed_links import token_digest
from services.directory import Directory
from services.links import PersonalLinks
from storage.org_repo import OrgNotImported

EXIT_PROBLEM = 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "link",
        help="print a personal sign-in link for someone",
        description="Print a link that signs USER in (no platform sign-in needed) and opens PATH.",
    )
    parser.add_argument("user", metavar="USER", help="the person's id in the org file, e.g. u_zhao")
    parser.add_argument("path", metavar="PATH", nargs="?", default="/m/", help="where it opens (default /m/)")
    parser.add_argument("--hours", type=float, default=24.0, help="how long it works (default 24)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_or_report(demo=args.demo)
    if settings is None or not database_ready(settings):
        return EXIT_PROBLEM
    if not args.path.startswith("/") or args.path.startswith("//"):
        print(f"PATH {args.path!r}: expected a path on this site, such as /m/ or /console", file=sys.stderr)
        return EXIT_PROBLEM
    if not 0 < args.hours <= 24 * 30:
        print(f"--hours {args.hours}: expected more than 0 and at most 720", file=sys.stderr)
        return EXIT_PROBLEM

    async def go() -> str | None:
        db = open_database(settings.database_url)
        clock = SystemClock()
        try:
            user = (await Directory(db, clock.now).org()).user(args.user)
            if user is None or not user.active:
                return None
            links = PersonalLinks(
                db, secret=settings.checkins.link_secret, public_url=settings.public_url, now=clock.now
            )
            return await links.url(user.id, args.path, ttl=timedelta(hours=args.hours))
        finally:
            await db.dispose()

    try:
        url = asyncio.run(go())
    except OrgNotImported:
        print("no organisation imported yet: run `oabot org import FILE` first", file=sys.stderr)
        return EXIT_PROBLEM
    if url is None:
        print(
            f"{args.user}: not an active person of the organisation (see `oabot org show`)", file=sys.stderr
        )
        return EXIT_PROBLEM
    print(url)
    print(f"works for {args.hours:g} h; link id {token_digest(url.rsplit('/', 1)[1])}", file=sys.stderr)
    return 0
