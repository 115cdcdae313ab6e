"""The outbox dispatcher delivers every message exactly once, on SQLite and PostgreSQL.

Deliveries here record what reaches them per outbox id, so "exactly once" is counted, not
assumed. Time is a ManualClock moved past backoffs and leases; where one dispatcher must be
caught half-way through a send, an asyncio.Event holds it there. Nothing waits on a timer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from approvals.clock import ManualClock
from approvals.engine import Action
from approvals.model import ActionKind
from notifications.console import ConsoleDelivery
from notifications.delivery import Delivery, DeliveryError, OutgoingMessage
from notifications.dispatcher import LEASE, OutboxDispatcher
from org.model import Org, User
from services.approvals import Workflow, WorkflowDeps
from services.directory import Directory
from services.links import PersonalLinks
from storage.approval_models import OutboxRow
from storage.console_models import ConsoleMessageRow
from storage.db import Database
from storage.org_repo import load_org
from tests.conftest import import_demo_org
from tests.helpers import TZ, demo_org, step, template, who

ORG = demo_org()
LONG_ENOUGH = timedelta(seconds=301)  # past the longest backoff (max_backoff_s = 300)


async def the_org() -> Org:
    return ORG


class Recording(Delivery):
    """Counts what reaches it; the first `failures` hand-overs of each message raise `error()`."""

    name = "recording"

    def __init__(self, *, failures: int = 0, error: Callable[[], Exception] | None = None) -> None:
        self.failures = failures
        self.error = error or (lambda: DeliveryError("网关超时"))
        self.tries: Counter[int] = Counter()
        self.delivered: Counter[int] = Counter()

    def reaches(self, user: User) -> bool:
        return True

    async def deliver(self, message: OutgoingMessage, user: User) -> None:
        self.tries[message.outbox_id] += 1
        if self.tries[message.outbox_id] <= self.failures:
            raise self.error()
        self.delivered[message.outbox_id] += 1


def dispatcher(db: Database, delivery: Delivery, clock: ManualClock, **kw: Any) -> OutboxDispatcher:
    return OutboxDispatcher(db, [delivery], org=kw.pop("org", the_org), now=clock.now, **kw)


async def enqueue(db: Database, clock: ManualClock, n: int = 1, *, recipient: str = "u_sun") -> list[int]:
    now = clock.now()
    rows = [
        OutboxRow(
            kind="text",
            recipient=recipient,
            request_id="20261123-00000001",
            task_id=None,
            payload={"text": f"第 {i + 1} 条消息"},
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        for i in range(n)
    ]
    async with db.transaction() as s:
        s.add_all(rows)
        await s.flush()
        ids = [r.id for r in rows]
    assert all(i is not None for i in ids)
    return [i for i in ids if i is not None]


async def row(db: Database, outbox_id: int) -> OutboxRow:
    async with db.session() as s:
        found = await s.get(OutboxRow, outbox_id)
    assert found is not None
    return found


async def statuses(db: Database) -> Counter[str]:
    async with db.session() as s:
        return Counter((await s.execute(select(col(OutboxRow.status)))).scalars().all())


# -- retries and backoff -------------------------------------------------------------------------------
async def test_flaky_delivery_is_retried_with_backoff_and_delivers_each_message_once(
    db: Database, clock: ManualClock
) -> None:
    ids = await enqueue(db, clock, 3)
    flaky = Recording(failures=2)
    d = dispatcher(db, flaky, clock)

    first = await d.drain()
    assert (first.sent, first.failed) == (0, 3)
    for oid in ids:
        r = await row(db, oid)
        assert (r.status, r.attempts, r.last_error) == ("pending", 1, "recording: 网关超时")
        assert r.next_attempt_at == clock.now() + timedelta(seconds=2)
    assert (await d.drain()).failed == 0, "nothing is due before its backoff"

    clock.advance(timedelta(seconds=2))
    assert (await d.drain()).failed == 3
    r = await row(db, ids[0])
    assert (r.attempts, r.last_error) == (2, "recording: 网关超时")
    assert r.next_attempt_at == clock.now() + timedelta(seconds=4), "the backoff doubles"

    clock.advance(timedelta(seconds=4))
    assert (await d.drain()).sent == 3
    clock.advance(LONG_ENOUGH)
    assert (await d.drain()).sent == 0
    assert flaky.delivered == Counter(dict.fromkeys(ids, 1))
    for oid in ids:
        r = await row(db, oid)
        assert (r.status, r.attempts, r.last_error) == ("sent", 2, None)
        assert r.sent_at == clock.now() - LONG_ENOUGH


async def test_message_that_never_gets_through_is_dead_after_max_attempts(
    db: Database, clock: ManualClock
) -> None:
    (oid,) = await enqueue(db, clock)
    down = Recording(failures=99)
    d = dispatcher(db, down, clock, max_attempts=3)
    for _ in range(5):
        await d.drain()
        clock.advance(LONG_ENOUGH)
    r = await row(db, oid)
    assert (r.status, r.attempts) == ("dead", 3)
    assert down.tries[oid] == 3 and not down.delivered


async def test_non_retryable_error_sends_the_row_to_dead_and_logs_it(
    db: Database, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="notifications.dispatcher")
    (oid,) = await enqueue(db, clock)
    refused = Recording(failures=99, error=lambda: DeliveryError("用户不存在", retryable=False))
    d = dispatcher(db, refused, clock)

    stats = await d.drain()
    clock.advance(LONG_ENOUGH)
    await d.drain()

    assert (stats.dead, stats.failed, stats.sent) == (1, 0, 0)
    r = await row(db, oid)
    assert (r.status, r.attempts, r.last_error) == ("dead", 1, "recording: 用户不存在")
    assert refused.tries[oid] == 1, "a dead row is never handed over again"
    dead = [rec for rec in caplog.records if rec.getMessage() == "outbox message dead"]
    assert len(dead) == 1 and dead[0].levelno == logging.ERROR
    assert getattr(dead[0], "outbox_id", None) == oid


async def test_unexpected_exception_from_a_delivery_is_retried_not_lost(
    db: Database, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="notifications.dispatcher")
    (oid,) = await enqueue(db, clock)
    buggy = Recording(failures=1, error=lambda: KeyError("errcode"))
    d = dispatcher(db, buggy, clock)

    stats = await d.drain()

    assert stats.failed == 1
    r = await row(db, oid)
    assert r.status == "pending" and r.attempts == 1
    assert r.last_error is not None and "KeyError" in r.last_error
    assert any(rec.getMessage() == "delivery crashed" and rec.exc_info for rec in caplog.records)
    clock.advance(LONG_ENOUGH)
    assert (await d.drain()).sent == 1
    assert buggy.delivered == Counter({oid: 1})


# -- crashes and replicas ---------------------------------------------------------------------------
async def test_row_claimed_by_a_dispatcher_that_died_is_handed_over_after_the_lease(
    db: Database, clock: ManualClock
) -> None:
    (oid,) = await enqueue(db, clock)
    crashed = dispatcher(db, Recording(), clock)
    claimed = await crashed.claim()  # ... and the process dies before sending
    assert [r.id for r in claimed] == [oid]
    assert (await row(db, oid)).status == "sending"

    survivor_delivery = Recording()
    survivor = dispatcher(db, survivor_delivery, clock)
    assert (await survivor.drain()).sent == 0, "the lease still holds"
    clock.advance(LEASE - timedelta(seconds=1))
    assert (await survivor.drain()).sent == 0
    clock.advance(timedelta(seconds=2))
    assert (await survivor.drain()).sent == 1
    clock.advance(LONG_ENOUGH)
    assert (await survivor.drain()).sent == 0
    assert survivor_delivery.delivered == Counter({oid: 1})
    assert (await row(db, oid)).status == "sent"


@pytest.fixture
async def second_db(db: Database) -> AsyncIterator[Database]:
    """Another engine on the same store, as a second replica has (same SQLite file / PG schema)."""
    other = Database(db.url, schema=db.schema)
    try:
        yield other
    finally:
        await other.dispose()


class Meeting(Recording):
    """Each dispatcher's first send waits for the other's, so both hold a claimed batch at once."""

    def __init__(self, both_claimed: asyncio.Barrier) -> None:
        super().__init__()
        self.both_claimed = both_claimed

    async def deliver(self, message: OutgoingMessage, user: User) -> None:
        if not self.tries:
            async with asyncio.timeout(30):  # a guard against a hang, not a synchronisation
                await self.both_claimed.wait()
        await super().deliver(message, user)


async def test_two_dispatchers_at_once_deliver_each_of_200_rows_exactly_once(
    db: Database, second_db: Database, clock: ManualClock
) -> None:
    ids = await enqueue(db, clock, 200)
    both_claimed = asyncio.Barrier(2)
    one, two = Meeting(both_claimed), Meeting(both_claimed)
    first = dispatcher(db, one, clock, batch_size=20)
    second = dispatcher(second_db, two, clock, batch_size=20)

    stats = await asyncio.gather(first.drain(), second.drain())

    assert all(s.sent > 0 for s in stats), "both dispatchers worked"
    assert sum(s.sent for s in stats) == 200
    assert not set(one.delivered) & set(two.delivered), "no row was claimed by both"
    assert one.delivered + two.delivered == Counter(dict.fromkeys(ids, 1))
    assert await statuses(db) == Counter({"sent": 200})


class Held(Recording):
    """A delivery that stops inside its first send until the test lets it go, then fails."""

    def __init__(self, error: Callable[[], Exception]) -> None:
        super().__init__(failures=1, error=error)
        self.inside = asyncio.Event()
        self.go_on = asyncio.Event()

    async def deliver(self, message: OutgoingMessage, user: User) -> None:
        self.inside.set()
        await self.go_on.wait()
        await super().deliver(message, user)


@pytest.mark.parametrize("retryable", [True, False])
async def test_late_result_from_an_expired_lease_does_not_undo_a_sent_row(
    db: Database, second_db: Database, clock: ManualClock, retryable: bool
) -> None:
    (oid,) = await enqueue(db, clock)
    slow = Held(error=lambda: DeliveryError("网关超时", retryable=retryable))
    fast = Recording()
    stalled = dispatcher(db, slow, clock)
    taking_over = dispatcher(second_db, fast, clock)

    first_try = asyncio.ensure_future(stalled.run_once())
    await slow.inside.wait()  # the slow dispatcher is half-way through its send
    clock.advance(LEASE + timedelta(seconds=1))
    assert (await taking_over.drain()).sent == 1
    slow.go_on.set()
    await first_try  # its send fails late and it records that
    for _ in range(3):
        clock.advance(LONG_ENOUGH)
        await taking_over.drain()

    assert fast.delivered + slow.delivered == Counter({oid: 1})
    assert (await row(db, oid)).status == "sent"


class SlowBatch(Recording):
    """Each send takes half a lease of the clock's time; during the second, the rest of the batch's
    lease runs out and `meanwhile` (another dispatcher's round) runs."""

    def __init__(self, clock: ManualClock, meanwhile: Callable[[], Awaitable[object]]) -> None:
        super().__init__()
        self.clock = clock
        self.meanwhile = meanwhile

    async def deliver(self, message: OutgoingMessage, user: User) -> None:
        await super().deliver(message, user)
        self.clock.advance(LEASE / 2 + timedelta(seconds=1))
        if sum(self.delivered.values()) == 2:
            await self.meanwhile()


async def test_a_batch_that_outlasts_its_lease_leaves_rows_taken_over_meanwhile_to_the_other_dispatcher(
    db: Database, second_db: Database, clock: ManualClock
) -> None:
    ids = await enqueue(db, clock, 4)
    other = Recording()
    taking_over = dispatcher(second_db, other, clock)
    slow = SlowBatch(clock, taking_over.drain)
    stalled = dispatcher(db, slow, clock, batch_size=4)

    await stalled.run_once()
    clock.advance(LONG_ENOUGH)
    await taking_over.drain()

    # Each row's lease was renewed before its send: what the other dispatcher took over (the rows
    # the slow one had not reached) was sent by it alone.
    assert slow.delivered + other.delivered == Counter(dict.fromkeys(ids, 1))
    assert other.delivered, "the other dispatcher took rows over"
    assert await statuses(db) == Counter({"sent": 4})


# -- recipients and the directory ------------------------------------------------------------------
async def test_recipient_missing_from_the_org_is_dead_at_once_not_retried(
    db: Database, clock: ManualClock
) -> None:
    (oid,) = await enqueue(db, clock, recipient="u_left_long_ago")
    nobody = Recording()
    d = dispatcher(db, nobody, clock)

    stats = await d.drain()
    for _ in range(3):
        clock.advance(timedelta(days=1))
        await d.drain()

    assert stats.dead == 1
    r = await row(db, oid)
    assert (r.status, r.attempts) == ("dead", 1)
    assert r.last_error is not None and "u_left_long_ago" in r.last_error
    assert not nobody.tries


async def test_org_that_cannot_be_loaded_is_retried_not_dead(db: Database, clock: ManualClock) -> None:
    (oid,) = await enqueue(db, clock)
    waiting = Recording()

    async def org_from_db() -> Org:
        async with db.session() as s:
            return await load_org(s)

    d = dispatcher(db, waiting, clock, org=org_from_db)
    for attempt in (1, 2):
        stats = await d.drain()
        assert (stats.failed, stats.dead) == (1, 0)
        r = await row(db, oid)
        assert (r.status, r.attempts) == ("pending", attempt)
        assert r.last_error == "the organisation directory could not be loaded"
        clock.advance(LONG_ENOUGH)
    assert not waiting.tries

    await import_demo_org(db)
    assert (await d.drain()).sent == 1
    assert waiting.delivered == Counter({oid: 1})


# -- the console delivery -------------------------------------------------------------------------------
async def console_rows(db: Database, **where: Any) -> list[ConsoleMessageRow]:
    q = select(ConsoleMessageRow).order_by(ConsoleMessageRow.id)  # type: ignore[arg-type]
    for key, value in where.items():
        q = q.where(getattr(ConsoleMessageRow, key) == value)
    async with db.session() as s:
        return list((await s.execute(q)).scalars().all())


async def test_console_handed_the_same_row_twice_shows_one_message(
    db: Database, second_db: Database, clock: ManualClock
) -> None:
    sun = ORG.user("u_sun")
    assert sun is not None
    message = OutgoingMessage(
        outbox_id=41, kind="text", recipient="u_sun", request_id="r1", task_id=None, payload={"text": "您好"}
    )
    console = ConsoleDelivery(db, clock.now)

    await console.deliver(message, sun)
    await console.deliver(message, sun)
    await asyncio.gather(
        console.deliver(message, sun), ConsoleDelivery(second_db, clock.now).deliver(message, sun)
    )

    rows = await console_rows(db, outbox_id=41)
    assert [(r.user_id, r.text) for r in rows] == [("u_sun", "您好")]
    async with db.session() as s:
        assert (await s.execute(select(func.count()).select_from(ConsoleMessageRow))).scalar_one() == 1


async def test_card_closed_marks_the_earlier_card_closed_with_the_outcome(
    org_db: Database, clock: ManualClock
) -> None:
    tpl = template(
        step("leader", who("user", "u_sun"), name="部门领导"), step("vp", who("user", "u_li")), key="cards"
    )
    workflow = Workflow(
        WorkflowDeps(
            db=org_db,
            templates={"cards": tpl},
            tz=TZ,
            now=clock.now,
            links=PersonalLinks(
                org_db, secret="test-link-secret-0123456789", public_url="http://oabot.test", now=clock.now
            ),
            directory=Directory(org_db, clock.now),
        )
    )
    d = OutboxDispatcher(org_db, [ConsoleDelivery(org_db, clock.now)], org=workflow.org, now=clock.now)
    submitted = await workflow.submit(template_key="cards", initiator="u_wu", form={"reason": "用车"})
    await d.drain()
    (card,) = await console_rows(org_db, user_id="u_sun", kind="task_card")
    assert not card.closed and card.outcome is None
    task = submitted.steps[0].tasks[0]

    await workflow.act(
        request_id=submitted.id,
        action=Action(kind=ActionKind.APPROVE, actor="u_sun", task_id=task.id, version=task.version),
    )
    await d.drain()
    await d.drain()

    (card,) = await console_rows(org_db, user_id="u_sun", kind="task_card")
    assert card.closed
    assert card.outcome is not None and card.outcome.startswith("已同意 · 孙丽 · ")
    closing = await console_rows(org_db, user_id="u_sun", kind="card_closed")
    assert len(closing) == 1 and closing[0].task_id == task.id
    assert [r.kind for r in await console_rows(org_db, user_id="u_li")] == ["task_card"]
    # the two cards, the closing update and the initiator's progress message (步骤完成)
    assert await statuses(org_db) == Counter({"sent": 4})
    (progress,) = await console_rows(org_db, user_id="u_wu", kind="progress")
    assert "已同意（孙丽）" in progress.text and "等待" not in progress.text
