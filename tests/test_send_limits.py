"""Per-person send limits in the outbox dispatcher: on SQLite and PostgreSQL, with the in-process
store and Redis. A burst of task cards to one person sends at most the limit in any minute; the
rest are coalesced into one "您有 N 条新待办" message that lists every one of them and goes out
when the limit allows. Other messages wait; a platform's own frequency-limit answer waits too,
without using up attempts. Time is a ManualClock; every send is recorded with its time.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import col

from approvals.clock import ManualClock
from notifications import todo_digest
from notifications.delivery import Delivery, DeliveryError, OutgoingMessage
from notifications.dispatcher import OutboxDispatcher
from notifications.send_limits import SendLimits
from org.model import Org, User
from storage.approval_models import OutboxRow
from storage.db import Database
from storage.kv import KeyValueStore
from tests.helpers import demo_org

ORG = demo_org()
TODO = "http://oabot.test/l/todo-of-u_sun"


async def the_org() -> Org:
    return ORG


class Phone(Delivery):
    """What one person's phone received on a limited channel, and when."""

    def __init__(self, clock: ManualClock, name: str = "wecom", throttle_first: int = 0) -> None:
        self.name = name
        self.clock = clock
        self.got: list[tuple[datetime, OutgoingMessage]] = []
        self.throttle_first = throttle_first

    def reaches(self, user: User) -> bool:
        return True

    async def deliver(self, message: OutgoingMessage, user: User) -> None:
        if self.throttle_first > 0:
            self.throttle_first -= 1
            raise DeliveryError("errcode 45009: api freq out of limit", throttled_for_s=60.0)
        self.got.append((self.clock.now(), message))

    def most_in_a_minute(self) -> int:
        times = [t for t, _ in self.got]
        return max((sum(1 for u in times if t <= u < t + timedelta(seconds=60)) for t in times), default=0)


def dispatcher(
    db: Database, kv: KeyValueStore, phone: Phone, clock: ManualClock, per_minute: int = 30
) -> OutboxDispatcher:
    events: Counter[tuple[str, str]] = Counter()

    async def todo_link(user: str) -> str:
        return TODO

    d = OutboxDispatcher(
        db,
        [phone],
        org=the_org,
        now=clock.now,
        limits=SendLimits(kv, {phone.name: per_minute}, clock.now),
        todo_link=todo_link,
        count=lambda event, channel: events.update([(event, channel)]),
    )
    d.events = events  # type: ignore[attr-defined]
    return d


async def add_cards(db: Database, clock: ManualClock, n: int, recipient: str = "u_sun") -> list[int]:
    rows = [
        OutboxRow.due_now(
            kind="task_card",
            recipient=recipient,
            request_id=f"20261123-{i:08d}",
            task_id=f"20261123-{i:08d}-1",
            payload={
                "task_id": f"20261123-{i:08d}-1",
                "version": 1,
                "card": {"title": "请假", "subtitle": f"第{i}号", "initiator": "吴昊"},
            },
            now=clock.now(),
        )
        for i in range(n)
    ]
    async with db.transaction() as s:
        s.add_all(rows)
        await s.flush()
        return [r.id for r in rows if r.id is not None]


async def add_text(db: Database, clock: ManualClock, text: str, kind: str = "result") -> int:
    row = OutboxRow.due_now(kind=kind, recipient="u_sun", payload={"text": text}, now=clock.now())
    async with db.transaction() as s:
        s.add(row)
        await s.flush()
        assert row.id is not None
        return row.id


async def rows(db: Database) -> list[OutboxRow]:
    async with db.session() as s:
        return list((await s.execute(select(OutboxRow).order_by(col(OutboxRow.id)))).scalars().all())


async def run_for(d: OutboxDispatcher, clock: ManualClock, seconds: int, step_s: int = 1) -> None:
    for _ in range(0, seconds, step_s):
        await d.drain()
        clock.advance(timedelta(seconds=step_s))
    await d.drain()


async def test_a_burst_of_cards_sends_30_a_minute_and_one_digest_lists_all_the_rest(
    db: Database, kv: KeyValueStore, clock: ManualClock
) -> None:
    phone = Phone(clock)
    d = dispatcher(db, kv, phone, clock)
    ids = await add_cards(db, clock, 100)

    await run_for(d, clock, 10)
    assert len(phone.got) == 30, "the first 30 cards go out at once, nothing more within the minute"
    await run_for(d, clock, 120, step_s=5)

    assert phone.most_in_a_minute() <= 30
    cards = [m for _, m in phone.got if m.kind == "task_card"]
    digests = [m for _, m in phone.got if m.kind == todo_digest.KIND]
    assert len(cards) == 30 and 1 <= len(digests) <= 3
    listed = [item["outbox_id"] for m in digests for item in m.payload["items"]]
    assert sorted(listed) == sorted(set(ids) - {m.outbox_id for m in cards}), (
        "every card not sent is listed once"
    )
    shown = "\n".join(m.text() for m in digests)
    assert all(f"「请假」第{i}号\n" in shown for i in range(30, 100)), (
        "each one is in the words the phone shows"
    )
    assert all(len(m.text().encode()) <= 2048 for m in digests), "within WeCom's text limit, nothing cut"
    first = digests[0]
    assert first.text().startswith(f"您有 {first.payload['count']} 条新待办：\n1. 吴昊 「请假」第30号")
    assert first.payload["link"] == TODO and TODO in first.text()
    status = Counter(r.status for r in await rows(db))
    assert status == {"sent": 30 + len(digests), "coalesced": 70}
    digest_ids = {r.id for r in await rows(db) if r.kind == todo_digest.KIND}
    notes = {r.last_error for r in await rows(db) if r.status == "coalesced"}
    assert notes == {f"coalesced into outbox #{i} (wecom send limit)" for i in digest_ids}
    assert d.events == {("coalesced", "wecom"): 70}  # type: ignore[attr-defined]


async def test_cards_coalesced_after_the_digest_went_out_start_a_new_digest(
    db: Database, kv: KeyValueStore, clock: ManualClock
) -> None:
    phone = Phone(clock)
    d = dispatcher(db, kv, phone, clock, per_minute=2)
    await add_cards(db, clock, 4)
    await run_for(d, clock, 61)  # 2 cards, then the digest of 2 once the minute has passed
    await add_cards(db, clock, 3)
    await run_for(d, clock, 180)

    kinds = [m.kind for _, m in phone.got]
    assert (
        kinds.count("task_card") + sum(m.payload["count"] for _, m in phone.got if m.kind == todo_digest.KIND)
        == 7
    ), "every card reached the person, on its own or listed"
    assert phone.most_in_a_minute() <= 2


async def test_a_text_over_the_limit_waits_for_it_and_is_not_dropped(
    db: Database, kv: KeyValueStore, clock: ManualClock
) -> None:
    phone = Phone(clock)
    d = dispatcher(db, kv, phone, clock, per_minute=3)
    for i in range(5):
        await add_text(db, clock, f"您的「请假」第{i}号已通过")
    await d.drain()
    assert len(phone.got) == 3
    waiting = [r for r in await rows(db) if r.status == "pending"]
    assert len(waiting) == 2 and all(r.attempts == 0 for r in waiting)
    assert d.events == {("held", "wecom"): 2}  # type: ignore[attr-defined]

    await run_for(d, clock, 70)
    assert [m.payload["text"] for _, m in phone.got] == [f"您的「请假」第{i}号已通过" for i in range(5)]
    assert phone.most_in_a_minute() <= 3


async def test_the_platforms_frequency_limit_backs_off_without_killing_the_message(
    db: Database, kv: KeyValueStore, clock: ManualClock
) -> None:
    phone = Phone(clock, throttle_first=20)  # far more refusals than max_attempts (8)
    d = dispatcher(db, kv, phone, clock)
    await add_text(db, clock, "您的「请假」已通过")
    await run_for(d, clock, 60 * 21, step_s=30)

    assert [m.payload["text"] for _, m in phone.got] == ["您的「请假」已通过"]
    (only,) = await rows(db)
    assert only.status == "sent" and only.attempts == 0
    assert d.events[("throttled", "wecom")] == 20  # type: ignore[attr-defined]


async def test_two_dispatchers_share_one_persons_limit(
    db: Database, kv: KeyValueStore, clock: ManualClock
) -> None:
    phone = Phone(clock)
    one, two = dispatcher(db, kv, phone, clock, per_minute=5), dispatcher(db, kv, phone, clock, per_minute=5)
    for i in range(12):
        await add_text(db, clock, f"第{i}条", kind="text")
    one._batch = two._batch = 3  # type: ignore[attr-defined]
    for _ in range(4):
        await one.run_once()
        await two.run_once()
    assert len(phone.got) == 5


async def test_closing_cards_in_place_is_not_held_by_the_limit(
    db: Database, kv: KeyValueStore, clock: ManualClock
) -> None:
    phone = Phone(clock)
    d = dispatcher(db, kv, phone, clock, per_minute=2)
    for i in range(4):
        row = OutboxRow.due_now(
            kind="card_closed",
            recipient="u_sun",
            payload={"task_id": f"t{i}", "outcome": "已同意"},
            now=clock.now(),
        )
        async with db.transaction() as s:
            s.add(row)
    await d.drain()
    assert len(phone.got) == 4


async def test_a_restart_that_lost_the_in_process_store_still_counts_the_last_minutes_sends(
    db: Database, clock: ManualClock
) -> None:
    from storage.kv_memory import MemoryStore
    from storage.send_marks import mark_sent

    phone = Phone(clock)
    before = dispatcher(db, MemoryStore(), phone, clock, per_minute=5)
    for i in range(5):
        await add_text(db, clock, f"重启前第{i}条", kind="text")
    await before.run_once()
    assert len(phone.got) == 5
    for row in await rows(db):  # what the platform deliveries write once a send succeeded
        assert row.id is not None
        await mark_sent(db, outbox_id=row.id, channel="wecom", now=clock.now())
    clock.advance(timedelta(seconds=10))
    after = dispatcher(db, MemoryStore(), phone, clock, per_minute=5)  # kill -9: the store is gone
    await after.seed_limits()
    print("KV", await after._limits._kv.get("sendlimit:wecom:u_sun"), clock.now().timestamp())  # type: ignore
    for i in range(3):
        await add_text(db, clock, f"重启后第{i}条", kind="text")
    await run_for(after, clock, 45)
    assert len(phone.got) == 5  # still inside the minute of the first five
    await run_for(after, clock, 30)
    assert len(phone.got) == 8 and phone.most_in_a_minute() <= 5
