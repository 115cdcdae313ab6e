"""Neutral task cards as DingTalk interactive cards (互动卡片), and card taps back as neutral data.

One card instance per task card sent: its `outTrackId` is `oabot_<task id>_v<version>`, so a
tap names the task and the version the person saw, and sending the same card again (after a
lost answer) reuses the same instance instead of making a second one.

The card template built at card.dingtalk.com reads the variables below (all strings, as the
card API requires; `docs/platforms-dingtalk.md` lists them for the admin). Its buttons use the
"回传请求" action with the parameter `action` = approve | reject | acknowledge (a manager's
督办 card: supervise_urge | take_over); its 更多操作 button is a "跳转链接" action to `more_url`
(the request page), and a 督办 card's 转交 one to `reassign_url` (the person picker). A decided card keeps only that
link button and says the outcome where it said 等待您处理.

Pure: no I/O, no approval rules. What a card says was decided in `notifications.compose`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OUT_TRACK_PREFIX = "oabot_"
LINK_ACTIONS = ("reassign",)  # link buttons besides 更多操作/查看 (more_*): the 督办 card's 转交
SUPERVISE_MARK = "_m"  # a 督办 card's outTrackId: oabot_<task>_m<recipient hash>_v<version>
CALLBACK_ROUTE_KEY = "oabot_card"  # the HTTP-mode callbackRouteKey registered for /callbacks/dingtalk/card
ACTIONS = ("approve", "reject", "acknowledge", "supervise_urge", "take_over", "notice_ack")

# Every variable the card template may use, with what it holds (documented for admins).
TEMPLATE_VARIABLES: dict[str, str] = {
    "title": "template name, e.g. 用章申请",
    "urgency": "一般 / 重要 / 紧急",
    "subtitle": "the request's title",
    "initiator": "who submitted it",
    "step": "the step waiting for this person",
    "acting_for_label": "e.g. 代孙丽审批 when acting as a delegate, else empty",
    "fields": "summary fields as Markdown lines (**label**：value)",
    "fields_json": "the same fields as a JSON array of {label, value}",
    "deadline": "due time, MM-DD HH:MM, or empty",
    "waiting": "e.g. 吴昊 于 11-23 10:00 提交，等待您处理",
    "link": "URL of the request page",
    "task_id": "the task id (informational)",
    "version": "the task version the card shows (informational)",
    "status": "pending while it can be acted on, closed afterwards",
    "outcome": "after the decision, e.g. 已同意 · 孙丽 · 11-23 10:05",
    "approve_label": "label of the approve button (同意 / 已交付 ...)",
    "show_approve": "true / false",
    "reject_label": "label of the reject button (驳回)",
    "show_reject": "true / false",
    "acknowledge_label": "label of the acknowledge button (已收到)",
    "show_acknowledge": "true / false",
    "more_label": "label of the link button that opens the request page (更多操作)",
    "more_url": "the request page, through the recipient's own link",
    "show_more": "true / false",
    "buttons_json": "the buttons as a JSON array of {action, label, style, url}",
    "supervise_urge_label": "督办 card: label of the 催办 button (回传请求, action supervise_urge)",
    "show_supervise_urge": "true / false",
    "take_over_label": "督办 card: label of the 代为处理 button (回传请求, action take_over)",
    "show_take_over": "true / false",
    "reassign_label": "督办 card: label of the 转交 link button",
    "reassign_url": "督办 card: the person picker page, through the manager's own link",
    "show_reassign": "true / false",
    "notice_ack_label": "notice card: label of the 已收到 button (回传请求, action notice_ack)",
    "show_notice_ack": "true / false",
}


class MalformedCardCallback(ValueError):
    """A verified card callback that does not name one of oabot's cards and a known button."""


@dataclass(frozen=True)
class CardTap:
    out_track_id: str
    task_id: str
    version: int
    staff_id: str
    action: str
    comment: str | None = None


def out_track_id(task_id: str, version: int) -> str:
    return f"{OUT_TRACK_PREFIX}{task_id}_v{version}"


def supervise_track_id(task_id: str, version: int, user_id: str) -> str:
    """A manager's 督办 card about a task version: one instance per manager, apart from the
    assignee's own card of the same version."""
    digest = hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:8]
    return f"{OUT_TRACK_PREFIX}{task_id}{SUPERVISE_MARK}{digest}_v{version}"


def parse_out_track_id(value: str) -> tuple[str, int]:
    if not value.startswith(OUT_TRACK_PREFIX):
        raise MalformedCardCallback(f"outTrackId {value!r} is not one of oabot's cards")
    task_id, sep, version = value[len(OUT_TRACK_PREFIX) :].rpartition("_v")
    if not sep or not task_id or not version.isdigit():
        raise MalformedCardCallback(f"outTrackId {value!r} has no task and version")
    task_id = re.sub(rf"{SUPERVISE_MARK}[0-9a-f]{{8}}$", "", task_id)  # a 督办 card names the same task
    return task_id, int(version)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _fields_markdown(fields: list[Mapping[str, Any]]) -> str:
    return "\n".join(f"**{_text(f.get('label'))}**：{_text(f.get('value'))}" for f in fields)


def _button_params(buttons: list[Mapping[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {"more_label": "", "more_url": "", "show_more": "false"}
    for action in ACTIONS:
        out[f"{action}_label"] = ""
        out[f"show_{action}"] = "false"
    for link in LINK_ACTIONS:
        out.update({f"{link}_label": "", f"{link}_url": "", f"show_{link}": "false"})
    for button in buttons:
        action = str(button.get("action", ""))
        if button.get("url") and action in LINK_ACTIONS:
            out.update(
                {
                    f"{action}_label": _text(button.get("label")),
                    f"{action}_url": _text(button["url"]),
                    f"show_{action}": "true",
                }
            )
        elif button.get("url"):
            out.update(more_label=_text(button.get("label")), more_url=_text(button["url"]), show_more="true")
        elif action in ACTIONS:
            out[f"{action}_label"] = _text(button.get("label"))
            out[f"show_{action}"] = "true"
    return out


def open_card_params(card: Mapping[str, Any], *, task_id: str, version: int) -> dict[str, str]:
    """The cardParamMap of a card waiting for a decision (every value a string)."""
    fields = [f for f in card.get("fields") or [] if isinstance(f, Mapping)]
    buttons = [b for b in card.get("buttons") or [] if isinstance(b, Mapping)]
    params: dict[str, Any] = {
        "title": card.get("title"),
        "urgency": card.get("urgency"),
        "subtitle": card.get("subtitle"),
        "initiator": card.get("initiator"),
        "step": card.get("step"),
        "acting_for_label": card.get("acting_for_label"),
        "fields": _fields_markdown(fields),
        "fields_json": [{"label": _text(f.get("label")), "value": _text(f.get("value"))} for f in fields],
        "deadline": card.get("deadline"),
        "waiting": card.get("waiting"),
        "link": card.get("link"),
        "task_id": task_id,
        "version": version,
        "status": "pending",
        "outcome": "",
        "buttons_json": [dict(b) for b in buttons],
        **_button_params(buttons),
    }
    return {key: _text(value) for key, value in params.items()}


def closed_card_params(outcome: str, card: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The keys that change when a card is closed: the outcome shown, no decision buttons; with
    the decided card (notifications.compose.closed_card) also its wording and its link button."""
    params = {"status": "closed", "outcome": outcome, "waiting": "", **_button_params([])}
    if card:
        buttons = [b for b in card.get("buttons") or [] if isinstance(b, Mapping)]
        params.update(waiting=_text(card.get("waiting")), **_button_params(buttons))
    return params


def create_and_deliver_body(
    *,
    template_id: str,
    track_id: str,
    staff_id: str,
    params: dict[str, str],
    robot_code: str,
    callback_type: str,
) -> dict[str, Any]:
    """POST /v1.0/card/instances/createAndDeliver: one instance into the person's robot chat."""
    body: dict[str, Any] = {
        "cardTemplateId": template_id,
        "outTrackId": track_id,
        "callbackType": callback_type,
        "cardData": {"cardParamMap": params},
        "openSpaceId": f"dtv1.card//IM_ROBOT.{staff_id}",
        "imRobotOpenSpaceModel": {"supportForward": False},
        "imRobotOpenDeliverModel": {"spaceType": "IM_ROBOT", "robotCode": robot_code},
        "userIdType": 1,
    }
    if callback_type == "HTTP":
        body["callbackRouteKey"] = CALLBACK_ROUTE_KEY
    return body


def update_body(track_id: str, params: dict[str, str]) -> dict[str, Any]:
    """PUT /v1.0/card/instances: change only the given keys of everyone's copy."""
    return {
        "outTrackId": track_id,
        "cardData": {"cardParamMap": params},
        "cardUpdateOptions": {"updateCardDataByKey": True, "updatePrivateDataByKey": False},
        "userIdType": 1,
    }


def _json_object(value: Any, what: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            decoded = json.loads(value) if value else {}
        except ValueError as exc:
            raise MalformedCardCallback(f"{what} is not JSON") from exc
        if isinstance(decoded, dict):
            return decoded
    raise MalformedCardCallback(f"{what} is not a JSON object")


def parse_card_callback(data: Mapping[str, Any]) -> CardTap:
    """A card callback's data (HTTP body after decryption, or the stream frame's data) as a tap."""
    track = data.get("outTrackId")
    staff = data.get("userId")
    if not isinstance(track, str) or not isinstance(staff, str) or not staff:
        raise MalformedCardCallback("outTrackId and userId are required")
    task_id, version = parse_out_track_id(track)
    content = _json_object(data.get("content"), "content")
    private = content.get("cardPrivateData")
    private = private if isinstance(private, dict) else {}
    params = private.get("params")
    params = params if isinstance(params, dict) else {}
    action = params.get("action")
    if action not in ACTIONS:
        # A template may name its buttons' components after the action instead.
        action_ids = private.get("actionIds")
        action = next((a for a in action_ids if a in ACTIONS), None) if isinstance(action_ids, list) else None
    if action is None:
        raise MalformedCardCallback("the callback names no known button action")
    comment = params.get("comment")
    return CardTap(
        out_track_id=track,
        task_id=task_id,
        version=version,
        staff_id=staff,
        action=str(action),
        comment=str(comment) if isinstance(comment, str) and comment.strip() else None,
    )
