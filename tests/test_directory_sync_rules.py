"""The pure rules of directory sync (org.directory_sync) and the platforms' field mapping: who
is whose manager, who leads, who counts as gone, what the overlay may say, what a diff lists."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from approvals import engine
from approvals.engine import Context, NoticeKind
from approvals.errors import BadTarget
from approvals.model import Delegation, TaskStatus
from bot.platforms.dingtalk.directory import member_of as dingtalk_member
from bot.platforms.wecom.directory import department_of as wecom_department
from bot.platforms.wecom.directory import member_of as wecom_member
from notifications.wording import phrase
from org.directory_sync import (
    Overlay,
    PlatformDepartment,
    PlatformDirectory,
    PlatformMember,
    diff_orgs,
    directory_document,
    member_document,
    parse_overlay,
    successor_for,
    validate_document,
)
from org.loader import OrgFileError
from org.model import Org
from tests.helpers import T0, TZ, demo_org, step, template, who

DEPTS = (
    PlatformDepartment("1", "总公司", None, ("boss",)),
    PlatformDepartment("2", "财务部", "1", ("fin_head", "fin_deputy")),
)


def org_of(*members: PlatformMember, overlay: Overlay | None = None):  # type: ignore[no-untyped-def]
    directory = PlatformDirectory("wecom", DEPTS, members)
    doc = directory_document(
        directory, overlay or Overlay(organization="公司"), current=None, timezone="Asia/Shanghai"
    )
    return validate_document(doc, "wecom directory")


STAFF = (
    PlatformMember("boss", "老板", ("1",)),
    PlatformMember("fin_head", "财务总监", ("2",)),
    PlatformMember("fin_deputy", "财务副总监", ("2",)),
    PlatformMember("clerk", "会计", ("2",)),
)


def test_heads_and_managers_follow_the_department_tree() -> None:
    org = org_of(*STAFF)
    assert org.departments["wecom-2"].leader == "fin_head"
    assert org.departments["wecom-2"].deputies == ("fin_deputy",)
    assert org.manager_of("clerk") == "fin_head"
    assert org.manager_of("fin_deputy") == "fin_head"  # a deputy answers to the leader
    assert org.manager_of("fin_head") == "boss"  # a leader to the head above
    assert org.manager_of("boss") is None


def test_a_department_the_app_cannot_see_is_skipped_and_no_department_at_all_is_refused() -> None:
    org = org_of(*STAFF, PlatformMember("temp", "临时工", ("99", "2")))
    assert org.users["temp"].department == "wecom-2"
    with pytest.raises(OrgFileError) as caught:
        org_of(*STAFF, PlatformMember("ghost", "外部", ("99",)))
    assert [p.message for p in caught.value.problems] == [
        "user ghost: unknown department 'wecom-99'; expected the id of a department in this file"
    ]


def test_the_platforms_own_manager_wins_and_a_disabled_person_leads_nothing() -> None:
    org = org_of(
        PlatformMember("boss", "老板", ("1",)),
        PlatformMember("fin_head", "财务总监", ("2",), active=False),
        PlatformMember("fin_deputy", "财务副总监", ("2",)),
        PlatformMember("clerk", "会计", ("2",), manager="boss"),
    )
    assert org.manager_of("clerk") == "boss"
    assert org.departments["wecom-2"].leader == "fin_deputy"
    assert not org.is_active("fin_head") and org.manager_of("fin_deputy") == "boss"


def test_the_overlay_gives_roles_levels_and_org_ids_and_its_mistakes_are_listed() -> None:
    overlay = parse_overlay(
        "organization: 公司\nusers:\n  clerk: {id: u_clerk, roles: [seal_keeper], level: 3}\n"
        'departments:\n  "2": {id: finance}\n'
    )
    org = org_of(*STAFF, overlay=overlay)
    assert org.users["u_clerk"].roles == ("seal_keeper",) and org.users["u_clerk"].level == 3
    assert org.users["u_clerk"].department == "finance" and org.users["u_clerk"].accounts == {
        "wecom": "clerk"
    }
    with pytest.raises(OrgFileError) as caught:
        parse_overlay("users:\n  clerk: {rank: 3}\nextra: 1\n", "o.yaml")
    assert [p.message for p in caught.value.problems] == [
        "unknown top-level key 'extra'; expected one of organization, timezone, users, departments, sites",
        "users clerk: unknown key 'rank'; expected one of id, roles, level, manager, title",
    ]


def test_wecom_fields_map_status_leaders_and_main_department() -> None:
    m = wecom_member(
        {
            "userid": "zhangsan",
            "name": "张三",
            "department": [3, 2],
            "main_department": 2,
            "is_leader_in_dept": [1, 0],
            "direct_leader": ["lisi"],
            "position": "经理",
            "status": 5,
        }
    )
    assert (m.departments, m.leader_of, m.manager, m.title, m.active) == (
        ("2", "3"),
        ("3",),
        "lisi",
        "经理",
        False,
    )
    assert wecom_member({"userid": "x", "status": 4}).active  # invited, not joined yet: still staff
    d = wecom_department({"id": 1, "name": "总公司", "parentid": 0, "department_leader": ["a"]})
    assert (d.parent, d.leaders) == (None, ("a",))


def test_dingtalk_fields_map_leader_in_dept_and_manager() -> None:
    m = dingtalk_member(
        {
            "userid": "010001",
            "name": "李四",
            "dept_id_list": [5],
            "leader_in_dept": [{"dept_id": 5, "leader": True}],
            "manager_userid": "010000",
            "active": False,  # DingTalk: not activated yet; still in the organisation
        }
    )
    assert (m.departments, m.leader_of, m.manager, m.active) == (("5",), ("5",), "010000", True)


def test_a_re_read_person_keeps_their_id_and_roles_and_a_gone_one_is_deactivated() -> None:
    current = demo_org()
    chen = current.users["u_chen"]
    account = chen.accounts["wecom"]
    member = PlatformMember(account, "陈静", ("x",), title="印章主管")
    doc = member_document(current, "wecom", member, account, Overlay())
    # A department the org does not have yet: they stay where they were until it arrives.
    entry = next(u for u in doc["users"] if u["id"] == "u_chen")
    assert entry["roles"] == ["seal_keeper"] and entry["department"] == chen.department
    assert validate_document(doc, "wecom directory").users["u_chen"].title == "印章主管"

    gone = validate_document(member_document(current, "wecom", None, account, Overlay()), "wecom directory")
    diff = diff_orgs(current, gone)
    assert [p.id for p in diff.deactivated] == ["u_chen"] and not diff.changed
    assert successor_for(current, gone, "u_chen", None) == chen.manager
    assert successor_for(current, gone, "u_chen", "u_li") == "u_li"


# -- the engine's hand-over 离职交接 ---------------------------------------------------------
def _with_leaver(org: Org, leaver: str) -> Org:
    return dataclasses.replace(
        org, users={**org.users, leaver: dataclasses.replace(org.users[leaver], active=False)}
    )


def test_a_leavers_pending_and_waiting_tasks_move_and_only_the_pending_one_gets_a_card() -> None:
    org = demo_org()
    tpl = template(step("review", who("user", "u_sun"), who("user", "u_wang"), mode="sequential"))
    out = engine.submit(
        Context(template=tpl, org=org, now=T0, tz=TZ, delegations=[], words=phrase),
        request_id="r1",
        initiator="u_wu",
        form={"reason": "测试"},
    )
    req = out.request
    assert [(t.assignee, t.status) for t in req.tasks] == [
        ("u_sun", TaskStatus.PENDING),
        ("u_wang", TaskStatus.QUEUED),
    ]
    version = req.version
    after = _with_leaver(_with_leaver(org, "u_sun"), "u_wang")
    ctx = Context(template=tpl, org=after, now=T0, tz=TZ, delegations=[], words=phrase)
    moved = engine.hand_over(ctx, req, "u_sun", "u_li")
    assert [(t.assignee, t.status) for t in req.tasks][0] == ("u_li", TaskStatus.PENDING)
    assert [(e.kind, e.before, e.after, e.comment) for e in moved.events] == [
        ("handed_over", "u_sun", "u_li", "孙丽 离职交接，待办转给 李娜")
    ]
    assert [(n.kind, n.recipient) for n in moved.notices] == [(NoticeKind.TASK_CARD, "u_li")]
    queued = engine.hand_over(ctx, req, "u_wang", "u_li")
    assert req.tasks[1].assignee == "u_li" and req.tasks[1].status == TaskStatus.QUEUED
    assert queued.notices == [] and req.version == version + 2
    assert engine.hand_over(ctx, req, "u_sun", "u_li").events == []  # nothing left to move
    with pytest.raises(BadTarget):
        engine.hand_over(ctx, req, "u_li", "u_sun")  # never to someone who left


def test_a_delegate_who_leaves_gives_the_task_back_to_whom_they_held_it_for() -> None:
    org = demo_org()
    tpl = template(step("review", who("user", "u_sun")))
    away = Delegation(
        id="d1",
        delegator="u_sun",
        delegate="u_zhao",
        starts_at=T0 - timedelta(days=1),
        ends_at=T0 + timedelta(days=1),
        created_at=T0,
    )
    req = engine.submit(
        Context(template=tpl, org=org, now=T0, tz=TZ, delegations=[away], words=phrase),
        request_id="r1",
        initiator="u_wu",
        form={"reason": "测试"},
    ).request
    assert (req.tasks[0].assignee, req.tasks[0].acting_for) == ("u_zhao", "u_sun")
    ctx = Context(template=tpl, org=_with_leaver(org, "u_zhao"), now=T0, tz=TZ, delegations=[], words=phrase)
    out = engine.hand_over(ctx, req, "u_zhao", "u_wang")
    assert (req.tasks[0].assignee, req.tasks[0].acting_for) == ("u_sun", None)
    assert [(n.kind, n.recipient) for n in out.notices] == [(NoticeKind.TASK_CARD, "u_sun")]
