"""The desk's org chart (tree, search, inactive people, import preview then apply), templates
(route diagrams, origin, validation) and calendar (month grids, overrides set and removed, each
re-planning pending deadlines); non-admins get 403 on each; bad input is a 4xx that changes
nothing."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from sqlalchemy import func, select

from bot.keys import SESSIONS
from storage.calendar_models import CalendarOverrideRow
from storage.db import Database
from storage.org_models import OrgUserRow
from storage.timer_models import TimerRow
from tests.conftest import DEMO_ORG, Api

OFFICE = "u_zhao"
STAFF = "u_chen"
PAGES = ("/admin/org", "/admin/templates", "/admin/calendar?year=2026")
POSTS = (
    "/admin/org/import",
    "/admin/org/import/apply",
    "/admin/calendar/overrides",
    "/admin/calendar/overrides/remove",
)


async def headers(api: Api, user: str) -> dict[str, str]:
    """One session per person per test, so a page's form token is good for the next post."""
    sessions: dict[str, str] = api.__dict__.setdefault("desk_sessions", {})
    if user not in sessions:
        sessions[user] = (await api.app[SESSIONS].start(user, via="test")).id  # type: ignore[index]
    return {"Cookie": f"oabot_session={sessions[user]}"}


async def page(api: Api, path: str, user: str = OFFICE) -> tuple[int, str, str]:
    h = await headers(api, user)
    resp = await api.client.get(path, headers=h)  # type: ignore[attr-defined]
    text = await resp.text()
    token = re.search(r'name="csrf" value="([^"]+)"', text)
    return resp.status, text, token.group(1) if token else ""


async def post(api: Api, path: str, data: Any, user: str = OFFICE) -> Any:
    h = await headers(api, user)
    return await api.client.post(path, data=data, headers=h, allow_redirects=False)  # type: ignore[attr-defined]


async def count(db: Database, model: Any, *where: Any) -> int:
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_non_admins_get_403_on_every_reference_page_and_post(api: Api) -> None:
    for path in PAGES:
        status, text, _ = await page(api, path, STAFF)
        assert status == 403 and "仅对办公室" in text, path
    for path in POSTS:
        assert (await post(api, path, {"date": "2026-12-01", "kind": "holiday"}, STAFF)).status == 403, path


async def test_org_tree_search_and_inactive(api: Api) -> None:
    status, html, _ = await page(api, "/admin/org")
    assert status == 200
    assert "示例集团" in html and "市场部" in html and "负责人 孙丽" in html and "印章管理员" in html
    status, html, _ = await page(api, "/admin/org?q=陈")
    assert "查找“陈”：" in html and "u_chen" in html.split("id=found")[1].split("</section>")[0]


async def test_org_import_previews_changes_and_applies_only_when_confirmed(
    api: Api, org_db: Database
) -> None:
    _, _, token = await page(api, "/admin/org")
    text = DEMO_ORG.read_text(encoding="utf-8").replace("    title: 印章管理员", "    title: 印章专员", 1)
    text = text.replace(
        "  - id: u_chen\n",
        "  - id: u_new\n    name: 新同事\n    department: admin_service\n  - id: u_chen\n",
        1,
    )
    form = aiohttp.FormData()
    form.add_field("csrf", token)
    form.add_field("file", text.encode("utf-8"), filename="org.yaml", content_type="application/x-yaml")
    resp = await post(api, "/admin/org/import", form)
    html = await resp.text()
    assert resp.status == 200, html
    assert "新增人员（1）" in html and "新同事（u_new）" in html
    assert "信息变更（1）" in html and "职务：印章管理员 → 印章专员" in html
    assert await count(org_db, OrgUserRow, OrgUserRow.id == "u_new") == 0  # nothing applied yet

    # A file with problems lists them, with lines, and imports nothing.
    bad = text.replace(
        "    department: admin_service\n  - id: u_chen", "    department: nowhere\n  - id: u_chen", 1
    )
    form = aiohttp.FormData()
    form.add_field("csrf", token)
    form.add_field("file", bad.encode("utf-8"), filename="org.yaml")
    resp = await post(api, "/admin/org/import", form)
    html = await resp.text()
    assert resp.status == 422 and "个问题，未导入任何内容" in html and "nowhere" in html
    assert (await post(api, "/admin/org/import/apply", {"csrf": token, "yaml": bad})).status == 422
    assert await count(org_db, OrgUserRow, OrgUserRow.id == "u_new") == 0
    assert (await post(api, "/admin/org/import/apply", {"csrf": "forged", "yaml": text})).status == 403
    assert (await post(api, "/admin/org/import", {"csrf": token})).status == 422  # no file

    resp = await post(api, "/admin/org/import/apply", {"csrf": token, "yaml": text})
    assert resp.status == 303 and resp.headers["Location"] == "/admin/org?imported=1"
    assert await count(org_db, OrgUserRow, OrgUserRow.id == "u_new") == 1
    _, html, _ = await page(api, "/admin/org?imported=1")
    assert "组织架构已导入" in html and "新同事" in html and "印章专员" in html


async def test_templates_show_routes_origin_and_validation(api: Api) -> None:
    status, html, _ = await page(api, "/admin/templates")
    assert status == 200
    assert "模板校验通过" in html
    sections = re.findall(r'<section class=chart-block id="t-([^"]+)">.*?</section>', html, re.S)
    assert len(sections) >= 10 and html.count('<svg xmlns="http://www.w3.org/2000/svg"') == len(sections)
    seal = html.split('id="t-seal_use"')[1].split("</section>")[0]
    assert "用章申请" in seal and "<svg" in seal and "<ol>" in seal
    assert "内置" in html


async def test_calendar_grid_and_overrides_add_and_remove(api: Api, org_db: Database) -> None:
    status, html, token = await page(api, "/admin/calendar?year=2026")
    assert status == 200 and "12 月" in html
    assert 'class="holiday" title="2026-10-01' in html  # National Day
    assert 'class="normal" title="2026-12-01' in html
    replans = await count(org_db, TimerRow, TimerRow.kind == "calendar_replan")
    resp = await post(
        api,
        "/admin/calendar/overrides",
        {"csrf": token, "date": "2026-12-01", "kind": "holiday", "reason": "公司年会"},
    )
    assert resp.status == 303
    _, html, _ = await page(api, "/admin/calendar?year=2026")
    assert 'class="holiday override" title="2026-12-01 公司年会"' in html
    assert await count(org_db, CalendarOverrideRow) == 1
    assert await count(org_db, TimerRow, TimerRow.kind == "calendar_replan") == replans + 1

    for bad in (
        {"date": "2026-13-01", "kind": "holiday"},
        {"date": "2026-12-02", "kind": "party"},
        {"date": "", "kind": "workday"},
    ):
        assert (await post(api, "/admin/calendar/overrides", {"csrf": token, **bad})).status == 422
    assert (
        await post(api, "/admin/calendar/overrides/remove", {"csrf": token, "date": "2026-12-03"})
    ).status == 404
    assert (
        await post(api, "/admin/calendar/overrides/remove", {"csrf": "forged", "date": "2026-12-01"})
    ).status == 403
    assert await count(org_db, CalendarOverrideRow) == 1
    assert (await page(api, "/admin/calendar?year=abc"))[0] == 422

    resp = await post(api, "/admin/calendar/overrides/remove", {"csrf": token, "date": "2026-12-01"})
    assert resp.status == 303
    assert await count(org_db, CalendarOverrideRow) == 0
    _, html, _ = await page(api, "/admin/calendar?year=2026")
    assert 'class="normal" title="2026-12-01"' in html
