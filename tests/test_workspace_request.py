"""The workspace request page: who may open it, what it shows, every action through it (with
CSRF), stale taps, resubmitting after a return, and starting a request with a route preview."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from approvals.clock import ManualClock
from approvals.model import RequestStatus, TaskStatus
from bot.app import create_app
from bot.keys import SESSIONS, WORKFLOW
from org.loader import load_org_file
from services.approval_views import RequestView
from services.workspace import can_view
from storage.db import Database
from storage.org_repo import import_org
from tests.conftest import DEMO_ORG, settings_for

SEAL = {
    "seal": "公章",
    "reason": "签署框架合同",
    "needed_at": "2026-11-24T10:00:00+08:00",
    "files": ["框架合同.pdf", "补充协议.pdf"],
    "copies": 2,
    "take_out": False,
}
LEAVE = {
    "leave_type": "事假",
    "period": {"start": "2026-11-24", "end": "2026-11-24"},
    "days": 1,
    "reason": "家事",
}
CODES = re.compile(r">[^<]*\b(step_started|running|approved|pending|returned|task_assigned|seal_use)\b[^<]*<")


class Phone:
    """One person's browser: their session cookie, CSRF token and a cookie jar for messages."""

    def __init__(self, client: Any, app: web.Application, session: Any) -> None:
        self.client, self.app, self.session = client, app, session
        self.headers = {"Cookie": f"oabot_session={session.id}"}

    async def get(self, path: str) -> tuple[int, str]:
        resp = await self.client.get(path, headers=self.headers)
        return resp.status, await resp.text()

    async def post(self, path: str, data: dict[str, Any], *, csrf: str | None = "ok") -> tuple[int, str]:
        body = {**data}
        if csrf == "ok":
            body["csrf"] = self.session.csrf
        elif csrf is not None:
            body["csrf"] = csrf
        resp = await self.client.post(path, data=body, headers=self.headers, allow_redirects=False)
        if resp.status == 303:
            return await self.get(resp.headers["Location"])
        return resp.status, await resp.text()

    async def act(self, request_id: str, action: str, **fields: Any) -> str:
        status, page = await self.post(f"/m/r/{request_id}/act", {"action": action, **fields})
        assert status == 200, page
        return page


async def _app(
    db: Database, aiohttp_client: Any, clock: ManualClock, **settings: object
) -> tuple[web.Application, Any]:
    app = create_app(settings_for(db, **settings), clock=clock)
    return app, await aiohttp_client(app)


async def _phone(app: web.Application, client: Any, user: str) -> Phone:
    return Phone(client, app, await app[SESSIONS].start(user, via="test"))


async def _seal(app: web.Application) -> RequestView:
    return await app[WORKFLOW].submit(template_key="seal_use", initiator="u_wu", form=SEAL)


async def _task(app: web.Application, request_id: str, user: str) -> tuple[str, int]:
    view = await app[WORKFLOW].get(request_id)
    for s in view.steps:
        for t in s.tasks:
            if t.assignee == user and t.status == TaskStatus.PENDING:
                return t.id, t.version
    raise AssertionError(f"{user} has no pending task on {request_id}")


def _flash(page: str) -> str:
    found = re.search(r'class="box ws-flash" role=status>([^<]*)<', page)
    return found.group(1) if found else ""


# -- page content and access ---------------------------------------------------------------
async def test_request_page_shows_what_a_decision_needs(org_db, aiohttp_client, clock):
    app, client = await _app(org_db, aiohttp_client, clock)
    req = await _seal(app)
    clock.advance(timedelta(hours=2, minutes=5))
    status, page = await (await _phone(app, client, "u_sun")).get(f"/m/r/{req.id}")
    assert status == 200
    for words in (
        "印章名称",
        "公章",
        "用印文件",
        "<li>框架合同.pdf</li>",
        "<li>补充协议.pdf</li>",
        "印章带出",
        "否",
    ):
        assert words in page, words
    assert "2026-11-24 10:00" in page  # the datetime field in the org's time zone
    assert "办结期限" in page and "一般" in page and "审批中" in page
    assert "直属领导审批" in page and "总经理审批" in page and "张伟" in page
    assert "孙丽</b> 处理「直属领导审批」，已等待 2 小时 5 分钟" in page
    assert "提交" in page and "进入步骤：直属领导审批" in page
    assert "同意" in page and "驳回" in page and "退回" in page and "转交" in page and "加签" in page
    assert not CODES.search(page), CODES.search(page)


async def test_only_people_with_a_reason_can_open_a_request(org_db, aiohttp_client, clock):
    org = load_org_file(DEMO_ORG)
    org.users["u_zheng"] = dataclasses.replace(org.users["u_zheng"], roles=("admin",))
    async with org_db.transaction() as s:
        await import_org(s, org, now=clock.now())
    app, client = await _app(org_db, aiohttp_client, clock)
    seal = await _seal(app)
    leave = await app[WORKFLOW].submit(template_key="leave", initiator="u_wu", form=LEAVE)
    await app[WORKFLOW].create_delegation(
        delegator="u_sun", delegate="u_qian", starts_at=clock.now(), ends_at=clock.now() + timedelta(days=2)
    )
    for user in ("u_wu", "u_sun", "u_qian", "u_zheng"):  # initiator, assignee, delegate, admin
        status, _ = await (await _phone(app, client, user)).get(f"/m/r/{seal.id}")
        assert status == 200, user
    page = (await (await _phone(app, client, "u_qian")).get(f"/m/r/{seal.id}"))[1]
    assert "「直属领导审批」等待您处理（代 孙丽）" in page  # the delegate may act for 孙丽
    page = (await (await _phone(app, client, "u_zheng")).get(f"/m/r/{seal.id}"))[1]
    assert "终止流程" in page and "评论" in page and "ws-task-head" not in page  # the admin
    status, page = await (await _phone(app, client, "u_liu")).get(f"/m/r/{seal.id}")
    assert status == 403 and "您无权查看" in page
    assert (await (await _phone(app, client, "u_zhao")).get(f"/m/r/{leave.id}"))[0] == 200  # cc'd (HR)
    assert (await (await _phone(app, client, "u_zhou")).get(f"/m/r/{leave.id}"))[0] == 403
    assert (await (await _phone(app, client, "u_zhou")).get("/m/r/nope"))[0] == 404


async def test_an_anonymous_visitor_is_sent_to_sign_in(org_db, aiohttp_client, clock):
    app, client = await _app(org_db, aiohttp_client, clock)
    req = await _seal(app)
    resp = await client.get(f"/m/r/{req.id}", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/m/sign-in?next=/m/r/")


def test_can_view_names_each_kind_of_reason():
    org = load_org_file(DEMO_ORG)
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    view = RequestView.model_validate(
        {
            "id": "r1",
            "template": "seal_use",
            "title": "t",
            "status": "running",
            "urgency": "normal",
            "initiator": "u_wu",
            "initiator_name": "吴昊",
            "form": {},
            "round": 1,
            "version": 1,
            "created_at": now,
            "finished_at": None,
            "deadline": now,
            "steps": [],
        }
    )
    kw: dict[str, Any] = {"delegations": [], "admin_roles": ("admin",), "now": now}
    assert can_view(view, org.users["u_wu"], cc=set(), **kw)
    assert can_view(view, org.users["u_zhao"], cc={"u_zhao"}, **kw)
    assert not can_view(view, org.users["u_zhao"], cc=set(), **kw)
    assert can_view(view, org.users["u_zhang"], cc=set(), **{**kw, "admin_roles": ("gm",)})


# -- actions -------------------------------------------------------------------------------
async def test_approve_with_an_opinion_then_a_second_tap_says_already_handled(org_db, aiohttp_client, clock):
    app, client = await _app(org_db, aiohttp_client, clock)
    req = await _seal(app)
    sun = await _phone(app, client, "u_sun")
    task_id, version = await _task(app, req.id, "u_sun")
    page = await sun.act(req.id, "approve", task_id=task_id, version=version, comment="同意用章")
    assert _flash(page) == "已提交：同意"
    assert "同意用章" in page
    page = await sun.act(req.id, "approve", task_id=task_id, version=version)
    assert _flash(page).startswith("已处理：")


async def test_a_stale_version_gets_the_card_answer(org_db, aiohttp_client, clock):
    app, client = await _app(org_db, aiohttp_client, clock)
    req = await _seal(app)
    task_id, version = await _task(app, req.id, "u_sun")
    page = await (await _phone(app, client, "u_sun")).act(
        req.id, "approve", task_id=task_id, version=version + 5
    )
    assert _flash(page).startswith("已处理：卡片已过期")
    assert (await app[WORKFLOW].get(req.id)).status == RequestStatus.RUNNING


async def test_a_post_without_the_right_csrf_token_is_refused(org_db, aiohttp_client, clock):
    app, client = await _app(org_db, aiohttp_client, clock)
    req = await _seal(app)
    sun = await _phone(app, client, "u_sun")
    task_id, version = await _task(app, req.id, "u_sun")
    data = {"action": "approve", "task_id": task_id, "version": version}
    assert (await sun.post(f"/m/r/{req.id}/act", data, csrf=None))[0] == 403
    assert (await sun.post(f"/m/r/{req.id}/act", data, csrf="forged"))[0] == 403
    assert (await sun.post("/m/new/seal_use", {"do": "submit"}, csrf=None))[0] == 403
    assert (await app[WORKFLOW].get(req.id)).status == RequestStatus.RUNNING


async def test_reject_needs_a_reason(org_db, aiohttp_client, clock):
    app, client = await _app(org_db, aiohttp_client, clock)
    req = await _seal(app)
    sun = await _phone(app, client, "u_sun")
    task_id, version = await _task(app, req.id, "u_sun")
    assert 'data-confirm="确定驳回' in (await sun.get(f"/m/r/{req.id}"))[1]
    page = await sun.act(req.id, "reject", task_id=task_id, version=version, comment=" ")
    assert _flash(page) == "驳回需要填写理由"
    page = await sun.act(req.id, "reject", task_id=task_id, version=version, comment="预算不足")
    assert _flash(page) == "已驳回" and "已驳回" in page
    assert (await app[WORKFLOW].get(req.id)).status == RequestStatus.REJECTED


async def test_return_to_an_earlier_step_transfer_and_add_signer(org_db, aiohttp_client, clock):
    app, client = await _app(org_db, aiohttp_client, clock)
    req = await _seal(app)
    sun, wang = await _phone(app, client, "u_sun"), await _phone(app, client, "u_wang")
    task_id, version = await _task(app, req.id, "u_sun")
    await sun.act(req.id, "approve", task_id=task_id, version=version)
    task_id, version = await _task(app, req.id, "u_wang")
    page = (await wang.get(f"/m/r/{req.id}"))[1]
    assert '<option value="initiator">发起人</option><option value="0">直属领导审批</option>' in page
    page = await wang.act(req.id, "return", task_id=task_id, version=version, target="0", comment="请补充")
    assert _flash(page) == "已退回" and "王芳 退回到「直属领导审批」" in page
    task_id, version = await _task(app, req.id, "u_sun")
    await sun.act(req.id, "approve", task_id=task_id, version=version)
    task_id, version = await _task(app, req.id, "u_wang")
    page = await wang.act(
        req.id, "transfer", task_id=task_id, version=version, target="u_zhao", comment="请代审"
    )
    assert _flash(page) == "已转交" and "转交：赵敏" in page
    zhao = await _phone(app, client, "u_zhao")
    task_id, version = await _task(app, req.id, "u_zhao")
    page = await zhao.act(
        req.id, "add_signer", task_id=task_id, version=version, target="u_qian", position="before"
    )
    assert _flash(page) == "已加签" and "前加签：钱磊" in page
    assert "钱磊</b> 处理「印章管理部门负责人审批」" in page


async def test_initiator_urges_comments_and_withdraws(org_db, aiohttp_client, clock):
    app, client = await _app(org_db, aiohttp_client, clock)
    req = await _seal(app)
    wu = await _phone(app, client, "u_wu")
    page = (await wu.get(f"/m/r/{req.id}"))[1]
    assert "催办" in page and "撤销申请" in page and "评论" in page and "ws-task-head" not in page
    assert _flash(await wu.act(req.id, "urge", comment="明天要用")) == "已催办：孙丽"
    assert _flash(await wu.act(req.id, "urge")).startswith("每条待办 30 分钟内只能催办一次")
    page = await wu.act(req.id, "comment", comment="合同已定稿")
    assert _flash(page) == "已发表评论" and "合同已定稿" in page
    page = await wu.act(req.id, "withdraw", comment="不用了")
    assert _flash(page) == "已撤销" and (await app[WORKFLOW].get(req.id)).status == RequestStatus.WITHDRAWN
    assert "撤销申请" not in page


async def test_assignee_may_terminate_and_cc_may_not_act(org_db, aiohttp_client, clock):
    # HR is cc'd on leave; with the office role elsewhere HR is no org admin here
    app, client = await _app(org_db, aiohttp_client, clock, office_role="office")
    req = await app[WORKFLOW].submit(template_key="leave", initiator="u_wu", form=LEAVE)
    zhao = await _phone(app, client, "u_zhao")
    page = (await zhao.get(f"/m/r/{req.id}"))[1]
    assert "终止流程" not in page and "评论" not in page  # cc'd: reads only
    assert _flash(await zhao.act(req.id, "terminate")) == "只有管理员或当前审批人可以终止申请"
    sun = await _phone(app, client, "u_sun")
    assert "终止流程" in (await sun.get(f"/m/r/{req.id}"))[1]
    assert _flash(await sun.act(req.id, "terminate", comment="重复提交")) == "已终止"


async def test_a_stranger_cannot_act_through_the_page(org_db, aiohttp_client, clock):
    app, client = await _app(org_db, aiohttp_client, clock)
    req = await _seal(app)
    task_id, version = await _task(app, req.id, "u_sun")
    status, page = await (await _phone(app, client, "u_zhou")).post(
        f"/m/r/{req.id}/act", {"action": "approve", "task_id": task_id, "version": version}
    )
    assert status == 403 and "您无权" in page


async def test_notify_tasks_are_acknowledged(org_db, aiohttp_client, clock):
    app, client = await _app(org_db, aiohttp_client, clock)
    req = await _seal(app)
    sun = await _phone(app, client, "u_sun")
    task_id, version = await _task(app, req.id, "u_sun")
    await sun.act(
        req.id, "add_signer", task_id=task_id, version=version, target="u_zhou", position="alongside"
    )
    task_id, version = await _task(app, req.id, "u_zhou")
    page = await (await _phone(app, client, "u_zhou")).act(
        req.id, "approve", task_id=task_id, version=version, comment="看过"
    )
    assert _flash(page) == "已提交：同意"


async def test_opinion_required_steps_refuse_an_empty_approval(org_db, aiohttp_client, clock, monkeypatch):
    app, client = await _app(org_db, aiohttp_client, clock)
    req = await _seal(app)
    monkeypatch.setattr("services.workspace.opinion_required", lambda template, step: True)
    sun = await _phone(app, client, "u_sun")
    task_id, version = await _task(app, req.id, "u_sun")
    assert "审批意见（必填）" in (await sun.get(f"/m/r/{req.id}"))[1]
    assert (
        _flash(await sun.act(req.id, "approve", task_id=task_id, version=version)) == "这一步需要填写审批意见"
    )


async def test_initiator_edits_and_resubmits_after_a_return(org_db, aiohttp_client, clock):
    app, client = await _app(org_db, aiohttp_client, clock)
    req = await _seal(app)
    task_id, version = await _task(app, req.id, "u_sun")
    await (await _phone(app, client, "u_sun")).act(
        req.id, "return", task_id=task_id, version=version, target="initiator", comment="份数不对"
    )
    wu = await _phone(app, client, "u_wu")
    page = (await wu.get(f"/m/r/{req.id}"))[1]
    assert "修改后重新提交" in page and "已退回" in page and "份数不对" in page
    assert 'name="copies" type=number step=any value="2"' in page  # prefilled
    form = {
        "seal": "公章",
        "reason": "签署框架合同",
        "needed_at": "2026-11-24T10:00",
        "files": "框架合同.pdf\n补充协议.pdf",
        "copies": "3",
        "take_out": "false",
        "comment": "已改为 3 份",
    }
    page = await wu.act(req.id, "resubmit", **form)
    assert _flash(page) == "已重新提交"
    view = await app[WORKFLOW].get(req.id)
    assert view.status == RequestStatus.RUNNING and view.form["copies"] == 3 and view.round == 2
    assert "重新提交" in page and "第 2 轮" in page


# -- starting a request -----------------------------------------------------------------------
async def test_new_request_with_a_preview_then_its_page(org_db, aiohttp_client, clock):
    app, client = await _app(org_db, aiohttp_client, clock)
    wu = await _phone(app, client, "u_wu")
    status, page = await wu.get("/m/new")
    assert status == 200 and "用章申请" in page and "请假申请" in page and "人事" in page
    status, page = await wu.get("/m/new/seal_use")
    assert status == 200 and "type=datetime-local" in page and "type=number" in page and "预览流程" in page
    assert "郑浩" in page  # people pickers list active staff
    form = {
        "seal": "公章",
        "reason": "签署框架合同",
        "needed_at": "2026-11-24T10:00",
        "files": "框架合同.pdf",
        "copies": "2",
        "take_out": "false",
    }
    status, fragment = await wu.post("/m/new/seal_use/preview", form)
    assert status == 200 and "直属领导审批</b>：孙丽" in fragment and "总经理审批</b>：张伟" in fragment
    status, fragment = await wu.post("/m/new/seal_use/preview", {"seal": "公章"})
    assert "填写完整后显示流程" in fragment
    status, page = await wu.post("/m/new/seal_use", {**form, "do": "preview"})
    assert "直属领导审批</b>：孙丽" in page and ">签署框架合同</textarea>" in page  # the form kept its values
    status, page = await wu.post("/m/new/seal_use", {**form, "do": "submit", "urgency": "urgent"})
    assert (
        status == 200 and _flash(page) == "已提交「用章申请」" and "紧急" in page and "框架合同.pdf" in page
    )
    status, page = await wu.post("/m/new/seal_use", {"seal": "公章", "do": "submit"})
    assert "表单有误" in page and "class=err" in page


async def test_the_trail_says_when_an_action_came_through_an_api_token(org_db, aiohttp_client, clock):
    app, client = await _app(org_db, aiohttp_client, clock)
    req = await app[WORKFLOW].submit(
        template_key="seal_use", initiator="u_wu", form=SEAL, via="integration erp"
    )

    page = (await (await _phone(app, client, "u_wu")).get(f"/m/r/{req.id}"))[1]

    assert "吴昊（经集成 erp）" in page and "integration" not in page


async def test_an_unknown_template_link_is_a_chinese_page_with_a_way_back(org_db, aiohttp_client, clock):
    app, client = await _app(org_db, aiohttp_client, clock)
    wu = await _phone(app, client, "u_wu")
    for status, page in (await wu.get("/m/new/no_such"), await wu.post("/m/new/no_such/preview", {})):
        assert status == 404 and "没有这个申请模板" in page and 'class=back href="/m/new"' in page
        assert "not_found" not in page and "<!doctype html>" in page
