"""督办 through the service: the ladder's card reaches the manager with its actions, a tap on
催办 in the console urges (once per 30 minutes), the 转交 person picker moves the task, the
team's overdue list offers the same actions, and wrong people, stale cards and bad input get a
clear answer and change nothing."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from aiohttp import web

from approvals.clock import ManualClock
from approvals.model import TaskStatus
from bot.app import create_app
from bot.keys import DISPATCHER, SESSIONS, TIMERS, WORKFLOW
from storage.console_models import ConsoleMessageRow
from storage.db import Database
from tests.conftest import settings_for
from tests.test_console import _messages
from tests.test_workspace_request import LEAVE, SEAL, Phone

FORM = re.compile(r'<form method=post action="/console/u/(\w+)/tap">(.*?)</form>', re.S)


async def _app(db: Database, aiohttp_client: Any, clock: ManualClock) -> tuple[web.Application, Any]:
    app = create_app(settings_for(db, console=True), clock=clock)
    return app, await aiohttp_client(app)


async def _overdue(app: web.Application, clock: ManualClock) -> tuple[str, str, int]:
    """A seal request whose first task (孙丽's) is a day late, its rungs fired and delivered."""
    req = await app[WORKFLOW].submit(template_key="seal_use", initiator="u_wu", form=SEAL)
    task = req.steps[0].tasks[0]
    clock.advance(timedelta(days=1))  # Tuesday 10:00
    await app[TIMERS].scan_once()
    await app[DISPATCHER].drain()
    return req.id, task.id, task.version


async def _phone(app: web.Application, client: Any, user: str) -> Phone:
    return Phone(client, app, await app[SESSIONS].start(user, via="test"))


def _supervise_card(rows: list[ConsoleMessageRow]) -> ConsoleMessageRow:
    return next(m for m in rows if m.kind == "supervise")


async def test_the_managers_console_card_has_the_actions_and_urging_twice_in_30_minutes_changes_nothing(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    _, task_id, _ = await _overdue(app, clock)

    card = _supervise_card(await _messages(org_db, "u_li"))
    assert [b["label"] for b in card.payload["card"]["buttons"]] == [
        "催办",
        "转交",
        "查看",
    ]  # seal: no 代为处理
    html = await (await client.get("/console/u/u_li")).text()
    taps = [dict(re.findall(r'name=(\w+) value="([^"]*)"', f)) for _, f in FORM.findall(html)]
    urge = next(t for t in taps if t["action"] == "supervise_urge" and t["task_id"] == task_id)
    assert 'data-action="reassign" href="http://' in html  # 转交 opens the picker

    await client.post("/console/u/u_li/tap", data=urge, allow_redirects=False)
    await client.post("/console/u/u_li/tap", data={**urge, "event_id": "again"}, allow_redirects=False)
    await app[DISPATCHER].drain()

    urges = [m.text for m in await _messages(org_db, "u_sun") if m.kind == "urge"]
    assert len(urges) == 1 and urges[0].startswith("【催办】")
    replies = [m.text for m in await _messages(org_db, "u_li") if m.kind == "text"]
    assert replies[0] == "已催办孙丽，对方会收到提醒。"
    assert replies[1].startswith("每条待办 30 分钟内只能催办一次") and replies[1].endswith(
        "您的点击没有产生任何变更。"
    )
    trail = (await app[WORKFLOW].get(card.request_id or "")).trail or []
    assert [(e.kind, e.actor) for e in trail if e.kind == "urged"] == [("urged", "u_li")]


async def test_the_picker_moves_the_task_to_the_chosen_person_with_a_trail_entry_and_a_card(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    request_id, task_id, version = await _overdue(app, clock)
    li = await _phone(app, client, "u_li")

    status, page = await li.get(f"/m/s/{task_id}/{version}")
    assert status == 200
    people = re.findall(r"name=target value=\"(\w+)\"", page)
    assert "u_zhao" in people and "u_sun" not in people and "u_zhang" not in people and "u_li" not in people
    assert "当前处理人" in page and "孙丽" in page and "已超时" in page

    status, page = await li.post(f"/m/s/{task_id}/{version}", {"do": "transfer", "target": "u_zhao"})
    assert status == 200 and "已转交给赵敏" in page and "督办转交：赵敏" in page  # the request page's trail
    view = await app[WORKFLOW].get(request_id)
    assert [(t.assignee, t.status) for t in view.steps[0].tasks] == [
        ("u_sun", TaskStatus.TRANSFERRED),
        ("u_zhao", TaskStatus.PENDING),
    ]
    await app[DISPATCHER].drain()
    assert any(m.kind == "task_card" for m in await _messages(org_db, "u_zhao"))

    # The same card again: the page says it is out of date, a post changes nothing.
    status, page = await li.get(f"/m/s/{task_id}/{version}")
    assert status == 200 and "这张督办卡片已过期" in page and "确认转交" not in page
    status, page = await li.post(f"/m/s/{task_id}/{version}", {"do": "transfer", "target": "u_qian"})
    assert "ws-flash bad" in page
    assert len((await app[WORKFLOW].get(request_id)).steps[0].tasks) == 2


async def test_wrong_people_and_bad_input_get_clear_answers_and_change_nothing(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    request_id, task_id, version = await _overdue(app, clock)
    before = (await app[WORKFLOW].get(request_id)).version
    li = await _phone(app, client, "u_li")

    status, page = await (await _phone(app, client, "u_zhou")).get(f"/m/s/{task_id}/{version}")
    assert status == 403 and "只有孙丽的上级领导或管理员可以督办" in page
    status, _ = await (await _phone(app, client, "u_zhou")).post(
        f"/m/s/{task_id}/{version}", {"do": "transfer", "target": "u_zheng"}
    )
    assert status == 403
    assert (await li.get(f"/m/s/{task_id}/x"))[0] == 404
    assert (await li.get(f"/m/s/{request_id}-99/1"))[0] == 404
    status, page = await li.post(f"/m/s/{task_id}/{version}", {"do": "transfer"})
    assert "请先选择要转交的人" in page
    status, page = await li.post(f"/m/s/{task_id}/{version}", {"do": "transfer", "target": "u_zhang"})
    assert "张伟 不在您管理的团队中" in page
    status, page = await li.post(f"/m/s/{task_id}/{version}", {"do": "take_over"})
    assert "该模板不允许上级代为处理" in page
    status, _ = await li.post(f"/m/s/{task_id}/{version}", {"do": "urge"}, csrf="forged")
    assert status in (400, 403)

    assert (await app[WORKFLOW].get(request_id)).version == before


async def test_the_team_overdue_list_offers_every_action_per_item(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    request_id, task_id, version = await _overdue(app, clock)

    status, page = await (await _phone(app, client, "u_li")).get("/m/s/")
    assert status == 200 and "您的团队有 1 条待办已超时" in page
    assert f'href="/m/s/{task_id}/{version}">转交' in page and f'href="/m/r/{request_id}">查看' in page
    status, page = await (await _phone(app, client, "u_li")).post(
        f"/m/s/{task_id}/{version}", {"do": "urge", "back": "list"}
    )
    assert status == 200 and "已催办孙丽" in page and "您的团队有 1 条待办已超时" in page
    status, page = await (await _phone(app, client, "u_zheng")).get("/m/s/")
    assert status == 200 and "您的团队目前没有超时的待办" in page


async def test_a_manager_may_open_the_request_page_of_a_task_their_team_holds(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    request_id, _, _ = await _overdue(app, clock)
    assert (await (await _phone(app, client, "u_li")).get(f"/m/r/{request_id}"))[0] == 200  # 查看
    assert (await (await _phone(app, client, "u_zhou")).get(f"/m/r/{request_id}"))[0] == 403


async def test_a_configured_person_gets_the_escalation_past_the_top_and_may_act_on_it(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app = create_app(settings_for(org_db, console=True, escalate_to="u_qian"), clock=clock)
    client = await aiohttp_client(app)
    req = await app[WORKFLOW].submit(template_key="seal_use", initiator="u_sun", form=SEAL)
    task = req.steps[0].tasks[0]
    assert task.assignee == "u_li"  # above 李娜 only 张伟: her escalation runs past the top
    clock.advance(timedelta(days=1, hours=1))  # Tuesday 11:00: past the escalation rung (10:30)
    await app[TIMERS].scan_once()
    await app[DISPATCHER].drain()

    told = [m for m in await _messages(org_db, "u_qian") if m.kind == "escalate"]
    assert len(told) == 1 and told[0].payload["card"]["title"].startswith("督办（无上级）")
    assert not [m for m in await _messages(org_db, "u_zhao") if m.kind == "escalate"]  # not the office role
    trail = (await app[WORKFLOW].get(req.id)).trail or []
    assert [(e.after, e.data.get("to_office")) for e in trail if e.kind == "escalated"] == [("u_qian", True)]
    # 钱磊 is no manager of 李娜, but the configured person may act on what reaches them.
    status, page = await (await _phone(app, client, "u_qian")).post(
        f"/m/s/{task.id}/{task.version}", {"do": "urge"}
    )
    assert status == 200 and "已催办李娜" in page, page[-600:]


async def test_a_manager_takes_a_leave_request_over_from_the_card_and_decides_it_for_the_assignee(
    org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    app, client = await _app(org_db, aiohttp_client, clock)
    req = await app[WORKFLOW].submit(template_key="leave", initiator="u_wu", form=LEAVE)
    clock.advance(timedelta(days=1))
    await app[TIMERS].scan_once()
    await app[DISPATCHER].drain()

    html = await (await client.get("/console/u/u_li")).text()
    taps = [dict(re.findall(r'name=(\w+) value="([^"]*)"', f)) for _, f in FORM.findall(html)]
    take = next(t for t in taps if t["action"] == "take_over")
    await client.post("/console/u/u_li/tap", data=take, allow_redirects=False)
    await client.post("/console/u/u_li/tap", data={**take, "event_id": "again"}, allow_redirects=False)
    await app[DISPATCHER].drain()

    li = await _messages(org_db, "u_li")
    replies = [m.text for m in li if m.kind == "text"]
    assert replies[0].startswith("已代孙丽处理") and replies[1].startswith("这条待办已有变化")
    card = next(m for m in li if m.kind == "task_card")
    assert card.payload["card"]["acting_for_label"] == "代孙丽审批"
    sun_card = next(m for m in await _messages(org_db, "u_sun") if m.kind == "task_card")
    assert sun_card.closed and sun_card.outcome.startswith("已由李娜代为处理")

    html = await (await client.get("/console/u/u_li")).text()
    approve = next(
        dict(re.findall(r'name=(\w+) value="([^"]*)"', f))
        for _, f in FORM.findall(html)
        if 'value="approve"' in f
    )
    await client.post("/console/u/u_li/tap", data=approve, allow_redirects=False)
    trail = (await app[WORKFLOW].get(req.id)).trail or []
    assert [(e.kind, e.actor, e.acting_for) for e in trail if e.kind in ("taken_over", "approved")] == [
        ("taken_over", "u_li", "u_sun"),
        ("approved", "u_li", "u_sun"),
    ]
