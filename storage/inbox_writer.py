"""Group commit for the inbox: one writer task stores the callbacks of many requests at once.

A callback handler hands its verified event (as an inbox row) to `InboxWriter.insert` and
waits. The writer takes whatever has arrived, up to `max_rows` rows, waiting at most
`max_wait_s` after the first for more to join, and stores them in one transaction: one
`INSERT ... ON CONFLICT (platform, event_id) DO NOTHING RETURNING` for all of them (SQLAlchemy
Core, no ORM session), after any statement a row brings along (a card click's fresh response
code). Each waiting request is released after the commit, so its ack still means "durably
stored"; `insert` says whether the row is new (False: the same event was stored before, or
earlier in the same batch).

The writer holds one connection of its own while callbacks keep coming (given back to the pool
after `IDLE_S` without any), so a busy intake checks out and pings a connection once, not once
per batch. When the database drops it (a restart, a failover, an idle timeout), the batch is retried
once on a fresh connection; the unique key makes that retry harmless even when the first commit
went through unseen. A second failure, or a failure that is not about the connection, is
raised to every waiting request (the platform then retries); when a batch of several rows fails
for another reason, each row is tried alone so one bad row cannot fail the others.

On SQLite this is also the one writer task that keeps intake from queueing a transaction per
callback behind `BEGIN IMMEDIATE`: one short transaction per batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Executable, Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.db import Database, database_unreachable
from storage.platform_models import InboxRow

logger = logging.getLogger(__name__)

INBOX = InboxRow.__table__  # type: ignore[attr-defined]
_KEY = ("platform", "event_id")
IDLE_S = 1.0  # the writer keeps its connection while callbacks keep coming, gives it back after this


@dataclass
class _Pending:
    row: Mapping[str, Any]
    also: Sequence[Executable]
    done: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def key(self) -> tuple[str, str]:
        return (str(self.row["platform"]), str(self.row["event_id"]))


class InboxWriter:
    """Batches inbox inserts; see the module docstring. Close with `close()`."""

    def __init__(self, db: Database, *, max_rows: int = 200, max_wait_s: float = 0.002) -> None:
        if max_rows < 1 or max_wait_s < 0:
            raise ValueError("max_rows must be at least 1 and max_wait_s at least 0")
        self._db = db
        self._max_rows = max_rows
        self._max_wait_s = max_wait_s
        self._queue: list[_Pending] = []
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: AsyncConnection | None = None
        self._closing = False
        self._quiet = asyncio.Event()  # nothing queued or being stored
        self._quiet.set()
        self.last_arrival = -1e9  # loop time of the last insert asked for (intake is busy while recent)
        self.batches = 0  # how many commits (for tests and benchmarks)
        self.retries = 0  # how many batches were retried on a fresh connection

    async def insert(self, row: Mapping[str, Any], also: Sequence[Executable] = ()) -> bool:
        """Store `row` (an inbox row's columns) with the next batch, after the statements in
        `also`; True once committed as a new row, False when its (platform, event_id) exists."""
        if self._closing:
            raise RuntimeError("the inbox writer is closed")
        pending = _Pending(row, also)
        self.last_arrival = asyncio.get_running_loop().time()
        self._queue.append(pending)
        self._quiet.clear()
        self._arrived.set()
        if len(self._queue) >= self._max_rows:
            self._full.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="inbox-writer")
        return await asyncio.shield(pending.done)

    async def close(self) -> None:
        """Store what is queued, then stop and give the connection back."""
        self._closing = True
        self._arrived.set()
        self._full.set()
        if self._task is not None:
            await self._task
        await self._drop_connection()

    async def _run(self) -> None:
        while not (self._closing and not self._queue):
            try:
                await asyncio.wait_for(self._arrived.wait(), IDLE_S)
            except TimeoutError:  # quiet: give the connection back to the pool meanwhile
                await self._drop_connection()
                continue
            if len(self._queue) < self._max_rows and self._max_wait_s > 0 and not self._closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self._max_wait_s)
            batch, self._queue = self._queue[: self._max_rows], self._queue[self._max_rows :]
            if len(self._queue) < self._max_rows and not self._closing:
                self._full.clear()
            if not self._queue and not self._closing:
                self._arrived.clear()
            if batch:
                await self._store(batch)
            if not self._queue:
                self._quiet.set()

    def busy(self, within_s: float) -> bool:
        """Whether a callback arrived in the last `within_s` seconds (intake is under way)."""
        return asyncio.get_running_loop().time() - self.last_arrival < within_s

    async def wait_quiet(self, timeout_s: float) -> None:
        """Wait (at most `timeout_s`) until no callback is waiting to be stored: background work
        in the same process lets intake go first, without being starved by it."""
        if not self._quiet.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._quiet.wait(), timeout_s)

    async def _store(self, batch: list[_Pending]) -> None:
        first: dict[tuple[str, str], _Pending] = {}
        for p in batch:
            first.setdefault(p.key, p)
        unique = list(first.values())
        try:
            inserted = await self._commit_retrying(unique)
        except Exception as exc:
            if len(unique) > 1 and not database_unreachable(exc):
                logger.warning("inbox batch failed; storing its rows one by one", exc_info=True)
                for p in unique:
                    await self._store([p])
                inserted = {p.key for p in unique if p.done.done() and p.done.result()}
            else:
                for p in batch:
                    _settle(p, error=exc)
                return
        for p in batch:
            _settle(p, result=first[p.key] is p and p.key in inserted)

    async def _commit_retrying(self, batch: list[_Pending]) -> set[tuple[str, str]]:
        try:
            return await self._commit(batch)
        except Exception as exc:
            await self._drop_connection(broken=True)
            if not database_unreachable(exc):
                raise
            logger.warning("inbox writer lost its database connection; retrying the batch once")
            self.retries += 1
            return await self._commit(batch)

    async def _commit(self, batch: list[_Pending]) -> set[tuple[str, str]]:
        if self._conn is None or self._conn.closed:
            self._conn = await self._db.engine.connect()
        conn = self._conn
        async with self._db.write_turn(urgent=True), conn.begin():
            for p in batch:
                for statement in p.also:
                    await conn.execute(statement)
            result = await conn.execute(self._insert(), [dict(p.row) for p in batch])
            inserted = {(str(r.platform), str(r.event_id)) for r in result}
        self.batches += 1
        return inserted

    def _insert(self) -> Insert:
        make: Any = sqlite.insert if self._db.is_sqlite else postgresql.insert
        statement: Insert = (
            make(INBOX)
            .on_conflict_do_nothing(index_elements=list(_KEY))
            .returning(INBOX.c.platform, INBOX.c.event_id)
        )
        return statement

    async def _drop_connection(self, *, broken: bool = False) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            if broken:  # never handed out again
                await conn.invalidate()
            await conn.close()


def _settle(p: _Pending, *, result: bool = False, error: BaseException | None = None) -> None:
    if p.done.done():
        return
    if error is not None:
        p.done.set_exception(error)
    else:
        p.done.set_result(result)
