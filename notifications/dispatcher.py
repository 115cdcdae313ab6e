"""The outbox dispatcher: claims due outbox rows, hands them to deliveries, records the result.

At-least-once hand-over with idempotent deliveries gives exactly-once messages:
- rows are claimed in a short transaction (PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite's
  single writer), marked `sending` with a lease, so replicas never work on the same row;
- a crash mid-send leaves the lease to expire and the row is handed over again;
- failures back off exponentially; after `max_attempts` the row is `dead` and logged.

One row goes: hand it over (`_hand_over`: recipient, channels, deliveries; the outcome is a
`Failure` or None), then record it (`_mark_sent`, `_mark_dead` or `_reschedule`, each written
only while the lease holds). What a message says is `compose`'s business, how much of it a
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

from sqlalchemy import update

from notifications.delivery import Delivery, DeliveryError, OutgoingMessage
from notifications.fit import budget_for, fit_payload
from org.model import Org, User
from storage.approval_models import OutboxRow
from storage.db import Database
from storage.leases import claim_due, while_leased

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)


@dataclass
class DispatchStats:
    sent: int = 0
    failed: int = 0
    dead: int = 0

    @property
    def handled(self) -> int:
        return self.sent + self.failed + self.dead

    def add(self, other: DispatchStats) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.dead += other.dead


@dataclass(frozen=True)
class Failure:
    """Why a row was not delivered; `retryable` False sends it straight to `dead`."""

    error: str
    retryable: bool = True


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
    ) -> None:
        self._db = db
        self._deliveries = list(deliveries)
        self._org = org
        self._now = now
        self._batch = batch_size
        self._max_attempts = max_attempts
        self._base = base_backoff_s
        self._max = max_backoff_s

    async def claim(self) -> list[OutboxRow]:
        return await claim_due(
            self._db, OutboxRow, now=self._now(), batch=self._batch, lease=LEASE, working="sending"
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
        failure = await self._hand_over(_message(row), org)
        if failure is None:
            await self._mark_sent(row, stats)
        elif not failure.retryable or row.attempts + 1 >= self._max_attempts:
            await self._mark_dead(row, failure, stats)
        else:
            await self._reschedule(row, failure, stats)

    async def _hand_over(self, message: OutgoingMessage, org: Org | None) -> Failure | None:
        """Give the message to every delivery that reaches its recipient; the last failure, if any."""
        if org is None:
            return Failure("the organisation directory could not be loaded")
        user, channel = _recipient(org, message)
        if user is None:
            return Failure(f"recipient {message.recipient} is not in the org directory", retryable=False)
        targets = [d for d in self._deliveries if d.reaches(user) and channel in (None, d.name)]
        if not targets:
            return Failure(f"no channel reaches {message.recipient}", retryable=False)
        failure: Failure | None = None
        for delivery in targets:
            failure = await self._deliver(delivery, message, user) or failure
        return failure

    @staticmethod
    async def _deliver(delivery: Delivery, message: OutgoingMessage, user: User) -> Failure | None:
        fitted = replace(message, payload=fit_payload(message.payload, budget_for(delivery.name)))
        try:
            await delivery.deliver(fitted, user)
        except DeliveryError as exc:
            return Failure(f"{delivery.name}: {exc}", exc.retryable)
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

    async def run_forever(self, stop: asyncio.Event, interval_s: float = 1.0) -> None:
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
