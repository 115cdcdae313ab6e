"""The durable inbox: platform callbacks are verified, stored here and acknowledged at once;
a worker processes them afterwards, so a slow database or platform API never delays an ack
and a crash never loses a tap.

`accept` is the only thing a callback does after verifying: an INSERT whose unique
(platform, event_id) is the dedupe (inbox rows are kept, so it remembers every event ever stored,
across replicas, restarts and restores; no key-value round trip is needed on the hot path). The
INSERT is a group commit (`storage.inbox_writer`): the rows of every callback that arrived within
a couple of milliseconds go in one statement and one transaction (`ON CONFLICT DO NOTHING
RETURNING` says which are new, repeats within a batch included), and each callback is answered
once its row is committed. A card click's fresh response code is written in the same transaction
(`accept(..., also=...)`). Processing the event (a decision, a reply) is the worker's job
(`run_forever`, in the `worker` or `all` role), never the request's.

A correctly signed callback can still carry what no database should store (a NUL character, a
lone surrogate): the platform must get its ack, or it retries forever, but the event must not
become a row that fails five times and dies. `accept` refuses such an event instead, and
`refuse` records why: a log line, the `callback_refusals` counter and an inbox row with status
`refused` (never claimed by the worker) that keeps a printable summary of what came in.
Refusals of callbacks that are not signed (or stale, or replayed) are only logged and counted
(`count_refusal`): writing a row for each would let anyone fill the table.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Executable, update
from sqlalchemy.exc import IntegrityError

from handlers.events import Event, event_from_dict, event_kind, event_to_dict
from storage.db import Database
from storage.inbox_writer import InboxWriter
from storage.kv import KeyValueStore, KVUnavailable
from storage.leases import claim_due, keep_lease, while_leased
from storage.platform_models import InboxRow

logger = logging.getLogger(__name__)

DEDUPE_TTL_S = 15 * 60
LEASE = timedelta(seconds=60)
REFUSED = "refused"  # an inbox status the worker never claims
_SUMMARY_CHARS = 200
INTAKE_FIRST_S = 0.05  # how long the worker lets queued callbacks be stored before each event
# While callbacks keep arriving (one within INTAKE_BUSY_S), the worker pauses after each event
# INTAKE_SHARE times as long as the event took (at most INTAKE_PAUSE_MAX_S): in the `all` role it
# then takes at most 1/(1+INTAKE_SHARE) of the event loop from intake, and never stops.
INTAKE_BUSY_S = 0.05
INTAKE_SHARE = 3.0
INTAKE_PAUSE_MAX_S = 0.5

# Told about every refused callback: (platform, reason). The app counts them in a metric.
RefusalCounter = Callable[[str, str], None]


def _unstorable_text(value: str) -> str | None:
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate"
    return None


def unstorable(event: Event) -> str | None:
    """Why a verified event cannot be stored and processed (a field and its problem), or None."""
    return _unstorable_payload(event_to_dict(event))


def _unstorable_payload(payload: Mapping[str, object]) -> str | None:
    for name, value in payload.items():
        values = value.values() if isinstance(value, Mapping) else (value,)
        for v in values:
            problem = _unstorable_text(v) if isinstance(v, str) else None
            if problem is not None:
                return f"{name} {problem}"
    return None


def printable(value: object, limit: int = _SUMMARY_CHARS) -> str:
    """`value` as text any database and log can hold: NULs and surrogates escaped, cut short."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ignore_refusal(platform: str, reason: str) -> None:
    return None


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
        on_refusal: RefusalCounter = _ignore_refusal,
        writer: InboxWriter | None = None,
        lease: timedelta = LEASE,
    ) -> None:
        self._db = db
        self.writer = writer or InboxWriter(db)
        self._kv = kv
        self._process = process
        self._now = now
        self._max_attempts = max_attempts
        self._on_refusal = on_refusal
        self._lease = lease
        self.wakeup = asyncio.Event()
        self.paused_s = 0.0  # how long the worker gave way to arriving callbacks (tests, benchmarks)

    def count_refusal(self, platform: str, reason: str) -> None:
        """Count a refused callback that is not worth a row (unsigned, stale, replayed)."""
        self._on_refusal(platform, reason)

    async def refuse(
        self, platform: str, reason: str, *, reference: str, detail: str, summary: Mapping[str, Any]
    ) -> bool:
        """Record that a signed callback was acknowledged but its event refused; False when the
        same refusal (same `reference`) was recorded before. Changes nothing else."""
        self._on_refusal(platform, reason)
        digest = hashlib.sha256(printable(reference, 10_000).encode()).hexdigest()[:40]
        event_id = f"refused:{reason[:40]}:{digest}"
        logger.warning(
            "%s callback refused: %s",
            platform,
            printable(detail),
            extra={"platform": platform, "reason": reason, "event_id": event_id},
        )
        now = self._now()
        payload = {
            "schema_version": 1,
            "reason": reason,
            "detail": printable(detail),
            "summary": {printable(k, 40): printable(v) for k, v in list(summary.items())[:20]},
        }
        try:
            async with self._db.transaction() as s:
                s.add(
                    InboxRow(
                        platform=platform,
                        event_id=event_id,
                        kind=REFUSED,
                        payload=payload,
                        status=REFUSED,
                        attempts=0,
                        received_at=now,
                        next_attempt_at=now,
                        processed_at=now,
                        last_error=printable(detail),
                    )
                )
        except IntegrityError:
            return False
        return True

    async def close(self) -> None:
        """Store the callbacks still queued for the writer, then stop it."""
        await self.writer.close()

    async def accept(self, event: Event, *, also: Sequence[Executable] = ()) -> bool:
        """Store a verified event once, with the statements in `also` in the same transaction.
        False when it is a repeat delivery (already stored) or an event no database can hold
        (refused and recorded instead: see `refuse`).

        The database's unique key alone decides what is a repeat, in the same commit that stores
        the row: a process killed before the commit leaves nothing (the platform's retry is
        stored), after it a row (the retry is refused as a repeat); nothing is remembered
        anywhere else that could disagree with the database.
        """
        payload = event_to_dict(event)  # built once: checked, then stored
        problem = _unstorable_payload(payload)
        if problem is not None:
            await self.refuse(
                event.sender.platform,
                "unstorable",
                reference=event.event_id,
                detail=f"{type(event).__name__}: {problem}",
                summary={k: v for k, v in payload.items() if k != "sender"}
                | {"account": event.sender.account},
            )
            return False
        now = self._now()
        row = {
            "platform": event.sender.platform,
            "event_id": event.event_id[:200],
            "kind": event_kind(event),
            "payload": payload,
            "status": "pending",
            "attempts": 0,
            "received_at": now,
            "next_attempt_at": now,
        }
        try:
            if not await self.writer.insert(row, also):
                return False
        except IntegrityError:
            return False
        self.wakeup.set()
        return True

    async def claim(self, batch: int = 20) -> list[InboxRow]:
        return await claim_due(
            self._db, InboxRow, now=self._now(), batch=batch, lease=self._lease, working="working"
        )

    async def run_once(self) -> int:
        rows = await self.claim()
        for row in rows:
            error: str | None = None
            # In the `all` role intake shares this event loop: callbacks being stored go first.
            await self.writer.wait_quiet(INTAKE_FIRST_S)
            if not await keep_lease(self._db, InboxRow, row, now=self._now(), lease=self._lease):
                logger.warning(
                    "inbox lease handed over before processing; skipped", extra={"inbox_id": row.id}
                )
                continue
            started = asyncio.get_running_loop().time()
            try:
                await self._process(event_from_dict(dict(row.payload)))
            except Exception as exc:
                logger.exception("inbox event failed", extra={"inbox_id": row.id, "event_id": row.event_id})
                error = f"{type(exc).__name__}: {exc}"
            await self._finish(row, error)
            await self._let_intake_in(started)
        return len(rows)

    async def _let_intake_in(self, started: float) -> None:
        """While callbacks are arriving, pause in proportion to the event just done (see
        INTAKE_SHARE): acks stay quick in the `all` role, and the backlog still moves."""
        if self.writer.busy(INTAKE_BUSY_S):
            pause = min((asyncio.get_running_loop().time() - started) * INTAKE_SHARE, INTAKE_PAUSE_MAX_S)
            self.paused_s += pause
            await asyncio.sleep(pause)

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
