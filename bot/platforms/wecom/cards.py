"""The neutral outbox payloads as WeCom JSON: task cards, their closed form, and texts.

Pure functions. The card says what `notifications.compose` decided; this module only fits it
into WeCom's `template_card` of type `button_interaction` (send: developer.work.weixin.qq.com
document path/90236; update: path/94888) and into WeCom's limits: at most 6 horizontal items
and 6 buttons, a task_id of [0-9A-Za-z_-@] up to 128 bytes, and the suggested text lengths.
A button with a `url` (更多操作) is a jump button (type 1); the others call back (type 0). A
decided card is replaced by a `text_notice` card showing the outcome, which still opens the
request page when tapped.

The card's task_id is the round trip from a tap back to a task: `oa_<task id>_<version>_<h>`,
where `h` is a short hash of the recipient, so it is unique per (task, version, recipient) as
WeCom requires (a task_id may never be reused within the app) and a tap names the task and the
version the card showed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

SOURCE_DESC = "oabot 审批"
CARD_PREFIX = "oa"
MAX_HORIZONTAL = 6
MAX_BUTTONS = 6
MAX_TASK_ID_BYTES = 128
TEXT_MAX_BYTES = 2048  # WeCom's limit for a text message's content
# WeCom's suggested lengths (characters); longer texts are cut with an ellipsis.
TITLE_MAX = 26
DESC_MAX = 30
SUB_TITLE_MAX = 112
VALUE_MAX = 26
BUTTON_TEXT_MAX = 10

_TASK_ID_CHARS = re.compile(r"^[0-9A-Za-z_\-@]+$")
_PART_CHARS = re.compile(r"^[0-9A-Za-z\-@]+$")  # '_' separates the parts
# WeCom's button styles are 1..4 (default 1); primary is the filled one, danger the red one.
_STYLE = {"primary": 1, "default": 2, "danger": 3}


class CardIdError(ValueError):
    """A task or version that cannot be written into a WeCom task_id."""


@dataclass(frozen=True)
class CardKey:
    """What a card's task_id names: the oabot task and the version the card showed."""

    task_id: str
    version: int


def recipient_hash(user_id: str) -> str:
    return hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:8]


def card_task_id(task_id: str, version: int, user_id: str) -> str:
    """The WeCom task_id for one card: unique per (task, version, recipient)."""
    if not _PART_CHARS.match(task_id) or version < 0:
        raise CardIdError(f"task {task_id!r} version {version} cannot be a WeCom task_id")
    card_id = f"{CARD_PREFIX}_{task_id}_{version}_{recipient_hash(user_id)}"
    if len(card_id.encode("ascii")) > MAX_TASK_ID_BYTES:
        raise CardIdError(f"task id {task_id!r} is too long for a WeCom task_id")
    return card_id


def parse_card_task_id(card_id: str) -> CardKey | None:
    """The task and version in one of our task_ids; None for anything else (not ours)."""
    if len(card_id) > MAX_TASK_ID_BYTES or not _TASK_ID_CHARS.match(card_id):
        return None
    parts = card_id.split("_")
    if len(parts) != 4 or parts[0] != CARD_PREFIX or not parts[1] or not parts[2].isdigit():
        return None
    if not re.fullmatch(r"[0-9a-f]{8}", parts[3]):
        return None
    return CardKey(task_id=parts[1], version=int(parts[2]))


def clip(text: str, limit: int) -> str:
    text = str(text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clip_bytes(text: str, limit: int) -> str:
    """Cut to at most `limit` UTF-8 bytes without splitting a character."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    cut = data[: limit - len("…".encode())].decode("utf-8", "ignore")
    return cut + "…"


def _button(b: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "text": clip(str(b["label"]), BUTTON_TEXT_MAX),
        "style": _STYLE.get(str(b.get("style")), 2),
    }
    if b.get("url"):
        return {"type": 1, **out, "url": str(b["url"])}
    return {"type": 0, **out, "key": str(b["action"])}


def _buttons(buttons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # The positive action (primary style) first, whatever order the payload had.
    ordered = sorted(buttons, key=lambda b: 0 if b.get("style") == "primary" else 1)
    return [_button(b) for b in ordered[:MAX_BUTTONS]]


def _title(card: dict[str, Any]) -> dict[str, str]:
    urgency = card.get("urgency")
    title = f"{card.get('title', '')}·{urgency}" if urgency else str(card.get("title", ""))
    return {
        "title": clip(title, TITLE_MAX),
        # a notice is published (发布) by its author, a request submitted (提交) by its initiator
        "desc": clip(
            f"{card.get('initiator', '')} {'发布' if card.get('notice') else '提交'} · {card.get('step', '')}",
            DESC_MAX,
        ),
    }


def _subtitle(card: dict[str, Any]) -> str:
    lines = [str(card.get("subtitle") or "")]
    if card.get("acting_for_label"):
        lines.append(f"（{card['acting_for_label']}）")
    if card.get("waiting"):
        lines.append(str(card["waiting"]))
    return clip("\n".join(line for line in lines if line), SUB_TITLE_MAX)


def _horizontal(card: dict[str, Any]) -> list[dict[str, str]]:
    deadline = card.get("deadline")
    room = MAX_HORIZONTAL - (1 if deadline else 0)
    horizontal = [
        {"keyname": str(f["label"]), "value": clip(str(f["value"]), VALUE_MAX)}
        for f in list(card.get("fields") or [])[:room]
    ]
    if deadline:
        horizontal.append({"keyname": "截止", "value": str(deadline)})
    return horizontal


def task_card(card: dict[str, Any], *, card_id: str) -> dict[str, Any]:
    """A neutral task card (notifications.compose.task_card) as a button_interaction card."""
    out: dict[str, Any] = {
        "card_type": "button_interaction",
        "source": {"desc": SOURCE_DESC, "desc_color": 0},
        "main_title": _title(card),
        "sub_title_text": _subtitle(card),
        "horizontal_content_list": _horizontal(card),
        "button_list": _buttons(list(card.get("buttons") or [])),
        "task_id": card_id,
    }
    if card.get("link"):
        out["card_action"] = {"type": 1, "url": str(card["link"])}
    return out


def send_card_body(template_card: dict[str, Any], *, account: str, agent_id: int) -> dict[str, Any]:
    """message/send body for one person's card."""
    return {
        "touser": account,
        "msgtype": "template_card",
        "agentid": agent_id,
        "template_card": template_card,
    }


def closed_card(card: dict[str, Any]) -> dict[str, Any]:
    """A decided card (notifications.compose.closed_card) as a text_notice card: the outcome
    where it said 等待您处理, no buttons, and a tap still opens the request page."""
    return {
        "card_type": "text_notice",
        "source": {"desc": SOURCE_DESC, "desc_color": 0},
        "main_title": _title(card),
        "sub_title_text": _subtitle(card),
        "horizontal_content_list": _horizontal(card),
        "card_action": {"type": 1, "url": str(card.get("link") or "")},
    }


def close_card_body(
    *, account: str, agent_id: int, response_code: str, outcome: str, card: dict[str, Any] | None = None
) -> dict[str, Any]:
    """update_template_card body: the decided card in place of the old one when the payload
    carries it (and a link), else the buttons greyed out with the outcome on them."""
    body: dict[str, Any] = {"userids": [account], "agentid": agent_id, "response_code": response_code}
    if card and card.get("link"):
        body["template_card"] = closed_card(card)
    else:
        body["button"] = {"replace_name": outcome}
    return body


# WeCom drops a request body equal to one sent within the interval (enable_duplicate_check), so a
# notice resent after a crash between the send and its marker reaches the person once. Far longer
# than the outbox lease (60 s) plus the first back-offs; WeCom allows up to 4 hours.
DUPLICATE_CHECK_S = 1800


def text_body(text: str, *, account: str, agent_id: int, duplicate_check: bool = False) -> dict[str, Any]:
    """message/send body for a plain text (results, CCs, urges, chat replies). Notices ask for the
    duplicate check; chat answers do not (asking 待办 twice must answer twice)."""
    body: dict[str, Any] = {
        "touser": account,
        "msgtype": "text",
        "agentid": agent_id,
        "text": {"content": clip_bytes(text, TEXT_MAX_BYTES)},
    }
    if duplicate_check:
        body.update(enable_duplicate_check=1, duplicate_check_interval=DUPLICATE_CHECK_S)
    return body
