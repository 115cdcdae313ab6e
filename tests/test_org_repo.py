"""Storing the organisation directory: first import, re-import as an update (nobody deleted),
and the stored snapshot answering the approval engine's lookups. Runs on SQLite and, when
OABOT_TEST_DATABASE_URL is set, on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from org.loader import load_org_file, parse_org_yaml
from org.model import Org
from storage.db import Database
from storage.org_models import OrgUserRow
from storage.org_repo import (
    Changes,
    ImportReport,
    OrgNotImported,
    get_org_meta,
    import_org,
    load_org,
)
from tests.conftest import DEMO_ORG

DATA = Path(__file__).parent / "data" / "org"
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=90)
T2 = T1 + timedelta(days=30)


async def stored(db: Database) -> Org:
    async with db.session() as session:
        return await load_org(session)


async def import_file(db: Database, path: Path, now: datetime) -> ImportReport:
    async with db.transaction() as session:
        return await import_org(session, load_org_file(path), now=now)


async def test_first_import_adds_everyone_and_the_stored_org_equals_the_file(db: Database) -> None:
    report = await import_file(db, DEMO_ORG, T0)

    demo = load_org_file(DEMO_ORG)
    assert report.added == list(demo.users)
    assert (report.updated, report.deactivated, report.unchanged) == ([], [], 0)
    assert report.departments == Changes(added=list(demo.departments))
    assert report.sites == Changes(added=["hq", "site_pudong"])
    assert await stored(db) == demo
    assert list((await stored(db)).users) == list(demo.users)  # file order is kept


async def test_org_meta_records_name_timezone_import_time_and_version(db: Database) -> None:
    await import_file(db, DEMO_ORG, T0)
    async with db.session() as session:
        meta = await get_org_meta(session)
    assert meta is not None
    assert (meta.name, meta.timezone, meta.imported_at, meta.version) == ("示例集团", "Asia/Shanghai", T0, 1)


async def test_reimporting_the_same_file_changes_nothing(db: Database) -> None:
    await import_file(db, DEMO_ORG, T0)
    report = await import_file(db, DEMO_ORG, T1)

    assert (report.added, report.updated, report.deactivated, report.unchanged) == ([], [], [], 11)
    assert not report.changed
    assert report.version == 1
    async with db.session() as session:
        meta = await get_org_meta(session)
        wu = await session.get(OrgUserRow, "u_wu")
    assert meta is not None and meta.imported_at == T1
    assert wu is not None and wu.updated_at == T0


async def test_reimport_updates_changed_people_and_deactivates_those_who_left(db: Database) -> None:
    await import_file(db, DEMO_ORG, T0)
    report = await import_file(db, DATA / "demo_updated.yaml", T1)

    assert report.added == ["u_feng"]
    assert report.updated == ["u_qian", "u_wu", "u_zhou"]
    assert report.deactivated == ["u_zheng"]
    assert report.unchanged == 7
    assert report.names["u_zheng"] == "郑浩" and report.names["u_feng"] == "冯雪"
    assert report.departments == Changes(updated=["hr_admin"], deactivated=["finance"])
    assert report.sites == Changes(updated=["hq"], deactivated=["site_pudong"])
    assert report.version == 2

    org = await stored(db)
    zheng = org.users["u_zheng"]
    assert (zheng.name, zheng.title, zheng.active) == ("郑浩", "现场工程师", False)  # history keeps his name
    assert org.display_name("u_zheng") == "郑浩"
    assert org.users["u_wu"].title == "高级市场专员"
    assert org.level_of("u_wu") == 5
    assert org.users["u_qian"].department == "hr_admin"
    assert org.manager_of("u_qian") == "u_zhao"
    assert org.heads_of("hr_admin") == ["u_zhao", "u_qian"]
    assert org.members_of("engineering") == ["u_zhou", "u_feng"]
    assert org.departments["finance"].active is False
    assert org.departments["finance"].name == "财务部"
    assert org.sites["site_pudong"].active is False
    assert org.sites["hq"].radius_m == 500


async def test_accounts_follow_the_file_and_a_leavers_account_stays_locked_to_them(db: Database) -> None:
    await import_file(db, DEMO_ORG, T0)
    await import_file(db, DATA / "demo_updated.yaml", T1)
    org = await stored(db)

    reissued = org.user_by_account("dingtalk", "010011")
    assert reissued is not None and reissued.id == "u_feng"
    leaver = org.user_by_account("wecom", "zhenghao")
    assert leaver is not None and leaver.id == "u_zheng" and not leaver.active
    assert org.users["u_zheng"].accounts == {"wecom": "zhenghao"}
    assert org.user_by_account("wecom", "zhoujie") is None
    renamed = org.user_by_account("wecom", "zhoujie2")
    assert renamed is not None and renamed.id == "u_zhou"


async def test_deactivation_is_timestamped_and_cleared_when_the_person_returns(db: Database) -> None:
    await import_file(db, DEMO_ORG, T0)
    await import_file(db, DATA / "demo_updated.yaml", T1)
    async with db.session() as session:
        row = await session.get(OrgUserRow, "u_zheng")
    assert row is not None and (row.active, row.deactivated_at, row.updated_at) == (False, T1, T1)

    report = await import_file(db, DEMO_ORG, T2)

    assert report.added == []
    assert report.updated == ["u_qian", "u_wu", "u_zhou", "u_zheng"]  # coming back counts as an update
    assert report.deactivated == ["u_feng"]
    assert report.departments == Changes(updated=["hr_admin", "finance"])
    async with db.session() as session:
        row = await session.get(OrgUserRow, "u_zheng")
    assert row is not None and (row.active, row.deactivated_at, row.created_at) == (True, None, T0)
    org = await stored(db)
    back = org.user_by_account("dingtalk", "010011")
    assert back is not None and back.id == "u_zheng"
    assert org.departments["finance"].active


async def test_people_marked_inactive_in_the_file_are_stored_inactive(db: Database) -> None:
    org = parse_org_yaml(
        """
organization: 测试
timezone: UTC
departments: [{id: office, name: 办公室, leader: u_a}]
users:
  - {id: u_a, name: 甲, department: office}
  - {id: u_b, name: 乙, department: office, active: false, accounts: {wecom: yi}}
"""
    )
    async with db.transaction() as session:
        report = await import_org(session, org, now=T0)
    assert report.added == ["u_a", "u_b"]
    async with db.session() as session:
        row = await session.get(OrgUserRow, "u_b")
    assert row is not None and (row.active, row.deactivated_at) == (False, T0)
    assert (await stored(db)).members_of("office") == ["u_a"]


async def test_the_callers_transaction_owns_the_import(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await import_org(session, load_org_file(DEMO_ORG), now=T0)
            raise RuntimeError("the caller fails after importing")
    with pytest.raises(OrgNotImported):
        await stored(db)


async def test_two_imports_at_once_take_turns_instead_of_colliding(db: Database) -> None:
    first, second = await asyncio.gather(
        import_file(db, DEMO_ORG, T0), import_file(db, DATA / "demo_updated.yaml", T1)
    )
    # Whichever ran second saw the other's rows: between them, one added everyone.
    assert sorted([len(first.added), len(second.added)]) == [1, 11]
    assert len((await stored(db)).users) == 12


async def test_load_org_before_any_import_says_so(db: Database) -> None:
    with pytest.raises(OrgNotImported, match="oabot org import"):
        await stored(db)
    async with db.session() as session:
        assert await get_org_meta(session) is None


async def test_lookups_on_the_stored_demo_org(db: Database) -> None:
    await import_file(db, DEMO_ORG, T0)
    org = await stored(db)

    assert org.manager_of("u_wu") == "u_sun"
    assert org.manager_of("u_wu", 2) == "u_li"
    assert org.heads_of("engineering") == ["u_zhou"]
    assert org.heads_of_user_department("u_wu") == ["u_sun"]
    assert org.role_holders("seal_keeper") == ["u_chen"]
    found = org.user_by_account("dingtalk", "010009")
    assert found is not None and found.id == "u_wu"
    assert org.level_of("u_wu") is None
    assert org.sites["hq"].lat == 31.2304
