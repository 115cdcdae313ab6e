"""`oabot audit verify [REQUEST_ID]`: recompute every request's trail hash chain."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from bot.app import open_database
from bot.cli.config import database_ready, load_or_report
from services.approvals import verify_trails


def register(subparsers: Any) -> None:
    audit = subparsers.add_parser("audit", help="check the tamper-evident trail")
    sub = audit.add_subparsers(dest="audit_command", metavar="SUBCOMMAND")
    verify = sub.add_parser("verify", help="report any broken hash chain (exit 1 if one is found)")
    verify.add_argument("request_id", nargs="?", help="only this request")
    verify.set_defaults(func=run_verify)
    audit.set_defaults(func=lambda args: (audit.print_help(sys.stderr), 2)[1])


def run_verify(args: argparse.Namespace) -> int:
    settings = load_or_report(demo=args.demo)
    if settings is None or not database_ready(settings):
        return 2

    def progress(done: int, total: int) -> None:
        if done % 500 == 0 or done == total:
            print(f"\rchecked {done}/{total} requests", end="", file=sys.stderr, flush=True)

    async def go() -> dict[str, list[str]]:
        db = open_database(settings.database_url)
        try:
            return await verify_trails(db, request_id=args.request_id, progress=progress)
        finally:
            await db.dispose()

    try:
        problems = asyncio.run(go())
    except Exception as exc:  # an unreachable or unmigrated database: say what to do
        print(
            f"\ncannot read the trail: {type(exc).__name__}: {exc}\n"
            "check OABOT_DATABASE_URL and run `oabot migrate`",
            file=sys.stderr,
        )
        return 2
    print("", file=sys.stderr)
    if not problems:
        print("trail intact: every hash chain verifies")
        return 0
    for rid, lines in problems.items():
        for line in lines:
            print(f"request {rid}: {line}")
    print(f"{len(problems)} request(s) with a broken trail", file=sys.stderr)
    return 1
