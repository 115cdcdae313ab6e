"""Console delivery: the embedded default's chat, kept in the database so every replica and
the browser page see the same history. Idempotent per outbox id."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from notifications.delivery import Delivery, OutgoingMessage
from org.model import User
from storage.console_models import ConsoleMessageRow
from storage.db import Database


class ConsoleDelivery(Delivery):
    name = "console"

    def __init__(self, db: Database, now: Callable[[], datetime]) -> None:
        self._db = db
        self._now = now

    def reaches(self, user: User) -> bool:
        return True

    async def deliver(self, message: OutgoingMessage, user: User) -> None:
        try:
            await self._write(message, user)
        except IntegrityError:
            return  # a concurrent hand-over of the same outbox row already wrote it

    async def _write(self, message: OutgoingMessage, user: User) -> None:
        p = message.payload
        async with self._db.transaction() as session:
            existing = (
                await session.execute(
                    select(col(ConsoleMessageRow.id)).where(
                        col(ConsoleMessageRow.outbox_id) == message.outbox_id
                    )
                )
            ).scalar_one_or_none()
            if existing is not None:
                return
            if message.kind == "card_closed":
                # The card updates in place, like a WeCom update_template_card.
                await session.execute(
                    update(ConsoleMessageRow)
                    .where(col(ConsoleMessageRow.user_id) == user.id)
                    .where(col(ConsoleMessageRow.task_id) == message.task_id)
                    .where(col(ConsoleMessageRow.kind) == "task_card")
                    .where(col(ConsoleMessageRow.closed).is_(False))
                    .values(closed=True, outcome=p.get("outcome"))
                )
                text = ""
            elif message.kind == "checkin_card_cancelled":
                # The trip's cards update in place (已取消, no buttons); the note follows as a text.
                await session.execute(
                    update(ConsoleMessageRow)
                    .where(col(ConsoleMessageRow.user_id) == user.id)
                    .where(col(ConsoleMessageRow.request_id) == message.request_id)
                    .where(col(ConsoleMessageRow.kind) == "checkin_card")
                    .values(closed=True, outcome=p.get("outcome"))
                )
                text = str(p.get("text", ""))
            elif message.kind == "task_card":
                card = p.get("card", {})
                text = f"{card.get('title', '')}：{card.get('subtitle', '')}"
            else:
                text = str(p.get("text", ""))
            session.add(
                ConsoleMessageRow(
                    user_id=user.id,
                    outbox_id=message.outbox_id,
                    direction="out",
                    kind=message.kind,
                    request_id=message.request_id,
                    task_id=message.task_id,
                    text=text,
                    payload=p,
                    closed=message.kind == "card_closed",
                    outcome=p.get("outcome"),
                    created_at=self._now(),
                )
            )
