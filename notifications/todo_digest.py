"""The message that stands for task cards held back by a person's send limit: "您有 N 条新待办",
one line per task, and the recipient's own link to their task list. Pure: the dispatcher keeps
the payload on the person's newest pending outbox row of this kind and adds to it until it goes
out (or is full: then a new one starts).
"""

from __future__ import annotations

from typing import Any

from notifications.delivery import OutgoingMessage
from notifications.fit import clip_chars
from notifications.wording import TODO_DIGEST_HEAD, TODO_DIGEST_TAIL

KIND = "todo_digest"
# A digest's words stay within this many UTF-8 bytes, so every listed task shows on the smallest
# platform (a WeCom text is 2048 bytes, the link line included); a task that would not fit starts
# the person's next digest.
MAX_TEXT_BYTES = 1700
SUBTITLE_CHARS = 20


def item(message: OutgoingMessage) -> dict[str, Any]:
    """What the digest says about one held-back task card."""
    p = message.payload
    card = p.get("card") if isinstance(p.get("card"), dict) else {}
    assert isinstance(card, dict)
    return {
        "outbox_id": message.outbox_id,
        "request_id": message.request_id,
        "task_id": message.task_id,
        "title": str(card.get("title") or ""),
        "subtitle": clip_chars(str(card.get("subtitle") or p.get("title") or ""), SUBTITLE_CHARS),
        "initiator": str(card.get("initiator") or ""),
    }


def payload(items: list[dict[str, Any]], link: str | None) -> dict[str, Any]:
    return {"items": items, "count": len(items), "text": text(items), "link": link}


def add(existing: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    """The digest with one more task; a card coalesced twice (handed over again) is listed once.
    None when the task would not fit: it goes on a new digest."""
    items = [i for i in existing.get("items") or [] if isinstance(i, dict)]
    if any(i.get("outbox_id") == new["outbox_id"] for i in items):
        return existing
    if len(text([*items, new]).encode()) > MAX_TEXT_BYTES:
        return None
    link = existing.get("link")
    return payload([*items, new], link if isinstance(link, str) else None)


def text(items: list[dict[str, Any]]) -> str:
    lines = [TODO_DIGEST_HEAD.format(count=len(items)) + "："]
    for n, i in enumerate(items, 1):
        who = f"{i['initiator']} " if i.get("initiator") else ""
        what = f"「{i['title']}」" if i.get("title") else ""
        lines.append(f"{n}. {who}{what}{i.get('subtitle') or ''}")
    lines.append(TODO_DIGEST_TAIL)
    return "\n".join(lines)
