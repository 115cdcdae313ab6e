"""The outbox dispatcher: claims due outbox rows, hands them to deliveries, records the result.

At-least-once hand-over with idempotent deliveries gives exactly-once messages:
- rows are claimed in a short transaction (PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite's
  single writer), marked `sending` with a lease, so replicas never work on the same row;
- a crash mid-send leaves the lease to expire and the row is handed over again;
- failures back off exponentially; after `max_attempts` the row is `dead` and logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update

from notifications.delivery import Delivery, DeliveryError, OutgoingMessage
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
            total.sent += s.sent
            total.failed += s.failed
            total.dead += s.dead
            if s.sent + s.failed + s.dead == 0:
                break
        return total

    async def _send(self, row: OutboxRow, org: Org | None, stats: DispatchStats) -> None:
        assert row.id is not None
        msg = OutgoingMessage(
            outbox_id=row.id,
            kind=row.kind,
            recipient=row.recipient,
            request_id=row.request_id,
            task_id=row.task_id,
            payload=dict(row.payload),
        )
        user = org.user(row.recipient) if org else None
        channel: str | None = None  # someone outside the directory: only their platform's delivery
        account = msg.payload.get("account")
        if org is not None and user is None and account and msg.payload.get("platform"):
            channel = str(msg.payload["platform"])
            user = User(
                id=row.recipient,
                name=str(account),
                department="",
                accounts={channel: str(account)},
                active=False,
            )
        error: str | None = None
        retryable = True
        if org is None:
            error = "the organisation directory could not be loaded"
        elif user is None:
            error, retryable = f"recipient {row.recipient} is not in the org directory", False
        else:
            targets = [d for d in self._deliveries if d.reaches(user) and channel in (None, d.name)]
            if not targets:
                error, retryable = f"no channel reaches {row.recipient}", False
            for d in targets:
                try:
                    await d.deliver(msg, user)
                except DeliveryError as exc:
                    error, retryable = f"{d.name}: {exc}", exc.retryable
                except Exception as exc:  # a bug or an unexpected network error: retry later
                    logger.exception("delivery crashed", extra={"outbox_id": row.id, "channel": d.name})
                    error = f"{d.name}: {type(exc).__name__}: {exc}"
        now = self._now()
        # Only while our lease holds: a dispatcher whose lease ran out and was handed over must not
        # turn a row another dispatcher delivered back into `pending` (a second send) or `dead`.
        ours = update(OutboxRow).where(while_leased(OutboxRow, row))
        async with self._db.transaction() as session:
            if error is None:
                res = await session.execute(ours.values(status="sent", sent_at=now, last_error=None))
                if res.rowcount != 1:  # type: ignore[attr-defined]
                    logger.warning(
                        "outbox lease lost before the result was written", extra={"outbox_id": row.id}
                    )
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
                return
            attempts = row.attempts + 1
            if not retryable or attempts >= self._max_attempts:
                res = await session.execute(ours.values(status="dead", attempts=attempts, last_error=error))
                if res.rowcount != 1:  # type: ignore[attr-defined]
                    logger.warning(
                        "outbox lease lost before the result was written", extra={"outbox_id": row.id}
                    )
                    return
                stats.dead += 1
                logger.error(
                    "outbox message dead",
                    extra={"outbox_id": row.id, "error": error, "request_id": row.request_id},
                )
                return
            delay = min(self._max, self._base * (2 ** (attempts - 1)))
            res = await session.execute(
                ours.values(
                    status="pending",
                    attempts=attempts,
                    last_error=error,
                    next_attempt_at=now + timedelta(seconds=delay),
                )
            )
            if res.rowcount != 1:  # type: ignore[attr-defined]
                logger.warning("outbox lease lost before the result was written", extra={"outbox_id": row.id})
                return
            stats.failed += 1
            logger.warning(
                "outbox send failed; will retry",
                extra={"outbox_id": row.id, "error": error, "retry_in_s": delay},
            )

    async def run_forever(self, stop: asyncio.Event, interval_s: float = 1.0) -> None:
        while not stop.is_set():
            try:
                stats = await self.run_once()
                busy = stats.sent + stats.failed + stats.dead > 0
            except Exception:
                logger.exception("outbox dispatcher round failed")
                busy = False
            if not busy:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=interval_s)
                except TimeoutError:
                    pass
