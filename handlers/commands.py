"""Text commands in chat: 待办 (my pending tasks, numbered), 同意 1 3 5 / 全部同意 (approve by
number), 帮助 (help), 代理 (set a delegate).

Anything else gets a short help reply. Shared locations are check-ins: `handlers.checkins`.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from approvals.errors import ApprovalError
from approvals.model import Channel
from handlers.deps import ChatDeps
from handlers.events import TextMessage
from handlers.router import Router
from notifications.messages import message_for
from services.chat_todo import NumberedApproval
from services.workspace_lists import BatchOutcome

router = Router("commands")

HELP = (
    "可用命令：\n"
    "· 待办 —— 查看我的待办审批（带编号）\n"
    "· 同意 1 3 5 [意见] —— 按「待办」列表的编号批量同意\n"
    "· 全部同意 [意见] —— 同意「待办」列表中的全部待办\n"
    "· 代理 <同事姓名或ID> <截止日期> —— 设置代理人，例如：代理 周杰 2026-11-30\n"
    "· 打卡 —— 获取今天外勤行程的打卡链接（也可以直接发送位置打卡）\n"
    "· 帮助 —— 显示本说明\n"
    "审批卡片上的按钮可以直接处理待办。"
)
APPROVE_USAGE = "用法：同意 1 3 5 [意见]（编号来自「待办」列表），或 全部同意 [意见]。"


@router.text("帮助")
async def on_help(event: TextMessage, deps: ChatDeps) -> str | None:
    return HELP


@router.text("待办")
async def on_pending(event: TextMessage, deps: ChatDeps) -> str | None:
    found = await deps.todo.numbered(deps.user)
    if not found.items:
        return "您当前没有待办审批。"
    lines = [f"您有 {found.total} 条待办："]
    for i, t in enumerate(found.items, 1):
        due = " · 截止 " + t.due_at.astimezone(deps.tz).strftime("%m-%d %H:%M") if t.due_at else ""
        acting = f"（代{t.acting_for_name}）" if t.acting_for_name else ""
        lines.append(
            f"{i}. 【{t.urgency_label}】{t.template_name}：{t.title} —— {t.initiator_name}{acting}{due}"
        )
    if found.total > len(found.items):
        lines.append(f"……另有 {found.total - len(found.items)} 条")
    lines.append("回复「同意 1 3」同意其中几条，回复「全部同意」同意以上全部。")
    return "\n".join(lines)


_NUMBERS = re.compile(r"^([\d\s,，、]*)(.*)$", re.S)


@router.text("同意")
async def on_approve_numbers(event: TextMessage, deps: ChatDeps) -> str | None:
    m = _NUMBERS.match(event.text.strip()[len("同意") :].strip())
    numbers = [int(n) for n in re.findall(r"\d+", m.group(1))] if m else []
    if not m or not numbers:
        return APPROVE_USAGE
    done = await deps.todo.approve(
        deps.user, numbers, m.group(2).strip(), channel=Channel(event.sender.platform)
    )
    return approval_reply(done)


@router.text("全部同意")
async def on_approve_all(event: TextMessage, deps: ChatDeps) -> str | None:
    opinion = event.text.strip()[len("全部同意") :].strip()
    done = await deps.todo.approve(deps.user, None, opinion, channel=Channel(event.sender.platform))
    return approval_reply(done)


def approval_reply(done: NumberedApproval) -> str:
    """One line per number: 已同意 / 已处理（…）/ 未同意, with the reason."""
    if done.expired:
        return "待办编号已失效，请先发送「待办」查看最新列表。"
    report = done.report
    lines = [
        f"批量同意：{report.count(BatchOutcome.APPROVED)} 条已同意，"
        f"{report.count(BatchOutcome.ALREADY_HANDLED)} 条已处理，{report.count(BatchOutcome.REFUSED)} 条未同意"
    ]
    for n, item in zip(done.numbers, report.items, strict=True):
        why = f" —— {item.reason}" if item.reason else ""
        lines.append(f"{n}. {item.label}：{item.template_name}：{item.title}{why}")
    if done.unknown:
        lines.append("编号 " + "、".join(str(n) for n in done.unknown) + " 不在最近的待办列表中。")
    return "\n".join(lines)


_DATE = re.compile(r"^(?:(\d{4})-)?(\d{1,2})-(\d{1,2})$")


def parse_until(text: str, today: date) -> date | None:
    m = _DATE.match(text.strip())
    if not m:
        return None
    year = int(m.group(1)) if m.group(1) else today.year
    try:
        d = date(year, int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None
    if not m.group(1) and d < today:
        d = date(year + 1, d.month, d.day)
    return d


@router.text("代理")
async def on_delegate(event: TextMessage, deps: ChatDeps) -> str | None:
    parts = event.text.split()
    if len(parts) != 3:
        return "用法：代理 <同事姓名或ID> <截止日期>，例如：代理 周杰 2026-11-30"
    who, until_text = parts[1], parts[2]
    org = await deps.workflow.org()
    matches = [u for u in org.users.values() if u.active and (u.id == who or u.name == who)]
    if len(matches) != 1:
        return (
            f"找不到在职同事「{who}」，请使用通讯录中的姓名或ID。"
            if not matches
            else f"有多位同事叫「{who}」，请使用ID。"
        )
    now = deps.now()
    until = parse_until(until_text, now.astimezone(deps.tz).date())
    if until is None:
        return f"「{until_text}」不是有效日期，请写成 2026-11-30 或 11-30。"
    ends = datetime.combine(until + timedelta(days=1), time(0), tzinfo=deps.tz)
    try:
        delegation = await deps.workflow.create_delegation(
            delegator=deps.user.id, delegate=matches[0].id, starts_at=now, ends_at=ends, reason="聊天命令设置"
        )
    except ApprovalError as exc:
        return message_for(exc)
    return f"已设置：{until:%Y-%m-%d} 之前由 {matches[0].name} 代您审批新的待办（代理编号 {delegation.id}）。"


@router.text()
async def on_other_text(event: TextMessage, deps: ChatDeps) -> str | None:
    return "没有听懂这条消息。" + HELP
