"""`oabot audit verify [REQUEST_ID]` and `oabot audit rekey`: check and anchor the trail.

`verify` checks every request's trail with the trail key (OABOT_TRAIL_KEY or its key file):
the hash chain, each event's keyed seal, the anchored chain head, and a replay of the trail
compared with the request and task rows. It prints one line per problem and exits 1 when it
finds any (2 when it cannot read the trail or the key).

`rekey` anchors the legacy trails written before the trail key existed (run it once after
upgrading): each one whose hash chain and replay check out gets its chain head sealed with the
current key; broken ones are left alone and listed (exit 1). Trail rows are never changed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from approvals.trail import LEGACY, TrailKeys
from bot.app import open_database
from bot.cli.config import database_ready, load_or_report
from bot.settings import Settings
from bot.trail_key import TrailKeyProblem, load_trail_keys
from services.approvals import Rekeyed, rekey_trails, verify_trails
from storage.db import Database

T = TypeVar("T")
EXIT_PROBLEM = 2


def register(subparsers: Any) -> None:
    audit = subparsers.add_parser("audit", help="check the tamper-evident trail")
    sub = audit.add_subparsers(dest="audit_command", metavar="SUBCOMMAND")
    verify = sub.add_parser(
        "verify",
        help="report any broken, rewritten or cut-off trail, or tables that disagree with it (exit 1)",
    )
    verify.add_argument("request_id", nargs="?", help="only this request")
    verify.set_defaults(func=run_verify)
    rekey = sub.add_parser(
        "rekey", help="anchor the legacy trails written before the trail key (once, after upgrading)"
    )
    rekey.set_defaults(func=run_rekey)
    audit.set_defaults(func=lambda args: (audit.print_help(sys.stderr), 2)[1])


def _progress(verb: str) -> Callable[[int, int], None]:
    def progress(done: int, total: int) -> None:
        if done % 500 == 0 or done == total:
            print(f"\r{verb} {done}/{total} requests", end="", file=sys.stderr, flush=True)

    return progress


def _run(settings: Settings, work: Callable[[Database, TrailKeys], Awaitable[T]]) -> T | None:
    """Run `work` with the database and the trail keys; None after saying what went wrong."""
    try:
        keys = load_trail_keys(settings)
    except (TrailKeyProblem, OSError) as exc:
        print(f"cannot load the trail key: {exc}", file=sys.stderr)
        return None

    async def go() -> T:
        db = open_database(settings.database_url)
        try:
            return await work(db, keys)
        finally:
            await db.dispose()

    try:
        return asyncio.run(go())
    except Exception as exc:  # an unreachable or unmigrated database: say what to do
        print(
            f"\ncannot read the trail: {type(exc).__name__}: {exc}\n"
            "check OABOT_DATABASE_URL and run `oabot migrate`",
            file=sys.stderr,
        )
        return None


def run_verify(args: argparse.Namespace) -> int:
    settings = load_or_report(demo=args.demo)
    if settings is None or not database_ready(settings):
        return EXIT_PROBLEM
    problems = _run(
        settings,
        lambda db, keys: verify_trails(
            db, keys=keys, request_id=args.request_id, progress=_progress("checked")
        ),
    )
    if problems is None:
        return EXIT_PROBLEM
    print("", file=sys.stderr)
    if not problems:
        print("trail intact: every chain verifies with the trail key and matches the tables")
        return 0
    for rid, lines in problems.items():
        for line in lines:
            print(f"request {rid}: {line}")
    legacy = sum(1 for lines in problems.values() if any(line.endswith(LEGACY) for line in lines))
    print(f"{len(problems)} request(s) with a problem in the trail", file=sys.stderr)
    if legacy:
        print(
            f"{legacy} of them legacy (written before the trail key): see `oabot audit rekey`",
            file=sys.stderr,
        )
    return 1


def run_rekey(args: argparse.Namespace) -> int:
    settings = load_or_report(demo=args.demo)
    if settings is None or not database_ready(settings):
        return EXIT_PROBLEM
    done: Rekeyed | None = _run(
        settings, lambda db, keys: rekey_trails(db, keys=keys, progress=_progress("looked at"))
    )
    if done is None:
        return EXIT_PROBLEM
    print("", file=sys.stderr)
    for rid, lines in done.refused.items():
        for line in lines:
            print(f"request {rid}: {line}")
    print(f"anchored {len(done.anchored)} legacy trail(s) with the trail key")
    if done.refused:
        print(f"{len(done.refused)} legacy trail(s) left unanchored: they do not verify", file=sys.stderr)
        return 1
    return 0
