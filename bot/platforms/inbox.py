"""The durable inbox: platform callbacks are verified, stored here and acknowledged at once;
a worker processes them afterwards, so a slow database or platform API never delays an ack
and a crash never loses a tap.

`accept` is the only thing a callback does after verifying: a fast dedupe in the key-value
store, then an INSERT whose unique (platform, event_id) stops retries that slip past it; the
dedupe key is written only once the row is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from handlers.events import Event, event_from_dict, event_kind, event_to_dict
from storage.db import Database
from storage.kv import KeyValueStore, KVUnavailable
from storage.leases import claim_due, while_leased
from storage.platform_models import InboxRow

logger = logging.getLogger(__name__)

DEDUPE_TTL_S = 15 * 60
LEASE = timedelta(seconds=60)


def dedupe_key(event: Event) -> str:
    return f"dedupe:{event.sender.platform}:{event.event_id}"


def kv_first_delivery(kv: KeyValueStore) -> Callable[[Event], Awaitable[bool]]:
    """The chat service's repeat check for events that skip the inbox (the console).

    Without the store it lets the event through: the engine's task-version check still refuses
    a second decision.
    """

    async def first_delivery(event: Event) -> bool:
        try:
            return await kv.set_if_absent(dedupe_key(event), "1", DEDUPE_TTL_S)
        except KVUnavailable:
            logger.warning(
                "dedupe store unavailable; relying on task versions", extra={"event_id": event.event_id}
            )
            return True

    return first_delivery


class Inbox:
    def __init__(
        self,
        db: Database,
        kv: KeyValueStore,
        process: Callable[[Event], Awaitable[object]],
        *,
        now: Callable[[], datetime],
        max_attempts: int = 5,
    ) -> None:
        self._db = db
        self._kv = kv
        self._process = process
        self._now = now
        self._max_attempts = max_attempts
        self.wakeup = asyncio.Event()

    async def accept(self, event: Event) -> bool:
        """Store a verified event once. False when it is a repeat delivery (already stored).

        The dedupe key is written only after the row is committed: a process killed between the
        two leaves a stored row (the unique key refuses the retry), never a key without a row
        (which would take the platform's retry for a repeat and lose the event).
        """
        key = dedupe_key(event)
        try:
            if await self._kv.get(key) is not None:
                return False
        except KVUnavailable:
            logger.warning("dedupe store unavailable; the inbox's unique key still stops repeats")
        now = self._now()
        try:
            async with self._db.transaction() as s:
                s.add(
                    InboxRow(
                        platform=event.sender.platform,
                        event_id=event.event_id[:200],
                        kind=event_kind(event),
                        payload=event_to_dict(event),
                        status="pending",
                        attempts=0,
                        received_at=now,
                        next_attempt_at=now,
                    )
                )
        except IntegrityError:
            return False
        with contextlib.suppress(KVUnavailable):
            await self._kv.set(key, "1", ttl_s=DEDUPE_TTL_S)
        self.wakeup.set()
        return True

    async def claim(self, batch: int = 20) -> list[InboxRow]:
        return await claim_due(
            self._db, InboxRow, now=self._now(), batch=batch, lease=LEASE, working="working"
        )

    async def run_once(self) -> int:
        rows = await self.claim()
        for row in rows:
            error: str | None = None
            try:
                await self._process(event_from_dict(dict(row.payload)))
            except Exception as exc:
                logger.exception("inbox event failed", extra={"inbox_id": row.id, "event_id": row.event_id})
                error = f"{type(exc).__name__}: {exc}"
            await self._finish(row, error)
        return len(rows)

    async def _finish(self, row: InboxRow, error: str | None) -> None:
        """Record the outcome, only while this worker still holds the row's lease."""
        now = self._now()
        if error is None:
            values: dict[str, object] = {"status": "done", "processed_at": now, "last_error": None}
        else:
            attempts = row.attempts + 1
            values = {
                "status": "dead" if attempts >= self._max_attempts else "pending",
                "attempts": attempts,
                "last_error": error,
                "next_attempt_at": now + timedelta(seconds=min(60, 2**attempts)),
            }
        async with self._db.transaction() as s:
            res = await s.execute(update(InboxRow).where(while_leased(InboxRow, row)).values(**values))
        if res.rowcount != 1:  # type: ignore[attr-defined]
            logger.warning("inbox lease lost before the result was written", extra={"inbox_id": row.id})

    async def drain(self, max_rounds: int = 100) -> int:
        total = 0
        for _ in range(max_rounds):
            n = await self.run_once()
            total += n
            if n == 0:
                break
        return total

    async def run_forever(self, stop: asyncio.Event, interval_s: float = 1.0) -> None:
        while not stop.is_set():
            try:
                busy = await self.run_once() > 0
            except Exception:
                logger.exception("inbox round failed")
                busy = False
            if not busy:
                self.wakeup.clear()
                waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wakeup.wait())]
                await asyncio.wait(waiters, timeout=interval_s, return_when=asyncio.FIRST_COMPLETED)
                for w in waiters:
                    w.cancel()
