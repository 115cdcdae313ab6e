"""An approved leave 请假 sets up the delegation 代理 for its dates; it moves the person's pending
tasks when it starts (a timer), and ends when the leave is withdrawn."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from approvals.clock import ManualClock
from bot.keys import TIMERS, WORKFLOW
from deadlines.timer_kinds import TimerScanner
from storage.db import Database
from storage.timer_models import TimerRow
from tests.conftest import Api

SH = ZoneInfo("Asia/Shanghai")
SEAL = {
    "seal": "公章",
    "reason": "签署合同",
    "needed_at": "2026-11-24T10:00:00+08:00",
    "files": ["合同.pdf"],
    "copies": 2,
    "take_out": False,
}


def sh(month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=SH)


def leave(start: str, end: str, **extra: Any) -> dict[str, Any]:
    return {
        "leave_type": "年假",
        "period": {"start": start, "end": end},
        "days": 2,
        "reason": "休假",
        **extra,
    }


def service(api: Api) -> TimerScanner:
    """The app's one timer scan (background jobs are off: tests drive it by hand)."""
    return api.app[TIMERS]  # type: ignore[index,no-any-return]


async def delegations_of(api: Api, user: str) -> list[dict[str, Any]]:
    _, body = await api.call("GET", f"/delegations?user={user}&include_past=true", expect=200)
    return body["items"]  # type: ignore[index,no-any-return]


async def delegation_timers(db: Database) -> list[TimerRow]:
    async with db.session() as s:
        q = select(TimerRow).where(TimerRow.kind == "delegation_start").order_by(TimerRow.id)  # type: ignore[arg-type]
        return list((await s.execute(q)).scalars().all())


async def approved_leave(api: Api, initiator: str, approver: str, form: dict[str, Any]) -> dict[str, Any]:
    req = await api.submit("leave", initiator, form)
    await api.decide(approver)
    _, view = await api.call("GET", f"/requests/{req['id']}", expect=200)
    assert view["status"] == "approved"  # type: ignore[index]
    return view  # type: ignore[return-value]


async def test_approved_leave_creates_the_delegation_for_its_dates(api: Api, org_db: Database) -> None:
    view = await approved_leave(api, "u_sun", "u_li", leave("2026-11-25", "2026-11-26", delegate="u_zhou"))

    [d] = await delegations_of(api, "u_sun")
    assert (d["delegator"], d["delegate"], d["move_pending"], d["source_request"]) == (
        "u_sun",
        "u_zhou",
        True,
        view["id"],
    )
    assert datetime.fromisoformat(d["starts_at"]) == sh(11, 25)
    assert datetime.fromisoformat(d["ends_at"]) == sh(11, 27)  # the end day is included
    noted = next(e for e in view["trail"] if e["kind"] == "delegation_created")
    assert (noted["actor"], noted["after"], noted["data"]["delegation"]) == ("system", "u_zhou", d["id"])
    assert await api.app[WORKFLOW].verify_trail(view["id"]) == {}  # type: ignore[index]
    [timer] = await delegation_timers(org_db)
    assert (timer.ref, timer.status, timer.due_at.astimezone(SH)) == (d["id"], "pending", sh(11, 25))


async def test_the_delegate_defaults_to_the_manager(api: Api) -> None:
    await approved_leave(api, "u_wu", "u_sun", leave("2026-11-25", "2026-11-26"))

    [d] = await delegations_of(api, "u_wu")
    assert d["delegate"] == "u_sun"


async def test_pending_tasks_move_to_the_delegate_when_the_leave_starts(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    seal = await api.submit("seal_use", "u_wu", SEAL)  # waits for 孙丽
    await approved_leave(api, "u_sun", "u_li", leave("2026-11-25", "2026-11-26", delegate="u_zhou"))

    clock.set(sh(11, 24, 23, 59))
    await service(api).scan_once()
    assert [t["request_id"] for t in await api.pending("u_zhou")] == []
    clock.set(sh(11, 25, 0, 0, 1))
    await service(api).scan_once()
    await service(api).scan_once()

    [moved] = await api.pending("u_zhou")
    assert (moved["request_id"], moved["assignee"], moved["acting_for"]) == (seal["id"], "u_zhou", "u_sun")
    _, view = await api.call("GET", f"/requests/{seal['id']}", expect=200)
    assert [e["kind"] for e in view["trail"]].count("delegated") == 1  # type: ignore[index]
    assert [t.status for t in await delegation_timers(org_db)] == ["done"]

    new = await api.submit("seal_use", "u_wu", {**SEAL, "copies": 9})  # during the leave
    assert new["steps"][0]["tasks"][0]["assignee"] == "u_zhou"


async def test_a_leave_approved_after_it_began_moves_tasks_at_the_next_scan(
    api: Api, clock: ManualClock
) -> None:
    seal = await api.submit("seal_use", "u_wu", SEAL)
    await approved_leave(api, "u_sun", "u_li", leave("2026-11-23", "2026-11-24", delegate="u_zhou"))

    await service(api).scan_once()

    assert [t["request_id"] for t in await api.pending("u_zhou")] == [seal["id"]]


async def test_a_leave_that_is_already_over_creates_nothing_and_says_why(api: Api, org_db: Database) -> None:
    view = await approved_leave(api, "u_sun", "u_li", leave("2026-11-19", "2026-11-20"))

    assert await delegations_of(api, "u_sun") == []
    noted = next(e for e in view["trail"] if e["kind"] == "delegation_not_created")
    assert "已结束" in noted["comment"]


async def test_withdrawing_the_approved_leave_ends_its_delegation(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    view = await approved_leave(api, "u_sun", "u_li", leave("2026-11-25", "2026-11-26", delegate="u_zhou"))
    # 销假: the leave template lets the initiator revoke an approved leave.
    _, after = await api.call(
        "POST",
        f"/requests/{view['id']}/actions",
        {"action": "withdraw", "actor": "u_sun", "comment": "不休了"},
        expect=200,
    )
    assert after["status"] == "withdrawn"

    [d] = await delegations_of(api, "u_sun")
    assert d["cancelled_at"] is not None
    assert [t.status for t in await delegation_timers(org_db)] == ["cancelled"]
    _, full = await api.call("GET", f"/requests/{view['id']}", expect=200)
    kinds = [e["kind"] for e in full["trail"]]  # type: ignore[index]
    assert kinds[-3:] == ["request_withdrawn", "cc_sent", "delegation_cancelled"]  # HR is told (抄送)
    assert await api.app[WORKFLOW].verify_trail(view["id"]) == {}  # type: ignore[index]


async def test_a_future_delegation_that_moves_tasks_gets_a_timer(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    seal = await api.submit("seal_use", "u_wu", SEAL)
    body = {
        "delegator": "u_sun",
        "delegate": "u_zhou",
        "starts_at": "2026-11-24T09:00:00+08:00",
        "ends_at": "2026-11-25T18:00:00+08:00",
        "move_pending": True,
    }
    await api.call("POST", "/delegations", body, expect=201)
    assert [t["request_id"] for t in await api.pending("u_sun")] == [seal["id"]]  # not yet

    clock.set(sh(11, 24, 9))
    await service(api).scan_once()

    assert [t["request_id"] for t in await api.pending("u_zhou")] == [seal["id"]]


async def test_a_cancelled_future_delegation_moves_nothing(
    api: Api, org_db: Database, clock: ManualClock
) -> None:
    await api.submit("seal_use", "u_wu", SEAL)
    body = {
        "delegator": "u_sun",
        "delegate": "u_zhou",
        "starts_at": "2026-11-24T09:00:00+08:00",
        "ends_at": "2026-11-25T18:00:00+08:00",
        "move_pending": True,
    }
    _, d = await api.call("POST", "/delegations", body, expect=201)
    await api.call("DELETE", f"/delegations/{d['id']}", expect=200)  # type: ignore[index]

    clock.set(sh(11, 24, 9))
    stats = await service(api).scan_once()

    assert stats.cancelled == 1 and await api.pending("u_zhou") == []
