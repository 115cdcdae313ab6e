"""The aiohttp application factory: wiring only.

`create_app(settings)` builds the app, puts every shared object under its typed key (bot.keys)
and registers one cleanup_ctx per resource: database engine, key-value store, HTTP client and
scheduler. Each opens its resource, sets its key, yields, and closes it, so teardown runs only
for what started. Nothing is opened at import time or by `create_app` itself; that happens
when the app starts (AppRunner.setup or the test client).

To add to the app from another module:
- a route: `app.router.add_get("/api/things/{id}", handler)` (under /api/ needs the bearer token);
- a readiness check: `app[READINESS].add(check)`, `async def check(app) -> (name, ok, detail)`;
- a metric: `app[METRICS].counter("cards_sent", "Cards sent.", ("platform",))`;
- a resource: `app.cleanup_ctx.append(ctx)`, an async generator taking the app, opening the thing
  and setting its key before `yield` and closing it after. Append after `create_app` returns, so it
  starts after (and stops before) the database, key-value store, HTTP client and scheduler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from approvals.clock import Clock, SystemClock
from bot import __version__
from bot.keys import CLOCK, DB, HTTP, KV, METRICS, SCHEDULER, SERVICES, SETTINGS
from bot.logs import redact_url
from bot.metrics import Metrics
from bot.settings import Settings
from bot.web.health import setup_health
from bot.web.middleware import MIDDLEWARES, echo_request_id
from bot.web.rate_limits import setup_rate_limits
from bot.web.security_headers import add_security_headers
from bot.wiring import setup_workflow
from storage.db import Database
from storage.kv import KeyValueStore
from storage.kv_memory import MemoryStore
from storage.kv_redis import RedisStore

logger = logging.getLogger(__name__)

# Bodies the API accepts (JSON forms, photo names); larger uploads get a JSON 413.
CLIENT_MAX_SIZE = 2 * 1024 * 1024
KV_PING_TIMEOUT_S = 2.0


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    app = web.Application(middlewares=MIDDLEWARES, client_max_size=CLIENT_MAX_SIZE)
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[METRICS] = Metrics()
    app[SERVICES] = {}
    setup_health(app)
    setup_rate_limits(app)
    app.on_response_prepare.extend([echo_request_id, add_security_headers])
    app.cleanup_ctx.extend([database_ctx, kv_ctx, http_client_ctx, scheduler_ctx])
    setup_workflow(app)
    return app


# -- resources, one cleanup_ctx each ------------------------------------------------------------


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    db = open_database(app[SETTINGS].database_url)
    app[DB] = db
    yield
    await db.dispose()


async def kv_ctx(app: web.Application) -> AsyncIterator[None]:
    """The key-value store. Redis being down never stops the service: /readyz reports it."""
    settings = app[SETTINGS]
    store = open_kv(settings)
    app[KV] = store
    if settings.redis_url:
        reason = "no answer"
        try:
            async with asyncio.timeout(KV_PING_TIMEOUT_S):
                answered = await store.ping()
        except Exception as exc:
            answered, reason = False, f"{type(exc).__name__}: {exc}"
        if not answered:
            logger.warning(
                "Redis at %s is unreachable (%s); serving anyway, /readyz reports it until it answers",
                redact_url(settings.redis_url),
                reason,
            )
    yield
    try:
        await store.close()
    except Exception:
        logger.warning("closing the key-value store failed", exc_info=True)


async def http_client_ctx(app: web.Application) -> AsyncIterator[None]:
    """One shared outbound client (platform APIs): connection pooling and one timeout policy."""
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(10.0, connect=5.0),
        headers={"User-Agent": f"oabot/{__version__}"},
    ) as client:
        app[HTTP] = client
        yield


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    """APScheduler for timers. Paused when background work is off, so tests fire jobs by hand."""
    settings = app[SETTINGS]
    scheduler = AsyncIOScheduler(timezone=settings.tz)
    app[SCHEDULER] = scheduler
    scheduler.start(paused=not settings.run_background)
    yield
    scheduler.shutdown(wait=False)
    # AsyncIOScheduler only schedules its shutdown on the loop; let it run before the loop goes.
    await asyncio.sleep(0)


# -- opening resources from settings ----------------------------------------------------------


def open_database(url: str) -> Database:
    """A Database for `url`, honouring a PostgreSQL schema given the libpq way:

    `postgresql+asyncpg://user@host/db?options=-csearch_path%3Dmyschema`
    """
    clean_url, schema = split_schema(url)
    return Database(clean_url, schema=schema)


def split_schema(url: str) -> tuple[str, str | None]:
    """Take `options=-csearch_path=<schema>` out of a PostgreSQL URL: (url without it, schema)."""
    if not url.startswith("postgresql"):
        return url, None
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema: str | None = None
    kept: list[tuple[str, str]] = []
    for key, value in query:
        option = value.strip()
        if key == "options" and option.startswith("-csearch_path="):
            schema = option.removeprefix("-csearch_path=").split(",")[0].strip() or None
        else:
            kept.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(kept))), schema


def open_kv(settings: Settings) -> KeyValueStore:
    """RedisStore when OABOT_REDIS_URL is set, else the in-process store. Does no I/O."""
    if settings.redis_url:
        return RedisStore(settings.redis_url, prefix=settings.redis_prefix)
    return MemoryStore()
