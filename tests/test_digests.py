"""Digests: one message per person with pending items at 10:00 and 15:30 on working days, one
daily message per manager about the team's overdue items, each slot sent once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from approvals.clock import ManualClock
from approvals.model import Urgency
from bot.app import create_app
from bot.keys import TIMERS, WORKFLOW
from bot.settings import ConfigError, load_settings
from deadlines.calendar import WorkingCalendar
from deadlines.digest import (
    PendingItem,
    is_first_slot_of_day,
    manager_digests,
    next_slot,
    person_digests,
    request_ids,
)
from deadlines.timer_kinds import TimerScanner
from storage.approval_models import OutboxRow
from storage.db import Database
from storage.timer_models import TimerRow
from tests.conftest import Api, settings_for
from tests.helpers import demo_org

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkingCalendar(SH, ((time(9), time(12)), (time(13, 30), time(18))))
TIMES = (time(10), time(15, 30))
SEAL = {
    "seal": "公章",
    "reason": "签署合同",
    "needed_at": "2026-11-24T10:00:00+08:00",
    "files": ["合同.pdf"],
    "copies": 2,
    "take_out": False,
}


def sh(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SH)


def item(
    task: str,
    assignee: str,
    *,
    urgency: Urgency = Urgency.NORMAL,
    since: datetime,
    due: datetime,
    request: str | None = None,
) -> PendingItem:
    return PendingItem(
        task_id=task,
        version=2,
        request_id=request or f"r-{task}",
        template_name="用章申请",
        title=f"申请 {task}",
        urgency=urgency,
        initiator="u_wu",
        assignee=assignee,
        activated_at=since,
        due_at=due,
    )


# -- composing (pure) -------------------------------------------------------------------------------
def test_a_person_gets_one_message_with_the_count_the_oldest_and_the_most_urgent() -> None:
    now = sh(11, 24, 10)
    items = [
        item("t1", "u_sun", since=sh(11, 23, 9), due=sh(11, 23, 13)),
        item("t2", "u_sun", urgency=Urgency.URGENT, since=sh(11, 24, 9), due=sh(11, 24, 15)),
        item("t3", "u_sun", since=sh(11, 23, 16), due=sh(11, 24, 11)),
        item("t4", "u_wang", since=sh(11, 24, 9, 30), due=sh(11, 24, 14)),
    ]

    messages = person_digests(items, org=demo_org(), tz=SH, now=now, public_url="http://oa")

    assert [(m.kind, m.recipient) for m in messages] == [("digest", "u_sun"), ("digest", "u_wang")]
    sun = messages[0].payload
    assert (sun["count"], sun["overdue"], sun["oldest"]["task_id"], sun["most_urgent"]["task_id"]) == (
        3,
        1,
        "t1",
        "t2",
    )
    lines = sun["text"].splitlines()
    assert lines[0] == "【待办汇总】您有 3 条待处理，其中 1 条已超时"
    assert lines[1] == "最久：「用章申请」申请 t1，已等待 1 天 1 小时"
    assert lines[2] == "最紧急：「用章申请」申请 t2（紧急）"
    assert lines[3].startswith("1. [紧急]「用章申请」申请 t2（吴昊，11-24 15:00 到期）")
    assert "已超时 21 小时" in sun["text"]
    assert request_ids(messages[0]) == ["r-t2", "r-t1", "r-t3"]  # most urgent first, then by due time


def test_a_long_list_is_cut_and_counted() -> None:
    items = [item(f"t{n:02d}", "u_sun", since=sh(11, 23, 9), due=sh(11, 25, 9)) for n in range(14)]

    [message] = person_digests(items, org=demo_org(), tz=SH, now=sh(11, 24, 10), public_url="")

    assert message.payload["count"] == 14
    assert message.payload["text"].splitlines()[-1] == "……另有 4 条"


def test_managers_get_their_direct_reports_overdue_items_grouped_by_person() -> None:
    now = sh(11, 24, 10)
    items = [
        item("t1", "u_sun", since=sh(11, 23, 9), due=sh(11, 23, 13)),  # 孙丽 → 李娜
        item("t2", "u_sun", since=sh(11, 23, 10), due=sh(11, 23, 15)),
        item("t3", "u_wang", since=sh(11, 23, 10), due=sh(11, 24, 9)),  # 王芳 → 李娜
        item("t4", "u_chen", since=sh(11, 23, 10), due=sh(11, 24, 11)),  # not overdue yet
    ]

    [message] = manager_digests(items, org=demo_org(), tz=SH, now=now, public_url="")

    assert message.recipient == "u_li"
    assert message.payload["text"].splitlines() == [
        "【团队超时汇总】您的团队有 3 条待办已超时",
        "孙丽：2 条，最久超时 21 小时（「用章申请」申请 t1）",
        "王芳：1 条，最久超时 1 小时（「用章申请」申请 t3）",
        "打开链接可逐条催办、转交或代为处理",
    ]
    # Each item carries the 督办 card's actions; the message opens the 督办 page listing them.
    first = message.payload["people"][0]["items"][0]
    assert [(a["label"], a.get("path")) for a in first["actions"]] == [
        ("催办", None),
        ("转交", f"/m/s/{first['task_id']}/{first['version']}"),
        ("查看", f"/m/r/{first['request_id']}"),
    ]
    assert message.payload["path"] == "/m/s/"


def test_digest_slots_skip_weekends_and_holidays_but_not_make_up_days() -> None:
    assert next_slot(CAL, TIMES, after=sh(11, 23, 9), tz=SH) == sh(11, 23, 10)
    assert next_slot(CAL, TIMES, after=sh(11, 23, 10), tz=SH) == sh(11, 23, 15, 30)
    assert next_slot(CAL, TIMES, after=sh(11, 27, 16), tz=SH) == sh(11, 30, 10)  # Friday → Monday
    assert next_slot(CAL, TIMES, after=sh(9, 30, 16), tz=SH) == sh(10, 8, 10)  # over National Day
    assert next_slot(CAL, TIMES, after=sh(10, 9, 16), tz=SH) == sh(10, 10, 10)  # Saturday 调休
    assert is_first_slot_of_day(sh(11, 23, 10), TIMES, SH) and not is_first_slot_of_day(
        sh(11, 23, 15, 30), TIMES, SH
    )


def test_digest_times_are_configurable_and_checked() -> None:
    assert load_settings({"OABOT_DIGEST_TIMES": "16:00, 9:30"}, dotenv_path=None).digest_times == (
        time(9, 30),
        time(16),
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {"OABOT_DIGEST_TIMES": "10:00,25:61", "OABOT_TIMER_SCAN_INTERVAL_S": "0"}, dotenv_path=None
        )
    assert [p.split("=")[0] for p in caught.value.problems] == [
        "OABOT_DIGEST_TIMES",
        "OABOT_TIMER_SCAN_INTERVAL_S",
    ]


# -- sending (database) -----------------------------------------------------------------------------
def service(api: Api) -> TimerScanner:
    """The app's one timer scan (background jobs are off: tests drive it by hand)."""
    return api.app[TIMERS]  # type: ignore[index,no-any-return]


async def digests(db: Database) -> list[OutboxRow]:
    async with db.session() as s:
        q = select(OutboxRow).where(OutboxRow.kind == "digest").order_by(OutboxRow.id)  # type: ignore[arg-type]
        return list((await s.execute(q)).scalars().all())


async def test_each_person_gets_one_digest_per_slot_and_it_is_in_the_trail(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    ids = [(await api.submit("seal_use", "u_wu", {**SEAL, "copies": n + 1}))["id"] for n in range(3)]
    clock.set(sh(11, 23, 15, 30))

    await service(api).scan_once()
    await service(api).scan_once()

    [sent] = await digests(org_db)
    assert sent.recipient == "u_sun" and sent.payload["count"] == 3
    assert sent.payload["text"].startswith("【待办汇总】您有 3 条待处理")
    for rid in ids:
        _, view = await api.call("GET", f"/requests/{rid}", expect=200)
        noted = [e for e in view["trail"] if e["kind"] == "digest_sent"]  # type: ignore[index]
        assert [(e["actor"], e["after"], e["data"]["role"]) for e in noted] == [
            ("system", "u_sun", "assignee")
        ]
        assert await api.app[WORKFLOW].verify_trail(rid) == {}  # type: ignore[index]
    async with org_db.session() as s:
        slots = (
            (await s.execute(select(TimerRow).where(TimerRow.kind == "digest").order_by(TimerRow.due_at)))
            .scalars()
            .all()
        )  # type: ignore[arg-type]
    assert [(t.due_at.astimezone(SH), t.status) for t in slots] == [
        (sh(11, 23, 15, 30), "done"),
        (sh(11, 24, 10), "pending"),
    ]


async def test_the_first_digest_of_the_day_also_tells_managers_about_overdue_work(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    await api.submit("seal_use", "u_wu", SEAL)  # 孙丽's task, due Monday 15:30
    clock.set(sh(11, 23, 15, 30))
    await service(api).scan_once()
    assert [r.recipient for r in await digests(org_db)] == [
        "u_sun"
    ]  # 15:30: not overdue yet, no manager digest

    clock.set(sh(11, 24, 10))
    await service(api).scan_once()

    rows = await digests(org_db)
    assert [(r.recipient, r.payload["role"]) for r in rows[1:]] == [
        ("u_sun", "assignee"),
        ("u_li", "manager"),
    ]
    assert rows[-1].payload["text"].splitlines()[1].startswith("孙丽：1 条，最久超时 ")


async def test_nobody_without_pending_items_gets_a_digest(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    clock.set(sh(11, 23, 15, 30))

    stats = await service(api).scan_once()

    assert stats.fired == 1 and await digests(org_db) == []


async def test_two_replicas_send_a_slot_once(
    api: Api, org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    for n in range(4):
        await api.submit("seal_use", "u_wu", {**SEAL, "copies": n + 1})
    other_app = create_app(settings_for(org_db), clock=clock)
    other = Api(await aiohttp_client(other_app), other_app)
    clock.set(sh(11, 23, 15, 30) + timedelta(seconds=1))

    await asyncio.gather(service(api).scan_once(), service(other).scan_once())

    rows = await digests(org_db)
    assert Counter(r.recipient for r in rows) == {"u_sun": 1}
