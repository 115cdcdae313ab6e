"""What an HTTP robot message must pass besides its sign: used once, recent, from its own person.

DingTalk's robot `sign` is an HMAC of the `timestamp` header only: it proves DingTalk made the
header pair at that moment, not that the body came with it. So a captured pair would carry any
body, and any `senderStaffId`, for as long as the timestamp passes. Three checks close that:

1. **Each (timestamp, sign) pair is accepted once.** The first request claims the pair in the
   key-value store (set-if-absent, kept for the whole validity window); a second one is refused
   (403 `replayed`). If storing the event then fails, the claim is released so DingTalk's own
   re-delivery still gets in. Two genuine messages stamped in the same millisecond share a pair:
   the second is refused and logged, a rare loss accepted for a closed replay hole.
2. **The window is DingTalk's documented one, not wider.** DingTalk's robot docs ("timestamp
   与系统当前时间戳如果相差1小时以上，则认为是非法的请求") call a request whose timestamp differs from
   the current time by more than one hour illegal; that hour is
   kept for the past (delivery delays). A timestamp in the future only comes from clock skew,
   so the future side is cut to five minutes.
3. **The sender is the person the conversation belongs to.** Nothing in the body is signed, so
   the body is checked against what oabot has seen before (trust on first use), with the org
   directory: `senderStaffId` must be an active member; the first 1:1 conversation
   (`conversationType` "1") a staff id speaks in binds that `conversationId` to it, and the
   first `senderId` (DingTalk's per-app user id) binds to it. A later message in that
   conversation naming someone else, or naming that person with another `senderId`, is refused.
   Group messages (type "2") have many members, so only the sender binding applies to them.
   (That `senderId` is one per person is an inference, not doc text: DingTalk calls it the
   "加密的发送者ID", the same encrypted dingtalkId that `atUsers` carry to @ someone in any group.
   If a tenant shows otherwise, the binding's refusals say so in the log and the metric.)

A refused sender is a signed request: it is acknowledged (so DingTalk does not retry) and
recorded by the caller through `Inbox.refuse`. The bindings live in the key-value store; when it
is down, checks 1 and 3 degrade to the directory check alone (logged), like the inbox's dedupe.
Pure decisions are `sender_problem`; `RobotGuard` adds the store.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.platforms.dingtalk.crypto import MAX_SKEW_MS, ROBOT_MAX_FUTURE_MS
from org.model import Org
from storage.kv import KeyValueStore, KVUnavailable

logger = logging.getLogger(__name__)

PLATFORM = "dingtalk"
# Held as long as the pair passes `crypto.verify_robot_sign`'s window, plus a minute.
SIGN_TTL_S = (MAX_SKEW_MS + ROBOT_MAX_FUTURE_MS) / 1000 + 60
BINDING_TTL_S = 400 * 24 * 3600
ONE_TO_ONE = "1"


@dataclass(frozen=True)
class SenderRefused:
    reason: str  # unknown_sender | sender_mismatch
    detail: str


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()[:32]


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    return value if isinstance(value, str) else ""


def sender_problem(
    data: Mapping[str, Any],
    org: Org | None,
    *,
    conversation_holder: str | None,
    bound_sender_id: str | None,
) -> SenderRefused | None:
    """Why this message's sender is not the conversation's own member; None when they are.

    `conversation_holder` is the staff id the 1:1 conversation was first seen with, and
    `bound_sender_id` the senderId the staff id was first seen with (None: not seen yet)."""
    staff = _text(data, "senderStaffId")
    user = org.user_by_account(PLATFORM, staff) if org is not None and staff else None
    if user is None or not user.active:
        return SenderRefused("unknown_sender", f"senderStaffId {staff[:64]!r} is not an active member")
    if _text(data, "conversationType") == ONE_TO_ONE and conversation_holder not in (None, staff):
        return SenderRefused(
            "sender_mismatch", f"this 1:1 conversation belongs to {conversation_holder!r}, not {staff!r}"
        )
    sender_id = _text(data, "senderId")
    if bound_sender_id is not None and sender_id and sender_id != bound_sender_id:
        return SenderRefused("sender_mismatch", f"{staff!r} wrote with another senderId")
    return None


class RobotGuard:
    """The key-value side of the checks: the one-time header pairs and the bindings."""

    def __init__(self, kv: KeyValueStore) -> None:
        self._kv = kv

    @staticmethod
    def _sign_key(timestamp: str, sign: str) -> str:
        return f"dingtalk:robot:sign:{timestamp}:{_digest(sign)}"

    async def claim(self, timestamp: str, sign: str) -> bool:
        """True the first time this header pair is seen (or when the store is down)."""
        try:
            return await self._kv.set_if_absent(self._sign_key(timestamp, sign), "1", SIGN_TTL_S)
        except KVUnavailable:
            logger.warning("robot sign replay check skipped: key-value store unavailable")
            return True

    async def release(self, timestamp: str, sign: str) -> None:
        """The event was not stored: let DingTalk's re-delivery of the same pair in."""
        try:
            await self._kv.delete(self._sign_key(timestamp, sign))
        except KVUnavailable:
            logger.warning("robot sign claim not released: key-value store unavailable")

    async def _bind(self, key: str, value: str) -> str | None:
        """The value first bound to `key` (binding `value` if there is none); None when unknown."""
        if await self._kv.set_if_absent(key, value, BINDING_TTL_S):
            return None
        return await self._kv.get(key)

    async def check_sender(self, data: Mapping[str, Any], org: Org | None) -> SenderRefused | None:
        staff = _text(data, "senderStaffId")
        first = sender_problem(data, org, conversation_holder=None, bound_sender_id=None)
        if first is not None:
            return first  # not a member: nothing is bound to a stranger's message
        conversation = _text(data, "conversationId")
        sender_id = _text(data, "senderId")
        try:
            holder = (
                await self._bind(f"dingtalk:robot:conv:{_digest(conversation)}", staff)
                if conversation and _text(data, "conversationType") == ONE_TO_ONE
                else None
            )
            bound = (
                await self._bind(f"dingtalk:robot:sender:{_digest(staff)}", sender_id) if sender_id else None
            )
        except KVUnavailable:
            logger.warning("robot sender bindings skipped: key-value store unavailable")
            return None
        return sender_problem(data, org, conversation_holder=holder, bound_sender_id=bound)
