"""`oabot backup` and `oabot restore FILE`.

`backup` copies the database into OABOT_BACKUP_DIR and keeps the newest OABOT_BACKUP_KEEP
copies: SQLite through its online backup API (safe while the service runs), PostgreSQL with
`pg_dump` (only the private schema when the URL names one). A database that was never
initialised is refused (exit 2) rather than copied as an empty file. Without pg_dump it says
what to install and exits 2; when pg_dump fails, its own error is printed and it exits 2.

`restore FILE` (SQLite) puts a backup in place of the database: it refuses (exit 1) while
`oabot serve` runs against that file, and (exit 2) a file that is not an oabot database this
version knows. The replaced database is kept as `<db>.before-restore`. A PostgreSQL dump is
restored with psql, which this command only explains.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from approvals.clock import SystemClock
from bot.app import split_schema
from bot.cli.config import check_database, load_or_report
from reports.backup import (
    BackupError,
    PgDumpFailed,
    ServiceRunning,
    backup_sqlite,
    pg_dump_database,
    restore_sqlite,
    sqlite_file,
)

EXIT_PROBLEM = 2
EXIT_REFUSED = 1


def register(subparsers: Any) -> None:
    backup = subparsers.add_parser(
        "backup",
        help="copy the database into OABOT_BACKUP_DIR",
        description="SQLite: online backup API; PostgreSQL: pg_dump. Keeps the newest OABOT_BACKUP_KEEP copies.",
    )
    backup.set_defaults(func=run_backup)
    restore = subparsers.add_parser(
        "restore",
        help="replace the SQLite database with a backup (the service must be stopped)",
        description="Check FILE is an oabot SQLite database, keep the current one as <db>.before-restore, "
        "and put FILE in its place. Refuses while `oabot serve` runs against the database.",
    )
    restore.add_argument("file", metavar="FILE", help="a backup written by `oabot backup`")
    restore.set_defaults(func=run_restore)


def run_backup(args: argparse.Namespace) -> int:
    settings = load_or_report(demo=args.demo)
    if settings is None:
        return EXIT_PROBLEM
    check = check_database(settings)
    # An unreachable PostgreSQL is left to pg_dump, which says why in its own words.
    if check.problem is not None and (check.reachable or settings.is_sqlite):
        print(f"nothing to back up: {check.problem}", file=sys.stderr)
        return EXIT_PROBLEM
    backup_dir = Path(settings.backup_dir)
    now = SystemClock().now()
    try:
        if settings.is_sqlite:
            path = sqlite_file(settings.database_url)
            if path is None:
                print("OABOT_DATABASE_URL: an in-memory database cannot be backed up", file=sys.stderr)
                return EXIT_PROBLEM
            result = backup_sqlite(path, backup_dir, now=now, keep=settings.backup_keep)
        else:
            url, schema = split_schema(settings.database_url)
            result = pg_dump_database(
                url, schema=schema, backup_dir=backup_dir, now=now, keep=settings.backup_keep
            )
    except PgDumpFailed as exc:
        print(f"pg_dump failed (exit {exc.returncode}):", file=sys.stderr)
        for line in exc.lines or ["(it printed nothing)"]:
            print(f"  {line}", file=sys.stderr)
        return EXIT_PROBLEM
    except (BackupError, OSError) as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_PROBLEM
    for old in result.removed:
        print(f"removed old backup {old}", file=sys.stderr)
    print(f"backup written: {result.path} ({result.size} bytes)")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    settings = load_or_report(demo=args.demo)
    if settings is None:
        return EXIT_PROBLEM
    path = sqlite_file(settings.database_url)
    if path is None:
        if settings.is_sqlite:
            print("OABOT_DATABASE_URL: an in-memory database cannot be restored into", file=sys.stderr)
        else:
            print(
                "oabot restore handles SQLite databases; restore a PostgreSQL dump with psql "
                "into an empty database or schema: psql -d DATABASE -f FILE.sql",
                file=sys.stderr,
            )
        return EXIT_PROBLEM
    try:
        result = restore_sqlite(Path(args.file), path)
    except ServiceRunning as exc:
        print(f"refusing to restore: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except (BackupError, OSError) as exc:
        print(f"not restored: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    print(
        f"restored {args.file} into {path}: {result.info.requests} requests, schema revision {result.info.revision}"
    )
    if result.kept is not None:
        print(f"the previous database is kept as {result.kept}")
    return 0
