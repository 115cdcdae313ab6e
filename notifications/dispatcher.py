"""The outbox dispatcher: claims due outbox rows, hands them to deliveries, records the result.

At-least-once hand-over with idempotent deliveries gives exactly-once messages:
- rows are claimed in a short transaction (PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite's
  single writer), marked `sending` with a lease, so replicas never work on the same row;
- a crash mid-send leaves the lease to expire and the row is handed over again; a batch sent
  one row at a time renews each row's lease before its send (`keep_lease`), so a row another
  dispatcher took over meanwhile is skipped rather than sent twice;
- failures back off exponentially; after `max_attempts` the row is `dead` and logged.

One row goes: find who and which channels (`_reach`), check the person's send limits
(`SendLimits`), hand it over (`_deliver` per channel; the outcome is a `Failure` or None), then
record it (`_mark_sent`, `_mark_dead`, `_reschedule` or `_hold`, each written only while the
lease holds).

Send limits: when a channel's limit for the person is used up, a task card is not sent but
coalesced (`_coalesce`): the row becomes `coalesced` (its `last_error` names the digest row) and
is listed on the person's newest pending `todo_digest` row (a new one when it is full) ("您有 N 条新待办" with their link to the
task list), due when the limit allows. Anything else waits (`_hold`) until then. A platform's
own frequency-limit answer (DeliveryError.throttled_for_s) also waits without using an attempt:
nothing is dropped or killed by a burst. What a message says is `compose`'s business, how much of it a
platform takes `fit`'s (applied per delivery here), and how a platform shows it the deliveries';
no database transaction is held open while a delivery runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlmodel import col

from notifications import todo_digest
from notifications.delivery import Delivery, DeliveryError, OutgoingMessage
from notifications.fit import budget_for, fit_payload
from notifications.send_limits import WINDOW_S, SendLimits
from org.model import Org, User
from storage.approval_models import OutboxRow
from storage.db import Database
from storage.leases import claim_due, keep_lease, while_leased
from storage.send_marks import recent_sends

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
COALESCED_KINDS = frozenset({"task_card"})  # over the send limit these join the person's digest
UNLIMITED_KINDS = frozenset({"card_closed"})  # an update of a card in place, not a new message


@dataclass
class DispatchStats:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    held: int = 0  # waiting for a send limit or a platform's frequency limit
    coalesced: int = 0  # task cards folded into a digest

    @property
    def handled(self) -> int:
        return self.sent + self.failed + self.dead + self.held + self.coalesced

    def add(self, other: DispatchStats) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.dead += other.dead
        self.held += other.held
        self.coalesced += other.coalesced


@dataclass(frozen=True)
class Failure:
    """Why a row was not delivered; `retryable` False sends it straight to `dead`."""

    error: str
    retryable: bool = True
    throttled_for_s: float | None = None  # a frequency limit: wait this long, keep the attempts


class _LeaseLost(Exception):
    pass


def _message(row: OutboxRow) -> OutgoingMessage:
    assert row.id is not None
    return OutgoingMessage(
        outbox_id=row.id,
        kind=row.kind,
        recipient=row.recipient,
        request_id=row.request_id,
        task_id=row.task_id,
        payload=dict(row.payload),
    )


def _recipient(org: Org, message: OutgoingMessage) -> tuple[User | None, str | None]:
    """Who to reach, and the one channel to use for someone outside the directory: a reply to a
    platform account (payload `account` + `platform`) goes back on that platform only."""
    user = org.user(message.recipient)
    account, platform = message.payload.get("account"), message.payload.get("platform")
    if user is not None or not (account and platform):
        return user, None
    channel = str(platform)
    stranger = User(
        id=message.recipient, name=str(account), department="", accounts={channel: str(account)}, active=False
    )
    return stranger, channel


class OutboxDispatcher:
    def __init__(
        self,
        db: Database,
        deliveries: Sequence[Delivery],
        *,
        org: Callable[[], Awaitable[Org]],
        now: Callable[[], datetime],
        batch_size: int = 50,
        max_attempts: int = 8,
        base_backoff_s: float = 2.0,
        max_backoff_s: float = 300.0,
        limits: SendLimits | None = None,
        todo_link: Callable[[str], Awaitable[str]] | None = None,
        count: Callable[[str, str], None] | None = None,
        lease: timedelta = LEASE,
    ) -> None:
        """`limits`: per-person send limits (none: no limit); `todo_link(user)`: their own link
        to the task list, for the digest; `count(event, channel)`: metrics for "coalesced",
        "held" (send limit) and "throttled" (the platform's frequency limit)."""
        self._db = db
        self._deliveries = list(deliveries)
        self._org = org
        self._now = now
        self._batch = batch_size
        self._max_attempts = max_attempts
        self._base = base_backoff_s
        self._max = max_backoff_s
        self._limits = limits
        self._lease = lease
        self._todo_link = todo_link
        self._count = count or (lambda event, channel: None)

    async def claim(self) -> list[OutboxRow]:
        return await claim_due(
            self._db, OutboxRow, now=self._now(), batch=self._batch, lease=self._lease, working="sending"
        )

    async def run_once(self) -> DispatchStats:
        stats = DispatchStats()
        rows = await self.claim()
        if not rows:
            return stats
        try:
            org: Org | None = await self._org()
        except Exception:
            logger.exception("cannot load the organisation for dispatch")
            org = None
        for row in rows:
            await self._send(row, org, stats)
        return stats

    async def drain(self, max_rounds: int = 100) -> DispatchStats:
        """Send until nothing is due (tests and CLI)."""
        total = DispatchStats()
        for _ in range(max_rounds):
            s = await self.run_once()
            total.add(s)
            if s.handled == 0:
                break
        return total

    # -- one row: hand it over, then record what happened ------------------------------------
    async def _send(self, row: OutboxRow, org: Org | None, stats: DispatchStats) -> None:
        if not await keep_lease(self._db, OutboxRow, row, now=self._now(), lease=self._lease):
            logger.warning("outbox lease handed over before the send; skipped", extra={"outbox_id": row.id})
            return
        message = _message(row)
        reach = self._reach(message, org)
        if isinstance(reach, Failure):
            await self._record(row, reach, stats)
            return
        user, targets = reach
        wait, channel = await self._limit_wait(targets, message)
        if wait > 0 and message.kind in COALESCED_KINDS:
            await self._coalesce(row, message, wait, channel, stats)
        elif wait > 0:
            self._count("held", channel)
            await self._hold(row, wait, f"{channel}: send limit for {message.recipient}", stats)
        else:
            await self._record(row, await self._hand_over(message, user, targets), stats)

    async def _record(self, row: OutboxRow, failure: Failure | None, stats: DispatchStats) -> None:
        if failure is None:
            await self._mark_sent(row, stats)
        elif failure.throttled_for_s is not None:
            await self._hold(row, failure.throttled_for_s, failure.error, stats)
        elif not failure.retryable or row.attempts + 1 >= self._max_attempts:
            await self._mark_dead(row, failure, stats)
        else:
            await self._reschedule(row, failure, stats)

    def _reach(self, message: OutgoingMessage, org: Org | None) -> tuple[User, list[Delivery]] | Failure:
        """The recipient and every delivery that reaches them, or why there is none."""
        if org is None:
            return Failure("the organisation directory could not be loaded")
        user, channel = _recipient(org, message)
        if user is None:
            return Failure(f"recipient {message.recipient} is not in the org directory", retryable=False)
        targets = [d for d in self._deliveries if d.reaches(user) and channel in (None, d.name)]
        if not targets:
            return Failure(f"no channel reaches {message.recipient}", retryable=False)
        return user, targets

    async def _limit_wait(self, targets: list[Delivery], message: OutgoingMessage) -> tuple[float, str]:
        """0 when every limited channel counted this send; else the longest wait and its channel."""
        if self._limits is None or message.kind in UNLIMITED_KINDS:
            return 0.0, ""
        wait, which = 0.0, ""
        for delivery in targets:
            if self._limits.limited(delivery.name):
                w = await self._limits.take(delivery.name, message.recipient)
                if w > wait:
                    wait, which = w, delivery.name
        return wait, which

    async def _hand_over(
        self, message: OutgoingMessage, user: User, targets: list[Delivery]
    ) -> Failure | None:
        """Give the message to every delivery that reaches its recipient; the last failure, if any."""
        failure: Failure | None = None
        for delivery in targets:
            result = await self._deliver(delivery, message, user)
            if result is not None and result.throttled_for_s is not None:
                self._count("throttled", delivery.name)
            failure = result or failure
        return failure

    @staticmethod
    async def _deliver(delivery: Delivery, message: OutgoingMessage, user: User) -> Failure | None:
        fitted = replace(message, payload=fit_payload(message.payload, budget_for(delivery.name)))
        try:
            await delivery.deliver(fitted, user)
        except DeliveryError as exc:
            return Failure(f"{delivery.name}: {exc}", exc.retryable, exc.throttled_for_s)
        except Exception as exc:  # a bug or an unexpected network error: retry later
            logger.exception(
                "delivery crashed", extra={"outbox_id": message.outbox_id, "channel": delivery.name}
            )
            return Failure(f"{delivery.name}: {type(exc).__name__}: {exc}")
        return None

    async def _mark_sent(self, row: OutboxRow, stats: DispatchStats) -> None:
        if not await self._write(row, status="sent", sent_at=self._now(), last_error=None):
            return
        stats.sent += 1
        logger.info(
            "outbox sent",
            extra={
                "outbox_id": row.id,
                "kind": row.kind,
                "recipient": row.recipient,
                "request_id": row.request_id,
            },
        )

    async def _mark_dead(self, row: OutboxRow, failure: Failure, stats: DispatchStats) -> None:
        if not await self._write(row, status="dead", attempts=row.attempts + 1, last_error=failure.error):
            return
        stats.dead += 1
        logger.error(
            "outbox message dead",
            extra={"outbox_id": row.id, "error": failure.error, "request_id": row.request_id},
        )

    async def _reschedule(self, row: OutboxRow, failure: Failure, stats: DispatchStats) -> None:
        attempts = row.attempts + 1
        delay = min(self._max, self._base * (2 ** (attempts - 1)))
        due = self._now() + timedelta(seconds=delay)
        if not await self._write(
            row, status="pending", attempts=attempts, last_error=failure.error, next_attempt_at=due
        ):
            return
        stats.failed += 1
        logger.warning(
            "outbox send failed; will retry",
            extra={"outbox_id": row.id, "error": failure.error, "retry_in_s": delay},
        )

    async def _hold(self, row: OutboxRow, wait_s: float, why: str, stats: DispatchStats) -> None:
        """Try again after `wait_s` without using up an attempt (a limit, not a failure)."""
        due = self._now() + timedelta(seconds=wait_s)
        if not await self._write(row, status="pending", last_error=why, next_attempt_at=due):
            return
        stats.held += 1
        logger.info(
            "outbox message waits for a send limit",
            extra={
                "outbox_id": row.id,
                "recipient": row.recipient,
                "why": why,
                "retry_in_s": round(wait_s, 3),
            },
        )

    async def _coalesce(
        self, row: OutboxRow, message: OutgoingMessage, wait_s: float, channel: str, stats: DispatchStats
    ) -> None:
        """Fold a task card over the person's send limit into their pending digest (made, due when
        the limit allows, if there is none), in one transaction with marking the row `coalesced`."""
        link = await self._todo_link(row.recipient) if self._todo_link is not None else None
        entry = todo_digest.item(message)
        try:
            async with self._db.transaction() as session:
                digest = await self._pending_digest(session, row.recipient)
                grown = todo_digest.add(dict(digest.payload), entry) if digest is not None else None
                if digest is None or grown is None:
                    due = self._now() + timedelta(seconds=wait_s)
                    digest = OutboxRow.due_now(
                        kind=todo_digest.KIND,
                        recipient=row.recipient,
                        payload=todo_digest.payload([entry], link),
                        now=due,
                    )
                    session.add(digest)
                else:
                    digest.payload = grown
                await session.flush()
                note = f"coalesced into outbox #{digest.id} ({channel} send limit)"
                result = await session.execute(
                    update(OutboxRow)
                    .where(while_leased(OutboxRow, row))
                    .values(status="coalesced", last_error=note, sent_at=self._now())
                )
                if result.rowcount != 1:  # type: ignore[attr-defined]
                    raise _LeaseLost
        except _LeaseLost:
            logger.warning("outbox lease lost before the card was coalesced", extra={"outbox_id": row.id})
            return
        stats.coalesced += 1
        self._count("coalesced", channel)
        logger.info(
            "task card coalesced into the person's digest",
            extra={
                "outbox_id": row.id,
                "digest_id": digest.id,
                "recipient": row.recipient,
                "request_id": row.request_id,
                "task_id": row.task_id,
                "count": digest.payload.get("count"),
            },
        )

    @staticmethod
    async def _pending_digest(session: Any, recipient: str) -> OutboxRow | None:
        q = (
            select(OutboxRow)
            .where(
                col(OutboxRow.kind) == todo_digest.KIND,
                col(OutboxRow.recipient) == recipient,
                col(OutboxRow.status) == "pending",
            )
            .order_by(col(OutboxRow.id).desc())
            .limit(1)
            .with_for_update()
        )
        row: OutboxRow | None = (await session.execute(q)).scalars().first()
        return row

    async def _write(self, row: OutboxRow, **values: Any) -> bool:
        """Record the result, but only while our lease holds: a dispatcher whose lease ran out and
        was handed over must not turn a row another dispatcher delivered back into `pending` (a
        second send) or `dead`. False when the lease was lost."""
        async with self._db.transaction() as session:
            result = await session.execute(
                update(OutboxRow).where(while_leased(OutboxRow, row)).values(**values)
            )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            logger.warning("outbox lease lost before the result was written", extra={"outbox_id": row.id})
            return False
        return True

    async def seed_limits(self) -> None:
        """Before the first round: the sends of the last minute (from the database's send markers)
        count against the per-person limits, so a restart does not let a burst through."""
        if self._limits is None:
            return
        since = self._now() - timedelta(seconds=WINDOW_S)
        try:
            seeded = await self._limits.seed(await recent_sends(self._db, since=since))
        except Exception:
            logger.exception("send limits not seeded from the send markers")
            return
        if seeded:
            logger.info("send limits seeded from the last minute's sends", extra={"people": seeded})

    async def run_forever(self, stop: asyncio.Event, interval_s: float = 1.0) -> None:
        await self.seed_limits()
        while not stop.is_set():
            try:
                busy = (await self.run_once()).handled > 0
            except Exception:
                logger.exception("outbox dispatcher round failed")
                busy = False
            if not busy:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=interval_s)
                except TimeoutError:
                    pass
