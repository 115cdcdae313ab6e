"""The message that stands for task cards held back by a person's send limit: "您有 N 条新待办",
one line per task, and the recipient's own link to their task list. Pure: the dispatcher keeps
the payload on one pending outbox row per person and adds to it until it goes out.
"""

from __future__ import annotations

from typing import Any

from notifications.delivery import OutgoingMessage
from notifications.wording import TODO_DIGEST_HEAD, TODO_DIGEST_TAIL

KIND = "todo_digest"


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
        "subtitle": str(card.get("subtitle") or p.get("title") or ""),
        "initiator": str(card.get("initiator") or ""),
    }


def payload(items: list[dict[str, Any]], link: str | None) -> dict[str, Any]:
    return {"items": items, "count": len(items), "text": text(items), "link": link}


def add(existing: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The digest with one more task; a card coalesced twice (handed over again) is listed once."""
    items = [i for i in existing.get("items") or [] if isinstance(i, dict)]
    if any(i.get("outbox_id") == new["outbox_id"] for i in items):
        return existing
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
