"""The office's requests desk: every /admin/ page and export refuses staff (403) and sends an
anonymous visitor to sign in; filters, search in form values, sorting and pages; the admin's
转交 with a reason lands in the trail and with the new person; the XLSX and CSV exports read
back; `oabot export requests`. SQLite and PostgreSQL (the `api` fixture runs both)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from approvals.clock import ManualClock
from bot.cli import main
from bot.keys import CLOCK, DB, DEADLINES, SESSIONS, SETTINGS, WORKFLOW
from services.admin_desk import AdminDesk, DeskQuery
from tests.conftest import Api
from tests.test_audit_cli import _setup
from tests.test_workspace_lists import LEAVE, expense

OFFICE = "u_zhao"  # hr_manager: the office role in the demo org
STAFF = "u_chen"


async def _session(api: Api, user: str) -> tuple[dict[str, str], str]:
    session = await api.app[SESSIONS].start(user, via="test")  # type: ignore[index]
    return {"Cookie": f"oabot_session={session.id}"}, session.csrf


async def _submit(api: Api, template: str, initiator: str, form: dict[str, Any]) -> str:
    clock: ManualClock = api.app[CLOCK]  # type: ignore[index]
    clock.advance(timedelta(minutes=1))
    return str((await api.submit(template, initiator, form))["id"])


async def _three(api: Api) -> dict[str, str]:
    return {
        "trip": await _submit(api, "expense", "u_wu", expense(100)),
        "dinner": await _submit(api, "expense", "u_wu", expense(300, "招待费", "客户晚宴")),
        "leave": await _submit(api, "leave", "u_wu", LEAVE),
    }


def _desk(api: Api, page_size: int = 25) -> AdminDesk:
    app: Any = api.app
    return AdminDesk(
        app[WORKFLOW],
        app[DB],
        tz=app[SETTINGS].tz,
        now=app[CLOCK].now,
        working_time=app[DEADLINES].calendar.working_time_between,
        page_size=page_size,
    )


async def _titles(api: Api, page_size: int = 25, **query: Any) -> list[str]:
    found = await _desk(api, page_size).requests(DeskQuery(**query))
    return [i.title for i in found.items]


async def test_staff_get_403_and_anonymous_visitors_are_sent_to_sign_in_on_every_desk_page(api: Api) -> None:
    rid = (await _three(api))["trip"]
    client: Any = api.client
    staff, staff_csrf = await _session(api, STAFF)
    gets = [
        "/admin/requests",
        f"/admin/requests/{rid}",
        "/admin/requests.xlsx",
        "/admin/requests.csv?q=x",
        "/admin/overdue",
        "/admin/delegations",
        "/admin/outbox",
    ]
    posts = [f"/admin/requests/{rid}/act", "/admin/delegations/d1/end", "/admin/outbox/1/retry"]
    for path in gets:
        resp = await client.get(path, headers=staff, allow_redirects=False)
        assert resp.status == 403, path
        assert "仅对办公室" in await resp.text()
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"].startswith("/m/sign-in"), path
    for path in posts:
        form = {"csrf": staff_csrf, "do": "terminate", "reason": "x"}
        assert (await client.post(path, data=form, headers=staff, allow_redirects=False)).status == 403, path
        assert (await client.post(path, data=form, allow_redirects=False)).status == 303, path
    _, body = await api.call("GET", f"/requests/{rid}", expect=200)
    assert body["status"] == "running"  # nothing a refused post did changed the request


async def test_filters_search_sorting_and_pages(api: Api) -> None:
    ids = await _three(api)
    await _submit(api, "expense", "u_sun", expense(80, "交通费", "打车"))
    assert await _titles(api, text="客户晚宴") == [
        (await api.call("GET", f"/requests/{ids['dinner']}"))[1]["title"]
    ]  # type: ignore[index]
    assert len(await _titles(api, template="leave")) == 1
    assert len(await _titles(api, initiator="u_wu")) == 3
    assert len(await _titles(api, initiator="u_sun")) == 1
    every = await _titles(api)
    assert len(every) == 4
    assert await _titles(api, descending=False) == list(reversed(every))  # newest first by default
    by_title = await _titles(api, sort="title", descending=False)
    assert by_title == sorted(by_title)
    assert len(await _titles(api, page_size=3, page=1)) == 3
    assert await _titles(api, page_size=3, page=2) == every[3:]
    # Someone holds the leave now: it is stuck at them; the approver filter finds it too.
    [holder] = {
        t["assignee"] for t in (await api.call("GET", f"/requests/{ids['leave']}"))[1]["steps"][0]["tasks"]
    }  # type: ignore[index]
    stuck = await _titles(api, stuck_at=holder, template="leave")
    assert len(stuck) == 1 and stuck == await _titles(api, approver=holder, template="leave")
    assert await _titles(api, overdue=True) == []
    clock: ManualClock = api.app[CLOCK]  # type: ignore[index]
    clock.advance(timedelta(days=10))
    assert len(await _titles(api, overdue=True)) == 4  # every task waited past its deadline

    client: Any = api.client
    office, _ = await _session(api, OFFICE)
    resp = await client.get("/admin/requests?q=%E5%AE%A2%E6%88%B7%E6%99%9A%E5%AE%B4", headers=office)
    page = await resp.text()
    assert resp.status == 200 and "共 1 条" in page and "审批中" in page and ">running<" not in page
    for bad in ("page=0", "from=2026-13-01", "status=bogus", "dept=nowhere", "from=2026-11-30&to=2026-11-01"):
        resp = await client.get(f"/admin/requests?{bad}", headers=office)
        assert resp.status == 400, bad


async def test_reassign_records_the_admin_and_reason_and_the_new_person_gets_the_task(api: Api) -> None:
    rid = (await _three(api))["leave"]
    client: Any = api.client
    office, csrf = await _session(api, OFFICE)
    _, body = await api.call("GET", f"/requests/{rid}", expect=200)
    [task] = [t for s in body["steps"] for t in s["tasks"] if t["status"] == "pending"]  # type: ignore[index]
    target = "u_li" if task["assignee"] != "u_li" else "u_sun"
    form = {
        "csrf": csrf,
        "do": "reassign",
        "task_id": task["id"],
        "version": str(task["version"]),
        "target": target,
    }
    resp = await client.post(
        f"/admin/requests/{rid}/act", data={**form, "reason": " "}, headers=office, allow_redirects=False
    )
    assert resp.status == 303  # no reason: refused, nothing changed
    assert not [t for t in await api.pending(target) if t["request_id"] == rid]
    resp = await client.post(f"/admin/requests/{rid}/act", data={**form, "reason": ""}, headers=office)
    assert "请填写转交理由" in await resp.text()
    resp = await client.post(
        f"/admin/requests/{rid}/act", data={**form, "reason": "原审批人长期出差"}, headers=office
    )
    page = await resp.text()
    assert resp.status == 200 and "已转交给" in page and "原审批人长期出差" in page and "管理员转交" in page
    assert [t for t in await api.pending(target) if t["request_id"] == rid]
    _, body = await api.call("GET", f"/requests/{rid}", expect=200)
    [moved] = [e for e in body["trail"] if e["kind"] == "transferred"]  # type: ignore[index]
    assert (moved["actor"], moved["before"], moved["after"], moved["comment"]) == (
        OFFICE,
        task["assignee"],
        target,
        "原审批人长期出差",
    )
    assert moved["data"]["as_admin"] is True
    resp = await client.post(
        f"/admin/requests/{rid}/act", data={**form, "reason": "again"}, headers={**office}
    )
    assert "已转交给" not in await resp.text()  # the old version is stale now: refused in words


async def test_the_xlsx_and_csv_exports_read_back_with_one_row_per_request(api: Api) -> None:
    await _three(api)
    client: Any = api.client
    office, _ = await _session(api, OFFICE)
    resp = await client.get("/admin/requests.xlsx?template=expense&sort=created&order=asc", headers=office)
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("application/vnd.openxml")
    book = openpyxl.load_workbook(io.BytesIO(await resp.read()), read_only=True)
    rows = list(book.active.iter_rows(values_only=True))
    header, data = rows[0], rows[1:]
    assert len(data) == 2
    assert "流程" in header and "用时（工作小时）" in header
    assert [r[header.index("报销事由")] for r in data] == ["上海出差", "客户晚宴"]
    assert [r[header.index("报销类别")] for r in data] == ["差旅费", "招待费"]
    assert all(r[header.index("状态")] == "审批中" for r in data)
    resp = await client.get("/admin/requests.csv?q=%E5%AE%A2%E6%88%B7", headers=office)
    text = (await resp.read()).decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text)))
    assert resp.status == 200 and len(lines) == 2 and "客户晚宴" in ",".join(lines[1])


@pytest.mark.parametrize("suffix", ["xlsx", "csv"])
def test_cli_export_writes_the_period_with_a_progress_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:

    url = f"sqlite+aiosqlite:///{tmp_path}/oabot.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OABOT_DATABASE_URL", url)
    _setup(url)
    out = tmp_path / f"requests.{suffix}"
    assert main(["export", "requests", "--from", "2020-01-01", "--to", "2030-12-31", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "exported 2/2 requests" in captured.err and "exported 2 request(s)" in captured.out
    if suffix == "xlsx":
        rows = list(openpyxl.load_workbook(out, read_only=True).active.iter_rows(values_only=True))
    else:
        rows = list(csv.reader(out.open(encoding="utf-8-sig")))
    assert len(rows) == 3 and "公章" in "".join(str(c) for c in rows[1] + rows[2])
    assert main(["export", "requests", "--from", "2030-01-01", "--to", "2020-01-01", "--out", str(out)]) == 2
    assert main(["export", "requests", "--out", str(tmp_path / "x.pdf")]) == 2


async def test_terminate_and_urge_need_words_and_land_in_the_trail(api: Api) -> None:
    rid = (await _three(api))["trip"]
    client: Any = api.client
    office, csrf = await _session(api, OFFICE)
    _, body = await api.call("GET", f"/requests/{rid}", expect=200)
    [task] = [t for s in body["steps"] for t in s["tasks"] if t["status"] == "pending"]  # type: ignore[index]
    urge = {"csrf": csrf, "do": "urge", "task_id": task["id"], "version": str(task["version"])}
    page = await (await client.post(f"/admin/requests/{rid}/act", data=urge, headers=office)).text()
    assert "已催办：" in page
    page = await (await client.post(f"/admin/requests/{rid}/act", data=urge, headers=office)).text()
    assert "已催办：" not in page  # once per half hour: refused in words
    page = await (
        await client.post(
            f"/admin/requests/{rid}/act", data={"csrf": csrf, "do": "terminate"}, headers=office
        )
    ).text()
    assert "请填写终止理由" in page
    bad = await client.post(
        f"/admin/requests/{rid}/act", data={"do": "terminate", "reason": "x"}, headers=office
    )
    assert bad.status == 403  # no CSRF token
    page = await (
        await client.post(
            f"/admin/requests/{rid}/act",
            data={"csrf": csrf, "do": "terminate", "reason": "重复提交"},
            headers=office,
        )
    ).text()
    assert "已终止这条申请" in page
    _, body = await api.call("GET", f"/requests/{rid}", expect=200)
    assert body["status"] == "terminated"  # type: ignore[index]
    kinds = [(e["kind"], e["actor"]) for e in body["trail"]]  # type: ignore[index]
    assert ("urged", OFFICE) in kinds and ("request_terminated", OFFICE) in kinds


async def test_overdue_board_delegations_ended_early_and_a_dead_message_retried(api: Api) -> None:
    await _three(api)
    app: Any = api.app
    client: Any = api.client
    office, csrf = await _session(api, OFFICE)
    page = await (await client.get("/admin/overdue", headers=office)).text()
    assert "目前没有超期未办的事项" in page
    app[CLOCK].advance(timedelta(days=3))
    office, csrf = await _session(api, OFFICE)  # a fresh session: the first one aged out
    page = await (await client.get("/admin/overdue", headers=office)).text()
    assert "共 3 项超期未办" in page and "按部门" in page and "督办" in page

    now = app[CLOCK].now()
    d = await app[WORKFLOW].create_delegation(
        delegator="u_sun",
        delegate="u_zhou",
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(days=5),
    )
    page = await (await client.get("/admin/delegations", headers=office)).text()
    assert "生效中" in page and "周杰" in page
    resp = await client.post(f"/admin/delegations/{d.id}/end", data={"csrf": csrf}, headers=office)
    assert "已提前结束" in await resp.text()
    assert await app[WORKFLOW].list_delegations() == []

    await api.drain()  # the console delivers; make one message dead by hand
    from sqlalchemy import text

    async with app[DB].transaction() as s:
        await s.execute(
            text(
                "UPDATE outbox SET status='dead', attempts=5, last_error='errcode 60020 ip not allowed' WHERE id=1"
            )
        )
    page = await (await client.get("/admin/outbox", headers=office)).text()
    assert "发送失败 1" in page and "errcode 60020" in page and "重新发送" in page
    resp = await client.post("/admin/outbox/1/retry", data={"csrf": csrf}, headers=office)
    assert "已重新排队发送" in await resp.text()
    resp = await client.post("/admin/outbox/1/retry", data={"csrf": csrf}, headers=office)
    assert "未做改动" in await resp.text()  # already pending again
    assert (await client.post("/admin/outbox/x/retry", data={"csrf": csrf}, headers=office)).status == 404
