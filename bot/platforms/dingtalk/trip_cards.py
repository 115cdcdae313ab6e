"""Trip cards (field check-ins) as DingTalk robot action cards: pure functions, no I/O.

The robot's one-to-one message (oToMessages/batchSend) with the built-in template
`sampleActionCard6`: a title, a Markdown text and two side-by-side link buttons
(`buttonTitle1`/`buttonUrl1`, `buttonTitle2`/`buttonUrl2`), here 到达打卡 and 离开打卡 opening the
signed check-in page in DingTalk's in-app browser. The text lists the trip's fields and carries
no address.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ACTION_CARD_KEY = "sampleActionCard6"


def _markdown(payload: Mapping[str, Any]) -> str:
    card = payload.get("card") or {}
    first = str(payload.get("text") or "").split("\n")[0]
    lines = [f"#### {card.get('title') or '外勤打卡'}", first]
    for f in card.get("fields") or []:
        if isinstance(f, Mapping):
            lines.append(f"- **{f.get('label', '')}**：{f.get('value', '')}")
    return "\n\n".join(line for line in lines if line)


def trip_action_card(payload: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """(msgKey, msgParam) of a trip card."""
    card = payload.get("card") or {}
    buttons = [b for b in card.get("buttons") or [] if isinstance(b, Mapping) and b.get("url")][:2]
    params = {"title": str(card.get("title") or "外勤打卡"), "text": _markdown(payload)}
    for i, b in enumerate(buttons, 1):
        params[f"buttonTitle{i}"] = str(b.get("label", ""))
        params[f"buttonUrl{i}"] = str(b["url"])
    return ACTION_CARD_KEY, params
