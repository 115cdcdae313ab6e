"""The words people read: the engine's and the deadline ladder's codes and parameters, in Chinese.

The approval core and the ladder decide *what* happened and hand over a code with its
parameters (a `Phrase`, a `CardOutcome`, a chase rung); this module alone says it in words.
Pure: no I/O; names come from the org, times are shown in the service's time zone. It decides
nothing about approvals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from approvals.definitions import Template, WithdrawPolicy
from approvals.engine import CardOutcome, Phrase
from approvals.model import RequestStatus, TaskStatus, Urgency
from org.model import Org

# -- phrases the engine stores in the trail -------------------------------------------------------
_PHRASES = {
    Phrase.INITIATOR_IS_APPROVER: "审批人是发起人本人，按模板规则自动通过",
    Phrase.SAME_AS_PREVIOUS: "与上一步「{step}」审批人相同，按模板规则合并审批",
    Phrase.NOTHING_TO_APPROVE: "没有需要审批的步骤",
    Phrase.TO_INITIATOR: "发起人",
    Phrase.TO_STEP: "「{step}」",
    Phrase.HANDED_OVER: "{leaver} 离职交接，待办转给 {successor}",
}

OPEN_LINK_LABEL = "查看详情"
URGENCY_LABEL = {Urgency.NORMAL: "一般", Urgency.IMPORTANT: "重要", Urgency.URGENT: "紧急"}


def phrase(code: Phrase, params: Mapping[str, str]) -> str:
    """The engine's `Context.words`: one stored phrase in words."""
    return _PHRASES[code].format(**params)


def preview_note(rule: Phrase, person_name: str) -> str:
    """Why a preview shows a person's approval as automatic."""
    if rule == Phrase.INITIATOR_IS_APPROVER:
        return f"{person_name} 是发起人本人，将自动通过"
    return f"{person_name} 与上一步审批人相同，将合并审批"


REQUEST_STATUS_LABEL = {
    RequestStatus.RUNNING: "审批中",
    RequestStatus.APPROVED: "已通过",
    RequestStatus.REJECTED: "已驳回",
    RequestStatus.WITHDRAWN: "已撤销",
    RequestStatus.TERMINATED: "已终止",
    RequestStatus.RETURNED: "已退回",
}


RECALLED_LABEL = "已收回"


def status_label(status: RequestStatus, template: Template | None = None) -> str:
    """A request's status in words; a document recalled 收回 (withdrawn under `until_opened`)
    reads 已收回."""
    if (
        status == RequestStatus.WITHDRAWN
        and template is not None
        and template.policies.withdraw == WithdrawPolicy.UNTIL_OPENED
    ):
        return RECALLED_LABEL
    return REQUEST_STATUS_LABEL[status]


# -- why a task card was closed ---------------------------------------------------------------
_ENDED = {
    RequestStatus.APPROVED: "审批已通过",
    RequestStatus.REJECTED: "已被驳回",
    RequestStatus.WITHDRAWN: "已撤销",
    RequestStatus.TERMINATED: "已终止",
    RequestStatus.RETURNED: "已退回",
}


_OUTCOMES = {
    CardOutcome.APPROVED: "{done}",
    CardOutcome.REJECTED: "已驳回",
    CardOutcome.RETURNED: "已退回{place}",
    CardOutcome.SENT_BACK: "已退回{place}",
    CardOutcome.TRANSFERRED: "已转交{target}",
    CardOutcome.ACKNOWLEDGED: "已收到",
    CardOutcome.AUTO_APPROVED: "已由系统自动{label}：{comment}",
    CardOutcome.AUTO_REJECTED: "已由系统自动驳回：{comment}",
    CardOutcome.AUTO_TRANSFERRED: "已由系统转交{target}：{comment}",
    CardOutcome.SIGNER_BEFORE: "已前加签{target}，待其处理后再由您审批",
    CardOutcome.DELEGATED: "已交由代理人{target}处理",
    CardOutcome.HANDLED_BY: "已由{by}处理",
    CardOutcome.REQUEST_ENDED: "申请{ended}",
    CardOutcome.TAKEN_OVER: "已由{by}代为处理",
    CardOutcome.DEFAULTED: "默认已读（逾期未确认）",
    CardOutcome.ARCHIVED: "申请已由{by}归档",
}


def _what(outcome: CardOutcome, data: Mapping[str, Any], org: Org) -> str:
    """The first part of a closed card's outcome: what happened to the task."""
    label = str(data.get("label") or "")
    to_step = data.get("to_step")
    status = data.get("status")
    return _OUTCOMES[outcome].format(
        done=label if label.startswith("已") else "已" + label,
        label=label,
        place=phrase(Phrase.TO_STEP, {"step": to_step}) if to_step else phrase(Phrase.TO_INITIATOR, {}),
        target=org.display_name(data.get("target")),
        by=org.display_name(data.get("by")),
        comment=data.get("comment"),
        ended=_ENDED[RequestStatus(status)] if status else "",
    )


def card_outcome(data: Mapping[str, Any], *, org: Org, tz: ZoneInfo) -> str:
    """What a closed card says instead of its buttons, from a closing notice's data.

    A person's decision also says who took it (and for whom) and when: "已同意 · 孙丽 · 11-23 10:42".
    """
    code = data.get("outcome")
    if code is None:
        return "已处理"
    if data.get("recalled"):
        return RECALLED_LABEL
    text = _what(CardOutcome(code), data, org)
    at = data.get("at")
    if not isinstance(at, datetime):
        return text
    who = org.display_name(data.get("by"))
    if data.get("acting_for"):
        who += f"（代{org.display_name(data['acting_for'])}）"
    return f"{text} · {who} · {at.astimezone(tz):%m-%d %H:%M}"


# -- durations and the deadline ladder ---------------------------------------------------------
AUTO_ACTION_LABEL = {"approve": "自动通过", "transfer": "自动转交直属领导", "reject": "自动驳回"}
OPEN_BUTTON_LABEL = "查看详情"


def format_duration(delta: timedelta) -> str:
    """A short Chinese duration: 1 天 2 小时, 3 小时 5 分钟, 12 分钟."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "不到 1 分钟"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} 天" + (f" {hours} 小时" if hours else "")
    if hours:
        return f"{hours} 小时" + (f" {mins} 分钟" if mins else "")
    return f"{mins} 分钟"


def lateness(due_at: datetime | None, now: datetime) -> str:
    """How late a task is: at its deadline, or overdue by how long."""
    if due_at is None or now - due_at < timedelta(minutes=1):
        return "已到处理期限"
    return f"已超时 {format_duration(now - due_at)}"


def auto_reason(action: str, *, due_at: datetime | None, now: datetime) -> str:
    """The reason written to the trail for an automatic decision (approve | transfer | reject)."""
    return f"超过处理期限（{lateness(due_at, now)}），按模板规则{AUTO_ACTION_LABEL[action]}"


@dataclass(frozen=True)
class Chase:
    """What a reminder or supervision message 催办/督办 is about, as names and times."""

    template_name: str
    title: str
    urgency: Urgency
    step_name: str
    action_label: str
    holder: str  # the assignee's name
    initiator: str  # the initiator's name
    due_at: datetime | None
    now: datetime
    tz: ZoneInfo


def chase_text(rung: str, chase: Chase, *, supervised: str | None = None) -> str:
    """The text of a ladder message: rung is remind | due (to the assignee) or supervise |
    escalate (to a manager); `supervised` names the manager told before an escalation."""
    c = chase
    what = f"「{c.template_name}」{c.title}"
    due = c.due_at.astimezone(c.tz).strftime("%m-%d %H:%M") if c.due_at else "—"
    late = lateness(c.due_at, c.now)
    where = f"（{c.initiator} 提交，当前步骤「{c.step_name}」，期限 {due}"
    if rung == "remind":
        return f"【催办】{what} 等待您{c.action_label}，{due} 到期（{URGENCY_LABEL[c.urgency]}）"
    if rung == "due":
        return f"【催办】{what} {late}（期限 {due}），请尽快{c.action_label}"
    if rung == "supervise":
        return f"【督办】{c.holder} 的待办{late}：{what}{where}）"
    return f"【督办升级】{c.holder} 的待办{late}仍未处理：{what}{where}；已督办 {supervised}）"


# -- cards and progress messages (issue 11: cards) ---------------------------------------------
MORE_ACTIONS_LABEL = "更多操作"  # the card button that opens the request page


def decided_waiting(outcome: str) -> str:
    """The line a decided card shows where it said 等待您处理."""
    return f"处理结果：{outcome}"


def progress_text(
    template_name: str, title: str, *, step: str, label: str, by: list[str], next_step: str
) -> str:
    """The initiator's message when a step of their request completes and the next one starts."""
    done = label if label.startswith("已") else "已" + label
    who = f"（{'、'.join(by)}）" if by else ""
    what = f"「{template_name}」{'：' + title if title else ''}"
    return f"【进度】您的{what}，「{step}」{done}{who}，下一步「{next_step}」"


def opinion_needed(step: str, link: str) -> str:
    """The chat answer to a card tap on a step that needs a written opinion."""
    return f"「{step}」需要填写意见，您的点击没有产生任何变更。请在审批页填写意见后提交：{link}"


# -- how an action reached oabot (the trail's `via`, set for REST API tokens) ----------------------
_VIA_PREFIX = {"integration ": "集成", "personal token ": "个人令牌"}


def via_label(via: object) -> str:
    """`integration erp` → 经集成 erp; `personal token wu-phone` → 经个人令牌 wu-phone; else ""."""
    if not isinstance(via, str) or not via:
        return ""
    for prefix, words in _VIA_PREFIX.items():
        if via.startswith(prefix):
            return f"经{words} {via.removeprefix(prefix)}"
    return f"经 {via}"


# -- supervision 督办 cards: a manager's actions on a late task of their team -------------------
SUPERVISE_URGE_LABEL = "催办"
REASSIGN_LABEL = "转交"
TAKE_OVER_LABEL = "代为处理"
VIEW_LABEL = "查看"
SUPERVISE_LIST_HINT = "打开链接可逐条催办、转交或代为处理"
SUPERVISE_CARD_TITLE = {"supervise": "督办", "escalate": "督办升级", "office": "督办（无上级）"}


def supervise_done(move: str, *, assignee: str, target: str) -> str:
    """What a manager is told after a 督办 action went through (move: urge | transfer | take_over)."""
    if move == "urge":
        return f"已催办{assignee}，对方会收到提醒。"
    if move == "transfer":
        return f"已转交给{target}，{assignee}的待办已关闭，{target}会收到审批卡片。"
    return f"已代{assignee}处理：这条待办已转到您名下，请在新的审批卡片上处理。"


def office_escalation_text(chase: Chase, *, top: str) -> str:
    """The 督办 text to the office when nobody above the holder is left to tell."""
    c = chase
    late = lateness(c.due_at, c.now)
    return (
        f"【督办·无上级】{c.holder} 的待办{late}仍未处理：「{c.template_name}」{c.title}"
        f"（当前步骤「{c.step_name}」；{top} 之上已无上级，转由办公室督办）"
    )


def supervise_refused(why: str) -> str:
    """The chat answer to a 督办 tap that changed nothing (stale, repeated, not allowed)."""
    return f"{why}，您的点击没有产生任何变更。"


# -- re-planned deadlines (a calendar override changed) -----------------------------------------
_CALENDAR_CHANGE = {
    "holiday": "设为休息日",
    "workday": "设为工作日（调休）",
    "removed_holiday": "取消休息日",
    "removed_workday": "取消调休工作日",
}


def replanned_comment(
    day: str, change: str, *, before: datetime | None, after: datetime, tz: ZoneInfo
) -> str:
    """The trail's words for a due time moved by a calendar change."""
    what = _CALENDAR_CHANGE.get(change, "调整")
    old = before.astimezone(tz).strftime("%m-%d %H:%M") if before else "—"
    when = date_label(day)
    return f"工作日历调整（{when}{what}），处理期限由 {old} 改为 {after.astimezone(tz):%m-%d %H:%M}"


def date_label(day: str) -> str:
    """2026-11-24 → 11-24."""
    return day[5:] if len(day) == 10 else day


# -- coalesced cards: one message listing the new tasks a person got over the send limit ----------
TODO_DIGEST_HEAD = "您有 {count} 条新待办"
TODO_DIGEST_TAIL = "请打开待办列表逐条处理。"
# The printable approval sheet 审批单: what each person decided, in the words printed on paper.
SHEET_DECISION_LABEL = {
    TaskStatus.APPROVED: "同意",
    TaskStatus.REJECTED: "驳回",
    TaskStatus.RETURNED: "退回",
    TaskStatus.TRANSFERRED: "转交",
    TaskStatus.ACKNOWLEDGED: "已知悉",
}
SHEET_SKIPPED_STEP = "已跳过"
