"""The desk's statistics (/admin/stats): the page, its CSV and XLSX exports give the numbers of
`GET /api/v1/stats` and `oabot stats` for the same period (one source); publishing freezes them
(a later correction changes the live page, not the publication; publishing again adds a
version) and queues the summaries; non-admins get 403 everywhere; bad periods are a 422."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import UTC
from pathlib import Path
from typing import Any

import openpyxl
from sqlalchemy import func, select

from bot.keys import SESSIONS, WORKFLOW
from bot.web.admin.stats_pages import publications
from bot.web.api_stats import stats_service
from reports.appraisal import weeks_of
from reports.charts import bar_chart, line_chart, stacked_bar_chart
from reports.stats import parse_period
from storage.approval_models import OutboxRow
from storage.db import Database
from storage.publication_models import StatsPublicationRow
from tests.conftest import Api
from tests.test_stats import SEAL, TZ, act, cli_env, known_day, local, oabot, stats  # noqa: F401

OFFICE = "u_zhao"  # the office role in the demo org
STAFF = "u_chen"
WEEK = "from=2026-11-01&to=2026-11-07"
PAGES = (
    f"/admin/stats?{WEEK}",
    f"/admin/stats.csv?{WEEK}",
    f"/admin/stats.xlsx?{WEEK}",
    "/admin/stats/publications",
    "/admin/stats/publications/1",
)
ROW_RE = re.compile(r'<tr data-kind=(\w+) data-id="([^"]+)"><th scope=row>[^<]*</th>(.*?)</tr>', re.S)
CELL_RE = re.compile(r"<td>([^<]*)</td>")


async def cookie(api: Api, user: str) -> dict[str, str]:
    session = await api.app[SESSIONS].start(user, via="test")  # type: ignore[index]
    return {"Cookie": f"oabot_session={session.id}"}


async def get(api: Api, path: str, user: str = OFFICE) -> Any:
    return await api.client.get(path, headers=await cookie(api, user), allow_redirects=False)  # type: ignore[attr-defined]


def page_rows(html: str) -> dict[tuple[str, str], list[str]]:
    """(kind, id) -> the number cells after the name (and a person's department)."""
    rows = {}
    for kind, row_id, cells in ROW_RE.findall(html):
        found = CELL_RE.findall(cells)
        rows[(kind, row_id)] = found
    return rows


def as_page(row: dict[str, Any]) -> list[str]:
    def h(v: Any) -> str:
        return "—" if v is None else f"{v:g}"

    return [
        str(row["handled"]),
        h(row["median_working_hours"]),
        h(row["p90_working_hours"]),
        str(row["overdue"]),
        str(row["reminders"]),
        str(row["initiated"]),
    ]


async def test_page_and_exports_equal_the_api_and_the_cli(api: Api, clock, cli_env: Path) -> None:  # noqa: F811
    await known_day(api, clock)
    clock.set(local(9, 9).astimezone(UTC))  # past the period end, as the command's real clock is
    body = await stats(api, WEEK)
    resp = await get(api, f"/admin/stats?{WEEK}")
    html = await resp.text()
    assert resp.status == 200 and html.count("<svg") >= 4 and "各部门按时与超时件数" in html
    rows = page_rows(html)
    for kind, key in (("department", "departments"), ("person", "people")):
        for row in body[key]:
            cells = rows[(kind, row["id"])]
            assert cells[:4] + cells[5:] == as_page(row), (kind, row["id"])  # cells[4]: the rate
    assert rows[("person", "u_sun")][:4] == ["3", "1", "3.8", "1"]  # the known day's numbers
    assert rows[("person", "u_sun")][4] == "33.3%"  # 1 late of 3 handled

    out_file = cli_env / "cli.csv"
    assert await oabot("stats", "--from", "2026-11-01", "--to", "2026-11-07", "--csv", str(out_file)) == 0
    from_cli = sorted(csv.reader(out_file.open(encoding="utf-8-sig", newline="")))
    resp = await get(api, f"/admin/stats.csv?{WEEK}")
    assert resp.status == 200 and "attachment" in resp.headers["Content-Disposition"]
    from_page = sorted(csv.reader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    assert from_page == from_cli and len(from_page) == 18

    resp = await get(api, f"/admin/stats.xlsx?{WEEK}")
    book = openpyxl.load_workbook(io.BytesIO(await resp.read()))
    people = list(book["人员"].iter_rows(values_only=True))
    assert people[0][:4] == ("编号", "名称", "部门", "处理件数")
    sun = next(r for r in people if r[0] == "u_sun")
    assert (sun[1], sun[3], sun[4], sun[8]) == ("孙丽", 3, 1, 1)
    assert len(people) - 1 == len(body["people"])
    assert book.sheetnames == ["部门", "人员", "每周趋势", "最慢步骤"]
    steps = list(book["最慢步骤"].iter_rows(values_only=True))[1:]
    assert steps and all("·" in r[0] for r in steps)


async def publish(api: Api, user: str = OFFICE, **extra: str) -> Any:
    headers = await cookie(api, user)
    page = await api.client.get(f"/admin/stats?{WEEK}", headers=headers)  # type: ignore[attr-defined]
    token = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    form = {"from": "2026-11-01", "to": "2026-11-07", "csrf": token.group(1) if token else "", **extra}
    return await api.client.post("/admin/stats/publish", data=form, headers=headers, allow_redirects=False)  # type: ignore[attr-defined]


async def count(db: Database, model: Any, *where: Any) -> int:
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_a_publication_stays_frozen_after_a_correction(api: Api, clock, org_db: Database) -> None:
    rids = await known_day(api, clock)
    resp = await publish(api)
    assert resp.status == 303
    first = resp.headers["Location"]
    summaries = await count(org_db, OutboxRow, OutboxRow.kind == "stats_summary")
    assert summaries >= 2  # department heads and the office
    async with org_db.session() as s:
        texts = [
            r.payload["text"]
            for r in (await s.execute(select(OutboxRow))).scalars()
            if r.kind == "stats_summary"
        ]
    assert any("【审批统计发布】" in t and "孙丽" in t for t in texts)

    frozen_before = page_rows(await (await get(api, first)).text())
    assert frozen_before[("person", "u_wang")][0] == "1"
    # A correction: 王芳 decides R2 within the period (a late entry); the live page changes.
    clock.set(local(3, 11).astimezone(UTC))
    await act(api, rids["r2"], "u_wang")
    clock.set(local(9, 9).astimezone(UTC))
    live = page_rows(await (await get(api, f"/admin/stats?{WEEK}")).text())
    assert live[("person", "u_wang")][0] == "2"
    frozen_after = page_rows(await (await get(api, first)).text())
    assert frozen_after == frozen_before
    assert "之后的数据更正不会改变" in await (await get(api, first)).text()

    resp = await publish(api)
    second = resp.headers["Location"]
    assert second != first
    assert page_rows(await (await get(api, second)).text())[("person", "u_wang")][0] == "2"
    listing = await (await get(api, "/admin/stats/publications")).text()
    assert "第 1 版" in listing and "第 2 版" in listing
    assert await count(org_db, StatsPublicationRow) == 2


async def test_non_admins_get_403_and_publish_needs_the_form_token(api: Api, clock, org_db: Database) -> None:
    for path in PAGES:
        resp = await get(api, path, STAFF)
        assert resp.status == 403, path
        assert "仅对办公室" in await resp.text()
    assert (await publish(api, STAFF)).status == 403
    assert (await publish(api, OFFICE, csrf="forged")).status == 403
    assert await count(org_db, StatsPublicationRow) == 0
    assert await count(org_db, OutboxRow, OutboxRow.kind == "stats_summary") == 0
    resp = await api.client.get("/admin/stats", allow_redirects=False)  # type: ignore[attr-defined]
    assert resp.status == 303  # anonymous: to sign in


async def test_bad_periods_are_422_and_the_default_is_last_month(api: Api, clock) -> None:
    for query in ("from=2026-11-31&to=2026-11-02", "from=2026-11-09&to=2026-11-02", "from=x"):
        resp = await get(api, f"/admin/stats?{query}")
        assert resp.status == 422, query
        assert "统计期间有误" in await resp.text()
        assert (await get(api, f"/admin/stats.xlsx?{query}")).status == 422
    assert (await get(api, "/admin/stats/publications/999")).status == 404
    assert (await get(api, "/admin/stats/publications/abc")).status == 404
    clock.set(local(9, 9).astimezone(UTC))
    html = await (await get(api, "/admin/stats")).text()
    assert "统计期间：2026-10-01 至 2026-10-31" in html


async def test_two_publishers_of_one_period_get_versions_1_and_2(api: Api, clock, org_db: Database) -> None:
    await known_day(api, clock)
    service = publications(api.app)  # type: ignore[arg-type]
    period = stats_service(api.app).period("2026-11-01", "2026-11-07")  # type: ignore[arg-type]
    templates = {t.key: t for t in api.app[WORKFLOW].templates()}  # type: ignore[index]
    done = await asyncio.gather(
        service.publish(period, by=OFFICE, templates=templates),
        service.publish(period, by=OFFICE, templates=templates),
    )
    assert sorted(p.version for p in done) == [1, 2]
    assert done[0].numbers == done[1].numbers


# -- the pure parts -------------------------------------------------------------------------------
def test_charts_escape_labels_and_draw_missing_values_as_none() -> None:
    svg = bar_chart("<标题>", ["市场部", "a<b"], [2.5, None], unit=" h")
    assert "&lt;标题&gt;" in svg and "a&lt;b" in svg and "<b" not in svg.replace("<b ", "")
    assert svg.count("<rect") == 1 and "无" in svg and "2.5 h" in svg
    line = line_chart("趋势", ["11-02", "11-09", "11-16"], [("处理", [1, None, 3])])
    assert line.count("<circle") == 2 and "<polyline" in line
    stacked = stacked_bar_chart("超时", ["甲", "乙"], [("按时", [2, 0]), ("超时", [1, 0])])
    assert stacked.count('<rect x="') == 2 + 2  # two legend keys, two parts of 甲; 乙 has none
    assert ">3</text>" in stacked and ">0</text>" in stacked


def test_weeks_are_calendar_weeks_clipped_to_the_period() -> None:
    weeks = weeks_of(parse_period("2026-11-01", "2026-11-18", TZ))
    assert [(w.first.isoformat(), w.last.isoformat()) for w in weeks] == [
        ("2026-11-01", "2026-11-01"),
        ("2026-11-02", "2026-11-08"),
        ("2026-11-09", "2026-11-15"),
        ("2026-11-16", "2026-11-18"),
    ]
