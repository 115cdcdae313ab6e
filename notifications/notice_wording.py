"""What notices say: labels of their codes, the audience in words, and the notice card.

A notice card has the task card's shape (`notifications.compose.task_card`), so the WeCom,
DingTalk and console deliveries send it and later close it in place (`card_closed`) unchanged.
A restricted item's card shows its title only. Pure: no I/O; it decides nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from notices.model import (
    Audience,
    Confidentiality,
    Notice,
    NoticeKind,
    NoticeStatus,
    ReceiptState,
    card_task_id,
)
from notifications.compose import closed_card
from org.model import Org

KIND_LABEL = {
    NoticeKind.NOTICE: "通知",
    NoticeKind.ANNOUNCEMENT: "公告",
    NoticeKind.MEETING: "会议通知",
    NoticeKind.POLL: "调查",
}
CONFIDENTIALITY_LABEL = {
    Confidentiality.PUBLIC: "公开",
    Confidentiality.INTERNAL: "内部",
    Confidentiality.SECRET: "秘密",
    Confidentiality.CONFIDENTIAL: "机密",
    Confidentiality.TOP_SECRET: "绝密",
}
STATUS_LABEL = {
    NoticeStatus.PENDING_APPROVAL: "待办公室审核",
    NoticeStatus.PUBLISHED: "已发布",
    NoticeStatus.REJECTED: "未通过审核",
    NoticeStatus.RECALLED: "已收回",
}
RECEIPT_LABEL = {
    ReceiptState.SENT: "未读",
    ReceiptState.OPENED: "已读未确认",
    ReceiptState.ACKNOWLEDGED: "已收到",
    ReceiptState.DEFAULTED: "默认已收到",
}
CHANNEL_LABEL = {
    "web": "网页",
    "api": "接口",
    "console": "控制台",
    "wecom": "企业微信",
    "dingtalk": "钉钉",
    "system": "系统",
}

ACK_LABEL = "已收到"
OPEN_LABEL = "查看"
# What a closed notice card says instead of its buttons.
OUTCOME_ACKNOWLEDGED = "已收到"
OUTCOME_DEFAULTED = "默认已收到"
OUTCOME_RECALLED = "已收回"


def local(at: datetime | None, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%m-%d %H:%M") if at else "—"


def audience_text(org: Org, audience: Audience) -> str:
    """An audience in words: 全体人员、办公室（含下级部门）、职级 3、角色 hr_manager、张三."""
    parts: list[str] = []
    if audience.everyone:
        parts.append("全体人员")
    for pick in audience.departments:
        dept = org.department(pick.id)
        name = dept.name if dept else pick.id
        parts.append(f"{name}（含下级部门）" if pick.with_sub and org.sub_departments(pick.id) else name)
    if audience.levels:
        parts.append("职级 " + "、".join(str(v) for v in sorted(audience.levels)))
    parts += [f"角色 {r}" for r in audience.roles]
    parts += [org.display_name(p) for p in audience.people]
    return "、".join(parts) or "—"


def notice_buttons(*, link: str, kind: NoticeKind = NoticeKind.NOTICE) -> list[dict[str, str]]:
    """已收到 calls back (`notice_ack`); 查看 opens the notice page at the recipient's own `link`.
    A meeting's card answers the 回执 instead: 参加 and 请假 call back and are recorded at once,
    不参加 calls back and is answered with the 回执 page (a reason is needed there). A poll's card
    opens the notice page, where the ballot is (voting counts as 已收到)."""
    view = {"action": "open", "label": OPEN_LABEL, "style": "default", "url": link}
    if kind == NoticeKind.MEETING:
        return [
            {"action": "rsvp_attend", "label": "参加", "style": "primary"},
            {"action": "rsvp_leave", "label": "请假", "style": "default"},
            {"action": "rsvp_decline", "label": "不参加", "style": "default"},
            view,
        ]
    if kind == NoticeKind.POLL:
        return [{**view, "label": "去投票", "style": "primary"}]
    return [{"action": "notice_ack", "label": ACK_LABEL, "style": "primary"}, view]


_ASKS = {
    NoticeKind.MEETING: ("请回执", "请点「参加」「请假」或「不参加」回执"),
    NoticeKind.POLL: ("请投票", "请打开后投票"),
}


def notice_card(notice: Notice, *, org: Org, tz: ZoneInfo, link: str, restricted: bool) -> dict[str, Any]:
    """A recipient's card, shaped like a task card; a restricted or password-protected item
    shows its title only."""
    fields: list[dict[str, str]] = []
    if not restricted and not notice.has_password:
        if notice.meeting is not None:
            fields.append({"label": "时间", "value": local(notice.meeting.starts_at, tz)})
            fields.append({"label": "地点", "value": notice.meeting.place or "—"})
        summary = " ".join(notice.body.split())
        if summary:
            fields.append({"label": "内容", "value": summary[:60] + ("…" if len(summary) > 60 else "")})
    else:
        fields.append({"label": "密级", "value": CONFIDENTIALITY_LABEL[notice.confidentiality]})
    return {
        "title": KIND_LABEL[notice.kind],
        "urgency": "",  # notices have no urgency; the key keeps the task card shape
        "subtitle": notice.title,
        "initiator": org.display_name(notice.author),
        "step": _ASKS.get(notice.kind, ("请确认收到", ""))[0],
        "acting_for": None,
        "acting_for_label": None,
        "fields": fields,
        "deadline": local(notice.ack_deadline, tz) if notice.ack_deadline else None,
        "waiting": f"{org.display_name(notice.author)} 于 {local(notice.published_at, tz)} 发布，"
        + _ASKS.get(notice.kind, ("", "请阅读后点「已收到」"))[1],
        "buttons": notice_buttons(link=link, kind=notice.kind),
        "link": link,
        "notice": True,
    }


def urge_text(notice: Notice, *, author_name: str) -> str:
    return f"【催办】{author_name} 提醒您确认收到{KIND_LABEL[notice.kind]}「{notice.title}」，请打开查看后点「已收到」"


def rejected_text(notice: Notice, *, reason: str | None) -> str:
    text = f"您的{KIND_LABEL[notice.kind]}「{notice.title}」未通过办公室审核，没有发出"
    return text + (f"。原因：{reason}" if reason else "。")


def published_text(notice: Notice, *, recipients: int) -> str:
    return f"您的{KIND_LABEL[notice.kind]}「{notice.title}」已通过审核并发布，共 {recipients} 人"


def openers_text(org: Org, openers: list[tuple[str, datetime]], tz: ZoneInfo) -> str:
    return "、".join(f"{org.display_name(p)}（{local(at, tz)}）" for p, at in openers)


NOTICE_CARD_VERSION = 1  # a notice card is sent once per person and never re-versioned


def notice_card_message(
    notice: Notice,
    *,
    card_no: int,
    org: Org,
    tz: ZoneInfo,
    link: str,
    restricted: bool,
    outcome: str | None = None,
) -> tuple[str, str, dict[str, Any]]:
    """(outbox kind, task id, payload) of a person's notice card: new (`task_card`), or updated
    in place to `outcome` (`card_closed`, only its link button left). The one shape both notice
    services send, so a card reads the same whoever sends or closes it."""
    card = notice_card(notice, org=org, tz=tz, link=link, restricted=restricted)
    task_id = card_task_id(notice.id, card_no)
    payload: dict[str, Any] = {
        "notice_id": notice.id,
        "task_id": task_id,
        "version": NOTICE_CARD_VERSION,
        "title": notice.title,
        "link": link,
        "card": card,
    }
    if outcome is None:
        return "task_card", task_id, payload
    payload.update(outcome=outcome, card=closed_card(card, outcome))
    return "card_closed", task_id, payload
