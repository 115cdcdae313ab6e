"""`oabot migrate`: bring the database to the latest schema (Alembic), printing from -> to.

`--check` only tells whether it is current (exit 0) or not (exit 1), changing nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from bot.app import open_database
from bot.cli.config import EXIT_CONFIG, cannot_connect, load_or_report
from bot.logs import configure_logging, redact_url
from bot.settings import Settings
from storage.migrate import schema_status, upgrade


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="bring the database to the latest schema",
        description="Apply every pending migration to OABOT_DATABASE_URL in one transaction.",
    )
    parser.add_argument(
        "--check", action="store_true", help="only report whether the schema is current (exit 1 if not)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_or_report(demo=args.demo)
    if settings is None:
        return EXIT_CONFIG
    configure_logging(settings.log_level, settings.log_format)
    return asyncio.run(_check(settings) if args.check else _migrate(settings))


async def _migrate(settings: Settings) -> int:
    db = open_database(settings.database_url)
    try:
        try:
            status = await schema_status(db)
        except Exception as exc:
            print(cannot_connect("OABOT_DATABASE_URL", settings.database_url, exc), file=sys.stderr)
            return EXIT_CONFIG
        if not status.is_known:
            print(f"cannot migrate: the database is {status.describe()}", file=sys.stderr)
            return 1
        before, after = await upgrade(db)
    finally:
        await db.dispose()
    where = redact_url(settings.database_url)
    if before == after:
        print(f"{where}: already at the latest revision {after}")
    else:
        print(f"{where}: migrated from {before or '(empty)'} to {after}")
    return 0


async def _check(settings: Settings) -> int:
    db = open_database(settings.database_url)
    try:
        status = await schema_status(db)
    except Exception as exc:
        print(cannot_connect("OABOT_DATABASE_URL", settings.database_url, exc), file=sys.stderr)
        return EXIT_CONFIG
    finally:
        await db.dispose()
    print(f"{redact_url(settings.database_url)}: schema {status.describe()}")
    return 0 if status.is_current else 1
