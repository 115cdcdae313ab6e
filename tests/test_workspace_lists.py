"""The workspace lists (待我处理 / 我已处理 / 我发起的 / 抄送我的) and batch approval, on the
phone pages and in chat, for several demo people: counts and contents (delegated tasks and CC
included), search, filters, pages, a batch where one task was already handled, the chat's
numbering, and the CSRF refusal."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from approvals.clock import ManualClock
from bot.keys import CHAT, CLOCK, KV, SESSIONS, WORKSPACE_LISTS
from handlers.events import Sender, TextMessage
from org.model import User
from services.workspace_lists import BatchOutcome, ListKind, ListQuery, WorkspaceLists
from tests.conftest import Api

LEAVE = {
    "leave_type": "事假",
    "period": {"start": "2026-11-24", "end": "2026-11-25"},
    "days": 2,
    "reason": "家中有事",
}


def expense(amount: float, category: str = "差旅费", reason: str = "上海出差") -> dict[str, Any]:
    return {"category": category, "amount": amount, "reason": reason, "invoice_count": 1}


async def submit(api: Api, template: str, initiator: str, form: dict[str, Any]) -> dict[str, Any]:
    """Submit one minute after the previous one, so "newest first" has one answer."""
    clock: ManualClock = api.app[CLOCK]  # type: ignore[index]
    clock.advance(timedelta(minutes=1))
    return await api.submit(template, initiator, form)


def lists(api: Api) -> WorkspaceLists:
    return api.app[WORKSPACE_LISTS]  # type: ignore[index,no-any-return]


async def person(api: Api, user_id: str) -> User:
    found = (await lists(api)._workflow.org()).user(user_id)
    assert found is not None
    return found


async def titles(api: Api, user_id: str, kind: ListKind, **query: Any) -> list[str]:
    page = await lists(api).page(await person(api, user_id), kind, ListQuery(**query))
    return [i.title for i in page.items]


async def approve_via_api(api: Api, user: str, request_id: str) -> None:
    [task] = [t for t in await api.pending(user) if t["request_id"] == request_id]
    await api.call(
        "POST",
        f"/requests/{request_id}/actions",
        {"action": "approve", "actor": user, "task_id": task["task_id"], "version": task["version"]},
        expect=200,
    )


async def test_each_list_counts_and_shows_the_right_requests_for_each_person(api: Api) -> None:
    e1 = await submit(api, "expense", "u_wu", expense(100))
    await submit(api, "expense", "u_wu", expense(300, "招待费", "客户晚宴"))
    leave = await submit(api, "leave", "u_wu", LEAVE)
    await approve_via_api(api, "u_sun", leave["id"])  # approved: the HR manager is CC'd
    # 孙丽 hands her approvals to 周杰 from now on: her older tasks stay hers, but he may act on them
    await api.call(
        "POST",
        "/delegations",
        {
            "delegator": "u_sun",
            "delegate": "u_zhou",
            "starts_at": "2026-11-23T09:00:00+08:00",
            "ends_at": "2026-11-26T18:00:00+08:00",
        },
        expect=201,
    )
    await submit(api, "expense", "u_wu", expense(50, "交通费", "打车"))  # assigned to 周杰 for 孙丽

    sun = await lists(api).page(await person(api, "u_sun"), ListKind.TODO)
    assert (sun.counts.todo, sun.counts.done, sun.counts.mine, sun.counts.cc) == (3, 1, 0, 0)
    assert [i.title for i in sun.items] == [
        "交通费报销 50.0 元",
        "招待费报销 300.0 元",
        "差旅费报销 100.0 元",
    ]
    assert all(i.template_name == "费用报销" and i.status_label == "审批中" for i in sun.items)
    assert sun.items[2].task_id == f"{e1['id']}-1" and sun.items[2].initiator_name == "吴昊"

    zhou = await lists(api).page(await person(api, "u_zhou"), ListKind.TODO)
    assert zhou.counts.todo == 3
    assert {i.acting_for_name for i in zhou.items} == {"孙丽"}  # all three held for her

    assert await titles(api, "u_sun", ListKind.DONE) == ["事假 2 天"]
    assert await titles(api, "u_zhao", ListKind.CC) == ["事假 2 天"]
    zhao = await lists(api).page(await person(api, "u_zhao"), ListKind.CC)
    assert (zhao.counts.todo, zhao.counts.cc) == (0, 1) and zhao.items[0].status_label == "已通过"
    wu = await lists(api).page(await person(api, "u_wu"), ListKind.MINE)
    assert (wu.counts.todo, wu.counts.done, wu.counts.mine, wu.counts.cc) == (0, 0, 4, 0)
    assert wu.items[0].title == "交通费报销 50.0 元"  # newest first
    assert await titles(api, "u_wu", ListKind.CC) == []  # the initiator is told, not CC'd


async def test_search_filters_and_pages(api: Api) -> None:
    await submit(api, "expense", "u_wu", expense(300, "招待费", "客户晚宴"))
    leave = await submit(api, "leave", "u_wu", LEAVE)
    await approve_via_api(api, "u_sun", leave["id"])
    for n in range(22):
        await submit(api, "expense", "u_wu", expense(1000 + n))

    assert await titles(api, "u_sun", ListKind.TODO, text="客户晚宴") == [
        "招待费报销 300.0 元"
    ]  # a form value
    assert await titles(api, "u_sun", ListKind.TODO, text="招待") == ["招待费报销 300.0 元"]  # the title
    assert len(await titles(api, "u_sun", ListKind.TODO, text="吴昊")) == 20  # the initiator's name
    assert await titles(api, "u_sun", ListKind.TODO, text="%") == []  # LIKE wildcards are literal
    assert await titles(api, "u_wu", ListKind.MINE, template="leave") == ["事假 2 天"]
    assert await titles(api, "u_wu", ListKind.MINE, status="approved") == ["事假 2 天"]
    assert await titles(api, "u_wu", ListKind.MINE, date_from=date(2026, 11, 24)) == []
    assert len(await titles(api, "u_wu", ListKind.MINE, date_to=date(2026, 11, 23))) == 20

    wu = await person(api, "u_wu")
    first = await lists(api).page(wu, ListKind.MINE, ListQuery(page=1))
    second = await lists(api).page(wu, ListKind.MINE, ListQuery(page=2))
    assert (first.total, first.pages, len(first.items), len(second.items)) == (24, 2, 20, 4)
    assert not {i.request_id for i in first.items} & {i.request_id for i in second.items}
    assert second.items[-1].title == "招待费报销 300.0 元"  # the oldest, last


async def signed_in(api: Api, user_id: str) -> tuple[dict[str, str], str]:
    session = await api.app[SESSIONS].start(user_id, via="test")  # type: ignore[index]
    return {"Cookie": f"oabot_session={session.id}"}, session.csrf


async def test_batch_of_three_where_one_was_already_handled_on_the_page(api: Api) -> None:
    ids = [(await submit(api, "expense", "u_wu", expense(100 + n)))["id"] for n in range(3)]
    cookie, csrf = await signed_in(api, "u_sun")
    page = await api.client.get("/m/", headers=cookie)  # type: ignore[attr-defined]
    html = await page.text()
    assert page.status == 200 and "待我处理" in html
    picked = re.findall(r'name=t value="([^"]+)"', html)
    assert len(picked) == 3
    await approve_via_api(api, "u_sun", ids[1])  # handled on a card meanwhile

    resp = await api.client.post(  # type: ignore[attr-defined]
        "/m/batch",
        data=[("csrf", csrf), *[("t", p) for p in picked], ("opinion", "同意，按标准报销")],
        headers=cookie,
    )
    result = await resp.text()
    assert resp.status == 200
    outcomes = re.findall(r'data-outcome="([a-z_]+)"', result)
    assert sorted(outcomes) == ["already_handled", "approved", "approved"]
    assert "已处理（别人或之前已处理）" in result and "已同意" in result
    assert "这条待办已处理" in result
    # the two approved ones moved on to finance with the shared opinion on the trail
    for rid in (ids[0], ids[2]):
        _, req = await api.call("GET", f"/requests/{rid}", expect=200)
        assert req["steps"][0]["tasks"][0]["comment"] == "同意，按标准报销"  # type: ignore[index]
    assert len(await api.pending("u_qian")) == 3


async def test_batch_refuses_tasks_that_are_not_yours_and_handling_steps(api: Api) -> None:
    ours = await submit(api, "expense", "u_wu", expense(100))
    theirs = await submit(api, "expense", "u_zheng", expense(100))  # 周杰's to approve
    sun = await person(api, "u_sun")
    [mine] = await api.pending("u_sun")
    [other] = await api.pending("u_zhou")
    report = await lists(api).batch_approve(
        sun, [(mine["task_id"], mine["version"]), (other["task_id"], other["version"]), ("nope-1", 1)]
    )
    assert [i.outcome for i in report.items] == [
        BatchOutcome.APPROVED,
        BatchOutcome.REFUSED,
        BatchOutcome.REFUSED,
    ]
    assert report.items[1].reason == "这条待办不是由您处理的" and report.items[1].request_id == theirs["id"]
    assert report.items[2].reason == "找不到这条待办"
    # finance approves, then 财务付款 (a handling step) is not something to approve in a batch
    await approve_via_api(api, "u_qian", ours["id"])
    [pay] = await api.pending("u_qian")
    qian = await person(api, "u_qian")
    [item] = (await lists(api).page(qian, ListKind.TODO)).items
    assert item.step_name == "财务付款" and not item.batchable
    [refused] = (await lists(api).batch_approve(qian, [(pay["task_id"], pay["version"])])).items
    assert refused.outcome == BatchOutcome.REFUSED and "财务付款" in refused.reason


async def test_batch_post_needs_the_sessions_csrf_token(api: Api) -> None:
    await submit(api, "expense", "u_wu", expense(100))
    [task] = await api.pending("u_sun")
    cookie, _csrf = await signed_in(api, "u_sun")
    value = f"{task['task_id']}:{task['version']}"
    client = api.client
    forged = await client.post("/m/batch", data={"csrf": "forged", "t": value}, headers=cookie)  # type: ignore[attr-defined]
    assert forged.status == 403
    anonymous = await client.post("/m/batch", data={"t": value}, allow_redirects=False)  # type: ignore[attr-defined]
    assert anonymous.status == 303 and anonymous.headers["Location"].startswith("/m/sign-in")
    assert len(await api.pending("u_sun")) == 1  # nothing was approved


async def test_list_pages_render_tabs_filters_items_and_pager(api: Api) -> None:
    for n in range(21):
        await submit(api, "expense", "u_wu", expense(100 + n))
    cookie, _ = await signed_in(api, "u_wu")
    client = api.client
    first = await (await client.get("/m/mine", headers=cookie)).text()  # type: ignore[attr-defined]
    assert re.search(r'href="/m/mine" data-count="21"', first)
    assert first.count('href="/m/r/') == 20 and "第 1/2 页" in first and "page=2" in first
    second = await (await client.get("/m/mine?page=2&status=running", headers=cookie)).text()  # type: ignore[attr-defined]
    assert second.count('href="/m/r/') == 1 and "status=running&amp;page=1" in second
    for path in ("/m/todo", "/m/done", "/m/cc"):
        resp = await client.get(path, headers=cookie)  # type: ignore[attr-defined]
        assert resp.status == 200 and "暂无记录" in await resp.text() or path == "/m/todo"
    for path in ("/m/todo", "/m/done", "/m/mine", "/m/cc"):  # every list leads to starting a request
        page = await (await client.get(path, headers=cookie)).text()  # type: ignore[attr-defined]
        assert '<a class=bar-link href="/m/new">＋ 发起申请</a>' in page, path
        assert '<a class="bar-new nt-nav" href="/m/n/">通知' in page, path  # and to the notices
    bad = await client.get("/m/mine?page=x&from=nonsense&status=<b>", headers=cookie)  # type: ignore[attr-defined]
    assert bad.status == 200 and "&lt;b&gt;" not in await bad.text()  # unreadable filters are dropped
    anonymous = await client.get("/m/todo", allow_redirects=False)  # type: ignore[attr-defined]
    assert anonymous.status == 303


async def say(api: Api, user: str, text: str, n: int) -> str:
    reply = await api.app[CHAT].handle(  # type: ignore[index]
        TextMessage(sender=Sender("console", user), event_id=f"t{n}", text=text)
    )
    assert reply is not None
    return str(reply)


async def test_chat_numbers_the_todo_list_and_approves_by_number(api: Api) -> None:
    for n in range(3):
        await submit(api, "expense", "u_wu", expense(100 + n))
    assert (await say(api, "u_sun", "同意 1", 0)).startswith("待办编号已失效")

    listed = await say(api, "u_sun", "待办", 1)
    assert listed.splitlines()[0] == "您有 3 条待办："
    numbered = dict(re.findall(r"^(\d)\. 【一般】费用报销：(\S+ \S+ 元)", listed, re.M))
    assert numbered == {"1": "差旅费报销 102.0 元", "2": "差旅费报销 101.0 元", "3": "差旅费报销 100.0 元"}
    # number 2 is handled elsewhere before the follow-up
    pending = {t["title"]: t for t in await api.pending("u_sun")}
    await approve_via_api(api, "u_sun", pending["差旅费报销 101.0 元"]["request_id"])

    answer = await say(api, "u_sun", "同意 1 2 3 9 请尽快付款", 2)
    lines = answer.splitlines()
    assert lines[0] == "批量同意：2 条已同意，1 条已处理，0 条未同意"
    assert lines[1] == "1. 已同意：费用报销：差旅费报销 102.0 元"
    assert lines[2].startswith("2. 已处理（别人或之前已处理）：费用报销：差旅费报销 101.0 元 —— ")
    assert lines[3] == "3. 已同意：费用报销：差旅费报销 100.0 元"
    assert lines[4] == "编号 9 不在最近的待办列表中。"
    assert await api.pending("u_sun") == []

    assert (await say(api, "u_qian", "全部同意", 3)).startswith("待办编号已失效")
    await say(api, "u_qian", "待办", 4)
    kv = api.app[KV]  # type: ignore[index]
    assert 1790 < (await kv.ttl("chat-todo:u_qian") or 0) <= 1800  # remembered for 30 minutes
    await kv.delete("chat-todo:u_qian")  # ... which have passed
    assert (await say(api, "u_qian", "全部同意", 5)).startswith("待办编号已失效")
    await say(api, "u_qian", "待办", 6)
    everything = await say(api, "u_qian", "全部同意 已核", 7)
    assert everything.splitlines()[0] == "批量同意：3 条已同意，0 条已处理，0 条未同意"
    assert "同意 1 3 5" in await say(api, "u_qian", "帮助", 8)
    assert (await say(api, "u_qian", "同意 好的", 9)).startswith("用法：同意 1 3 5")
