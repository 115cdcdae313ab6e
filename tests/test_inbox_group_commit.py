"""Group commit of callbacks: many requests, one transaction each batch, every event stored and
processed exactly once; a dropped connection costs one retry, not a lost callback; the process
roles start the right loops."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections import Counter

import asyncpg
import pytest
from aiohttp import web
from sqlalchemy import func, select

from approvals.clock import ManualClock
from bot.keys import INBOX, SCHEDULER
from bot.platforms.inbox import Inbox
from deadlines.timer_kinds import SCAN_JOB_ID
from handlers.events import Event, Sender, TextMessage
from storage.db import Database
from storage.inbox_writer import InboxWriter
from storage.kv_memory import MemoryStore
from storage.platform_models import InboxRow
from tests.conftest import PG_URL, _asyncpg_dsn, settings_for
from tests.test_cli_serve import Server, clean_env, free_port


def _event(n: int) -> TextMessage:
    return TextMessage(sender=Sender("wecom", f"user{n % 7}"), event_id=f"msg:{n}", text=f"第{n}条")


async def _rows(db: Database) -> list[InboxRow]:
    async with db.session() as s:
        return list((await s.execute(select(InboxRow).order_by(InboxRow.id))).scalars())  # type: ignore[arg-type]


async def test_concurrent_callbacks_are_stored_in_batches_and_processed_exactly_once(
    db: Database, clock: ManualClock
) -> None:
    processed: list[str] = []

    async def process(event: Event) -> None:
        processed.append(event.event_id)

    # Two replicas with their own dedupe stores: only the database's unique key stops repeats.
    first = Inbox(db, MemoryStore(), process, now=clock.now, writer=InboxWriter(db, max_rows=50))
    second = Inbox(db, MemoryStore(), process, now=clock.now, writer=InboxWriter(db, max_rows=50))
    try:
        deliveries = [(first, n) for n in range(300)] + [(second, n) for n in range(0, 300, 3)]
        results = await asyncio.gather(*(inbox.accept(_event(n)) for inbox, n in deliveries))
        fresh = Counter(n for (_, n), stored in zip(deliveries, results, strict=True) if stored)

        assert sorted(fresh) == list(range(300)) and set(fresh.values()) == {1}
        rows = await _rows(db)
        assert sorted(r.event_id for r in rows) == sorted(f"msg:{n}" for n in range(300))
        assert {r.status for r in rows} == {"pending"}
        # Stored in a handful of transactions, not one per callback.
        assert first.writer.batches + second.writer.batches < 40

        assert await first.drain() == 300
        assert sorted(processed) == sorted(f"msg:{n}" for n in range(300))
        assert {r.status for r in await _rows(db)} == {"done"}
    finally:
        await first.close()
        await second.close()


async def test_a_callback_is_answered_only_after_its_row_is_committed(
    db: Database, clock: ManualClock
) -> None:
    async def process(event: Event) -> None:
        return None

    inbox = Inbox(db, MemoryStore(), process, now=clock.now, writer=InboxWriter(db, max_wait_s=0.05))
    try:
        assert await inbox.accept(_event(1)) is True
        # Read through another connection: what the ack promised is there.
        assert [r.event_id for r in await _rows(db)] == ["msg:1"]
    finally:
        await inbox.close()


async def _terminate(pid: int) -> None:
    assert PG_URL is not None
    conn = await asyncpg.connect(_asyncpg_dsn(PG_URL))
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid) is True
    finally:
        await conn.close()


async def test_a_dropped_connection_costs_one_retry_and_loses_nothing(
    db: Database, clock: ManualClock
) -> None:
    if db.is_sqlite:
        pytest.skip("a server-side disconnect is a PostgreSQL matter")
    processed: list[str] = []

    async def process(event: Event) -> None:
        processed.append(event.event_id)

    kv = MemoryStore()
    writer = InboxWriter(db)
    inbox = Inbox(db, kv, process, now=clock.now, writer=writer)
    try:
        assert await inbox.accept(_event(1)) is True
        assert writer._conn is not None  # noqa: SLF001 - the writer keeps its connection while busy
        raw = await writer._conn.get_raw_connection()  # noqa: SLF001
        await _terminate(raw.driver_connection.get_server_pid())  # type: ignore[union-attr]

        results = await asyncio.gather(*(inbox.accept(_event(n)) for n in range(2, 12)))

        assert results == [True] * 10
        assert writer.retries == 1
        assert await inbox.drain() == 11
        assert sorted(processed) == sorted(f"msg:{n}" for n in range(1, 12))
    finally:
        await inbox.close()


async def test_a_batch_that_cannot_be_stored_fails_its_callbacks_and_frees_their_dedupe_keys(
    db: Database, clock: ManualClock
) -> None:
    async def process(event: Event) -> None:
        return None

    kv = MemoryStore()
    inbox = Inbox(db, kv, process, now=clock.now)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda sync: InboxRow.__table__.drop(sync))  # type: ignore[attr-defined]
        with pytest.raises(Exception):  # noqa: B017 - whatever the driver says: not acknowledged
            await inbox.accept(_event(1))
        # The platform's retry is not taken for a repeat once the table is back.
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda sync: InboxRow.__table__.create(sync))  # type: ignore[attr-defined]
        assert await inbox.accept(_event(1)) is True
    finally:
        await inbox.close()


@pytest.mark.parametrize(
    ("role", "processes", "scans"), [("web", False, False), ("worker", True, True), ("all", True, True)]
)
async def test_each_role_runs_its_own_loops(  # type: ignore[no-untyped-def]
    org_db: Database, aiohttp_client, role: str, processes: bool, scans: bool
) -> None:
    from bot.app import create_app

    settings = settings_for(org_db, role=role, run_background=True, dispatch_interval_s=0.05)
    app: web.Application = create_app(settings)
    await aiohttp_client(app)

    assert await app[INBOX].accept(_event(1)) is True
    await asyncio.sleep(0.5)

    [row] = await _rows(org_db)
    assert (row.status == "done" or row.attempts > 0) is processes  # taken up by a worker
    assert (app[SCHEDULER].get_job(SCAN_JOB_ID) is not None) is scans


def test_serve_worker_role_listens_on_no_port(tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    server = Server(["--demo", "--port", str(port), "--role", "worker"], tmp_path, clean_env())
    try:
        server.wait_for_line("oabot worker is running")
        with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        code, _ = server.stop(signal.SIGINT)
        assert code == 0
        assert "Traceback" not in server.logs()
    finally:
        server.close()


async def test_count_of_rows_is_what_was_acknowledged_under_a_small_batch_limit(
    db: Database, clock: ManualClock
) -> None:
    async def process(event: Event) -> None:
        return None

    writer = InboxWriter(db, max_rows=1, max_wait_s=0)
    inbox = Inbox(db, MemoryStore(), process, now=clock.now, writer=writer)
    try:
        results = await asyncio.gather(*(inbox.accept(_event(n % 20)) for n in range(60)))
        assert sum(results) == 20
        async with db.session() as s:
            assert (await s.execute(select(func.count()).select_from(InboxRow))).scalar_one() == 20
        # one row per transaction, as configured: the dedupe key is written only after a commit,
        # so the 40 concurrent repeats reach the writer too and the unique key refuses them
        assert writer.batches == 60
    finally:
        await inbox.close()


async def test_sqlite_writers_take_turns_in_arrival_order_with_the_inbox_writer_first() -> None:
    from storage.db import WriteTurns

    turns = WriteTurns()
    order: list[str] = []
    release = asyncio.Event()

    async def write(name: str, *, urgent: bool = False, hold: bool = False) -> None:
        async with turns.turn(urgent=urgent):
            order.append(name)
            if hold:
                await release.wait()

    holder = asyncio.create_task(write("worker 1", hold=True))
    await asyncio.sleep(0)
    queued = [asyncio.create_task(write("worker 2")), asyncio.create_task(write("worker 3"))]
    await asyncio.sleep(0)
    cancelled = asyncio.create_task(write("gone"))
    await asyncio.sleep(0)
    cancelled.cancel()
    intake = asyncio.create_task(write("inbox", urgent=True))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(holder, *queued, intake)

    assert order == ["worker 1", "inbox", "worker 2", "worker 3"]
