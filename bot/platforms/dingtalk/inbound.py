"""Verified DingTalk payloads (card callbacks, robot messages) as neutral `handlers.events`.

Shared by the HTTP routes and the stream handlers. Event ids decide what counts as "the same
callback": a card tap's id is the card, the person, the button and the platform's delivery id
(the stream frame's messageId, or the HTTP request's timestamp + nonce), so a redelivery of one
callback is dropped by the inbox while a second tap becomes its own event and is answered
已处理 by the engine's version check. A robot message's id is its msgId.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.platforms.dingtalk.cards import parse_card_callback
from handlers.events import CardAction, Sender, TextMessage

PLATFORM = "dingtalk"
_MAX_ID = 190  # the inbox keeps 200 characters of an event id


def _bounded(event_id: str) -> str:
    if len(event_id) <= _MAX_ID:
        return event_id
    digest = hashlib.sha256(event_id.encode("utf-8", "backslashreplace")).hexdigest()[:40]
    return event_id[:120] + ":" + digest


def card_action(data: Mapping[str, Any], *, delivery_id: str, at: datetime) -> CardAction:
    """Raise `MalformedCardCallback` when the data is not a tap on one of oabot's cards."""
    tap = parse_card_callback(data)
    return CardAction(
        sender=Sender(PLATFORM, tap.staff_id),
        event_id=_bounded(f"card:{tap.out_track_id}:{tap.staff_id}:{tap.action}:{delivery_id}"),
        task_id=tap.task_id,
        version=tap.version,
        action=tap.action,
        comment=tap.comment,
        at=at,
    )


def robot_text(data: Mapping[str, Any], *, at: datetime) -> TextMessage | None:
    """A robot message (HTTP body or stream data) as text; None for what oabot does not read
    (pictures, files, senders without a staff id such as external contacts)."""
    msg_id = data.get("msgId")
    staff = data.get("senderStaffId")
    if not isinstance(msg_id, str) or not msg_id or not isinstance(staff, str) or not staff:
        return None
    kind = data.get("msgtype")
    text: str | None = None
    if kind == "text" and isinstance(data.get("text"), Mapping):
        text = str(data["text"].get("content") or "")
    elif kind == "richText" and isinstance(data.get("content"), Mapping):
        parts = data["content"].get("richText")
        parts = parts if isinstance(parts, list) else []
        text = "".join(str(p["text"]) for p in parts if isinstance(p, Mapping) and "text" in p)
    if text is None or not text.strip():
        return None
    return TextMessage(
        sender=Sender(PLATFORM, staff), event_id=_bounded(f"msg:{msg_id}"), text=text.strip(), at=at
    )


# -- contact events (通讯录事件) --------------------------------------------------------------
PERSON_EVENTS = frozenset({"user_add_org", "user_modify_org", "user_leave_org"})
DEPARTMENT_EVENTS = frozenset({"org_dept_create", "org_dept_modify", "org_dept_remove"})


def contact_rereads(data: Mapping[str, Any], *, delivery_id: str) -> list[tuple[str, str, str, str]] | None:
    """(scope, id, event, key) for each person (`UserId`; `userId` on the stream) or department
    (`DeptId` / `deptId`) a contact event names, to be re-read from the directory; None when it is not a contact event."""
    event = str(data.get("EventType") or "")
    if event in PERSON_EVENTS:
        scope, ids = "person", data.get("UserId", data.get("userId"))
    elif event in DEPARTMENT_EVENTS:
        scope, ids = "department", data.get("DeptId", data.get("deptId"))
    else:
        return None
    if not isinstance(ids, list):
        ids = [ids] if ids else []
    found = [str(i) for i in ids if isinstance(i, (str, int)) and str(i)]
    if scope == "department":
        found = [i for i in found if i.isdigit()]
    return [(scope, i, event, _bounded(f"{event}:{i}:{delivery_id}")[:80]) for i in dict.fromkeys(found)]
