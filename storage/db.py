"""Async database engine and sessions for SQLite (aiosqlite) and PostgreSQL (asyncpg).

`Database` owns one engine. A PostgreSQL `schema` may be given so that tests (or several
tenants) live side by side in one database: every connection gets that `search_path`.

No ping on every checkout (SQLAlchemy's `pool_pre_ping` costs a round trip each time, a tenth of a
busy process's time): a pooled PostgreSQL connection is pinged only when it has sat unused for
`IDLE_PING_S` (the usual way connections die: a restart, a failover or an idle timeout while
nothing ran), and a failed ping makes the pool throw it away and connect afresh. A connection that
dies while in use fails the one statement it was running; SQLAlchemy then invalidates it and every
connection pooled before it, so the next checkout connects afresh. Callers that must not lose that
one operation retry it (the inbox writer retries its batch once, the workers their rows, a
platform its callback after the 503).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


class Database:
    """One engine plus a session factory. Close with `dispose()`."""

    def __init__(self, url: str, *, schema: str | None = None, echo: bool = False) -> None:
        self.url = url
        self.schema = schema
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            _ensure_sqlite_dir(url)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_size"] = 10
            kwargs["max_overflow"] = 10
            if schema:
                kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _install_sqlite_pragmas(self.engine)
        else:
            _install_idle_ping(self.engine)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._turns = WriteTurns()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.write_turn(), self.sessionmaker() as session, session.begin():
            yield session

    @asynccontextmanager
    async def write_turn(self, *, urgent: bool = False) -> AsyncIterator[None]:
        """On SQLite, this process's turn to write (one writer at a time, first come first
        served, `urgent` ones first: the inbox writer, which platforms wait on). Waiting here
        instead of in SQLite's busy handler, which polls with growing sleeps and can starve a
        writer behind a busy one for seconds. Nothing to wait for on PostgreSQL."""
        if not self.is_sqlite:
            yield
            return
        async with self._turns.turn(urgent=urgent):
            yield

    async def dispose(self) -> None:
        await self.engine.dispose()


class WriteTurns:
    """A lock handed on in order of arrival, urgent waiters before the others."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._normal: deque[asyncio.Future[None]] = deque()

    @asynccontextmanager
    async def turn(self, *, urgent: bool = False) -> AsyncIterator[None]:
        if self._held or self._urgent or (self._normal and not urgent):
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            (self._urgent if urgent else self._normal).append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._hand_on()  # handed the turn as we were cancelled: pass it along
                raise
        self._held = True
        try:
            yield
        finally:
            self._hand_on()

    def _hand_on(self) -> None:
        self._held = False
        for queue in (self._urgent, self._normal):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    self._held = True
                    waiter.set_result(None)
                    return


def _ensure_sqlite_dir(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


IDLE_PING_S = 10.0  # a pooled connection unused for this long is pinged before it is handed out
_IDLE_SINCE = "oabot_idle_since"


def _install_idle_ping(engine: AsyncEngine) -> None:
    """Ping a pooled connection at checkout only when it has been idle a while (module docstring)."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop(_IDLE_SINCE, None)
        if since is None or time.monotonic() - since < IDLE_PING_S:
            return
        try:
            dbapi_conn.ping()
        except Exception as exc:
            # The pool invalidates this connection and checks out (or opens) another.
            raise sa_exc.DisconnectionError("pooled connection did not answer its ping") from exc


def _install_sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:  # pragma: no cover - trivial
        # WAL lets readers work while the single writer commits; foreign keys are off by default.
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:  # pragma: no cover - trivial
        # BEGIN IMMEDIATE takes the write lock up front so optimistic updates on SQLite
        # serialise instead of failing with "database is locked" half-way through.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


# What a database that is down, unreachable, full of connections or locked looks like; a bad
# query or bad data (asyncpg's DataError is an InterfaceError too) is none of these.
_ASYNCPG_OUTAGES = (
    asyncpg.exceptions.PostgresConnectionError,  # refused, rejected, lost
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,  # starting up or shutting down
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
)
_SQLITE_OUTAGES = ("locked", "unable to open", "disk i/o", "readonly database", "database is busy")
_NET_ERRNOS = {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT, errno.ECONNRESET}


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend([current.__cause__, current.__context__, getattr(current, "orig", None)])


def _is_outage(exc: BaseException) -> bool:
    if isinstance(exc, (sa_exc.DisconnectionError, sa_exc.TimeoutError, *_ASYNCPG_OUTAGES)):
        return True  # sa_exc.TimeoutError: no pooled connection came free in time
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sqlite3.OperationalError):
        return any(words in str(exc).lower() for words in _SQLITE_OUTAGES)
    if isinstance(exc, ConnectionError | socket.gaierror):
        return True
    # asyncio's connect to several addresses raises OSError("Multiple exceptions: ...").
    return type(exc) is OSError and (exc.errno in _NET_ERRNOS or str(exc).startswith("Multiple exceptions"))


def database_unreachable(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) says the database cannot be reached or used right now."""
    return any(_is_outage(cause) for cause in _causes(exc))
