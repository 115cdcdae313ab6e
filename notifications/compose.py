"""Turn the engine's notices into neutral, self-contained outbox payloads (cards and texts).

Pure: what a card says is decided here once (with `notifications.wording` for the engine's
codes), and every delivery (console, WeCom, DingTalk) renders the same payload its own way.
It decides nothing about approvals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from approvals.definitions import Permission, StepKind, Template, WithdrawPolicy
from approvals.model import (
    Notice,
    NoticeKind,
    Request,
    RequestStatus,
    Task,
)
from notifications.wording import (
    MORE_ACTIONS_LABEL,
    REASSIGN_LABEL,
    SUPERVISE_URGE_LABEL,
    TAKE_OVER_LABEL,
    URGENCY_LABEL,
    VIEW_LABEL,
    card_outcome,
    decided_waiting,
    progress_text,
    status_label,
)
from org.model import Org

MAX_CARD_FIELDS = 6


def _people(value: Any, org: Org) -> str:
    people = value if isinstance(value, list) else [value]
    return "、".join(org.display_name(p) for p in people)


def _department(value: Any, org: Org) -> str:
    d = org.department(str(value))
    return d.name if d else str(value)


def _mapping(value: dict[str, Any], org: Org) -> str:
    """A structured value by its shape: a site, a start-end range, an address, or key:value pairs."""
    if value.get("site"):
        site = org.sites.get(str(value["site"]))
        return site.name if site else str(value["site"])
    if "start" in value and "end" in value:
        return f"{value['start']} 至 {value['end']}"
    if "address" in value:
        return str(value["address"])
    return "，".join(f"{k}:{v}" for k, v in value.items())


def _plain(value: Any, org: Org) -> str:
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    if isinstance(value, dict):
        return _mapping(value, org)
    return str(value)


def _datetime(value: Any, org: Org) -> str:
    return value.replace("T", " ")[:16] if isinstance(value, str) else _plain(value, org)


# Field types whose values are shown their own way; every other value is shown by its shape.
_BY_FIELD_TYPE: dict[str, Callable[[Any, Org], str]] = {
    "user": _people,
    "users": _people,
    "department": _department,
    "datetime": _datetime,
}


def _fmt_value(value: Any, *, org: Org, field_type: str | None) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "是" if value else "否"
    return _BY_FIELD_TYPE.get(field_type or "", _plain)(value, org)


DOC_NUMBER_LABEL = "文号"


def summary_fields(
    request: Request, template: Template, org: Org, *, doc_number: str | None = None
) -> list[dict[str, str]]:
    """The card's lines: the document's number 文号 first when it has one, then the template's
    summary fields."""
    keys = list(template.summary_fields) or [f.key for f in template.fields]
    out: list[dict[str, str]] = [{"label": DOC_NUMBER_LABEL, "value": doc_number}] if doc_number else []
    for key in keys:
        spec = template.field(key)
        if spec is None or key not in request.form:
            continue
        out.append(
            {"label": spec.label, "value": _fmt_value(request.form[key], org=org, field_type=spec.type.value)}
        )
        if len(out) >= MAX_CARD_FIELDS:
            break
    return out


def card_buttons(request: Request, task: Task, *, link: str) -> list[dict[str, str]]:
    """The decisions a card offers in place, then 更多操作 opening the request page at `link`
    (退回, 转交, 加签, comments and opinions are made there)."""
    step = request.steps[task.step_index]
    more = {"action": "open", "label": MORE_ACTIONS_LABEL, "style": "default", "url": link}
    if task.permission == Permission.NOTIFY:
        return [{"action": "acknowledge", "label": "已收到", "style": "primary"}, more]
    buttons = [{"action": "approve", "label": step.action_label, "style": "primary"}]
    if step.can_reject and step.kind == StepKind.APPROVE:
        buttons.append({"action": "reject", "label": "驳回", "style": "danger"})
    return [*buttons, more]


def _local(dt: datetime | None, tz: ZoneInfo) -> str | None:
    return dt.astimezone(tz).strftime("%m-%d %H:%M") if dt else None


def task_card(
    request: Request,
    task: Task,
    *,
    template: Template,
    org: Org,
    tz: ZoneInfo,
    link: str,
    doc_number: str | None = None,
) -> dict[str, Any]:
    """A card waiting for the recipient; `link` is their own link to the request page."""
    step = request.steps[task.step_index]
    waiting_since = _local(task.activated_at, tz)
    return {
        "title": f"{template.name}",
        "urgency": URGENCY_LABEL[request.urgency],
        "subtitle": request.title,
        "initiator": org.display_name(request.initiator),
        "step": step.name,
        "acting_for": org.display_name(task.acting_for) if task.acting_for else None,
        "acting_for_label": f"代{org.display_name(task.acting_for)}审批" if task.acting_for else None,
        "fields": summary_fields(request, template, org, doc_number=doc_number),
        "deadline": _local(task.due_at, tz),
        "waiting": f"{org.display_name(request.initiator)} 于 {waiting_since} 提交，等待您处理"
        if waiting_since
        else None,
        "buttons": card_buttons(request, task, link=link),
        "link": link,
    }


def closed_card(card: dict[str, Any], outcome: str) -> dict[str, Any]:
    """The same card once decided: the outcome instead of 等待您处理, only the link button left."""
    return {
        **card,
        "waiting": decided_waiting(outcome),
        "outcome": outcome,
        "buttons": [b for b in card.get("buttons") or [] if b.get("url")],
    }


def with_link(payload: dict[str, Any], link: str) -> dict[str, Any]:
    """A message composed with the plain page address, pointed at the recipient's own `link`
    instead (its card and its open buttons too)."""
    out = {**payload, "link": link}
    if isinstance(payload.get("buttons"), list):
        # A button with its own `path` (a 督办 card's 转交) is pointed at its page separately.
        out["buttons"] = [
            {**b, "url": link} if b.get("url") and not b.get("path") else b for b in payload["buttons"]
        ]
    if isinstance(payload.get("card"), dict):
        out["card"] = with_link(payload["card"], link)
    return out


def _card_fields(
    notice: Notice, task: Task, card: dict[str, Any], *, org: Org, tz: ZoneInfo
) -> dict[str, Any]:
    """A new card, or the update of a decided one (its outcome and the card as it now reads)."""
    if notice.kind == NoticeKind.TASK_CARD:
        return {"task_id": task.id, "version": notice.data.get("version", task.version), "card": card}
    outcome = card_outcome(notice.data, org=org, tz=tz)
    return {
        "task_id": task.id,
        "outcome": outcome,
        "reason": notice.data.get("reason"),
        "card": closed_card(card, outcome),
    }


def _progress(notice: Notice, request: Request, *, template: Template, org: Org) -> str:
    return progress_text(
        template.name,
        request.title,
        step=str(notice.data["step"]),
        label=str(notice.data["label"]),
        by=[org.display_name(p) for p in notice.data.get("by") or []],
        next_step=str(notice.data["next_step"]),
    )


def recalled(notice: Notice, template: Template) -> Notice:
    """A card closed because a document was withdrawn under `until_opened` says 已收回."""
    if (
        template.policies.withdraw == WithdrawPolicy.UNTIL_OPENED
        and notice.data.get("status") == RequestStatus.WITHDRAWN.value
    ):
        return replace(notice, data={**notice.data, "recalled": True})
    return notice


def _watcher_head(
    notice: Notice, request: Request, status: RequestStatus, *, template: Template, org: Org
) -> str:
    """The first line of a CC 抄送, 知会他人 or on-approval message: who, what, and where it is."""
    who = org.display_name(request.initiator)
    if notice.kind == NoticeKind.FYI:
        by = org.display_name(notice.data.get("by"))
        head = f"【知会】{by} 请您知悉 {who} 的「{template.name}」（{status_label(status, template)}）：{request.title}"
        comment = notice.data.get("comment")
        return head + (f"\n附言：{comment}" if comment else "")
    if notice.kind == NoticeKind.CC and notice.data.get("moment") == "submit":
        return f"【抄送】{who} 提交了「{template.name}」：{request.title}（您只需知悉，无需处理）"
    prefix = "抄送" if notice.kind == NoticeKind.CC else "请安排"
    return f"【{prefix}】{who} 的「{template.name}」{status_label(status, template)}：{request.title}"


def compose(
    notice: Notice,
    request: Request,
    *,
    template: Template,
    org: Org,
    tz: ZoneInfo,
    link: str,
    doc_number: str | None = None,
) -> dict[str, Any]:
    """The outbox payload for one notice; `link` is the recipient's own link to the request page;
    `doc_number` the document's number 文号, shown on its cards once it has one."""
    base: dict[str, Any] = {
        "request_id": request.id,
        "template": template.key,
        "title": request.title,
        "link": link,
    }
    task = request.task(notice.task_id) if notice.task_id else None
    if notice.kind in (NoticeKind.TASK_CARD, NoticeKind.CARD_CLOSED) and task is not None:
        card = task_card(request, task, template=template, org=org, tz=tz, link=link, doc_number=doc_number)
        notice = recalled(notice, template)
        return {**base, **_card_fields(notice, task, card, org=org, tz=tz)}
    if notice.kind == NoticeKind.PROGRESS:
        return {**base, "text": _progress(notice, request, template=template, org=org)}
    if notice.kind == NoticeKind.RESULT:
        status = RequestStatus(notice.data["status"])
        by = notice.data.get("by")
        who = "" if by in (None, "system") else f"（{org.display_name(by)}）"
        text = f"您的「{template.name}」{request.title and '：' + request.title}{status_label(status, template)}{who}"
        if notice.data.get("comment"):
            text += f"，意见：{notice.data['comment']}"
        if status == RequestStatus.RETURNED:
            text += "。请修改后重新提交或撤销。"
        base.update(text=text, status=status.value)
        return base
    if notice.kind in (NoticeKind.CC, NoticeKind.APPROVED_NOTICE, NoticeKind.FYI):
        status = RequestStatus(notice.data["status"]) if "status" in notice.data else request.status
        text = _watcher_head(notice, request, status, template=template, org=org)
        fields = summary_fields(request, template, org, doc_number=doc_number)
        if fields:
            text += "\n" + "\n".join(f"{f['label']}：{f['value']}" for f in fields)
        base.update(text=text, status=status.value)
        return base
    if notice.kind == NoticeKind.URGE and task is not None:
        text = f"【催办】{org.display_name(request.initiator)} 提醒您尽快处理「{template.name}」：{request.title}"
        if notice.data.get("comment"):
            text += f"（{notice.data['comment']}）"
        base.update(task_id=task.id, text=text)
        return base
    base.update(text=str(notice.data.get("text", "")))
    return base


# -- supervision 督办 cards --------------------------------------------------------------------
SUPERVISE_KINDS = frozenset({"supervise", "escalate"})  # outbox kinds that carry a 督办 card


def supervise_page(task_id: str, version: int) -> str:
    """The workspace page of a 督办 card (the 转交 person picker and the other actions)."""
    return f"/m/s/{task_id}/{version}"


def supervise_buttons(task_id: str, version: int, *, link: str, may_take_over: bool) -> list[dict[str, str]]:
    """催办 and 代为处理 call back; 转交 opens the person picker (`path`, made into the recipient's
    own link when the message is queued); 查看 opens the request page at `link`."""
    buttons = [
        {"action": "supervise_urge", "label": SUPERVISE_URGE_LABEL, "style": "primary"},
        {
            "action": "reassign",
            "label": REASSIGN_LABEL,
            "style": "default",
            "path": supervise_page(task_id, version),
            "url": supervise_page(task_id, version),
        },
    ]
    if may_take_over:
        buttons.append({"action": "take_over", "label": TAKE_OVER_LABEL, "style": "default"})
    buttons.append({"action": "open", "label": VIEW_LABEL, "style": "default", "url": link})
    return buttons


def supervise_card(
    request: Request,
    task: Task,
    *,
    template: Template,
    org: Org,
    tz: ZoneInfo,
    link: str,
    text: str,
    late: str,
    heading: str,
    may_take_over: bool,
) -> dict[str, Any]:
    """A manager's 督办 card about a late task: the same shape as a task card, so every platform
    renders it with the task card's layout, with the 督办 actions as its buttons."""
    step = request.steps[task.step_index]
    holder = org.display_name(task.assignee)
    if task.acting_for:
        holder += f"（代{org.display_name(task.acting_for)}）"
    return {
        "title": f"{heading}·{template.name}",
        "urgency": URGENCY_LABEL[request.urgency],
        "subtitle": request.title,
        "initiator": org.display_name(request.initiator),
        "step": step.name,
        "acting_for": None,
        "acting_for_label": None,
        "fields": [{"label": "当前处理人", "value": holder}, {"label": "状态", "value": late}],
        "deadline": _local(task.due_at, tz),
        "waiting": text,
        "buttons": supervise_buttons(task.id, task.version, link=link, may_take_over=may_take_over),
        "link": link,
        "supervise": True,
    }
