"""`oabot serve [--demo] [--host H] [--port P] [--role web|worker|all]`: prepare the database, then
run the HTTP service (roles web and all) and the background work (roles worker and all).

Before listening: SQLite databases are migrated automatically; a PostgreSQL database with an
outdated schema stops the start (exit 2) unless OABOT_AUTO_MIGRATE=1, because several replicas
migrating a shared database on their own is how schemas get broken. The org file
(OABOT_ORG_FILE, or the shipped demo org in --demo mode when the database has none) is imported.
SIGINT and SIGTERM stop the service cleanly within a few seconds. With the console on outside
demo mode, a warning at start says that it requires an org admin's sign-in.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import signal
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from approvals.clock import SystemClock
from approvals.errors import ApprovalError
from bot.app import create_app, open_database
from bot.checkin_wiring import ready_demo_trip
from bot.cli.config import EXIT_CONFIG, cannot_connect, error_reason, load_or_report
from bot.logs import configure_logging
from bot.notice_demo import ready_demo_notices
from bot.settings import DEMO_DATABASE_URL, Settings
from bot.settings.models import ROLES
from org.errors import DomainError
from org.loader import OrgFileError, load_org_file
from reports.backup import service_lock, sqlite_file
from storage.migrate import schema_status, upgrade
from storage.org_repo import get_org_meta
from storage.org_repo import import_org as store_org

logger = logging.getLogger(__name__)

# In-flight requests get this long to finish after a stop signal; the whole stop stays under 5 s.
SHUTDOWN_TIMEOUT_S = 2.0
DEFAULT_PUBLIC_URL = Settings().public_url
DEMO_DB_FILE = DEMO_DATABASE_URL.removeprefix("sqlite+aiosqlite:///")


class StartupError(Exception):
    """The service cannot start; `lines` say why, one problem each."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the service",
        description="Migrate (SQLite) or check (PostgreSQL) the database, import the org file, then serve HTTP.",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        default=argparse.SUPPRESS,  # `oabot --demo serve` sets it too (see bot.cli)
        help="use ./var/demo.db with the demo organisation and print a generated API token",
    )
    parser.add_argument("--host", help="address to listen on (default OABOT_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default OABOT_PORT, 8080)")
    parser.add_argument(
        "--role",
        choices=ROLES,
        help="web: serve pages, the API and callbacks (verify, store, acknowledge); worker: act on "
        "stored callbacks, send, fire timers (listens on no port); all: both (default OABOT_ROLE, all)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_or_report(demo=args.demo)
    if settings is None:
        return EXIT_CONFIG
    if args.port is not None and not 0 < args.port < 65536:
        print(f"--port={args.port}: expected a port number between 1 and 65535", file=sys.stderr)
        return EXIT_CONFIG
    settings = with_cli_overrides(settings, host=args.host, port=args.port)
    if args.role is not None:
        settings = settings.with_overrides(role=args.role)
    configure_logging(settings.log_level, settings.log_format)
    try:
        # Held (shared) while serving a SQLite file, so `oabot restore` refuses to replace it.
        with (
            service_lock(sqlite_file(settings.database_url)),
            asyncio.Runner(loop_factory=loop_factory(settings.event_loop)) as runner,
        ):
            return runner.run(serve(settings))
    except StartupError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        return EXIT_CONFIG


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop to serve on (OABOT_EVENT_LOOP): uvloop's when it is installed and wanted,
    None (asyncio's own) otherwise; StartupError when uvloop is asked for and missing."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError as exc:
        if choice == "uvloop":
            raise StartupError(
                ["OABOT_EVENT_LOOP=uvloop: uvloop is not installed (pip install 'oabot[fast]')"]
            ) from exc
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def with_cli_overrides(settings: Settings, *, host: str | None, port: int | None) -> Settings:
    """Apply --host/--port; a demo without a token gets a fresh one; the public URL follows the
    address unless OABOT_PUBLIC_URL says otherwise."""
    overrides: dict[str, Any] = {}
    if host:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if settings.demo and not settings.api_token:
        overrides["api_token"] = secrets.token_urlsafe(24)
    settings = settings.with_overrides(**overrides)
    if settings.public_url == DEFAULT_PUBLIC_URL:
        browse_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        if ":" in browse_host:
            browse_host = f"[{browse_host}]"
        settings = settings.with_overrides(public_url=f"http://{browse_host}:{settings.port}")
    return settings


async def serve(settings: Settings) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await prepare_database(settings)
        if stop.is_set():
            return 0
        return await _run_http(settings, stop)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def prepare_database(settings: Settings) -> None:
    """Migrate or refuse, then import the org file; raises StartupError saying what to do."""
    db = open_database(settings.database_url)
    try:
        try:
            status = await schema_status(db)
        except Exception as exc:
            raise StartupError([cannot_connect("OABOT_DATABASE_URL", settings.database_url, exc)]) from exc
        if not status.is_known:
            lines = [f"cannot start: the database is {status.describe()}."]
            if settings.demo:
                lines.append(f"Demo data is disposable: delete {DEMO_DB_FILE} to start over.")
            raise StartupError(lines)
        if not status.is_current:
            if not (settings.is_sqlite or settings.auto_migrate):
                raise StartupError(
                    [
                        f"cannot start: the database schema is {status.describe()}.",
                        "Run `oabot migrate` first (or set OABOT_AUTO_MIGRATE=1 to migrate at start).",
                    ]
                )
            before, after = await upgrade(db)
            logger.info("database migrated from %s to %s", before or "(empty)", after)
        await import_org(db, settings)
    finally:
        await db.dispose()


async def import_org(db: Any, settings: Settings) -> None:
    """Import OABOT_ORG_FILE; in demo mode without one, the shipped demo org if none is stored."""
    if settings.org_file:
        path = Path(settings.org_file)
        variable = "OABOT_ORG_FILE"
    elif settings.demo:
        path = Path(str(resources.files("bot") / "data" / "demo_org.yaml"))
        variable = "demo org"
        if await _has_org(db):
            return
    else:
        return
    try:
        org = load_org_file(path)
    except OrgFileError as exc:
        raise StartupError([f"{variable}: {line}" for line in exc.format_problems()]) from exc
    try:
        async with db.transaction() as session:
            report = await store_org(session, org, now=SystemClock().now())
    except Exception as exc:
        raise StartupError([f"{variable}: importing {path} failed: {error_reason(exc)}"]) from exc
    logger.info(
        "imported the organisation %s from %s: %d added, %d updated, %d deactivated",
        org.name,
        path,
        len(report.added),
        len(report.updated),
        len(report.deactivated),
    )


async def _has_org(db: Any) -> bool:
    async with db.session() as session:
        return await get_org_meta(session) is not None


async def _run_http(settings: Settings, stop: asyncio.Event) -> int:
    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_S, access_log=None)
    await runner.setup()
    if settings.demo:
        await _ready_demo(app)
    if not settings.runs_web:
        return await _run_worker(runner, stop)
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        try:
            await site.start()
        except OSError as exc:
            print(
                f"OABOT_PORT: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}",
                file=sys.stderr,
            )
            return EXIT_CONFIG
        if warning := console_warning(settings):
            logger.warning(warning)
        print(ready_line(settings), flush=True)
        await stop.wait()
        logger.info("stopping")
    finally:
        await runner.cleanup()
    return 0


async def _ready_demo(app: web.Application) -> None:
    """The demo's field worker gets today's trip (an approved outing), so the check-in demo works,
    and the office publishes a notice, a meeting notice and a poll (once, into an empty database)."""
    try:
        request_id = await ready_demo_trip(app)
    except (ApprovalError, DomainError) as exc:
        logger.warning("could not ready the demo's trip: %s", exc)
    else:
        if request_id:
            logger.info("the demo's field worker has today's trip: request %s", request_id)
    try:
        notice_ids = await ready_demo_notices(app)
    except (ApprovalError, DomainError) as exc:
        logger.warning("could not publish the demo's notices: %s", exc)
        return
    if notice_ids:
        logger.info("the demo's notices are published: %s", ", ".join(notice_ids))


async def _run_worker(runner: web.AppRunner, stop: asyncio.Event) -> int:
    """The worker role: the app's resources and background loops run, no port is opened."""
    try:
        print("oabot worker is running: inbox worker, outbox dispatcher and timers", flush=True)
        await stop.wait()
        logger.info("stopping")
    finally:
        await runner.cleanup()
    return 0


def console_warning(settings: Settings) -> str | None:
    """What to tell the operator when the console is on in a real deployment."""
    if not settings.console or settings.demo:
        return None
    roles = " or ".join(sorted(settings.admin_roles))
    return (
        f"the console at {settings.public_url}/console is on outside demo mode: it requires an org admin "
        f"(an active person with role {roles}) to sign in through WeCom, DingTalk or a personal link"
    )


def ready_line(settings: Settings) -> str:
    if settings.demo:
        token = f"API token: {settings.api_token}"
    elif settings.api_token:
        token = "API token: the one in OABOT_API_TOKEN"
    else:
        token = "API: named tokens only (`oabot tokens create`); no OABOT_API_TOKEN"
    where = f"{settings.public_url}/console" if settings.console else settings.public_url
    return f"oabot is ready: open {where}  ({token})"
