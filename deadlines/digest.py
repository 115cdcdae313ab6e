"""Digests: one message per person listing what waits for them, never one message per item.

At each digest time (default 10:00 and 15:30) on working days, every person holding pending
tasks gets one message: how many, the oldest, the most urgent, and a short list; it also lists
the notices they have not acknowledged (someone with only notices gets one too). Once a day (at
the first digest time) every manager whose direct reports hold overdue tasks gets one message
about them, grouped by person: each item carries the 督办 card's actions (催办, 转交, 代为处理 when
the template allows it, 查看), and the message links to the 督办 page that lists them.

Pure: the items, the calendar and `now` come in; messages go out. `services.deadlines` loads
the items, writes the outbox rows and the trail events, and makes each slot fire once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from approvals.model import Urgency
from deadlines.ladder import Message
from notifications.compose import supervise_buttons
from notifications.wording import SUPERVISE_LIST_HINT, URGENCY_LABEL, format_duration
from org.model import Org

SUPERVISE_LIST = "/m/s/"  # the workspace's 督办 page: every overdue task of the viewer's team
MAX_LINES = 10  # items listed in one digest; the rest are counted
URGENCY_RANK = {Urgency.URGENT: 0, Urgency.IMPORTANT: 1, Urgency.NORMAL: 2}
_SEARCH_DAYS = 400


class WorkingDays(Protocol):
    def is_working_day(self, d: date) -> bool: ...


@dataclass(frozen=True)
class PendingItem:
    """One pending task as a digest sees it."""

    task_id: str
    version: int
    request_id: str
    template_name: str
    title: str
    urgency: Urgency
    initiator: str
    assignee: str
    activated_at: datetime | None
    due_at: datetime | None
    acting_for: str | None = None
    gates: bool = True  # False for 知会 (FYI) tasks, which hold nothing up
    manager_may_act: bool = False  # the template lets the holder's manager take it over 代为处理

    def overdue(self, now: datetime) -> bool:
        return self.due_at is not None and self.due_at <= now


@dataclass(frozen=True)
class NoticeItem:
    """One unanswered notice (通知/公告/会议通知/调查) of a recipient, as a digest lists it."""

    notice_id: str
    recipient: str
    kind_label: str
    title: str
    author_name: str
    published_at: datetime | None
    ack_deadline: datetime | None


def _urgency_key(item: PendingItem) -> tuple[int, float, str]:
    """Most urgent first: by urgency, then the earliest due time (none due: last)."""
    return (
        URGENCY_RANK[item.urgency],
        item.due_at.timestamp() if item.due_at else float("inf"),
        item.task_id,
    )


def _age_key(item: PendingItem) -> tuple[float, str]:
    return (item.activated_at.timestamp() if item.activated_at else float("inf"), item.task_id)


def _local(at: datetime | None, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%m-%d %H:%M") if at else "—"


def _line(n: int, item: PendingItem, *, org: Org, tz: ZoneInfo, now: datetime) -> str:
    if item.due_at is None:
        due = ""
    elif item.overdue(now):
        due = f"，已超时 {format_duration(now - item.due_at)}"
    else:
        due = f"，{_local(item.due_at, tz)} 到期"
    return f"{n}. [{URGENCY_LABEL[item.urgency]}]「{item.template_name}」{item.title}（{org.display_name(item.initiator)}{due}）"


def _brief(item: PendingItem) -> dict[str, Any]:
    return {
        "task_id": item.task_id,
        "version": item.version,
        "request_id": item.request_id,
        "title": item.title,
        "template_name": item.template_name,
        "urgency": item.urgency.value,
        "due_at": item.due_at.isoformat() if item.due_at else None,
    }


def _supervised(item: PendingItem) -> dict[str, Any]:
    """An overdue item of a manager's digest, with the 督办 card's actions on it."""
    page = f"/m/r/{item.request_id}"
    buttons = supervise_buttons(item.task_id, item.version, link=page, may_take_over=item.manager_may_act)
    return {**_brief(item), "actions": [{**b, "path": page} if b["action"] == "open" else b for b in buttons]}


def _task_lines(mine: list[PendingItem], *, org: Org, tz: ZoneInfo, now: datetime) -> list[str]:
    oldest = min(mine, key=_age_key)
    most_urgent = mine[0]
    overdue = [i for i in mine if i.overdue(now)]
    lines = [
        f"【待办汇总】您有 {len(mine)} 条待处理" + (f"，其中 {len(overdue)} 条已超时" if overdue else "")
    ]
    if oldest.activated_at is not None:
        lines.append(
            f"最久：「{oldest.template_name}」{oldest.title}，已等待 {format_duration(now - oldest.activated_at)}"
        )
    lines.append(
        f"最紧急：「{most_urgent.template_name}」{most_urgent.title}（{URGENCY_LABEL[most_urgent.urgency]}）"
    )
    lines += [_line(n, item, org=org, tz=tz, now=now) for n, item in enumerate(mine[:MAX_LINES], 1)]
    if len(mine) > MAX_LINES:
        lines.append(f"……另有 {len(mine) - MAX_LINES} 条")
    return lines


def _notice_lines(notes: list[NoticeItem], *, tz: ZoneInfo, alone: bool) -> list[str]:
    """The unanswered notices: a heading of their own, or a section after the tasks."""
    head = (
        f"【通知汇总】您有 {len(notes)} 条通知未确认收到" if alone else f"未确认收到的通知 {len(notes)} 条："
    )
    lines = [head]
    for n, note in enumerate(notes[:MAX_LINES], 1):
        due = f"，{_local(note.ack_deadline, tz)} 起视为已收到" if note.ack_deadline else ""
        lines.append(f"{n}. [{note.kind_label}]「{note.title}」（{note.author_name} 发布{due}）")
    if len(notes) > MAX_LINES:
        lines.append(f"……另有 {len(notes) - MAX_LINES} 条")
    return lines


def _notice_brief(note: NoticeItem) -> dict[str, Any]:
    return {
        "notice_id": note.notice_id,
        "title": note.title,
        "kind": note.kind_label,
        "ack_deadline": note.ack_deadline.isoformat() if note.ack_deadline else None,
        "path": f"/m/n/{note.notice_id}",
    }


def person_digests(
    items: Iterable[PendingItem],
    *,
    org: Org,
    tz: ZoneInfo,
    now: datetime,
    public_url: str,
    notices: Iterable[NoticeItem] = (),
) -> list[Message]:
    """One message per person holding pending tasks or unanswered notices, people in id order."""
    by_person: dict[str, list[PendingItem]] = {}
    for item in items:
        by_person.setdefault(item.assignee, []).append(item)
    unread: dict[str, list[NoticeItem]] = {}
    for note in notices:
        unread.setdefault(note.recipient, []).append(note)
    out: list[Message] = []
    for person in sorted(set(by_person) | set(unread)):
        mine = sorted(by_person.get(person, []), key=_urgency_key)
        notes = sorted(unread.get(person, []), key=lambda n: (n.ack_deadline or now, n.notice_id))
        lines = _task_lines(mine, org=org, tz=tz, now=now) if mine else []
        if notes:
            lines += _notice_lines(notes, tz=tz, alone=not mine)
        payload: dict[str, Any] = {
            "text": "\n".join(lines),
            "role": "assignee",
            "count": len(mine),
            "overdue": sum(1 for i in mine if i.overdue(now)),
            "oldest": _brief(min(mine, key=_age_key)) if mine else None,
            "most_urgent": _brief(mine[0]) if mine else None,
            "items": [_brief(i) for i in mine],
            "link": f"{public_url}/m/" if mine else f"{public_url}/m/n/",
        }
        if notes:
            payload["notices"] = [_notice_brief(n) for n in notes]
            if not mine:
                payload["path"] = "/m/n/"
        out.append(Message("digest", person, None, None, payload))
    return out


def manager_digests(
    items: Iterable[PendingItem], *, org: Org, tz: ZoneInfo, now: datetime, public_url: str
) -> list[Message]:
    """One message per manager whose direct reports hold overdue tasks (知会 tasks left out)."""
    by_manager: dict[str, dict[str, list[PendingItem]]] = {}
    for item in items:
        if not item.gates or not item.overdue(now):
            continue
        manager = org.manager_of(item.assignee)
        if manager is None or manager == item.assignee:
            continue
        by_manager.setdefault(manager, {}).setdefault(item.assignee, []).append(item)
    out: list[Message] = []
    for manager in sorted(by_manager):
        team = by_manager[manager]
        total = sum(len(v) for v in team.values())
        lines = [f"【团队超时汇总】您的团队有 {total} 条待办已超时"]
        people: list[dict[str, Any]] = []
        for person in sorted(team, key=lambda p: (-len(team[p]), p)):
            late = sorted(team[person], key=lambda i: (i.due_at or now, i.task_id))
            worst = late[0]
            assert worst.due_at is not None
            lines.append(
                f"{org.display_name(person)}：{len(late)} 条，最久超时 {format_duration(now - worst.due_at)}"
                f"（「{worst.template_name}」{worst.title}）"
            )
            people.append({"assignee": person, "count": len(late), "items": [_supervised(i) for i in late]})
        lines.append(SUPERVISE_LIST_HINT)
        payload = {
            "text": "\n".join(lines),
            "role": "manager",
            "count": total,
            "people": people,
            "path": SUPERVISE_LIST,
            "link": f"{public_url}{SUPERVISE_LIST}",
        }
        out.append(Message("digest", manager, None, None, payload))
    return out


def request_ids(message: Message) -> list[str]:
    """The requests a digest message mentions, each once, in order."""
    seen: list[str] = []
    items: list[dict[str, Any]] = list(message.payload.get("items", []))
    for person in message.payload.get("people", []):
        items += person["items"]
    for item in items:
        if item["request_id"] not in seen:
            seen.append(item["request_id"])
    return seen


# -- slots ------------------------------------------------------------------------------------
def next_slot(calendar: WorkingDays, times: Sequence[time], *, after: datetime, tz: ZoneInfo) -> datetime:
    """The first digest time strictly after `after` on a working day (an aware UTC-comparable instant)."""
    if not times:
        raise ValueError("no digest times configured")
    local = after.astimezone(tz)
    for offset in range(_SEARCH_DAYS):
        day = local.date() + timedelta(days=offset)
        if not calendar.is_working_day(day):
            continue
        for t in sorted(times):
            slot = datetime.combine(day, t, tz)
            if slot > after:
                return slot
    raise ValueError(f"no working day within {_SEARCH_DAYS} days after {after.isoformat()}")


def is_first_slot_of_day(slot: datetime, times: Sequence[time], tz: ZoneInfo) -> bool:
    """The managers' daily overdue digest goes out with the day's first digest."""
    return bool(times) and slot.astimezone(tz).time() == min(times)
