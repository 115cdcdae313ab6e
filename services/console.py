"""The console's chat history, as the console pages need it.

The console plays each demo user's phone. What that phone has received is written by the
console delivery (`notifications.console`); this service reads it back for the chat page and
records what the user typed or shared, so the page shows both sides of the conversation.
It returns typed views, never rows, and decides nothing about approvals or check-ins: the
typed text itself goes on to the chat handlers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from storage.console_models import ConsoleMessageRow
from storage.db import Database

# The chat page shows the latest messages only; older ones stay in the table.
HISTORY_LIMIT = 200
CARD_CLOSED = "card_closed"  # an update to an earlier card, not a message of its own


@dataclass(frozen=True)
class ConsoleMessage:
    """One message on a simulated phone: `direction` is "in" (typed by the user) or "out"."""

    id: int
    direction: str
    kind: str
    text: str
    payload: dict[str, Any]
    closed: bool
    outcome: str | None
    created_at: datetime


class ConsoleService:
    def __init__(self, db: Database, now: Callable[[], datetime]) -> None:
        self._db = db
        self._now = now

    async def history(self, user_id: str, *, limit: int = HISTORY_LIMIT) -> list[ConsoleMessage]:
        """The user's latest messages, oldest first (card updates are folded into their cards)."""
        query = (
            select(ConsoleMessageRow)
            .where(col(ConsoleMessageRow.user_id) == user_id)
            .where(col(ConsoleMessageRow.kind) != CARD_CLOSED)
            .order_by(col(ConsoleMessageRow.id).desc())
            .limit(limit)
        )
        async with self._db.session() as session:
            rows = (await session.execute(query)).scalars().all()
        return [_message(row) for row in reversed(rows)]

    async def record_incoming(self, user_id: str, text: str, *, kind: str = "text") -> None:
        """What the user typed (or a location they shared), shown on their side of the chat."""
        async with self._db.transaction() as session:
            session.add(
                ConsoleMessageRow(
                    user_id=user_id,
                    direction="in",
                    kind=kind,
                    text=text,
                    payload={},
                    created_at=self._now(),
                )
            )


def _message(row: ConsoleMessageRow) -> ConsoleMessage:
    assert row.id is not None  # loaded rows always have their key
    return ConsoleMessage(
        id=row.id,
        direction=row.direction,
        kind=row.kind,
        text=row.text,
        payload=row.payload,
        closed=row.closed,
        outcome=row.outcome,
        created_at=row.created_at,
    )
