"""DingTalk delivery: outbox messages as interactive cards (task cards, updated in place when
closed) and robot texts (everything else), idempotent per outbox id.

- `task_card`: createAndDeliver one card instance (outTrackId `oabot_<task>_v<version>`) into
  the assignee's robot chat. Where it went is written to `platform_cards` *before* the call
  (handle `sending`) and marked `delivered` after it, so a repeated hand-over skips a card
  already delivered, and a retry after a lost answer reuses the same outTrackId, which DingTalk
  treats as the same card (卡片幂等ID) rather than a second one.
- a manager's 督办 card (supervise / escalate carrying a card): the same, with its own
  outTrackId per manager (`oabot_<task>_m<hash>_v<version>`), since the assignee's card of the
  same task version is another instance.
- `card_closed`: PUT the card instance with status closed and the outcome (no buttons).
  Updating to the same values twice is harmless.
- `checkin_card` (a trip card): a robot action card (`trip_cards`) whose two buttons open the
  check-in page, 到达打卡 and 离开打卡. Robot messages cannot be edited, so a cancelled trip
  (`checkin_card_cancelled`) is said in a text; the card's links then refuse the cancelled trip.
- anything with a `text`: robot one-to-one message (oToMessages/batchSend, msgKey sampleText).
  A send marker per outbox id in the database (storage.send_marks) stops a second send when
  the dispatcher hands the same row over again, also after a restore. DingTalk has no
  duplicate check for robot messages, so texts are at least once: a crash after DingTalk
  accepted the text and before the marker is committed (one HTTP answer plus one small
  INSERT, milliseconds; `benchmarks/burst.py --crash-window` measures it) sends that text again
  once the row's 60 s lease has run out. Replies to accounts outside the directory (payload
  `account`) go out at most once per account per 10 minutes.
- Frequency limits (HTTP 429, QpsLimit/throttling codes, a person in
  `flowControlledStaffIdList`) raise a throttled DeliveryError: the row waits and keeps its
  attempts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import ColumnElement, select, update
from sqlmodel import col

from bot.platforms.dingtalk.cards import (
    closed_card_params,
    create_and_deliver_body,
    open_card_params,
    out_track_id,
    supervise_track_id,
    update_body,
)
from bot.platforms.dingtalk.client import DingTalkApiError, DingTalkClient
from bot.platforms.dingtalk.inbound import PLATFORM
from bot.platforms.dingtalk.trip_cards import trip_action_card
from bot.settings import DingTalkSettings
from notifications.compose import SUPERVISE_KINDS
from notifications.delivery import Delivery, DeliveryError, OutgoingMessage
from org.model import User
from storage.db import Database
from storage.kv import KeyValueStore, KVUnavailable
from storage.platform_models import CardRefRow
from storage.send_marks import already_sent, mark_sent

logger = logging.getLogger(__name__)

THROTTLED_WAIT_S = 60.0  # a frequency limit: try again after a minute
STRANGER_REPLY_EVERY_S = 10 * 60  # at most one "not in the directory" reply per account per 10 min
SENDING, DELIVERED = "sending", "delivered"
TRIP_CARD = "checkin_card"  # services.checkins' trip card


def _card_of(task_id: str, user_id: str) -> tuple[ColumnElement[bool], ...]:
    return (
        col(CardRefRow.platform) == PLATFORM,
        col(CardRefRow.task_id) == task_id,
        col(CardRefRow.user_id) == user_id,
    )


def _track_id(kind: str, task_id: str, version: int, user_id: str) -> str:
    """A task card's outTrackId, or a manager's 督办 card's (one instance per manager)."""
    if kind in SUPERVISE_KINDS:
        return supervise_track_id(task_id, version, user_id)
    return out_track_id(task_id, version)


class DingTalkDelivery(Delivery):
    name = "dingtalk"

    def __init__(
        self,
        client: DingTalkClient,
        db: Database,
        kv: KeyValueStore,
        settings: DingTalkSettings,
        now: Callable[[], datetime],
    ) -> None:
        self._client = client
        self._db = db
        self._kv = kv
        self._settings = settings
        self._now = now

    def reaches(self, user: User) -> bool:
        return bool(user.accounts.get(PLATFORM))

    async def deliver(self, message: OutgoingMessage, user: User) -> None:
        staff = user.accounts.get(PLATFORM)
        if not staff:
            raise DeliveryError(f"{user.id} has no DingTalk account", retryable=False)
        try:
            if (message.kind == "task_card" or message.kind in SUPERVISE_KINDS) and "card" in message.payload:
                await self._send_card(message, user, staff)
            elif message.kind == "card_closed":
                await self._close_card(message, user)
            elif message.kind == TRIP_CARD and "card" in message.payload:
                await self._send_trip_card(message, staff)
            elif message.payload.get("text") and message.payload.get("account"):
                await self._reply_to_stranger(message, staff)
            elif message.payload.get("text"):
                await self._send_text(message, staff)
            else:
                logger.info(
                    "nothing to send on dingtalk",
                    extra={"outbox_id": message.outbox_id, "kind": message.kind},
                )
        except DingTalkApiError as exc:
            throttled = THROTTLED_WAIT_S if is_frequency_limit(exc) else None
            raise DeliveryError(str(exc), retryable=exc.retryable, throttled_for_s=throttled) from exc

    # -- cards ---------------------------------------------------------------------------------
    async def _card_ref(self, task_id: str, user_id: str) -> CardRefRow | None:
        async with self._db.session() as s:
            q = select(CardRefRow).where(*_card_of(task_id, user_id))
            return (await s.execute(q)).scalars().first()

    async def _record(self, task_id: str, user: User, staff: str, track_id: str, handle: str) -> None:
        now = self._now()
        async with self._db.transaction() as s:
            q = select(CardRefRow).where(*_card_of(task_id, user.id))
            row = (await s.execute(q)).scalars().first()
            if row is None:
                s.add(
                    CardRefRow(
                        platform=PLATFORM,
                        task_id=task_id,
                        user_id=user.id,
                        account=staff,
                        card_id=track_id,
                        handle=handle,
                        handle_used=False,
                        created_at=now,
                        updated_at=now,
                    )
                )
            else:
                row.account, row.card_id, row.handle, row.handle_used, row.updated_at = (
                    staff,
                    track_id,
                    handle,
                    False,
                    now,
                )

    async def _send_card(self, message: OutgoingMessage, user: User, staff: str) -> None:
        task_id = str(message.payload.get("task_id") or message.task_id or "")
        version = int(message.payload.get("version") or 0)
        if not task_id:
            raise DeliveryError("task card without a task id", retryable=False)
        track = _track_id(message.kind, task_id, version, user.id)
        log = {"outbox_id": message.outbox_id, "task_id": task_id, "out_track_id": track, "staff_id": staff}
        ref = await self._card_ref(task_id, user.id)
        if ref is not None and ref.card_id == track and ref.handle == DELIVERED:
            logger.info("dingtalk card already delivered", extra=log)
            return
        if ref is None or ref.card_id != track:
            await self._record(task_id, user, staff, track, SENDING)
        params = open_card_params(message.payload["card"], task_id=task_id, version=version)
        body = create_and_deliver_body(
            template_id=self._settings.card_template_id,
            track_id=track,
            staff_id=staff,
            params=params,
            robot_code=self._client.robot_code,
            callback_type="HTTP" if self._settings.mode == "http" else "STREAM",
        )
        answer = await self._client.api("POST", "/v1.0/card/instances/createAndDeliver", body)
        result = answer.get("result")
        result = result if isinstance(result, dict) else {}
        failed = [
            r for r in result.get("deliverResults") or [] if isinstance(r, dict) and r.get("success") is False
        ]
        if answer.get("success") is False or failed:
            reason = "; ".join(str(r.get("errorMsg", "")) for r in failed) or str(answer)
            # The instance may exist but did not reach the chat (e.g. the person cannot see the robot).
            raise DeliveryError(f"card not delivered to {staff}: {reason}", retryable=False)
        async with self._db.transaction() as s:
            await s.execute(
                update(CardRefRow)
                .where(*_card_of(task_id, user.id))
                .values(handle=DELIVERED, updated_at=self._now())
            )
        logger.info("dingtalk card delivered", extra=log)

    async def _close_card(self, message: OutgoingMessage, user: User) -> None:
        task_id = str(message.payload.get("task_id") or message.task_id or "")
        ref = await self._card_ref(task_id, user.id) if task_id else None
        if ref is None:
            logger.info(
                "no dingtalk card to close", extra={"outbox_id": message.outbox_id, "task_id": task_id}
            )
            return
        if ref.handle == SENDING:
            # The card's own delivery has not finished yet; close it once it has.
            raise DeliveryError(f"card {ref.card_id} is still being delivered", retryable=True)
        outcome = str(message.payload.get("outcome") or "已处理")
        await self._client.api(
            "PUT",
            "/v1.0/card/instances",
            update_body(ref.card_id, closed_card_params(outcome, message.payload.get("card"))),
        )
        async with self._db.transaction() as s:
            await s.execute(
                update(CardRefRow)
                .where(col(CardRefRow.id) == ref.id)
                .values(handle_used=True, updated_at=self._now())
            )
        logger.info(
            "dingtalk card closed",
            extra={
                "outbox_id": message.outbox_id,
                "task_id": task_id,
                "out_track_id": ref.card_id,
                "outcome": outcome,
            },
        )

    # -- texts ---------------------------------------------------------------------------------
    async def _send_text(self, message: OutgoingMessage, staff: str) -> None:
        if await already_sent(self._db, outbox_id=message.outbox_id, channel=PLATFORM):
            logger.info("dingtalk text already sent", extra={"outbox_id": message.outbox_id})
            return
        await self.send_text(staff, message.text())
        await mark_sent(self._db, outbox_id=message.outbox_id, channel=PLATFORM, now=self._now())
        logger.info(
            "dingtalk text sent",
            extra={"outbox_id": message.outbox_id, "staff_id": staff, "kind": message.kind},
        )

    async def _send_trip_card(self, message: OutgoingMessage, staff: str) -> None:
        """A trip card as a robot action card with two link buttons (到达打卡 / 离开打卡), once
        per outbox id like a text."""
        if await already_sent(self._db, outbox_id=message.outbox_id, channel=PLATFORM):
            logger.info("dingtalk trip card already sent", extra={"outbox_id": message.outbox_id})
            return
        msg_key, params = trip_action_card(message.payload)
        await self._batch_send(staff, msg_key, params)
        await mark_sent(self._db, outbox_id=message.outbox_id, channel=PLATFORM, now=self._now())
        logger.info("dingtalk trip card sent", extra={"outbox_id": message.outbox_id, "staff_id": staff})

    async def _reply_to_stranger(self, message: OutgoingMessage, staff: str) -> None:
        """A reply to an account outside the directory: at most one per account per 10 minutes,
        so a stranger cannot keep the robot talking."""
        key = f"dingtalk:stranger:{staff}"
        try:
            if not await self._kv.set_if_absent(key, str(message.outbox_id), STRANGER_REPLY_EVERY_S):
                if await self._kv.get(key) != str(message.outbox_id):
                    logger.info(
                        "reply to unknown dingtalk account skipped",
                        extra={"outbox_id": message.outbox_id, "staff_id": staff},
                    )
                    return
        except KVUnavailable:
            pass
        await self._send_text(message, staff)

    async def send_text(self, staff: str, text: str) -> None:
        """One robot text to one person; raise DingTalkApiError."""
        await self._batch_send(staff, "sampleText", {"content": text})

    async def _batch_send(self, staff: str, msg_key: str, params: dict[str, str]) -> None:
        body = {
            "robotCode": self._client.robot_code,
            "userIds": [staff],
            "msgKey": msg_key,
            "msgParam": json.dumps(params, ensure_ascii=False),
        }
        answer = await self._client.api("POST", "/v1.0/robot/oToMessages/batchSend", body)
        if staff in (answer.get("invalidStaffIdList") or []):
            raise DingTalkApiError(f"{staff} is not a valid staff id for this robot", retryable=False)
        if staff in (answer.get("flowControlledStaffIdList") or []):
            raise DingTalkApiError(
                f"messages to {staff} are flow-controlled", code=FLOW_CONTROLLED, retryable=True
            )


FLOW_CONTROLLED = "flowControlled"
_FREQUENCY_HINTS = ("qpslimit", "throttl", "ratelimit", "flowcontrol")
_FREQUENCY_ERRCODES = frozenset({"90018", "90002"})  # oapi: rate limited (app / all apps on the API)


def is_frequency_limit(exc: DingTalkApiError) -> bool:
    """DingTalk said "too many": HTTP 429, a QpsLimit/throttling code, oapi 90018/90002, or the
    person in flowControlledStaffIdList."""
    code = (exc.code or "").lower()
    return exc.status == 429 or code in _FREQUENCY_ERRCODES or any(hint in code for hint in _FREQUENCY_HINTS)
