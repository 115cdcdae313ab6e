"""WeCom delivery: outbox messages as WeCom app messages.

- task_card, and a manager's 督办 card (supervise / escalate with a card: 催办, 代为处理 call
  back, 转交 and 查看 jump) → message/send of a `button_interaction` template card; where it went and the
  response code WeCom returned are kept (CardRefRow) so the card can be closed in place later;
- card_closed → update_template_card with the latest unused response code (the send's, or the
  newest click's), replacing the card by the decided one (or, for a payload without it, greying
  the buttons out with the outcome); when there is no usable code, or WeCom refuses it, the
  outcome goes out as a text instead;
- checkin_card → a trip card (`trip_cards`: jump buttons 到达打卡 / 离开打卡), kept like a task
  card; checkin_card_cancelled → that card's buttons updated to 已取消, and the note as a text;
- everything else (result, cc, approved_notice, urge, text) → a text message; a reply to an
  account outside the directory (payload `account`) at most once per account per 10 minutes.

Idempotent per outbox id: a message handed over again after a crash is not sent twice.
- A card's CardRefRow is written *before* message/send (its task_id is deterministic), so a
  dispatcher killed mid-send leaves the reference behind and the card is still closed after the
  decision; the resend WeCom refuses with 40099 (task_id exists) counts as delivered.
- Every other kind: a send marker in the database (storage.send_marks), written once the send
  succeeded, so a restored backup and its markers agree. A crash between the send and the marker
  would repeat the message; notices ask WeCom's duplicate check (same body within 30 minutes is
  dropped), chat answers accept that window (at least once).
- Frequency limits (45009/45011/45033) raise a throttled DeliveryError: the row waits a minute
  and keeps its attempts.
Never holds a database transaction open while calling WeCom.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from bot.platforms.wecom import card_refs
from bot.platforms.wecom.cards import (
    CardIdError,
    card_task_id,
    close_card_body,
    send_card_body,
    task_card,
    text_body,
)
from bot.platforms.wecom.client import FREQUENCY_ERRCODES, WeComApiError, WeComClient
from bot.platforms.wecom.trip_cards import cancelled_card_body, trip_card_id, trip_ref, trip_template_card
from notifications import todo_digest
from notifications.compose import SUPERVISE_KINDS
from notifications.delivery import Delivery, DeliveryError, OutgoingMessage
from org.model import User
from storage.db import Database
from storage.kv import KeyValueStore, KVUnavailable
from storage.send_marks import already_sent, mark_sent

logger = logging.getLogger(__name__)

PLATFORM = "wecom"
STRANGER_REPLY_EVERY_S = 10 * 60
TRIP_CARD, TRIP_CANCELLED = "checkin_card", "checkin_card_cancelled"  # services.checkins' kinds
TASK_ID_EXISTS = 40099  # message/send: a template card with this task_id was already sent
THROTTLED_WAIT_S = 60.0  # WeCom's per-minute limits: try again once the minute has passed
# No duplicate check: answers to what someone typed (asking 待办 twice answers twice), and task
# digests (two digests of look-alike requests can read the same, and both must arrive).
CHAT_ANSWER_KINDS = frozenset({"text", todo_digest.KIND})


class WeComDelivery(Delivery):
    name = PLATFORM

    def __init__(
        self, client: WeComClient, db: Database, kv: KeyValueStore, now: Callable[[], datetime]
    ) -> None:
        self._client = client
        self._db = db
        self._kv = kv
        self._now = now

    def reaches(self, user: User) -> bool:
        return bool(user.accounts.get(PLATFORM))

    async def deliver(self, message: OutgoingMessage, user: User) -> None:
        account = user.accounts.get(PLATFORM)
        if not account:
            raise DeliveryError(f"{user.id} has no WeCom account", retryable=False)
        ids = {
            "outbox_id": message.outbox_id,
            "kind": message.kind,
            "recipient": user.id,
            "account": account,
            "request_id": message.request_id,
            "task_id": message.task_id,
        }
        if await already_sent(self._db, outbox_id=message.outbox_id, channel=PLATFORM):
            logger.info("wecom message already sent; not sending again", extra=ids)
            return
        try:
            if message.kind == "task_card" or (message.kind in SUPERVISE_KINDS and "card" in message.payload):
                await self._send_card(message, user, account)
            elif message.kind == "card_closed":
                await self._close_card(message, user, account)
            elif message.kind == TRIP_CARD:
                await self._send_trip_card(message, user, account)
            elif message.kind == TRIP_CANCELLED:
                await self._cancel_trip_card(message, user, account)
            elif message.payload.get("account"):
                await self._reply_to_stranger(message, account)
            else:
                await self._send_text(
                    message.text(), account, duplicate_check=message.kind not in CHAT_ANSWER_KINDS
                )
        except WeComApiError as exc:
            throttled = THROTTLED_WAIT_S if exc.errcode in FREQUENCY_ERRCODES else None
            raise DeliveryError(
                f"{exc.path}: {exc}", retryable=exc.retryable, throttled_for_s=throttled
            ) from exc
        await mark_sent(self._db, outbox_id=message.outbox_id, channel=PLATFORM, now=self._now())
        logger.info("wecom message sent", extra=ids)

    # -- kinds -------------------------------------------------------------------------------
    async def _send_card(self, message: OutgoingMessage, user: User, account: str) -> None:
        p = message.payload
        task_id = str(p.get("task_id") or message.task_id or "")
        try:
            card_id = card_task_id(task_id, int(p["version"]), user.id)
        except (CardIdError, KeyError, TypeError, ValueError) as exc:
            raise DeliveryError(f"task card payload unusable: {exc}", retryable=False) from exc
        async with self._db.session() as s:
            ref = await card_refs.card_ref(s, task_id=task_id, user_id=user.id)
        log = {"outbox_id": message.outbox_id, "card_id": card_id, "task_id": task_id}
        if ref is not None and ref.card_id == card_id and ref.handle:
            logger.info("wecom card already sent", extra=log)
            return
        if ref is None or ref.card_id != card_id:
            await self._save_ref(task_id, user, account, card_id, handle="")
        body = send_card_body(
            task_card(dict(p.get("card") or {}), card_id=card_id),
            account=account,
            agent_id=self._client.agent_id,
        )
        try:
            answer = await self._client.send_message(body)
        except WeComApiError as exc:
            if exc.errcode != TASK_ID_EXISTS:
                raise
            # Sent before a crash (or by another hand-over): the card is there, its reference kept;
            # a click brings a fresh response code to update it with, else the outcome goes as text.
            logger.info("wecom card was already sent (task_id exists)", extra=log)
            return
        self._check_recipient(answer, account)
        code = str(answer.get("response_code") or "")
        if code:
            async with self._db.transaction() as s:
                await card_refs.record_send_code(s, card_id=card_id, response_code=code, now=self._now())

    async def _save_ref(self, task_id: str, user: User, account: str, card_id: str, *, handle: str) -> None:
        try:
            async with self._db.transaction() as s:
                await card_refs.save_sent_card(
                    s,
                    task_id=task_id,
                    user_id=user.id,
                    account=account,
                    card_id=card_id,
                    handle=handle,
                    now=self._now(),
                )
        except IntegrityError:
            # Another hand-over of the same row recorded it first.
            logger.info("wecom card recorded concurrently", extra={"card_id": card_id, "task_id": task_id})

    async def _close_card(self, message: OutgoingMessage, user: User, account: str) -> None:
        p = message.payload
        task_id = str(p.get("task_id") or message.task_id or "")
        outcome = str(p.get("outcome") or "已处理")
        async with self._db.session() as s:
            ref = await card_refs.card_ref(s, task_id=task_id, user_id=user.id)
        if ref is None:
            logger.info(
                "no wecom card to close",
                extra={"outbox_id": message.outbox_id, "task_id": task_id, "recipient": user.id},
            )
            return
        assert ref.id is not None
        if ref.handle and not ref.handle_used:
            body = close_card_body(
                account=account,
                agent_id=self._client.agent_id,
                response_code=ref.handle,
                outcome=outcome,
                card=dict(p.get("card") or {}),
            )
            try:
                await self._client.update_template_card(body)
            except WeComApiError as exc:
                if exc.retryable:
                    raise
                logger.warning(
                    "wecom refused the card update; sending the outcome as text",
                    extra={
                        "outbox_id": message.outbox_id,
                        "task_id": task_id,
                        "card_id": ref.card_id,
                        "errcode": exc.errcode,
                    },
                )
                await self._spend(ref.id, ref.handle)
            else:
                await self._spend(ref.id, ref.handle)
                return
        await self._send_text(closed_text(p, outcome), account)

    async def _send_trip_card(self, message: OutgoingMessage, user: User, account: str) -> None:
        """A trip card with its 到达打卡 / 离开打卡 jump buttons; kept so a cancellation can update it."""
        trip_id = str(message.payload.get("trip_id") or "")
        card_id = trip_card_id(message.outbox_id, user.id)
        async with self._db.session() as s:
            ref = await card_refs.card_ref(s, task_id=trip_ref(trip_id), user_id=user.id)
        if ref is not None and ref.card_id == card_id:
            logger.info("wecom trip card already sent", extra={"outbox_id": message.outbox_id})
            return
        body = send_card_body(
            trip_template_card(message.payload, card_id=card_id),
            account=account,
            agent_id=self._client.agent_id,
        )
        try:
            answer = await self._client.send_message(body)
        except WeComApiError as exc:
            if exc.errcode != TASK_ID_EXISTS:
                raise
            logger.info("wecom trip card was already sent (task_id exists)", extra={"card_id": card_id})
            return
        self._check_recipient(answer, account)
        if not trip_id:
            return
        try:
            async with self._db.transaction() as s:
                await card_refs.save_sent_card(
                    s,
                    task_id=trip_ref(trip_id),
                    user_id=user.id,
                    account=account,
                    card_id=card_id,
                    handle=str(answer.get("response_code") or ""),
                    now=self._now(),
                )
        except IntegrityError:
            logger.info("wecom trip card recorded concurrently", extra={"card_id": card_id})

    async def _cancel_trip_card(self, message: OutgoingMessage, user: User, account: str) -> None:
        """The trip was cancelled: its newest card's buttons read 已取消 (when WeCom still takes
        the card's response code), and the traveller gets the note saying so."""
        p = message.payload
        async with self._db.session() as s:
            ref = await card_refs.card_ref(s, task_id=trip_ref(str(p.get("trip_id") or "")), user_id=user.id)
        if ref is not None and ref.id is not None and ref.handle and not ref.handle_used:
            body = cancelled_card_body(
                account=account,
                agent_id=self._client.agent_id,
                response_code=ref.handle,
                outcome=str(p.get("outcome") or "已取消"),
            )
            try:
                await self._client.update_template_card(body)
            except WeComApiError as exc:
                if exc.retryable:
                    raise
                logger.warning(
                    "wecom refused the trip card update",
                    extra={"outbox_id": message.outbox_id, "card_id": ref.card_id, "errcode": exc.errcode},
                )
            await self._spend(ref.id, ref.handle)
        await self._send_text(message.text(), account)

    async def _send_text(self, text: str, account: str, *, duplicate_check: bool = True) -> None:
        if not text:
            return
        answer = await self._client.send_message(
            text_body(text, account=account, agent_id=self._client.agent_id, duplicate_check=duplicate_check)
        )
        self._check_recipient(answer, account)

    async def _reply_to_stranger(self, message: OutgoingMessage, account: str) -> None:
        """The reply to an account outside the directory: at most one per account per 10 minutes,
        so someone outside the company cannot keep the app talking."""
        key = f"wecom:stranger:{account}"
        try:
            if not await self._kv.set_if_absent(key, str(message.outbox_id), STRANGER_REPLY_EVERY_S):
                if await self._kv.get(key) != str(message.outbox_id):
                    logger.info(
                        "reply to an unknown wecom account skipped",
                        extra={"outbox_id": message.outbox_id, "account": account},
                    )
                    return
        except KVUnavailable:
            pass
        await self._send_text(str(message.payload.get("text") or ""), account, duplicate_check=False)

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _check_recipient(answer: dict[str, Any], account: str) -> None:
        invalid = str(answer.get("invaliduser") or "")
        if account in invalid.split("|"):
            raise DeliveryError(f"WeCom does not know the account {account!r} (invaliduser)", retryable=False)

    async def _spend(self, row_id: int, handle: str) -> None:
        async with self._db.transaction() as s:
            await card_refs.mark_handle_used(s, row_id=row_id, handle=handle, now=self._now())


def closed_text(payload: dict[str, Any], outcome: str) -> str:
    """The outcome of a card that could not be updated in place, as a message of its own."""
    title = str(payload.get("title") or "")
    return f"审批「{title}」{outcome}" if title else f"审批{outcome}"
