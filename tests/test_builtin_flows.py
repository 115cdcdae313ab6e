"""End to end through the REST API on the demo org: every built-in template, every branch of its
conditions, and each policy and action, checking who holds the next card at every step, the
final status, the trail 留痕 and what each person was told on their (console) phone.

The demo org (bot/data/demo_org.yaml): 吴昊 u_wu (marketing) → 孙丽 u_sun (marketing head) →
李娜 u_li (deputy GM) → 张伟 u_zhang (GM); 王芳 u_wang (admin service + seal department head),
陈静 u_chen (seal keeper), 刘强 u_liu (fleet dispatcher), 赵敏 u_zhao (HR + registrar, head of
hr_admin), 钱磊 u_qian (finance), 周杰 u_zhou (engineering head) → 郑浩 u_zheng.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from storage.console_models import ConsoleMessageRow
from storage.db import Database
from tests.conftest import Api, settings_for

PEOPLE = (
    "u_zhang",
    "u_li",
    "u_wang",
    "u_chen",
    "u_liu",
    "u_zhao",
    "u_qian",
    "u_sun",
    "u_wu",
    "u_zhou",
    "u_zheng",
)
AT = "11-23 10:00"  # the test clock (Monday 10:00 in Shanghai) as cards print it
DECISIONS = ("approved", "auto_approved", "rejected", "returned", "transferred", "acknowledged")


# -- forms ------------------------------------------------------------------------------------
SEAL = {
    "seal": "公章",
    "reason": "签署合作协议",
    "needed_at": "2026-11-24T10:00:00+08:00",
    "files": ["合作协议.pdf", "授权委托书.pdf"],
    "copies": 2,
    "take_out": False,
}
VEHICLE = {
    "destination": "浦东项目现场",
    "depart_at": "2026-11-24T09:00:00+08:00",
    "return_at": "2026-11-24T17:00:00+08:00",
    "passengers": 3,
    "reason": "现场勘查",
}
REPAIR = {"item": "投影仪", "location": "三楼会议室", "photos": ["projector.jpg"], "description": "无法开机"}
OUTING = {
    "destination": {"site": "site_pudong"},
    "start": "2026-11-24T09:00:00+08:00",
    "end": "2026-11-24T17:00:00+08:00",
    "reason": "现场验收",
    "companions": ["u_zhou"],
}
DOC_RECEIVE = {
    "title": "关于开展安全生产检查的通知",
    "source_org": "市应急管理局",
    "received_at": "2026-11-23",
    "doc_number": "应急〔2026〕12号",
    "handling_department": "engineering",
    "files": ["来文.pdf"],
}
REPORT = {
    "title": "第四季度市场分析",
    "summary": "市场份额与预算执行情况",
    "files": ["报告.docx"],
    "forward_department": "finance",
}
CHECKIN_FIX = {
    "kind": "到达",
    "missed_at": "2026-11-23T09:00:00+08:00",
    "location": {"site": "site_pudong"},
    "reason": "手机没电",
}


def leave(days: int) -> dict[str, Any]:
    """`days` working days from Tuesday 2026-11-24 (no public holiday falls in the weeks after)."""
    end, left = date(2026, 11, 24), days - 1
    while left:
        end += timedelta(days=1)
        left -= end.weekday() < 5
    return {
        "leave_type": "事假",
        "period": {"start": "2026-11-24", "end": end.isoformat()},
        "days": days,
        "reason": "家中有事",
    }


def expense(amount: float) -> dict[str, Any]:
    return {"category": "差旅费", "amount": amount, "reason": "上海出差", "invoice_count": 3}


def contract(amount: float) -> dict[str, Any]:
    return {
        "title": "设备采购合同",
        "counterparty": "某某科技有限公司",
        "contract_type": "采购合同",
        "amount": amount,
        "files": ["采购合同.pdf"],
    }


def doc_issue(direction: str) -> dict[str, Any]:
    return {
        "title": "关于年终考核的通知",
        "direction": direction,
        "main_recipients": "各部门",
        "files": ["通知.docx"],
    }


# -- driving the API --------------------------------------------------------------------------
async def holders(api: Api, rid: str) -> list[str]:
    """Everyone who has an actionable card on this request right now."""
    return [p for p in PEOPLE if any(t["request_id"] == rid for t in await api.pending(p))]


async def act(
    api: Api, rid: str, user: str, action: str = "approve", *, expect: int = 200, **kw: Any
) -> dict[str, Any]:
    """`user` acts on their pending task of this request (the version they were shown)."""
    tasks = [t for t in await api.pending(user) if t["request_id"] == rid]
    assert tasks, f"{user} has no pending task on {rid}"
    body = {
        "action": action,
        "actor": user,
        "task_id": tasks[0]["task_id"],
        "version": tasks[0]["version"],
        **kw,
    }
    _, out = await api.call("POST", f"/requests/{rid}/actions", body, expect=expect)
    return out  # type: ignore[return-value]


async def on_request(
    api: Api, rid: str, action: str, actor: str, *, expect: int = 200, **kw: Any
) -> dict[str, Any]:
    """A request-level action (withdraw, urge, resubmit, terminate, comment)."""
    _, out = await api.call(
        "POST", f"/requests/{rid}/actions", {"action": action, "actor": actor, **kw}, expect=expect
    )
    return out  # type: ignore[return-value]


async def walk(api: Api, rid: str, *chain: str, opinion: str | None = None) -> dict[str, Any]:
    """Each person in turn is the only one holding a card, and taps the positive button (with
    `opinion` as their comment, for templates whose steps ask for one).

    Once the request has finished, nobody may hold a card on it any more."""
    view: dict[str, Any] = {}
    for person in chain:
        assert await holders(api, rid) == [person], f"expected {person} to hold the next card"
        view = await act(api, rid, person, **({"comment": opinion} if opinion else {}))
    if view["status"] != "running":
        assert await holders(api, rid) == []
    return view


async def fetch(api: Api, rid: str) -> dict[str, Any]:
    _, view = await api.call("GET", f"/requests/{rid}", expect=200)
    return view  # type: ignore[return-value]


def kinds(view: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in view["trail"]]


def decisions(view: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, whose task) for every decision in the trail; auto decisions name the assignee."""
    assignee = {
        e["task_id"]: e["data"].get("assignee") for e in view["trail"] if e["kind"] == "task_assigned"
    }
    return [
        (e["kind"], assignee[e["task_id"]] if e["actor"] == "system" else e["actor"])
        for e in view["trail"]
        if e["kind"] in DECISIONS
    ]


def step_keys(view: dict[str, Any]) -> list[str]:
    return [s["key"] for s in view["steps"]]


def step(view: dict[str, Any], key: str) -> dict[str, Any]:
    return next(s for s in view["steps"] if s["key"] == key)


async def inbox(api: Api, db: Database, user: str, rid: str) -> list[ConsoleMessageRow]:
    """What `user`'s phone shows for this request, after the outbox has been sent."""
    await api.drain()
    async with db.session() as s:
        q = (
            select(ConsoleMessageRow)
            .where(ConsoleMessageRow.user_id == user)  # type: ignore[arg-type]
            .where(ConsoleMessageRow.request_id == rid)  # type: ignore[arg-type]
            .order_by(ConsoleMessageRow.id)  # type: ignore[arg-type]
        )
        return list((await s.execute(q)).scalars().all())


def texts(rows: list[ConsoleMessageRow], kind: str) -> list[str]:
    return [r.text for r in rows if r.kind == kind]


def cards(rows: list[ConsoleMessageRow]) -> list[tuple[bool, str | None]]:
    """Each task card the person received: (closed, outcome)."""
    return [(r.closed, r.outcome) for r in rows if r.kind == "task_card"]


# -- custom templates for the policies ---------------------------------------------------------
FIELDS = "fields:\n  - {key: reason, label: 事由, type: text, required: true}\n"
POLICY_TEMPLATES = {
    "p_skip": """
name: 无人审批则跳过
policies: {no_approver: skip}
steps:
  - {key: ghost, name: 无人步骤, approvers: [{role: no_such_role}]}
  - {key: manager, name: 直属领导审批, approvers: [{manager: 1}]}
""",
    "p_admin": """
name: 无人审批则转管理员
policies: {no_approver: admin, admin_role: hr_manager}
steps:
  - {key: ghost, name: 无人步骤, approvers: [{role: no_such_role}]}
  - {key: manager, name: 直属领导审批, approvers: [{manager: 1}]}
""",
    "p_refuse": """
name: 无人审批则拒绝提交
policies: {no_approver: refuse}
steps:
  - {key: manager, name: 直属领导审批, approvers: [{manager: 1}]}
  - {key: ghost, name: 无人步骤, approvers: [{role: no_such_role}]}
""",
    "p_self_auto": """
name: 发起人即审批人自动通过
steps:
  - {key: dept_head, name: 部门负责人审批, approvers: [{dept_head: initiator}]}
  - {key: gm, name: 总经理审批, approvers: [{role: gm}]}
""",
    "p_self_keep": """
name: 发起人即审批人仍需审批
policies: {initiator_is_approver: keep}
steps:
  - {key: dept_head, name: 部门负责人审批, approvers: [{dept_head: initiator}]}
  - {key: gm, name: 总经理审批, approvers: [{role: gm}]}
""",
    "p_merge": """
name: 连续相同审批人合并
policies: {consecutive_same_approver: merge}
steps:
  - {key: manager, name: 直属领导审批, approvers: [{manager: 1}]}
  - {key: dept_head, name: 部门负责人审批, approvers: [{dept_head: initiator}]}
  - {key: gm, name: 总经理审批, approvers: [{role: gm}]}
""",
    "p_keep": """
name: 连续相同审批人各自审批
policies: {consecutive_same_approver: keep}
steps:
  - {key: manager, name: 直属领导审批, approvers: [{manager: 1}]}
  - {key: dept_head, name: 部门负责人审批, approvers: [{dept_head: initiator}]}
  - {key: gm, name: 总经理审批, approvers: [{role: gm}]}
""",
    "p_notify": """
name: 知会后审批
steps:
  - {key: fyi, name: 知会人事, approvers: [{role: hr_manager}], permission: notify, kind: notify}
  - {key: manager, name: 直属领导审批, approvers: [{manager: 1}]}
""",
}
REASON = {"reason": "测试"}


@pytest.fixture
async def papi(org_db: Database, aiohttp_client, clock, tmp_path: Path) -> Api:  # type: ignore[no-untyped-def]
    """The API with the policy templates above loaded from OABOT_TEMPLATES_DIR."""
    from bot.app import create_app

    for key, body in POLICY_TEMPLATES.items():
        (tmp_path / f"{key}.yaml").write_text(f"key: {key}\n{body.lstrip()}{FIELDS}", encoding="utf-8")
    app = create_app(settings_for(org_db, templates_dir=str(tmp_path)), clock=clock)
    return Api(await aiohttp_client(app), app)


# == 用章 seal use ==============================================================================
async def test_seal_use_goes_up_the_chain_to_the_seal_keeper_who_hands_it_over(api, org_db):
    form = {**SEAL, "take_out": True, "return_at": "2026-11-24T17:00:00+08:00", "companions": ["u_sun"]}
    req = await api.submit("seal_use", "u_wu", form)
    assert req["form"]["department"] == "marketing"  # defaults to the applicant's department
    assert step_keys(req) == ["manager", "seal_dept_head", "deputy_gm", "gm", "seal_keeper"]

    done = await walk(api, req["id"], "u_sun", "u_wang", "u_li", "u_zhang", "u_chen")

    assert done["status"] == "approved"
    view = await fetch(api, req["id"])
    assert kinds(view)[0] == "submitted" and kinds(view)[-1] == "request_approved"
    assert decisions(view) == [("approved", p) for p in ("u_sun", "u_wang", "u_li", "u_zhang", "u_chen")]
    assert view["trail"][-2]["kind"] == "step_approved"
    hand_over = [e for e in view["trail"] if e["kind"] == "approved"][-1]
    assert hand_over["data"]["label"] == "已交付"
    assert cards(await inbox(api, org_db, "u_sun", req["id"])) == [(True, f"已同意 · 孙丽 · {AT}")]
    assert cards(await inbox(api, org_db, "u_chen", req["id"])) == [(True, f"已交付 · 陈静 · {AT}")]
    [result] = texts(await inbox(api, org_db, "u_wu", req["id"]), "result")
    assert result.startswith("您的「用章申请」") and result.endswith("已通过")


async def test_seal_use_rejected_by_the_deputy_gm_ends_and_later_approvers_never_see_it(api, org_db):
    req = await api.submit("seal_use", "u_wu", SEAL)
    await walk(api, req["id"], "u_sun", "u_wang")
    assert await holders(api, req["id"]) == ["u_li"]

    out = await act(api, req["id"], "u_li", "reject", comment="用途不明确")

    assert out["status"] == "rejected"
    assert await holders(api, req["id"]) == []
    assert [s["status"] for s in out["steps"]] == [
        "approved",
        "approved",
        "rejected",
        "cancelled",
        "cancelled",
    ]
    view = await fetch(api, req["id"])
    assert decisions(view) == [("approved", "u_sun"), ("approved", "u_wang"), ("rejected", "u_li")]
    assert kinds(view)[-1] == "request_rejected"
    for later in ("u_zhang", "u_chen"):
        assert await inbox(api, org_db, later, req["id"]) == []
    assert cards(await inbox(api, org_db, "u_li", req["id"])) == [(True, f"已驳回 · 李娜 · {AT}")]
    [result] = texts(await inbox(api, org_db, "u_wu", req["id"]), "result")
    assert "已驳回（李娜）" in result and "用途不明确" in result


async def test_seal_use_refuses_a_companion_who_is_not_staff(api):
    status, body = await api.call(
        "POST",
        "/requests",
        {"template": "seal_use", "initiator": "u_wu", "form": {**SEAL, "companions": ["u_sun", "老王"]}},
    )

    assert status == 422 and body["error"] == "form_invalid"
    [problem] = body["details"]["fields"]
    assert problem["key"] == "companions" and "老王" in problem["message"]
    _, listed = await api.call("GET", "/requests", expect=200)
    assert listed["items"] == []
    assert await api.pending("u_sun") == []


async def test_seal_keeper_can_only_hand_over_not_reject(api):
    req = await api.submit("seal_use", "u_wu", SEAL)
    await walk(api, req["id"], "u_sun", "u_wang", "u_li", "u_zhang")

    refused = await act(api, req["id"], "u_chen", "reject", expect=403)

    assert refused["error"] == "action_not_allowed"
    assert await holders(api, req["id"]) == ["u_chen"]


# == 派车 vehicle dispatch =======================================================================
async def test_same_day_vehicle_with_a_driver_needs_only_the_admin_service_manager(api, org_db):
    req = await api.submit("vehicle_dispatch", "u_wu", VEHICLE)
    assert req["form"]["overnight"] is False and req["form"]["self_drive"] is False  # returns the same day
    assert step_keys(req) == ["admin"]

    done = await walk(api, req["id"], "u_wang")

    assert done["status"] == "approved"
    assert decisions(await fetch(api, req["id"])) == [("approved", "u_wang")]
    [notice] = texts(await inbox(api, org_db, "u_liu", req["id"]), "approved_notice")
    assert notice.startswith("【请安排】吴昊 的「派车申请」已通过") and "浦东项目现场" in notice
    assert texts(await inbox(api, org_db, "u_wu", req["id"]), "result")
    assert await inbox(api, org_db, "u_li", req["id"]) == []


@pytest.mark.parametrize("trip", [{"self_drive": True}, {"overnight": True}], ids=["self_drive", "overnight"])
async def test_self_drive_or_overnight_vehicle_also_goes_to_deputy_gm_and_gm(api, org_db, trip):
    req = await api.submit("vehicle_dispatch", "u_wu", {**VEHICLE, **trip})
    assert step_keys(req) == ["admin", "deputy_gm", "gm"]

    done = await walk(api, req["id"], "u_wang", "u_li", "u_zhang")

    assert done["status"] == "approved"
    assert decisions(await fetch(api, req["id"])) == [
        ("approved", "u_wang"),
        ("approved", "u_li"),
        ("approved", "u_zhang"),
    ]
    assert len(texts(await inbox(api, org_db, "u_liu", req["id"]), "approved_notice")) == 1


async def test_rejected_vehicle_request_is_not_sent_to_the_fleet_dispatcher(api, org_db):
    req = await api.submit("vehicle_dispatch", "u_wu", {**VEHICLE, "overnight": True})
    await walk(api, req["id"], "u_wang")

    out = await act(api, req["id"], "u_li", "reject", comment="改乘公共交通")

    assert out["status"] == "rejected"
    assert await inbox(api, org_db, "u_liu", req["id"]) == []
    assert await inbox(api, org_db, "u_zhang", req["id"]) == []
    assert "已驳回" in texts(await inbox(api, org_db, "u_wu", req["id"]), "result")[0]


# == 报修 repair =================================================================================
async def test_repair_is_accepted_fixed_and_confirmed_by_the_requester(api, org_db):
    req = await api.submit("repair", "u_wu", REPAIR)
    fix = step(req, "fix")
    assert fix["tasks"] == [] and any("王芳" in n for n in fix["notes"])  # no repair_handler: falls back

    done = await walk(api, req["id"], "u_wang", "u_wang", "u_wu")

    assert done["status"] == "approved"
    view = await fetch(api, req["id"])
    assert decisions(view) == [("approved", "u_wang"), ("approved", "u_wang"), ("approved", "u_wu")]
    assert "auto_approved" not in kinds(view)
    labels = [e["data"]["label"] for e in view["trail"] if e["kind"] == "approved"]
    assert labels == ["受理", "已修复", "确认完成"]
    assert [o for _, o in cards(await inbox(api, org_db, "u_wang", req["id"]))] == [
        f"已受理 · 王芳 · {AT}",
        f"已修复 · 王芳 · {AT}",
    ]
    wu = await inbox(api, org_db, "u_wu", req["id"])
    [(closed, outcome)] = cards(wu)
    assert closed and "确认完成" in (outcome or "")
    assert texts(wu, "result")[0].endswith("已通过")


# == 请假 leave ==================================================================================
@pytest.mark.parametrize("days", [2, 3])
async def test_leave_of_up_to_three_days_needs_only_the_direct_leader(api, org_db, days):
    req = await api.submit("leave", "u_wu", leave(days))
    assert step_keys(req) == ["manager"]

    done = await walk(api, req["id"], "u_sun")

    assert done["status"] == "approved"
    [cc] = texts(await inbox(api, org_db, "u_zhao", req["id"]), "cc")
    assert cc.startswith("【抄送】吴昊 的「请假申请」已通过") and f"事假 {days} 天" in cc
    assert texts(await inbox(api, org_db, "u_wu", req["id"]), "result")


async def test_five_day_leave_merges_the_department_head_who_is_also_the_manager(api, org_db):
    req = await api.submit("leave", "u_wu", leave(5))
    assert step_keys(req) == ["manager", "dept_head"]

    done = await walk(api, req["id"], "u_sun")  # one tap covers both steps

    assert done["status"] == "approved"
    view = await fetch(api, req["id"])
    assert decisions(view) == [("approved", "u_sun"), ("auto_approved", "u_sun")]
    merged = next(e for e in view["trail"] if e["kind"] == "auto_approved")
    assert merged["actor"] == "system" and "直属领导审批" in merged["comment"] and "合并" in merged["comment"]
    assert cards(await inbox(api, org_db, "u_sun", req["id"])) == [(True, f"已同意 · 孙丽 · {AT}")]


async def test_ten_day_leave_adds_the_deputy_gm(api, org_db):
    req = await api.submit("leave", "u_wu", leave(10))
    assert step_keys(req) == ["manager", "dept_head", "deputy_gm"]

    done = await walk(api, req["id"], "u_sun", "u_li")

    assert done["status"] == "approved"
    assert decisions(await fetch(api, req["id"])) == [
        ("approved", "u_sun"),
        ("auto_approved", "u_sun"),
        ("approved", "u_li"),
    ]
    assert len(texts(await inbox(api, org_db, "u_zhao", req["id"]), "cc")) == 1


async def test_leave_of_a_department_head_goes_to_her_own_manager(api, org_db):
    req = await api.submit("leave", "u_sun", leave(5))
    assert step(req, "manager")["tasks"][0]["assignee"] == "u_li"

    done = await walk(api, req["id"], "u_li")

    assert done["status"] == "approved"
    view = await fetch(api, req["id"])
    assert decisions(view) == [
        ("approved", "u_li"),
        ("auto_approved", "u_sun"),
    ]  # she heads her own department
    own = next(e for e in view["trail"] if e["kind"] == "auto_approved")
    assert "发起人本人" in own["comment"]
    assert texts(await inbox(api, org_db, "u_sun", req["id"]), "result")


# == 外出 outing / 补卡 check-in fix ==============================================================
async def test_outing_is_approved_by_the_direct_leader(api, org_db):
    req = await api.submit("outing", "u_zheng", OUTING)

    done = await walk(api, req["id"], "u_zhou")

    assert done["status"] == "approved"
    assert decisions(await fetch(api, req["id"])) == [("approved", "u_zhou")]
    assert cards(await inbox(api, org_db, "u_zhou", req["id"])) == [(True, f"已同意 · 周杰 · {AT}")]
    assert texts(await inbox(api, org_db, "u_zheng", req["id"]), "result")[0].startswith("您的「外出申请」")


async def test_checkin_fix_is_approved_by_the_direct_leader(api, org_db):
    req = await api.submit("checkin_fix", "u_zheng", CHECKIN_FIX)
    assert req["title"] == "补卡 · 到达"

    done = await walk(api, req["id"], "u_zhou")

    assert done["status"] == "approved"
    assert decisions(await fetch(api, req["id"])) == [("approved", "u_zhou")]
    assert texts(await inbox(api, org_db, "u_zheng", req["id"]), "result")[0].startswith("您的「补卡申请」")


# == 报销 expense ================================================================================
@pytest.mark.parametrize("amount", [3000, 5000])
async def test_expense_up_to_5000_goes_to_leader_then_finance_approves_and_pays(api, org_db, amount):
    req = await api.submit("expense", "u_wu", expense(amount))
    assert step_keys(req) == ["manager", "finance", "pay"]

    done = await walk(api, req["id"], "u_sun", "u_qian", "u_qian")  # approving and paying are two acts

    assert done["status"] == "approved"
    assert decisions(await fetch(api, req["id"])) == [
        ("approved", "u_sun"),
        ("approved", "u_qian"),
        ("approved", "u_qian"),
    ]
    assert [o for _, o in cards(await inbox(api, org_db, "u_qian", req["id"]))] == [
        f"已同意 · 钱磊 · {AT}",
        f"已付款 · 钱磊 · {AT}",
    ]


@pytest.mark.parametrize("amount", [12000, 20000])
async def test_expense_over_5000_adds_the_deputy_gm(api, amount):
    req = await api.submit("expense", "u_wu", expense(amount))
    assert step_keys(req) == ["manager", "finance", "deputy_gm", "pay"]

    done = await walk(api, req["id"], "u_sun", "u_qian", "u_li", "u_qian")

    assert done["status"] == "approved"


async def test_expense_over_20000_adds_the_gm_as_well(api, org_db):
    req = await api.submit("expense", "u_wu", expense(30000))
    assert step_keys(req) == ["manager", "finance", "deputy_gm", "gm", "pay"]

    done = await walk(api, req["id"], "u_sun", "u_qian", "u_li", "u_zhang", "u_qian")

    assert done["status"] == "approved"
    assert [p for _, p in decisions(await fetch(api, req["id"]))] == [
        "u_sun",
        "u_qian",
        "u_li",
        "u_zhang",
        "u_qian",
    ]
    assert texts(await inbox(api, org_db, "u_wu", req["id"]), "result")[0].endswith("已通过")


# == 合同 contract ===============================================================================
@pytest.mark.parametrize("amount", [50000, 100000])
async def test_contract_up_to_100000_goes_through_leader_finance_and_gm(api, amount):
    req = await api.submit("contract", "u_wu", contract(amount))
    assert step_keys(req) == ["manager", "dept_head", "finance", "gm"]

    done = await walk(api, req["id"], "u_sun", "u_qian", "u_zhang")  # u_sun's two steps merge

    assert done["status"] == "approved"
    assert decisions(await fetch(api, req["id"])) == [
        ("approved", "u_sun"),
        ("auto_approved", "u_sun"),
        ("approved", "u_qian"),
        ("approved", "u_zhang"),
    ]


async def test_contract_over_100000_adds_the_deputy_gm(api, org_db):
    req = await api.submit("contract", "u_wu", contract(150000))
    assert step_keys(req) == ["manager", "dept_head", "finance", "deputy_gm", "gm"]

    done = await walk(api, req["id"], "u_sun", "u_qian", "u_li", "u_zhang")

    assert done["status"] == "approved"
    assert [p for k, p in decisions(await fetch(api, req["id"])) if k == "approved"] == [
        "u_sun",
        "u_qian",
        "u_li",
        "u_zhang",
    ]
    assert texts(await inbox(api, org_db, "u_wu", req["id"]), "result")


# == 发文 outgoing document ======================================================================
async def test_upward_document_is_reviewed_checked_led_signed_registered_and_sent(api, org_db):
    req = await api.submit("doc_issue", "u_wu", doc_issue("上行"))
    assert req["form"]["secrecy"] == "内部" and req["form"]["doc_urgency"] == "一般"
    assert step_keys(req) == ["review", "office_check", "leader_review", "sign", "register", "dispatch"]
    assert any("赵敏" in n for n in step(req, "dispatch")["notes"])  # no secretary: the registrar sends it

    done = await walk(
        api, req["id"], "u_sun", "u_zhao", "u_li", "u_zhang", "u_zhao", "u_zhao", opinion="拟同意"
    )

    assert done["status"] == "approved"
    view = await fetch(api, req["id"])
    assert [p for _, p in decisions(view)] == ["u_sun", "u_zhao", "u_li", "u_zhang", "u_zhao", "u_zhao"]
    assert "auto_approved" not in kinds(view)  # every step is its own act, even u_zhao's three
    assert [o for _, o in cards(await inbox(api, org_db, "u_zhao", req["id"]))] == [
        f"已同意 · 赵敏 · {AT}",
        f"已登记 · 赵敏 · {AT}",
        f"已分发 · 赵敏 · {AT}",
    ]
    assert cards(await inbox(api, org_db, "u_zhang", req["id"])) == [(True, f"已签发 · 张伟 · {AT}")]
    assert cards(await inbox(api, org_db, "u_sun", req["id"])) == [(True, f"已核稿通过 · 孙丽 · {AT}")]
    assert texts(await inbox(api, org_db, "u_wu", req["id"]), "result")[0].startswith("您的「发文审批」")


@pytest.mark.parametrize("direction", ["下行", "平行"])
async def test_downward_or_parallel_document_skips_the_leader_review(api, org_db, direction):
    req = await api.submit("doc_issue", "u_wu", doc_issue(direction))
    assert step_keys(req) == ["review", "office_check", "sign", "register", "dispatch"]

    done = await walk(api, req["id"], "u_sun", "u_zhao", "u_zhang", "u_zhao", "u_zhao", opinion="拟同意")

    assert done["status"] == "approved"
    assert await inbox(api, org_db, "u_li", req["id"]) == []


async def test_sole_head_drafter_reviews_her_own_document_and_the_step_is_recorded(api, org_db):
    req = await api.submit("doc_issue", "u_sun", doc_issue("下行"))
    review = step(req, "review")
    assert [t["assignee"] for t in review["tasks"]] == ["u_sun"]
    assert any("唯一负责人" in n for n in review["notes"])

    done = await walk(api, req["id"], "u_sun", "u_zhao", "u_zhang", "u_zhao", "u_zhao", opinion="拟同意")

    assert done["status"] == "approved"
    view = await fetch(api, req["id"])
    assert decisions(view)[0] == ("approved", "u_sun")
    assert "auto_approved" not in kinds(view) and "step_skipped" not in kinds(view)
    assert step(view, "review")["status"] == "approved"
    assert cards(await inbox(api, org_db, "u_sun", req["id"])) == [(True, f"已核稿通过 · 孙丽 · {AT}")]


async def test_document_review_without_an_opinion_is_refused_and_changes_nothing(api, org_db):
    req = await api.submit("doc_issue", "u_wu", doc_issue("下行"))

    refused = await act(api, req["id"], "u_sun", expect=422)
    blank = await act(api, req["id"], "u_sun", comment="  ", expect=422)

    assert refused["error"] == blank["error"] == "opinion_required"
    assert "部门负责人核稿" in refused["message"] and "意见" in refused["message"]
    assert await holders(api, req["id"]) == ["u_sun"]
    assert "approved" not in kinds(await fetch(api, req["id"]))
    done = await act(api, req["id"], "u_sun", comment="文字已核，同意")
    assert step(done, "review")["status"] == "approved"


async def test_document_above_secret_is_not_accepted(api):
    status, body = await api.call(
        "POST",
        "/requests",
        {"template": "doc_issue", "initiator": "u_wu", "form": {**doc_issue("下行"), "secrecy": "机密"}},
    )

    assert status == 422 and [f["key"] for f in body["details"]["fields"]] == ["secrecy"]


# == 收文 incoming document ======================================================================
async def test_incoming_document_is_read_by_each_leader_in_turn_then_handled(api, org_db):
    req = await api.submit("doc_receive", "u_zhao", DOC_RECEIVE)
    assert step_keys(req) == ["register", "propose", "leaders_read", "forward", "handle"]
    assert [t["assignee"] for t in step(req, "leaders_read")["tasks"]] == []  # created when the step starts

    mid = await walk(api, req["id"], "u_zhao", "u_zhao", opinion="拟同意")
    reading = step(mid, "leaders_read")
    assert [(t["assignee"], t["status"]) for t in reading["tasks"]] == [
        ("u_zhang", "pending"),
        ("u_li", "queued"),
    ]
    done = await walk(api, req["id"], "u_zhang", "u_li", "u_zhao", "u_zhou")

    assert done["status"] == "approved"
    view = await fetch(api, req["id"])
    assert [p for _, p in decisions(view)] == ["u_zhao", "u_zhao", "u_zhang", "u_li", "u_zhao", "u_zhou"]
    assert "auto_approved" not in kinds(view)
    assert cards(await inbox(api, org_db, "u_zhang", req["id"])) == [(True, f"已阅 · 张伟 · {AT}")]
    assert cards(await inbox(api, org_db, "u_li", req["id"])) == [(True, f"已阅 · 李娜 · {AT}")]
    assert cards(await inbox(api, org_db, "u_zhou", req["id"])) == [(True, f"已办结 · 周杰 · {AT}")]
    assert texts(await inbox(api, org_db, "u_zhao", req["id"]), "result")


# == 报告签批 report sign-off ====================================================================
async def test_report_signoff_ends_with_a_receipt_back_to_the_drafter(api, org_db):
    req = await api.submit("report_signoff", "u_wu", REPORT)
    assert step_keys(req) == ["dept_leader", "deputy_gm", "sign", "forward", "receipt"]

    done = await walk(api, req["id"], "u_sun", "u_li", "u_zhang", "u_qian", "u_wu")

    assert done["status"] == "approved"
    view = await fetch(api, req["id"])
    assert [p for _, p in decisions(view)] == ["u_sun", "u_li", "u_zhang", "u_qian", "u_wu"]
    assert "auto_approved" not in kinds(view)
    assert cards(await inbox(api, org_db, "u_zhang", req["id"])) == [(True, f"已签批 · 张伟 · {AT}")]
    assert cards(await inbox(api, org_db, "u_qian", req["id"])) == [(True, f"已接收 · 钱磊 · {AT}")]
    wu = await inbox(api, org_db, "u_wu", req["id"])
    assert cards(wu) == [(True, f"已收到回执 · 吴昊 · {AT}")]
    assert texts(wu, "result")[0].startswith("您的「报告签批」")


# == no-approver policy ========================================================================
async def test_step_without_approver_is_skipped_and_recorded(papi, org_db):
    req = await papi.submit("p_skip", "u_wu", REASON)
    assert step(req, "ghost")["status"] == "skipped"

    done = await walk(papi, req["id"], "u_sun")

    assert done["status"] == "approved"
    view = await fetch(papi, req["id"])
    skipped = next(e for e in view["trail"] if e["kind"] == "step_skipped")
    assert any("跳过" in n for n in skipped["data"]["notes"])
    assert decisions(view) == [("approved", "u_sun")]


async def test_step_without_approver_goes_to_the_admin_role(papi, org_db):
    req = await papi.submit("p_admin", "u_wu", REASON)
    ghost = step(req, "ghost")
    assert any("管理员" in n and "赵敏" in n for n in ghost["notes"])

    done = await walk(papi, req["id"], "u_zhao", "u_sun")

    assert done["status"] == "approved"
    assert "step_skipped" not in kinds(await fetch(papi, req["id"]))


async def test_step_without_approver_refuses_the_submission(papi):
    status, body = await papi.call(
        "POST", "/requests", {"template": "p_refuse", "initiator": "u_wu", "form": REASON}
    )

    assert status == 422 and body["error"] == "no_approver"
    assert body["details"]["step"] == "ghost"
    _, listed = await papi.call("GET", "/requests", expect=200)
    assert listed["items"] == []
    assert await papi.pending("u_sun") == []


# == initiator-is-approver policy ==============================================================
async def test_initiator_who_is_an_approver_is_auto_approved_by_default(papi):
    req = await papi.submit("p_self_auto", "u_sun", REASON)

    done = await walk(papi, req["id"], "u_zhang")

    assert done["status"] == "approved"
    view = await fetch(papi, req["id"])
    assert decisions(view) == [("auto_approved", "u_sun"), ("approved", "u_zhang")]
    assert "发起人本人" in next(e for e in view["trail"] if e["kind"] == "auto_approved")["comment"]


async def test_initiator_who_is_an_approver_still_decides_under_keep(papi, org_db):
    req = await papi.submit("p_self_keep", "u_sun", REASON)

    done = await walk(papi, req["id"], "u_sun", "u_zhang")

    assert done["status"] == "approved"
    assert decisions(await fetch(papi, req["id"])) == [("approved", "u_sun"), ("approved", "u_zhang")]
    assert cards(await inbox(papi, org_db, "u_sun", req["id"])) == [(True, f"已同意 · 孙丽 · {AT}")]


# == consecutive-same-approver policy ==========================================================
async def test_consecutive_same_approver_is_asked_once_under_merge(papi, org_db):
    req = await papi.submit("p_merge", "u_wu", REASON)

    done = await walk(papi, req["id"], "u_sun", "u_zhang")

    assert done["status"] == "approved"
    view = await fetch(papi, req["id"])
    assert decisions(view) == [("approved", "u_sun"), ("auto_approved", "u_sun"), ("approved", "u_zhang")]
    assert len(cards(await inbox(papi, org_db, "u_sun", req["id"]))) == 1


async def test_consecutive_same_approver_is_asked_for_each_step_under_keep(papi, org_db):
    req = await papi.submit("p_keep", "u_wu", REASON)

    done = await walk(papi, req["id"], "u_sun", "u_sun", "u_zhang")

    assert done["status"] == "approved"
    assert "auto_approved" not in kinds(await fetch(papi, req["id"]))
    assert len(cards(await inbox(papi, org_db, "u_sun", req["id"]))) == 2


# == withdraw policy ===========================================================================
async def test_withdraw_before_first_decision_closes_the_card(api, org_db):
    req = await api.submit("seal_use", "u_wu", SEAL)

    out = await on_request(api, req["id"], "withdraw", "u_wu", comment="不用了")

    assert out["status"] == "withdrawn"
    assert await holders(api, req["id"]) == []
    assert kinds(await fetch(api, req["id"]))[-1] == "request_withdrawn"
    assert cards(await inbox(api, org_db, "u_sun", req["id"])) == [(True, "申请已撤销")]
    assert "已撤销" in texts(await inbox(api, org_db, "u_wu", req["id"]), "result")[0]


async def test_withdraw_before_first_decision_is_refused_once_someone_approved(api):
    req = await api.submit("seal_use", "u_wu", SEAL)
    await walk(api, req["id"], "u_sun")

    refused = await on_request(api, req["id"], "withdraw", "u_wu", expect=403)

    assert refused["error"] == "action_not_allowed"
    assert (await fetch(api, req["id"]))["status"] == "running"
    assert await holders(api, req["id"]) == ["u_wang"]


async def test_withdraw_any_time_works_after_an_approval(api, org_db):
    req = await api.submit("leave", "u_wu", leave(10))
    await walk(api, req["id"], "u_sun")
    assert await holders(api, req["id"]) == ["u_li"]

    out = await on_request(api, req["id"], "withdraw", "u_wu")

    assert out["status"] == "withdrawn"
    assert await holders(api, req["id"]) == []
    assert cards(await inbox(api, org_db, "u_li", req["id"])) == [(True, "申请已撤销")]


# == return, resubmit, transfer, add signer, urge, terminate ====================================
async def test_returned_request_is_resubmitted_with_a_corrected_form_and_rerouted(api, org_db):
    req = await api.submit("expense", "u_wu", expense(12000))
    await walk(api, req["id"], "u_sun")

    returned = await act(api, req["id"], "u_qian", "return", comment="金额与发票不符")

    assert returned["status"] == "returned" and await holders(api, req["id"]) == []
    told = texts(await inbox(api, org_db, "u_wu", req["id"]), "result")
    assert "已退回（钱磊）" in told[0] and "金额与发票不符" in told[0] and "重新提交" in told[0]

    again = await on_request(api, req["id"], "resubmit", "u_wu", form=expense(3000))

    assert again["status"] == "running" and again["round"] == 2
    assert again["form"]["amount"] == 3000
    assert [s["key"] for s in again["steps"] if s["round"] == 2] == [
        "manager",
        "finance",
        "pay",
    ]  # no deputy GM now
    done = await walk(api, req["id"], "u_sun", "u_qian", "u_qian")
    assert done["status"] == "approved"
    view = await fetch(api, req["id"])
    assert ["returned", "request_returned", "resubmitted"] == [
        k for k in kinds(view) if k in ("returned", "request_returned", "resubmitted")
    ]


async def test_returned_request_can_still_be_withdrawn_as_the_initiator_is_told(api, org_db):
    req = await api.submit("seal_use", "u_wu", SEAL)
    await walk(api, req["id"], "u_sun")
    await act(api, req["id"], "u_wang", "return", comment="请补充用印文件")
    assert "请修改后重新提交或撤销" in texts(await inbox(api, org_db, "u_wu", req["id"]), "result")[0]

    out = await on_request(api, req["id"], "withdraw", "u_wu")

    assert out["status"] == "withdrawn"


async def test_return_to_an_earlier_step_asks_that_approver_again_and_the_flow_goes_on(api):
    req = await api.submit("seal_use", "u_wu", SEAL)
    await walk(api, req["id"], "u_sun", "u_wang")

    out = await act(api, req["id"], "u_li", "return", target="0", comment="请直属领导再确认")

    assert out["status"] == "running"
    done = await walk(api, req["id"], "u_sun", "u_wang", "u_li", "u_zhang", "u_chen")
    assert done["status"] == "approved"


async def test_transfer_hands_the_card_to_another_person(api, org_db):
    req = await api.submit("seal_use", "u_wu", SEAL)

    await act(api, req["id"], "u_sun", "transfer", target="u_zhou", comment="我出差，请周经理处理")

    assert await holders(api, req["id"]) == ["u_zhou"]
    assert cards(await inbox(api, org_db, "u_sun", req["id"])) == [(True, f"已转交周杰 · 孙丽 · {AT}")]
    done = await walk(api, req["id"], "u_zhou", "u_wang", "u_li", "u_zhang", "u_chen")
    assert done["status"] == "approved"
    assert decisions(await fetch(api, req["id"]))[:2] == [("transferred", "u_sun"), ("approved", "u_zhou")]


async def test_add_signer_before_asks_the_new_signer_first_then_me_again(api, org_db):
    req = await api.submit("seal_use", "u_wu", SEAL)

    await act(api, req["id"], "u_sun", "add_signer", target="u_zhou", position="before")

    assert await holders(api, req["id"]) == ["u_zhou"]
    await walk(api, req["id"], "u_zhou", "u_sun")  # back to me after the new signer
    assert await holders(api, req["id"]) == ["u_wang"]
    sun = await inbox(api, org_db, "u_sun", req["id"])
    assert [r.kind for r in sun] == ["task_card", "card_closed", "task_card", "card_closed"]
    assert [r.outcome for r in sun if r.kind == "card_closed"] == [
        "已前加签周杰，待其处理后再由您审批",
        f"已同意 · 孙丽 · {AT}",
    ]
    assert all(closed for closed, _ in cards(sun))
    view = await fetch(api, req["id"])
    assert "signer_added" in kinds(view)
    assert decisions(view)[:2] == [("approved", "u_zhou"), ("approved", "u_sun")]


async def test_a_card_closed_by_add_signer_keeps_its_own_outcome(api, org_db):
    req = await api.submit("seal_use", "u_wu", SEAL)
    await act(api, req["id"], "u_sun", "add_signer", target="u_zhou", position="before")
    await walk(api, req["id"], "u_zhou", "u_sun")

    sun = cards(await inbox(api, org_db, "u_sun", req["id"]))

    assert sun == [(True, "已前加签周杰，待其处理后再由您审批"), (True, f"已同意 · 孙丽 · {AT}")]


async def test_add_signer_after_asks_the_new_signer_once_i_approved(api):
    req = await api.submit("seal_use", "u_wu", SEAL)

    await act(api, req["id"], "u_sun", "add_signer", target="u_zhou", position="after")

    assert await holders(api, req["id"]) == ["u_sun"]  # still mine first
    done = await walk(api, req["id"], "u_sun", "u_zhou", "u_wang", "u_li", "u_zhang", "u_chen")
    assert done["status"] == "approved"
    assert [p for _, p in decisions(await fetch(api, req["id"]))][:3] == ["u_sun", "u_zhou", "u_wang"]


async def test_urge_reminds_whoever_holds_the_card(api, org_db):
    req = await api.submit("seal_use", "u_wu", SEAL)
    await walk(api, req["id"], "u_sun")

    out = await on_request(api, req["id"], "urge", "u_wu", comment="明早要用")

    assert out["info"]["urged"] == ["u_wang"]
    [urge] = texts(await inbox(api, org_db, "u_wang", req["id"]), "urge")
    assert urge.startswith("【催办】吴昊 提醒您尽快处理「用章申请」") and "明早要用" in urge
    assert "urged" in kinds(await fetch(api, req["id"]))
    assert await holders(api, req["id"]) == ["u_wang"]


async def test_current_approver_can_terminate_the_request(api, org_db):
    req = await api.submit("seal_use", "u_wu", SEAL)

    out = await on_request(api, req["id"], "terminate", "u_sun", comment="合作取消")

    assert out["status"] == "terminated" and await holders(api, req["id"]) == []
    assert "已终止" in texts(await inbox(api, org_db, "u_wu", req["id"]), "result")[0]


# == 知会 notify ===============================================================================
async def test_notify_step_is_only_acknowledged_and_does_not_hold_the_flow(papi, org_db):
    req = await papi.submit("p_notify", "u_wu", REASON)
    assert sorted(await holders(papi, req["id"])) == ["u_sun", "u_zhao"]  # the FYI does not wait

    refused = await act(papi, req["id"], "u_zhao", "approve", expect=403)
    assert refused["error"] == "action_not_allowed"
    done = await act(papi, req["id"], "u_sun")
    assert done["status"] == "approved"
    await act(papi, req["id"], "u_zhao", "acknowledge")  # still possible after approval

    assert await holders(papi, req["id"]) == []
    view = await fetch(papi, req["id"])
    assert ("acknowledged", "u_zhao") in decisions(view)
    assert cards(await inbox(papi, org_db, "u_zhao", req["id"])) == [(True, f"已收到 · 赵敏 · {AT}")]


# == preview ===================================================================================
async def test_preview_of_seal_use_shows_people_and_the_merge_without_creating_anything(api):
    _, body = await api.call(
        "POST", "/preview", {"template": "seal_use", "initiator": "u_chen", "form": SEAL}, expect=200
    )

    steps = {s["key"]: s for s in body["steps"]}
    assert [s["key"] for s in body["steps"]] == [
        "manager",
        "seal_dept_head",
        "deputy_gm",
        "gm",
        "seal_keeper",
    ]
    assert steps["manager"]["assignee_names"] == ["王芳"] and steps["manager"]["auto_approved"] == []
    assert steps["seal_dept_head"]["auto_approved"] == [
        "u_wang"
    ]  # the keeper's manager is also the seal head
    assert any("合并" in n for n in steps["seal_dept_head"]["notes"])
    assert steps["gm"]["assignee_names"] == ["张伟"]
    assert steps["seal_keeper"]["assignees"] == ["u_chen"] and steps["seal_keeper"]["auto_approved"] == []
    assert body["form"]["department"] == "admin_service"
    _, listed = await api.call("GET", "/requests", expect=200)
    assert listed["items"] == []
    assert await api.pending("u_wang") == []


async def test_submitted_seal_use_follows_the_preview_and_merges_the_seal_keepers_manager(api, org_db):
    req = await api.submit("seal_use", "u_chen", SEAL)

    done = await walk(
        api, req["id"], "u_wang", "u_li", "u_zhang", "u_chen"
    )  # she still hands it over herself

    assert done["status"] == "approved"
    view = await fetch(api, req["id"])
    assert decisions(view)[:2] == [("approved", "u_wang"), ("auto_approved", "u_wang")]
    assert len(cards(await inbox(api, org_db, "u_wang", req["id"]))) == 1


async def test_preview_of_vehicle_dispatch_shows_each_route_and_the_initiator_auto_approval(api):
    _, plain = await api.call(
        "POST", "/preview", {"template": "vehicle_dispatch", "initiator": "u_wu", "form": VEHICLE}, expect=200
    )
    _, own = await api.call(
        "POST",
        "/preview",
        {"template": "vehicle_dispatch", "initiator": "u_wang", "form": {**VEHICLE, "self_drive": True}},
        expect=200,
    )

    assert [(s["key"], s["assignees"]) for s in plain["steps"]] == [("admin", ["u_wang"])]
    assert plain["form"]["overnight"] is False
    assert [(s["key"], s["assignee_names"]) for s in own["steps"]] == [
        ("admin", ["王芳"]),
        ("deputy_gm", ["李娜"]),
        ("gm", ["张伟"]),
    ]
    assert own["steps"][0]["auto_approved"] == ["u_wang"] and any(
        "发起人本人" in n for n in own["steps"][0]["notes"]
    )
    _, listed = await api.call("GET", "/requests", expect=200)
    assert listed["items"] == []
    assert await api.pending("u_wang") == []
