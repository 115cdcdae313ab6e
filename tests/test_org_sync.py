"""Directory sync from WeCom and DingTalk against fake contact APIs (respx): a made-up company of
6 departments on 3 levels and 250 members, listed over several pages, on SQLite and PostgreSQL.

What a user notices: the first sync builds the org; a second one after a move, a rename and a
departure changes exactly that; the leaver's pending tasks go to their manager with "离职交接"
in the trail and a card; their sign-in and API tokens end; a contact event re-reads only that
person; a read that fails on page 3 changes nothing.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import respx
from sqlalchemy import select

from approvals.clock import ManualClock
from approvals.engine import Action
from approvals.errors import ApprovalError, UnknownUser
from approvals.model import ActionKind
from bot.platforms.dingtalk.client import DingTalkClient
from bot.platforms.dingtalk.directory import DingTalkDirectory
from bot.platforms.http_retry import RetryPolicy
from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.directory import WeComDirectory
from bot.settings import ConfigError, DingTalkSettings, WeComSettings, load_settings
from deadlines.timer_kinds import TimerKinds, TimerScanner
from org.loader import OrgFileError
from services.api_tokens import ApiTokens, TokenRefused
from services.approvals import Workflow, WorkflowDeps
from services.directory import Directory
from services.identity import Sessions
from services.links import PersonalLinks
from services.org_sync import DirectoryReadFailed, DirectorySource, OrgSync, SyncConfig
from storage.approval_models import OutboxRow
from storage.db import Database
from storage.kv_memory import MemoryStore
from storage.org_repo import list_syncs, load_org
from storage.timer_models import TimerRow
from tests.directory_fakes import Company, dingtalk_routes, wecom_routes
from tests.helpers import step, template, who

AES_KEY = "a" * 43
OVERLAY = """\
organization: 示例科技
timezone: Asia/Shanghai
users:
  u000: {roles: [gm], level: 9}
  u001: {roles: [deputy_gm], level: 8}
"""


async def _no_wait(_: float) -> None:
    return None


FAST = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.01, sleep=_no_wait)


class World:
    def __init__(self, db: Database, clock: ManualClock, platform: str, overlay: Path) -> None:
        self.db = db
        self.clock = clock
        self.platform = platform
        self.company = Company.made_up()
        self.kv = MemoryStore()
        self.http = httpx.AsyncClient()
        self.directory = Directory(db, clock.now)
        self.workflow = Workflow(
            WorkflowDeps(
                db=db,
                templates={"t": template(step("review", who("user", "u020")))},
                tz=clock.now().tzinfo,  # type: ignore[arg-type]
                now=clock.now,
                directory=self.directory,
                links=PersonalLinks(
                    db, secret="test-link-secret-0123456789", public_url="http://x", now=clock.now
                ),
            )
        )
        self.sessions = Sessions(self.kv, self.directory, clock.now)
        self.kinds = TimerKinds()
        self.sync = OrgSync(
            db=db,
            workflow=self.workflow,
            sources={platform: self.source()},
            config=SyncConfig(overlay=str(overlay), scheduled=platform),
            now=clock.now,
            sessions=self.sessions,
            directory=self.directory,
            kinds=self.kinds,
        )

    def source(self) -> DirectorySource:
        if self.platform == "wecom":
            settings = WeComSettings(corp_id="corp", agent_id=1, secret="s", token="t", aes_key=AES_KEY)
            return WeComDirectory(WeComClient(self.http, settings, self.kv, retry=FAST))
        ding = DingTalkSettings(app_key="key", app_secret="secret")
        return DingTalkDirectory(DingTalkClient(self.http, self.kv, ding, retry=FAST))

    def routes(self, router: respx.MockRouter) -> None:
        (wecom_routes if self.platform == "wecom" else dingtalk_routes)(router, self.company)

    async def close(self) -> None:
        await self.http.aclose()
        await self.kv.close()


@pytest.fixture(params=["wecom", "dingtalk"])
async def world(request: pytest.FixtureRequest, db: Database, clock: ManualClock, tmp_path: Path) -> Any:
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(OVERLAY, encoding="utf-8")
    w = World(db, clock, request.param, overlay)
    try:
        yield w
    finally:
        await w.close()


def dept(platform: str, n: int) -> str:
    return f"{platform}-{n}"


async def test_first_sync_builds_the_org_from_every_page(world: World) -> None:
    with respx.mock(assert_all_called=False) as router:
        world.routes(router)
        report = await world.sync.sync(world.platform)
    p = world.platform
    assert len(report.diff.added) == 250 and not report.diff.deactivated
    if p == "wecom":
        assert [c for c in world.company.calls if c.startswith("user/list_id")] == [
            "user/list_id:",
            "user/list_id:100",
            "user/list_id:200",
        ]
    else:
        assert sum(1 for c in world.company.calls if c.startswith("user/list:")) > 12  # 20 a page
    async with world.db.session() as s:
        org = await load_org(s)
    assert org.name == "示例科技"
    assert sum(u.active for u in org.users.values()) == 250
    tree = {d.id: (d.name, d.parent, d.leader) for d in org.departments.values()}
    assert tree == {
        dept(p, 1): ("总公司", None, "u000"),
        dept(p, 2): ("研发中心", dept(p, 1), "u001"),
        dept(p, 3): ("市场中心", dept(p, 1), "u002"),
        dept(p, 4): ("平台组", dept(p, 2), "u003"),
        dept(p, 5): ("应用组", dept(p, 2), "u004"),
        dept(p, 6): ("华东销售", dept(p, 3), "u005"),
    }
    # Managers: the head of one's department; a head answers to the head of the one above.
    assert org.manager_of("u020") == "u001"
    assert org.manager_of("u013") == "u004"
    assert org.manager_of("u003") == "u001"
    assert org.manager_of("u001") == "u000"
    assert org.manager_of("u000") is None
    assert org.users["u000"].roles == ("gm",) and org.users["u000"].level == 9  # from the overlay
    assert org.users["u020"].accounts == {p: "u020"}
    history = await world.sync.history()
    assert [(h.status, h.scope) for h in history] == [("applied", "all")]


async def test_second_sync_moves_renames_and_hands_over_exactly(world: World) -> None:
    p = world.platform
    with respx.mock(assert_all_called=False) as router:
        world.routes(router)
        await world.sync.sync(p)
        first = [
            await world.workflow.submit(template_key="t", initiator=i, form={"reason": "报销"})
            for i in ("u030", "u031")
        ]
        assert all(r.steps[0].tasks[0].assignee == "u020" for r in first)
        session = await world.sessions.start("u020", via=p)
        now = world.clock.now()
        await world.workflow.create_delegation(
            delegator="u020", delegate="u021", starts_at=now, ends_at=now + timedelta(days=7)
        )
        tokens = ApiTokens(world.db, world.directory, world.clock.now)
        _, secret = await tokens.create(name="u020-phone", scopes=["read", "act"], user="u020")
        world.clock.advance(timedelta(minutes=5))

        world.company.members["u010"].dept = "6"  # moves to 华东销售
        name, parent, leader = world.company.departments["4"]
        world.company.departments["4"] = ("基础平台组", parent, leader)
        del world.company.members["u020"]  # leaves

        preview = await world.sync.sync(p, dry_run=True)
        async with world.db.session() as s:
            assert (await load_org(s)).users["u020"].active  # a dry run writes nothing
        report = await world.sync.sync(p)

    for d in (preview.diff, report.diff):
        assert [c.id for c in d.changed] == ["u010"] and [c.id for c in d.moved] == ["u010"]
        assert d.moved[0].after["department"] == dept(p, 6)
        assert [c.id for c in d.deactivated] == ["u020"]
        assert d.departments_renamed == [(dept(p, 4), "平台组", "基础平台组")]
        assert not (
            d.added or d.reactivated or d.departments_added or d.departments_removed or d.departments_moved
        )
    assert [(h.user, h.successor, h.tasks) for h in preview.handovers] == [("u020", "u001", 2)]
    assert report.moved == 2

    for r in first:
        view = await world.workflow.get(r.id)
        task = view.steps[0].tasks[0]
        assert task.assignee == "u001" and task.status == "pending"
        moves = [e for e in view.trail or [] if e.kind == "handed_over"]
        assert [(e.before, e.after, e.comment) for e in moves] == [
            ("u020", "u001", "员工020 离职交接，待办转给 员工001")
        ]
    async with world.db.session() as s:
        cards = (
            (
                await s.execute(
                    select(OutboxRow).where(OutboxRow.recipient == "u001", OutboxRow.kind == "task_card")
                )  # type: ignore[arg-type]
            )
            .scalars()
            .all()
        )
        org = await load_org(s)
    assert sorted(c.request_id for c in cards) == sorted(r.id for r in first)
    assert org.users["u020"].name == "员工020" and not org.users["u020"].active  # history keeps the name
    assert await world.sessions.get(session.id) is None
    assert await world.workflow.list_delegations(user="u020") == []  # their delegation ended
    with pytest.raises(UnknownUser):  # cannot start requests
        await world.workflow.submit(template_key="t", initiator="u020", form={"reason": "报销"})
    task = (await world.workflow.get(first[0].id)).steps[0].tasks[0]
    with pytest.raises(ApprovalError):  # nor act, even on a task they once held
        await world.workflow.act(
            request_id=first[0].id,
            action=Action(kind=ActionKind.APPROVE, actor="u020", task_id=task.id, version=task.version),
        )
    with pytest.raises(TokenRefused):
        await tokens.resolve(secret)

    # Reactivation restores sign-in, not the moved tasks.
    world.clock.advance(timedelta(minutes=5))
    with respx.mock(assert_all_called=False) as router:
        world.company.members["u020"] = type(world.company.members["u010"])("u020", "员工020", "2")
        world.routes(router)
        again = await world.sync.sync(p)
    assert [c.id for c in again.diff.reactivated] == ["u020"]
    assert await world.sessions.get((await world.sessions.start("u020", via=p)).id) is not None
    assert (await world.workflow.get(first[0].id)).steps[0].tasks[0].assignee == "u001"


async def test_a_leaver_is_never_chosen_again_and_the_reason_is_recorded(world: World) -> None:
    with respx.mock(assert_all_called=False) as router:
        world.routes(router)
        await world.sync.sync(world.platform)
        del world.company.members["u020"]
        await world.sync.sync(world.platform)
    view = await world.workflow.submit(template_key="t", initiator="u030", form={"reason": "报销"})
    assert view.steps[0].status == "skipped" or not view.steps[0].tasks
    assert any("已离职" in n for n in view.steps[0].notes)


async def test_a_read_failing_on_page_three_changes_nothing(world: World) -> None:
    p = world.platform
    with respx.mock(assert_all_called=False) as router:
        world.routes(router)
        await world.sync.sync(p)
        del world.company.members["u020"]
        world.company.departments["4"] = ("改名", "2", "u003")
        world.company.fail_page, world.company.pages_served, world.company.fail_for_good = 3, 0, True
        world.company.fail_errcode = 45009 if p == "wecom" else 90018  # the frequency limit, every try
        with pytest.raises(DirectoryReadFailed):
            await world.sync.sync(p)
    async with world.db.session() as s:
        org = await load_org(s)
        rows = await list_syncs(s)
    assert org.users["u020"].active and org.departments[dept(p, 4)].name == "平台组"
    assert [r.status for r in rows] == ["failed", "applied"]


async def test_a_frequency_limit_is_waited_out(world: World) -> None:
    with respx.mock(assert_all_called=False) as router:
        world.routes(router)
        world.company.fail_page = 2  # once: the retry gets the page
        world.company.fail_errcode = 45009 if world.platform == "wecom" else 90018
        report = await world.sync.sync(world.platform)
    assert len(report.diff.added) == 250


async def test_a_contact_event_re_reads_only_that_person(world: World) -> None:
    p = world.platform
    with respx.mock(assert_all_called=False) as router:
        world.routes(router)
        await world.sync.sync(p)
        world.company.calls.clear()
        world.company.members["u042"].title = "高级工程师"
        world.company.members["u043"].title = "不该被读到"  # changed, but no event names them
        assert await world.sync.schedule_refresh(p, "person", "u042", event="update_user", event_key="k1")
        assert not await world.sync.schedule_refresh(p, "person", "u042", event="update_user", event_key="k1")
        scanner = TimerScanner(db=world.db, kinds=world.kinds, now=world.clock.now)
        stats = await scanner.scan_once()
    assert stats.fired_by_kind["org_refresh"] == 1
    assert world.company.calls == ["user/get:u042"]
    async with world.db.session() as s:
        org = await load_org(s)
    assert org.users["u042"].title == "高级工程师" and org.users["u043"].title == "工程师"
    assert [(h.scope, h.trigger) for h in await world.sync.history()][0] == (
        "person",
        "event:update_user:u042",
    )


async def test_a_bad_overlay_is_refused_and_one_for_a_leaver_is_ignored(world: World, tmp_path: Path) -> None:
    bad = tmp_path / "overlay.yaml"
    bad.write_text(
        "organization: 示例科技\nusers:\n  nobody: {roles: [x]}\n  u001: {level: high}\n", encoding="utf-8"
    )
    with respx.mock(assert_all_called=False) as router:
        world.routes(router)
        with pytest.raises(OrgFileError) as caught:
            await world.sync.sync(world.platform)
    messages = [p.message for p in caught.value.problems]
    assert messages == ["user u001: 'level' is the text 'high'; expected a whole number 0 or more"]
    async with world.db.session() as s:
        assert [r.status for r in await list_syncs(s)] == ["refused"]
    bad.write_text("organization: 示例科技\nusers:\n  nobody: {roles: [x]}\n", encoding="utf-8")
    with respx.mock(assert_all_called=False) as router:
        world.routes(router)
        report = await world.sync.sync(world.platform)
    assert report.overlay_unused == ["nobody"] and len(report.diff.added) == 250


async def test_the_nightly_sync_is_a_timer_that_runs_and_schedules_the_next_night(world: World) -> None:
    scanner = TimerScanner(db=world.db, kinds=world.kinds, now=world.clock.now)
    await scanner.seed()
    async with world.db.session() as s:
        due = (
            (await s.execute(select(TimerRow.due_at).where(TimerRow.kind == "org_sync")))  # type: ignore[arg-type,call-overload]
            .scalars()
            .all()
        )
    assert [d.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%m-%d %H:%M") for d in due] == ["11-24 02:30"]
    world.clock.set(due[0] + timedelta(seconds=1))
    with respx.mock(assert_all_called=False) as router:
        world.routes(router)
        stats = await scanner.scan_once()
    assert stats.fired_by_kind["org_sync"] == 1
    assert [(h.trigger, h.status) for h in await world.sync.history()] == [("schedule", "applied")]
    async with world.db.session() as s:
        pending = (
            (
                await s.execute(
                    select(TimerRow.due_at).where(TimerRow.kind == "org_sync", TimerRow.status == "pending")
                )
            )  # type: ignore[arg-type,call-overload]
            .scalars()
            .all()
        )
    assert [d.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%m-%d %H:%M") for d in pending] == [
        "11-25 02:30"
    ]


async def test_without_a_sync_platform_no_nightly_timer_is_registered(
    db: Database, clock: ManualClock
) -> None:
    kinds = TimerKinds()
    OrgSync(
        db=db, workflow=None, sources={}, config=SyncConfig(scheduled="wecom"), now=clock.now, kinds=kinds
    )  # type: ignore[arg-type]
    assert set(kinds.entries) == {"org_refresh"}


def test_the_sync_settings_refuse_an_unknown_platform_and_default_to_off() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"OABOT_ORG_SYNC": "feishu", "OABOT_ORG_SYNC_AT": "25:00"}, dotenv_path=None)
    assert sorted(caught.value.problems) == [
        "OABOT_ORG_SYNC='feishu': expected wecom, dingtalk or empty (off)",
        "OABOT_ORG_SYNC_AT='25:00': expected one time HH:MM such as 02:30 (empty: no nightly sync)",
    ]
    settings = load_settings({}, dotenv_path=None)
    assert (settings.org_sync, settings.org_overlay, settings.org_handover_to) == ("", None, None)
