"""`oabot check-config`: validate the configuration and try the database and Redis.

Also the shared way every command loads settings and checks the database: a bad value prints
one line per problem (naming the variable, the value and what is expected) on stderr and the
command exits 2, never with a traceback; so does a database that was never initialised
("database not initialised: run `oabot migrate`"), instead of a raw SQL error. Every command
takes `--demo` to use the demo's database (./var/demo.db), the one `make demo` fills. This
module reports; it changes nothing (it does not even create the SQLite file).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import redis.asyncio as redis
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, make_url

from bot.app import open_database, split_schema
from bot.logs import redact_url
from bot.settings import DEMO_DATABASE_URL, ConfigError, Settings, load_settings
from reports.backup import sqlite_file
from storage.db import Database
from storage.migrate import schema_status
from storage.models import metadata

EXIT_CONFIG = 2
CONNECT_TIMEOUT_S = 10.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check-config",
        help="check the configuration and that the database and Redis answer",
        description="Validate every OABOT_* variable (and .env), then try to reach the database and Redis. "
        "Exits 2 with one line per problem.",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_or_report(demo=args.demo)
    if settings is None:
        return EXIT_CONFIG
    for line in summary(settings):
        print(line)
    problems, notes = asyncio.run(probe(settings))
    for line in notes:
        print(line)
    for line in problems:
        print(line, file=sys.stderr)
    return EXIT_CONFIG if problems else 0


# -- shared by the commands ---------------------------------------------------------------------


def load_or_report(*, demo: bool = False, err: TextIO | None = None) -> Settings | None:
    """Settings from the environment, or None after printing every problem on `err` (stderr)."""
    try:
        return load_settings(demo=demo)
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=err or sys.stderr)
        return None


@dataclass(frozen=True)
class DatabaseCheck:
    """Whether the commands can use the database: `problem` is the line to print when not;
    `reachable` is False when it did not even answer."""

    problem: str | None = None
    reachable: bool = True


def check_database(settings: Settings) -> DatabaseCheck:
    """Is the database there, with oabot's tables at a schema this version knows? Never creates it."""
    path = sqlite_file(settings.database_url)
    if path is not None and (not path.exists() or path.stat().st_size == 0):
        return DatabaseCheck(not_initialised(settings))
    return asyncio.run(_check_schema(settings))


def database_ready(settings: Settings, err: TextIO | None = None) -> bool:
    """`check_database`, printing its problem (if any) on `err`."""
    check = check_database(settings)
    if check.problem is not None:
        print(check.problem, file=err or sys.stderr)
    return check.problem is None


def not_initialised(settings: Settings) -> str:
    """What to run when the database has no tables yet; points at the demo's database when that
    is the one with data in it."""
    if settings.demo:
        return "demo database not initialised: run `make demo` (or `oabot serve --demo`) first"
    line = f"database not initialised: run `oabot migrate` (OABOT_DATABASE_URL is {redact_url(settings.database_url)})"
    demo_file = sqlite_file(DEMO_DATABASE_URL)
    if demo_file is not None and demo_file.exists():
        line += f"\nthe demo keeps its data in {demo_file}: add --demo to use that one"
    return line


async def _check_schema(settings: Settings) -> DatabaseCheck:
    db = open_database(settings.database_url)
    try:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                status = await schema_status(db)
                tables = await _table_names(db)
        except Exception as exc:
            return DatabaseCheck(cannot_connect("OABOT_DATABASE_URL", settings.database_url, exc), False)
    finally:
        await db.dispose()
    if not status.is_known:
        return DatabaseCheck(f"the database is {status.describe()}: use that version of oabot")
    if status.current is None and not tables & set(metadata.tables):
        return DatabaseCheck(not_initialised(settings))
    if status.current is not None and not status.is_current:
        again = "oabot migrate --demo" if settings.demo else "oabot migrate"
        return DatabaseCheck(f"the database schema is {status.describe()}: run `{again}`")
    return DatabaseCheck()


async def _table_names(db: Database) -> set[str]:
    def names(conn: Connection) -> set[str]:
        return set(inspect(conn).get_table_names(schema=db.schema))

    async with db.engine.connect() as conn:
        return await conn.run_sync(names)


def error_reason(exc: BaseException) -> str:
    """The first line of what the driver said, without SQLAlchemy's wrapping."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT_S:g} s"
    orig = getattr(exc, "orig", None)
    if isinstance(orig, BaseException):
        exc = orig
    message = str(exc).strip()
    return message.splitlines()[0] if message else type(exc).__name__


def cannot_connect(variable: str, url: str, exc: BaseException) -> str:
    return f"{variable}: cannot connect to {redact_url(url)}: {error_reason(exc)}"


# -- the summary and the probes -----------------------------------------------------------------


def summary(settings: Settings) -> list[str]:
    url, schema = split_schema(settings.database_url)
    if settings.is_sqlite:
        database = f"sqlite {make_url(url).database}"
    else:
        parsed = make_url(url)
        database = f"postgresql {parsed.host}:{parsed.port or 5432}/{parsed.database}"
        if schema:
            database += f" (schema {schema})"
    if settings.redis_url:
        kv = f"redis {redact_url(settings.redis_url)} (key prefix {settings.redis_prefix})"
    else:
        kv = "in-process (one oabot process only; set OABOT_REDIS_URL to run several)"
    hours = ", ".join(f"{p.start:%H:%M}-{p.end:%H:%M}" for p in settings.working_hours)
    token = "set" if settings.api_token else "not set: only tokens from `oabot tokens create` work"
    platforms = []
    if settings.wecom is not None:
        platforms.append(f"WeCom (corp {settings.wecom.corp_id}, agent {settings.wecom.agent_id})")
    if settings.dingtalk is not None:
        platforms.append(f"DingTalk ({settings.dingtalk.mode} mode)")
    return [
        "configuration is valid",
        f"  database       {database}",
        f"  key-value      {kv}",
        f"  timezone       {settings.timezone}",
        f"  working hours  {hours}",
        f"  listens on     {settings.host}:{settings.port}, public URL {settings.public_url}",
        f"  platforms      {', '.join(platforms) or 'none connected'}",
        f"  API token      {token}",
        f"  logs           {settings.log_format}, {settings.log_level}",
    ]


async def probe(settings: Settings) -> tuple[list[str], list[str]]:
    """Try the database and Redis: (problems, notes)."""
    problems: list[str] = []
    notes: list[str] = []
    db_problem, db_note = await _probe_database(settings)
    if db_problem:
        problems.append(db_problem)
    else:
        notes.append(db_note)
    if settings.redis_url:
        reason = await _probe_redis(settings.redis_url)
        if reason is None:
            notes.append("  redis: reachable")
        else:
            problems.append(f"OABOT_REDIS_URL: cannot connect to {redact_url(settings.redis_url)}: {reason}")
    return problems, notes


async def _probe_database(settings: Settings) -> tuple[str | None, str]:
    if settings.is_sqlite:
        path = make_url(split_schema(settings.database_url)[0]).database or ""
        if not await asyncio.to_thread(Path(path).exists):
            return (
                None,
                "  database: the SQLite file does not exist yet; `oabot migrate` or `oabot serve` creates it",
            )
    db = open_database(settings.database_url)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            async with db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            status = await schema_status(db)
    except Exception as exc:
        return cannot_connect("OABOT_DATABASE_URL", settings.database_url, exc), ""
    finally:
        await db.dispose()
    if status.is_current:
        return None, f"  database: reachable, schema {status.describe()}"
    return None, f"  database: reachable, schema {status.describe()}: run `oabot migrate`"


async def _probe_redis(url: str) -> str | None:
    """None when Redis answers PING, else why not."""
    client = redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await client.ping()
        return None
    except Exception as exc:
        return error_reason(exc)
    finally:
        await client.aclose()
