"""Fit an outbox payload into one platform's size limits: long words are cut with "…", and the
link to the request page is always kept, so the whole text is one tap away.

Pure and the one place where messages are shortened for a platform (the dispatcher calls
`fit_payload` with the delivery's `Budget` before handing a message over; the platform card
modules then only map fields). Inputs are already bounded at the edges (comments 500 characters,
form texts per field kind), but a card repeats several of them, and the platforms refuse a
message that is too large rather than cut it (DingTalk answered a 1 MB card with 413 and the
approver never got it).

The numbers, and where they come from:
- WeCom (developer.work.weixin.qq.com, 发送应用消息 path/90236): a text message's `content` at
  most 2048 bytes; a markdown message's 4096 bytes; template_card `main_title.title` 26
  characters suggested, `sub_title_text` 112, a `horizontal_content_list` value 26.
- DingTalk (open.dingtalk.com, 机器人发送群聊消息 / 批量发送人与机器人会话中机器人消息):
  `msgParam` at most 15,000 bytes. Interactive cards (互动卡片) document no per-variable limit;
  we keep a card's variables together under the same 15,000 bytes, and a summary value to 200
  characters (the phone shows a few lines of it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from notifications.wording import OPEN_LINK_LABEL

ELLIPSIS = "…"


@dataclass(frozen=True)
class Budget:
    """How much of a message one platform takes."""

    text_bytes: int  # a plain text message, the link line included (UTF-8 bytes)
    title_chars: int  # a card's title and its request title
    line_chars: int  # a card's other lines (waiting, acting for, subtitle)
    value_chars: int  # one summary field value on a card
    card_bytes: int  # all of a card's words together, as JSON (UTF-8 bytes)


BUDGETS: dict[str, Budget] = {
    "wecom": Budget(text_bytes=2048, title_chars=26, line_chars=112, value_chars=26, card_bytes=4096),
    "dingtalk": Budget(
        text_bytes=12_000, title_chars=100, line_chars=200, value_chars=200, card_bytes=12_000
    ),
}


def budget_for(channel: str) -> Budget | None:
    """The budget of a delivery channel; None (the console) takes a message as it is."""
    return BUDGETS.get(channel)


def clip_chars(text: str, most: int) -> str:
    """At most `most` characters, the cut marked with "…"."""
    return text if len(text) <= most else text[: max(most - 1, 0)] + ELLIPSIS


def clip_bytes(text: str, most: int) -> str:
    """At most `most` UTF-8 bytes without splitting a character, the cut marked with "…"."""
    data = text.encode("utf-8")
    if len(data) <= most:
        return text
    room = max(most - len(ELLIPSIS.encode("utf-8")), 0)
    return data[:room].decode("utf-8", "ignore") + ELLIPSIS


def fit_text(words: str, link: str | None, budget: Budget) -> str:
    """The words cut so that they and the link line after them fit in `budget.text_bytes`
    (the link is added by `OutgoingMessage.text()` when the words do not carry it)."""
    tail = f"\n{OPEN_LINK_LABEL}：{link}" if link else ""
    shown = words if not link or link in words else words + tail
    if len(shown.encode("utf-8")) <= budget.text_bytes:
        return words
    if link:
        words = words.replace(link, "").rstrip()  # the link goes last, whole
    return clip_bytes(words, budget.text_bytes - len(tail.encode("utf-8")))


def _size(card: dict[str, Any]) -> int:
    return len(json.dumps(card, ensure_ascii=False).encode("utf-8"))


def _with_values(card: dict[str, Any], most: int) -> dict[str, Any]:
    fields = [
        {**f, "value": clip_chars(str(f.get("value", "")), most)} if isinstance(f, dict) else f
        for f in card.get("fields") or []
    ]
    return {**card, "fields": fields}


def fit_card(card: dict[str, Any], budget: Budget) -> dict[str, Any]:
    """The card with each line cut to the budget, and its summary values shortened further
    until the whole card fits; the link and the buttons are kept as they are."""
    out = dict(card)
    if isinstance(out.get("title"), str):
        out["title"] = clip_chars(out["title"], budget.title_chars)
    for key in ("subtitle", "waiting", "acting_for_label", "outcome", "initiator", "step"):
        if isinstance(out.get(key), str):
            out[key] = clip_chars(out[key], budget.line_chars)
    most = budget.value_chars
    out = _with_values(out, most)
    while _size(out) > budget.card_bytes and most > 8:
        most //= 2
        out = _with_values(out, most)
    return out


def fit_payload(payload: dict[str, Any], budget: Budget | None) -> dict[str, Any]:
    """An outbox payload fitted to a platform: its text (keeping room for the link) and its card."""
    if budget is None:
        return payload
    out = dict(payload)
    link = payload.get("link") if isinstance(payload.get("link"), str) else None
    if isinstance(payload.get("text"), str):
        out["text"] = fit_text(payload["text"], link, budget)
    if isinstance(payload.get("card"), dict):
        out["card"] = fit_card(payload["card"], budget)
    return out
