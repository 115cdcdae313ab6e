"""Send markers: which outbox message a channel already delivered (storage.send_models).

In the database the outbox lives in, so a restore brings back markers and rows together; a
Redis kept across the restore no longer makes pending rows look sent.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from storage.approval_models import OutboxRow
from storage.db import Database
from storage.send_models import OutboxSendRow


async def already_sent(db: Database, *, outbox_id: int, channel: str) -> bool:
    async with db.session() as s:
        q = select(col(OutboxSendRow.id)).where(
            col(OutboxSendRow.outbox_id) == outbox_id, col(OutboxSendRow.channel) == channel
        )
        return (await s.execute(q)).first() is not None


async def mark_sent(db: Database, *, outbox_id: int, channel: str, now: datetime) -> None:
    """Record the delivery; a marker another hand-over wrote first is the same fact."""
    try:
        async with db.transaction() as s:
            s.add(OutboxSendRow(outbox_id=outbox_id, channel=channel[:16], sent_at=now))
    except IntegrityError:
        pass


async def recent_sends(db: Database, *, since: datetime) -> list[tuple[str, str, datetime]]:
    """(channel, recipient, sent at) of every delivery marked since `since`, oldest first: what
    the per-person send limits counted before a restart that lost an in-process store."""
    async with db.session() as s:
        q = (
            select(col(OutboxSendRow.channel), col(OutboxRow.recipient), col(OutboxSendRow.sent_at))
            .join(OutboxRow, col(OutboxRow.id) == col(OutboxSendRow.outbox_id))
            .where(col(OutboxSendRow.sent_at) >= since)
            .order_by(col(OutboxSendRow.sent_at))
        )
        return [(str(c), str(r), at) for c, r, at in (await s.execute(q)).all()]
