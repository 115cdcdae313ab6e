"""Where each task card went on WeCom (storage.platform_models.CardRefRow), and the latest
response code that can update it: the one message/send returned, replaced by the one each click
brings. A response code works once, so it is marked used after an update.

Queries are keyword-only functions taking the session; the caller owns the transaction. A card's
row is written before message/send (its task_id is deterministic), so a click always finds it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Update, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.platform_models import CardRefRow

PLATFORM = "wecom"
CLICK_TTL_S = 72 * 3600  # a response code works for 72 hours


async def card_ref(session: AsyncSession, *, task_id: str, user_id: str) -> CardRefRow | None:
    q = select(CardRefRow).where(
        CardRefRow.platform == PLATFORM,  # type: ignore[arg-type]
        CardRefRow.task_id == task_id,  # type: ignore[arg-type]
        CardRefRow.user_id == user_id,  # type: ignore[arg-type]
    )
    return (await session.execute(q)).scalar_one_or_none()


async def save_sent_card(
    session: AsyncSession,
    *,
    task_id: str,
    user_id: str,
    account: str,
    card_id: str,
    handle: str,
    now: datetime,
) -> None:
    """Record a sent card; a newer card for the same task and person (a new version) replaces it."""
    row = await card_ref(session, task_id=task_id, user_id=user_id)
    if row is None:
        session.add(
            CardRefRow(
                platform=PLATFORM,
                task_id=task_id,
                user_id=user_id,
                account=account,
                card_id=card_id,
                handle=handle,
                handle_used=False,
                created_at=now,
                updated_at=now,
            )
        )
        return
    row.account, row.card_id, row.handle, row.handle_used, row.updated_at = (
        account,
        card_id,
        handle,
        False,
        now,
    )


async def record_send_code(session: AsyncSession, *, card_id: str, response_code: str, now: datetime) -> int:
    """Keep the response code message/send returned on the card's reference, written before the
    send with no code; a click that arrived meanwhile brought a newer one, which is kept."""
    result = await session.execute(
        update(CardRefRow)
        .where(
            CardRefRow.platform == PLATFORM,  # type: ignore[arg-type]
            CardRefRow.card_id == card_id,  # type: ignore[arg-type]
            or_(CardRefRow.handle.is_(None), CardRefRow.handle == ""),  # type: ignore[union-attr,arg-type]
        )
        .values(handle=response_code, handle_used=False, updated_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def click_update(*, card_id: str, account: str, response_code: str, now: datetime) -> Update:
    """The UPDATE that keeps a click's fresh response code on the card it came from (only the
    card's own recipient: a click claiming someone else's card changes nothing). The callback
    runs it in the inbox's transaction that stores the click."""
    return (
        update(CardRefRow)
        .where(
            CardRefRow.platform == PLATFORM,  # type: ignore[arg-type]
            CardRefRow.card_id == card_id,  # type: ignore[arg-type]
            CardRefRow.account == account,  # type: ignore[arg-type]
            or_(CardRefRow.handle.is_(None), CardRefRow.handle != response_code),  # type: ignore[union-attr,arg-type]
        )
        .values(handle=response_code, handle_used=False, updated_at=now)
    )


async def record_click(
    session: AsyncSession, *, card_id: str, account: str, response_code: str, now: datetime
) -> int:
    """`click_update` in `session`. Returns rows changed."""
    result = await session.execute(
        click_update(card_id=card_id, account=account, response_code=response_code, now=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def mark_handle_used(session: AsyncSession, *, row_id: int, handle: str, now: datetime) -> None:
    """The code was spent (or refused); a click arriving meanwhile with a new code is kept."""
    await session.execute(
        update(CardRefRow)
        .where(CardRefRow.id == row_id, CardRefRow.handle == handle)  # type: ignore[arg-type]
        .values(handle_used=True, updated_at=now)
    )
