"""Trip cards (field check-ins) as WeCom template cards: pure functions, no I/O.

A trip card (outbox `checkin_card`) is a `button_interaction` template card whose two buttons
are jump buttons (type 1) to the signed check-in page: 到达打卡 and 离开打卡. The card shows the
trip's fields in its horizontal list and the card's first line (the trip, or a reminder) as its
subtitle; the message carries no raw address. WeCom answers the send with a response code,
kept with the card (`card_refs`, under `trip_ref(trip id)`), so that when the trip is cancelled
the newest card is updated in place: its buttons are greyed out and read 已取消.

The card's task_id is `trip_<outbox id>_<h>` (`h`: a short hash of the recipient): unique per
card as WeCom requires, and never mistaken for an approval card (`oa_...`) when tapped.
"""

from __future__ import annotations

from typing import Any

from bot.platforms.wecom.cards import (
    BUTTON_TEXT_MAX,
    DESC_MAX,
    MAX_BUTTONS,
    MAX_HORIZONTAL,
    SUB_TITLE_MAX,
    TITLE_MAX,
    VALUE_MAX,
    clip,
    recipient_hash,
)

TRIP_SOURCE_DESC = "oabot 外勤"
_STYLE = {"primary": 1}


def trip_ref(trip_id: str) -> str:
    """The key a trip's card is kept under (in the card-ref table's task column)."""
    return f"trip:{trip_id}"


def trip_card_id(outbox_id: int, user_id: str) -> str:
    return f"trip_{outbox_id}_{recipient_hash(user_id)}"


def trip_template_card(payload: dict[str, Any], *, card_id: str) -> dict[str, Any]:
    """The neutral trip card payload (`services.checkins`) as a button_interaction card."""
    card = dict(payload.get("card") or {})
    text = str(payload.get("text") or "")
    buttons = [b for b in card.get("buttons") or [] if isinstance(b, dict) and b.get("url")]
    return {
        "card_type": "button_interaction",
        "source": {"desc": TRIP_SOURCE_DESC, "desc_color": 0},
        "main_title": {
            "title": clip(str(card.get("title") or "外勤打卡"), TITLE_MAX),
            "desc": clip(str(card.get("subtitle") or ""), DESC_MAX),
        },
        "sub_title_text": clip(text.split("\n")[0], SUB_TITLE_MAX),
        "horizontal_content_list": [
            {"keyname": str(f.get("label", "")), "value": clip(str(f.get("value", "")), VALUE_MAX)}
            for f in list(card.get("fields") or [])[:MAX_HORIZONTAL]
            if isinstance(f, dict)
        ],
        "button_list": [
            {
                "type": 1,
                "text": clip(str(b.get("label", "")), BUTTON_TEXT_MAX),
                "style": _STYLE.get(str(b.get("style")), 2),
                "url": str(b["url"]),
            }
            for b in buttons[:MAX_BUTTONS]
        ],
        "task_id": card_id,
    }


def cancelled_card_body(*, account: str, agent_id: int, response_code: str, outcome: str) -> dict[str, Any]:
    """update_template_card body: the trip card's buttons greyed out, reading `outcome` (已取消)."""
    return {
        "userids": [account],
        "agentid": agent_id,
        "response_code": response_code,
        "button": {"replace_name": outcome},
    }
