"""CC 抄送 and the seeds' task permissions: CC people (named, by role, picked in the form) are
told at submission and on completion, find the request in 抄送我的 and can never act on it; a
协同 participant may withdraw the flow; a 审批 participant may archive 归档 a finished request
(it leaves the active lists) and notify others 知会他人 (an FYI message and read access); a 知会
task left unanswered counts as read at its deadline, once, whatever the number of replicas.
Every new action keeps the trail and the tables in agreement (`oabot audit verify`)."""

from __future__ import annotations

import asyncio
import copy
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from sqlalchemy import select, text

from approvals import engine
from approvals.clock import ManualClock
from approvals.engine import Action, Context
from approvals.errors import ActionNotAllowed, TaskAlreadyDecided
from approvals.model import ActionKind, NoticeKind, TaskStatus
from approvals.template_loader import TemplateError, load_template_file
from bot.app import create_app
from bot.keys import TIMERS, WORKFLOW
from deadlines.timer_kinds import TimerScanner
from storage.approval_models import OutboxRow
from storage.db import Database
from storage.timer_models import TimerRow
from tests.conftest import Api, settings_for
from tests.helpers import T0, TZ, demo_org
from tests.test_workspace_request import Phone, _flash, _phone

# 吴昊 (u_wu) submits; 孙丽 (u_sun, his leader) approves; 赵敏 (u_zhao, hr_manager) is told 知会;
# 钱磊 (u_qian, finance_manager) collaborates 协同. CC: 周杰 by name, 陈静 as seal keeper, and
# whoever the form names.
MEMO = {
    "key": "memo",
    "name": "情况通报",
    "title": "{subject}",
    "fields": [
        {"key": "subject", "label": "事由", "type": "text", "required": True},
        {"key": "cc_people", "label": "抄送通知人", "type": "users"},
    ],
    "steps": [
        {"key": "review", "name": "部门审核", "approvers": [{"manager": 1}]},
        {
            "key": "fyi",
            "name": "知会人事",
            "approvers": [{"role": "hr_manager"}],
            "permission": "notify",
            "kind": "notify",
        },
        {
            "key": "collab",
            "name": "财务会办",
            "approvers": [{"role": "finance_manager"}],
            "permission": "collaborate",
        },
    ],
    "cc": [{"initiator": True}, {"user": "u_zhou"}, {"role": "seal_keeper"}, {"form_user": "cc_people"}],
}
FORM = {"subject": "机房搬迁", "cc_people": ["u_zheng"]}
ORG = demo_org()


@pytest.fixture
async def memo(org_db: Database, aiohttp_client: Any, clock: ManualClock, tmp_path: Path) -> Api:
    (tmp_path / "memo.yaml").write_text(yaml.safe_dump(MEMO, allow_unicode=True), encoding="utf-8")
    app = create_app(settings_for(org_db, templates_dir=str(tmp_path)), clock=clock)
    api = Api(await aiohttp_client(app), app)
    api.templates_dir = str(tmp_path)  # type: ignore[attr-defined]  # for a second replica
    return api


async def _submit(api: Api) -> str:
    return str((await api.submit("memo", "u_wu", FORM))["id"])


async def _outbox(db: Database, kind: str | None = None) -> list[OutboxRow]:
    async with db.session() as s:
        q = select(OutboxRow).order_by(OutboxRow.id)  # type: ignore[arg-type]
        rows = list((await s.execute(q)).scalars().all())
    return [r for r in rows if kind is None or r.kind == kind]


async def _act(api: Api, rid: str, actor: str, action: str, expect: int, **kw: Any) -> dict[str, Any]:
    _, body = await api.call(
        "POST", f"/requests/{rid}/actions", {"action": action, "actor": actor, **kw}, expect=expect
    )
    return body  # type: ignore[return-value]


async def _trail(api: Api, rid: str) -> list[dict[str, Any]]:
    _, view = await api.call("GET", f"/requests/{rid}", expect=200)
    return view["trail"]  # type: ignore[index,no-any-return]


async def _agrees(api: Api, rid: str) -> None:
    """What `oabot audit verify` checks: the seals, the chain head, and the replayed trail."""
    assert await api.app[WORKFLOW].verify_trail(rid) == {}  # type: ignore[index]


async def _page(api: Api, user: str) -> Phone:
    return await _phone(api.app, api.client, user)  # type: ignore[arg-type]


# -- CC 抄送 ------------------------------------------------------------------------------------
async def test_cc_people_by_name_role_and_form_field_are_told_at_submit_and_on_completion(
    memo: Api, org_db: Database
) -> None:
    rid = await _submit(memo)
    told = {(r.recipient, r.payload["text"].split("：")[0]) for r in await _outbox(org_db, "cc")}
    assert told == {(p, "【抄送】吴昊 提交了「情况通报」") for p in ("u_zhou", "u_chen", "u_zheng")}
    [sent] = [e for e in await _trail(memo, rid) if e["kind"] == "cc_sent"]
    assert sent["data"] == {"recipients": ["u_zhou", "u_chen", "u_zheng"], "moment": "submit"}

    await memo.decide("u_sun")
    await memo.decide("u_qian")

    finished = [r for r in await _outbox(org_db, "cc") if r.payload["status"] == "approved"]
    assert sorted(r.recipient for r in finished) == ["u_chen", "u_zheng", "u_zhou"]
    assert finished[0].payload["text"].startswith("【抄送】吴昊 的「情况通报」已通过：机房搬迁")
    assert "u_wu" not in {r.recipient for r in await _outbox(org_db, "cc")}  # hears the result once
    await _agrees(memo, rid)


def test_cc_on_says_when_cc_people_are_told_and_refuses_unknown_moments(tmp_path: Path) -> None:
    path = tmp_path / "memo.yaml"
    path.write_text(yaml.safe_dump({**MEMO, "cc_on": ["finish"]}, allow_unicode=True), encoding="utf-8")
    tpl = load_template_file(path)
    assert [m.value for m in tpl.cc_on] == ["finish"]
    out = engine.submit(
        Context(template=tpl, org=ORG, now=T0, tz=TZ), request_id="r1", initiator="u_wu", form=FORM
    )
    assert not [n for n in out.notices if n.kind == NoticeKind.CC] and out.request.readers == []
    path.write_text(yaml.safe_dump({**MEMO, "cc_on": ["later"]}, allow_unicode=True), encoding="utf-8")
    with pytest.raises(TemplateError) as caught:
        load_template_file(path)
    assert "cc_on" in str(caught.value)


async def test_cc_sees_the_request_in_cc_list_and_its_page_but_cannot_act(memo: Api) -> None:
    rid = await _submit(memo)
    zheng = await _page(memo, "u_zheng")
    _, listed = await zheng.get("/m/cc")
    assert f"/m/r/{rid}" in listed and "机房搬迁" in listed
    status, page = await zheng.get(f"/m/r/{rid}")
    assert status == 200 and "您是本申请的抄送人" in page
    assert 'class="box ws-sheet"' not in page  # no action sheet at all
    refused = "您是这条申请的抄送人（或被知会人），只能查看，不能办理"
    assert _flash(await zheng.act(rid, "comment", comment="收到")) == refused
    assert _flash(await zheng.act(rid, "withdraw")) == refused
    [task] = await memo.pending("u_sun")
    body = await _act(memo, rid, "u_zheng", "approve", 403, task_id=task["task_id"], version=task["version"])
    assert body["message"] == refused
    assert [t["task_id"] for t in await memo.pending("u_sun")] == [task["task_id"]]  # nothing changed


# -- 协同 withdraws ------------------------------------------------------------------------------
async def test_a_collaborate_participant_withdraws_and_others_are_refused(
    memo: Api, org_db: Database
) -> None:
    rid = await _submit(memo)
    body = await _act(memo, rid, "u_li", "withdraw", 403)  # a stranger
    assert body["message"] == "只有发起人或当前协同、审批人可以撤销申请"
    await memo.decide("u_sun")
    body = await _act(memo, rid, "u_zhao", "withdraw", 403)  # holds a 知会 task: reads only
    assert body["message"] == "只有发起人或当前协同、审批人可以撤销申请"

    done = await _act(memo, rid, "u_qian", "withdraw", 200, comment="重复提交")

    assert done["status"] == "withdrawn"
    [ended] = [e for e in await _trail(memo, rid) if e["kind"] == "request_withdrawn"]
    assert (ended["actor"], ended["comment"]) == ("u_qian", "重复提交")
    results = [r for r in await _outbox(org_db, "result") if r.recipient == "u_wu"]
    assert results[-1].payload["text"] == "您的「情况通报」：机房搬迁已撤销（钱磊），意见：重复提交"
    await _agrees(memo, rid)


# -- 审批 archives ------------------------------------------------------------------------------
async def test_an_approve_participant_archives_a_finished_request_out_of_the_active_lists(
    memo: Api, org_db: Database
) -> None:
    rid = await _submit(memo)
    sun = await _page(memo, "u_sun")
    await memo.decide("u_sun")
    assert _flash(await sun.act(rid, "archive")) == "申请尚未结束（审批中），结束后才能归档"
    await memo.decide("u_qian")  # approved; 赵敏's 知会 task is still open
    assert _flash(await (await _page(memo, "u_wu")).act(rid, "archive")) == "只有参与审批的人或管理员可以归档"
    await _act(memo, rid, "u_zhou", "archive", 403)  # CC: reads only
    _, before = await sun.get("/m/done")
    assert f"/m/r/{rid}" in before

    assert _flash(await sun.act(rid, "archive", comment="已办结")) == "已归档"

    _, done = await sun.get("/m/done")
    _, archived = await sun.get("/m/done?archived=1")
    _, mine = await (await _page(memo, "u_wu")).get("/m/mine")
    assert f"/m/r/{rid}" not in done and f"/m/r/{rid}" in archived and f"/m/r/{rid}" not in mine
    [row] = [e for e in await _trail(memo, rid) if e["kind"] == "archived"]
    assert (row["actor"], row["comment"]) == ("u_sun", "已办结")
    _, view = await memo.call("GET", f"/requests/{rid}", expect=200)
    assert view["archived_by"] == "u_sun" and view["status"] == "approved"  # type: ignore[index]
    zhao_task = [t for s in view["steps"] for t in s["tasks"] if t["assignee"] == "u_zhao"]  # type: ignore[index]
    assert zhao_task[0]["status"] == TaskStatus.CLOSED.value
    closed = [r for r in await _outbox(org_db, "card_closed") if r.recipient == "u_zhao"]
    assert "申请已由孙丽归档" in str(closed[-1].payload)
    status, page = await sun.get(f"/m/r/{rid}")
    assert status == 200 and "归档，只能查看" in page and 'class="box ws-sheet"' not in page
    body = await _act(memo, rid, "u_sun", "comment", 409, comment="再看看")
    assert body["message"] == "申请已归档，只能查看，不能再操作"
    await _agrees(memo, rid)


# -- 审批 notifies others -----------------------------------------------------------------------
async def test_an_approve_participant_notifies_others_who_then_may_read_it(
    memo: Api, org_db: Database
) -> None:
    rid = await _submit(memo)
    wang = await _page(memo, "u_wang")
    assert (await wang.get(f"/m/r/{rid}"))[0] == 403
    await _act(memo, rid, "u_wu", "notify_others", 403, targets=["u_wang"])  # the initiator approves nothing
    await _act(memo, rid, "u_zhou", "notify_others", 403, targets=["u_wang"])  # CC
    await _act(memo, rid, "u_sun", "notify_others", 422, targets=["u_nobody"])

    sun = await _page(memo, "u_sun")
    flash = _flash(await sun.act(rid, "notify_others", targets=["u_wang", "u_liu"], comment="请关注进度"))

    assert flash == "已知会：王芳、刘强"
    fyi = await _outbox(org_db, "fyi")
    assert sorted(r.recipient for r in fyi) == ["u_liu", "u_wang"]
    assert fyi[0].payload["text"].startswith("【知会】孙丽 请您知悉 吴昊 的「情况通报」（审批中）：机房搬迁")
    assert "附言：请关注进度" in fyi[0].payload["text"]
    status, page = await wang.get(f"/m/r/{rid}")
    assert status == 200 and "您是本申请的抄送人（或被知会人）" in page
    assert f"/m/r/{rid}" in (await wang.get("/m/cc"))[1]
    [row] = [e for e in await _trail(memo, rid) if e["kind"] == "others_notified"]
    assert (row["actor"], row["data"]["recipients"], row["comment"]) == (
        "u_sun",
        ["u_wang", "u_liu"],
        "请关注进度",
    )
    await _act(memo, rid, "u_wang", "comment", 403, comment="好")  # read access only
    again = _flash(await sun.act(rid, "notify_others", targets=["u_wang", "u_liu"]))  # a double tap
    assert again == "所选的人都已收到过抄送或知会，无需重复知会"
    assert len(await _outbox(org_db, "fyi")) == 2
    await _agrees(memo, rid)


# -- 知会 defaults to read at its deadline ------------------------------------------------------
def _scan(api: Api) -> TimerScanner:
    return api.app[TIMERS]  # type: ignore[index,no-any-return]


async def test_a_notify_task_defaults_to_read_at_its_deadline_once_with_two_replicas(
    memo: Api, org_db: Database, aiohttp_client: Any, clock: ManualClock
) -> None:
    rid = await _submit(memo)
    await memo.decide("u_sun")
    [task] = await memo.pending("u_zhao")
    assert task["due_at"] is not None
    other_app: web.Application = create_app(
        settings_for(org_db, templates_dir=memo.templates_dir),  # type: ignore[attr-defined]
        clock=clock,
    )
    other = Api(await aiohttp_client(other_app), other_app)
    clock.set(clock.now() + timedelta(minutes=1))
    await asyncio.gather(_scan(memo).scan_once(), _scan(other).scan_once())
    assert [t["task_id"] for t in await memo.pending("u_zhao")] == [task["task_id"]]  # not due yet

    clock.set(task_due(task) + timedelta(seconds=1))
    await asyncio.gather(_scan(memo).scan_once(), _scan(other).scan_once())
    await asyncio.gather(_scan(memo).scan_once(), _scan(other).scan_once())

    _, view = await memo.call("GET", f"/requests/{rid}", expect=200)
    [held] = [t for s in view["steps"] for t in s["tasks"] if t["id"] == task["task_id"]]  # type: ignore[index]
    assert (held["status"], held["decided_by"]) == ("acknowledged", "system")
    defaulted = [e for e in await _trail(memo, rid) if e["kind"] == "acknowledged_by_default"]
    assert len(defaulted) == 1 and defaulted[0]["actor"] == "system"
    assert not [e for e in await _trail(memo, rid) if e["kind"] == "acknowledged"]  # not a person's 已收到
    closed = [r for r in await _outbox(org_db, "card_closed") if r.recipient == "u_zhao"]
    assert len(closed) == 1 and "默认已读" in str(closed[0].payload)
    async with org_db.session() as s:
        q = select(TimerRow).where(TimerRow.kind == "notify_default")  # type: ignore[arg-type]
        timers = list((await s.execute(q)).scalars().all())
    assert [t.status for t in timers] == ["done"]
    page = (await (await _page(memo, "u_wu")).get(f"/m/r/{rid}"))[1]
    assert "默认已读" in page
    await _agrees(memo, rid)


async def test_a_notify_task_from_before_the_timers_gets_one_at_start(memo: Api, org_db: Database) -> None:
    await _submit(memo)
    await memo.decide("u_sun")
    async with org_db.transaction() as s:
        await s.execute(text("DELETE FROM timers WHERE kind = 'notify_default'"))
    await _scan(memo).seed()
    await _scan(memo).seed()
    async with org_db.session() as s:
        q = select(TimerRow).where(TimerRow.kind == "notify_default")  # type: ignore[arg-type]
        rows = list((await s.execute(q)).scalars().all())
    [task] = await memo.pending("u_zhao")
    assert [(r.task_id, r.status) for r in rows] == [(task["task_id"], "pending")]


def task_due(task: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(task["due_at"])


async def test_a_notify_task_acknowledged_in_time_is_not_defaulted(
    memo: Api, org_db: Database, clock: ManualClock
) -> None:
    rid = await _submit(memo)
    await memo.decide("u_sun")
    [task] = await memo.pending("u_zhao")
    await memo.decide("u_zhao", "acknowledge")
    clock.set(task_due(task) + timedelta(minutes=5))
    await _scan(memo).scan_once()
    kinds = [e["kind"] for e in await _trail(memo, rid)]
    assert "acknowledged" in kinds and "acknowledged_by_default" not in kinds
    await _agrees(memo, rid)


async def test_unacknowledged_notify_tasks_stay_in_the_digest_after_approval(
    memo: Api, org_db: Database, clock: ManualClock
) -> None:
    await _submit(memo)
    await memo.decide("u_sun")
    await memo.decide("u_qian")  # approved; 赵敏 has not confirmed her 知会 yet
    now = clock.now()
    clock.set(now.replace(hour=7, minute=30, second=0))  # 15:30 in Shanghai, the same day

    await _scan(memo).scan_once()

    [sent] = [r for r in await _outbox(org_db, "digest") if r.recipient == "u_zhao"]
    assert "[知会，请确认已收到]「情况通报」机房搬迁" in sent.payload["text"]


# -- the trail and the tables ------------------------------------------------------------------
async def test_audit_notices_a_reader_or_an_archive_mark_changed_in_the_tables(
    memo: Api, org_db: Database
) -> None:
    rid = await _submit(memo)
    await memo.decide("u_sun")
    await memo.decide("u_qian")
    await _act(memo, rid, "u_sun", "archive", 200)
    await _agrees(memo, rid)
    async with org_db.transaction() as s:
        await s.execute(text("DELETE FROM approval_readers WHERE user_id = 'u_zheng'"))
        await s.execute(text("UPDATE approval_requests SET archived_at = NULL"))
    found = (await memo.app[WORKFLOW].verify_trail(rid))[rid]  # type: ignore[index]
    assert any(p.startswith("replay: archived: the trail says True") for p in found)
    assert any(p.startswith("replay: readers: the trail says ['u_chen', 'u_zheng', 'u_zhou']") for p in found)


def test_the_engine_defaults_only_a_pending_notify_task_and_changes_nothing_otherwise(
    tmp_path: Path,
) -> None:
    path = tmp_path / "memo.yaml"
    path.write_text(yaml.safe_dump(MEMO, allow_unicode=True), encoding="utf-8")
    ctx = Context(template=load_template_file(path), org=ORG, now=T0, tz=TZ)
    req = engine.submit(ctx, request_id="r1", initiator="u_wu", form=FORM).request
    [review] = req.pending_tasks()
    before = copy.deepcopy(req)
    with pytest.raises(ActionNotAllowed):
        engine.default_acknowledge(ctx, req, review.id)  # an approval task is never defaulted
    assert req == before
    engine.act(
        ctx, req, Action(kind=ActionKind.APPROVE, actor="u_sun", task_id=review.id, version=review.version)
    )
    [fyi] = [t for t in req.pending_tasks() if t.assignee == "u_zhao"]
    out = engine.default_acknowledge(ctx, req, fyi.id)
    assert fyi.status == TaskStatus.ACKNOWLEDGED and fyi.decided_by == "system"
    assert [e.kind for e in out.events] == [engine.ACKNOWLEDGED_BY_DEFAULT]
    assert [(n.kind, n.data["outcome"]) for n in out.notices] == [(NoticeKind.CARD_CLOSED, "defaulted")]
    with pytest.raises(TaskAlreadyDecided):
        engine.default_acknowledge(ctx, req, fyi.id)  # a second firing changes nothing
