"""The console: a demo user's chat, cards that act when tapped, commands, forms from schemas."""

from __future__ import annotations

import re

from multidict import MultiDict, MultiDictProxy
from sqlalchemy import select

from approvals.definitions import FieldSpec, FieldType, Template
from approvals.model import StepStatus, TaskStatus
from bot.app import create_app
from bot.keys import DISPATCHER, WORKFLOW
from bot.web.console.labels import STEP_STATUS_LABEL, TASK_STATUS_LABEL
from bot.web.forms import form_from_post
from storage.console_models import ConsoleMessageRow
from tests.conftest import settings_for


async def _client(org_db, aiohttp_client, clock, **overrides):
    app = create_app(settings_for(org_db, console=True, **overrides), clock=clock)
    return app, await aiohttp_client(app)


async def _messages(db, uid):
    async with db.session() as s:
        return (
            (
                await s.execute(
                    select(ConsoleMessageRow)
                    .where(ConsoleMessageRow.user_id == uid)
                    .order_by(ConsoleMessageRow.id)
                )
            )
            .scalars()
            .all()
        )


SEAL = {
    "department": "",
    "seal": "公章",
    "reason": "签署框架合同",
    "needed_at": "2026-11-24T10:00",
    "files": "框架合同.pdf\n补充协议.pdf",
    "copies": "2",
    "take_out": "false",
}


async def test_console_is_off_outside_demo(org_db, aiohttp_client, clock):
    app = create_app(settings_for(org_db, console=False), clock=clock)
    client = await aiohttp_client(app)
    assert (await client.get("/console")).status == 404


async def test_file_seal_use_in_console_and_tap_through_every_approver(org_db, aiohttp_client, clock):
    app, client = await _client(org_db, aiohttp_client, clock)
    page = await (await client.get("/console")).text()
    assert "吴昊" in page
    form_page = await (await client.get("/console/u/u_wu/new/seal_use")).text()
    assert "印章名称" in form_page and "同行人员" in form_page
    resp = await client.post("/console/u/u_wu/new/seal_use", data=SEAL, allow_redirects=False)
    assert resp.status == 303
    for approver in ["u_sun", "u_wang", "u_li", "u_zhang", "u_chen"]:
        await app[DISPATCHER].drain()
        html = await (await client.get(f"/console/u/{approver}")).text()
        forms = re.findall(r'<form method=post action="/console/u/(\w+)/tap">(.*?)</form>', html, re.S)
        assert forms, f"{approver} sees no card"
        fields = dict(re.findall(r'name=(\w+) value="([^"]*)"', forms[0][1]))
        assert fields["action"] == "approve"
        r = await client.post(f"/console/u/{approver}/tap", data=fields, allow_redirects=False)
        assert r.status == 303
        # a second tap on the same card (same event) changes nothing and says nothing new
        await client.post(f"/console/u/{approver}/tap", data=fields, allow_redirects=False)
    await app[DISPATCHER].drain()
    wu = await _messages(org_db, "u_wu")
    assert any("已通过" in m.text for m in wu), [m.text for m in wu]
    keeper = await _messages(org_db, "u_chen")
    card = next(m for m in keeper if m.kind == "task_card")
    assert card.closed and card.outcome.startswith("已交付 · 陈静")


async def test_form_errors_are_shown_next_to_fields(org_db, aiohttp_client, clock):
    _, client = await _client(org_db, aiohttp_client, clock)
    bad = {**SEAL, "copies": "0", "files": ""}
    html = await (await client.post("/console/u/u_wu/new/seal_use", data=bad)).text()
    assert "表单有误" in html and "class=err" in html


async def test_stale_card_tap_gets_a_polite_reply(org_db, aiohttp_client, clock):
    app, client = await _client(org_db, aiohttp_client, clock)
    await client.post("/console/u/u_wu/new/seal_use", data=SEAL, allow_redirects=False)
    await app[DISPATCHER].drain()
    html = await (await client.get("/console/u/u_sun")).text()
    form = re.findall(r'<form method=post action="/console/u/u_sun/tap">(.*?)</form>', html, re.S)[0]
    fields = dict(re.findall(r'name=(\w+) value="([^"]*)"', form))
    await client.post("/console/u/u_sun/tap", data=fields, allow_redirects=False)
    await client.post(
        "/console/u/u_sun/tap", data={**fields, "event_id": "another-delivery"}, allow_redirects=False
    )
    await app[DISPATCHER].drain()
    texts = [m.text for m in await _messages(org_db, "u_sun")]
    assert any(t.startswith("已处理") for t in texts)
    # someone else tapping the same card gets told it is not theirs
    await client.post("/console/u/u_zheng/tap", data={**fields, "event_id": "x2"}, allow_redirects=False)
    await app[DISPATCHER].drain()
    assert any("不是由您处理" in m.text for m in await _messages(org_db, "u_zheng"))


async def test_commands_pending_help_and_delegate(org_db, aiohttp_client, clock):
    app, client = await _client(org_db, aiohttp_client, clock)
    await client.post("/console/u/u_wu/new/seal_use", data=SEAL, allow_redirects=False)
    await client.post("/console/u/u_sun/say", data={"text": "待办"}, allow_redirects=False)
    await client.post("/console/u/u_sun/say", data={"text": "你好"}, allow_redirects=False)
    await client.post("/console/u/u_sun/say", data={"text": "代理 周杰 2026-11-30"}, allow_redirects=False)
    await client.post("/console/u/u_sun/say", data={"text": "代理 不存在 2026-11-30"}, allow_redirects=False)
    await app[DISPATCHER].drain()
    texts = [m.text for m in await _messages(org_db, "u_sun") if m.direction == "out"]
    assert any("您有 1 条待办" in t and "用章申请" in t for t in texts)
    assert any("可用命令" in t for t in texts)
    assert any("由 周杰 代您审批" in t for t in texts)
    assert any("找不到在职同事「不存在」" in t for t in texts)


async def test_location_is_checked_before_it_is_accepted(org_db, aiohttp_client, clock):
    app, client = await _client(org_db, aiohttp_client, clock)
    await client.post("/console/u/u_wu/location", data={"lat": "91", "lng": "121"}, allow_redirects=False)
    await client.post("/console/u/u_wu/location", data={"lat": "nan", "lng": "121"}, allow_redirects=False)
    await client.post(
        "/console/u/u_wu/location", data={"lat": "31.2215", "lng": "121.5440"}, allow_redirects=False
    )
    await app[DISPATCHER].drain()
    texts = [m.text for m in await _messages(org_db, "u_wu") if m.direction == "out"]
    assert sum("位置无效" in t or "位置格式不对" in t for t in texts) == 2
    assert any("已收到您的位置" in t for t in texts)


async def test_every_template_form_renders_a_control_for_every_field(org_db, aiohttp_client, clock):
    app, client = await _client(org_db, aiohttp_client, clock)
    listed = await (await client.get("/console/u/u_wu/new")).text()
    keys = re.findall(r'href="/console/u/u_wu/new/(\w+)"', listed)
    assert {"seal_use", "outing", "leave", "expense"} <= set(keys)
    for key in keys:
        resp = await client.get(f"/console/u/u_wu/new/{key}")
        html = await resp.text()
        assert resp.status == 200, key
        for field in app[WORKFLOW].template(key).fields:
            assert f'name="{field.key}' in html, (key, field.key)
    css = await client.get("/console/static/console.css")
    assert css.status == 200 and ".card" in await css.text()


def test_browser_form_fields_become_the_engine_form():
    spec = [
        ("t", FieldType.TEXT),
        ("n", FieldType.NUMBER),
        ("m", FieldType.MONEY),
        ("b", FieldType.BOOL),
        ("l", FieldType.LIST),
        ("dt", FieldType.DATETIME),
        ("r", FieldType.DATERANGE),
        ("ms", FieldType.MULTISELECT),
        ("us", FieldType.USERS),
        ("site", FieldType.LOCATION),
        ("addr", FieldType.LOCATION),
        ("empty", FieldType.TEXT),
    ]
    template = Template(
        key="x", name="x", fields=tuple(FieldSpec(key=k, label=k, type=t) for k, t in spec), steps=()
    )
    data = MultiDict(
        [
            ("t", "  你好 "),
            ("n", "3"),
            ("m", "12.5"),
            ("b", "false"),
            ("l", "甲\n\n乙 "),
            ("dt", "2026-11-24T10:00"),
            ("r.start", "2026-11-24"),
            ("r.end", "2026-11-25"),
            ("ms", "A"),
            ("ms", "B"),
            ("us", ""),
            ("site", "hq"),
            ("addr", ""),
            ("addr.address", "某路 1 号"),
            ("addr.lat", "31.2"),
            ("addr.lng", "121"),
            ("empty", "  "),
        ]
    )
    assert form_from_post(template, MultiDictProxy(data)) == {
        "t": "你好",
        "n": 3,
        "m": 12.5,
        "b": False,
        "l": ["甲", "乙"],
        "dt": "2026-11-24T10:00:00",
        "r": {"start": "2026-11-24", "end": "2026-11-25"},
        "ms": ["A", "B"],
        "site": {"site": "hq"},
        "addr": {"address": "某路 1 号", "lat": 31.2, "lng": 121},
    }


async def test_request_page_shows_words_not_codes(org_db, aiohttp_client, clock):
    app, client = await _client(org_db, aiohttp_client, clock)
    await client.post("/console/u/u_wu/new/seal_use", data=SEAL, allow_redirects=False)
    (req,) = await app[WORKFLOW].list_requests(initiator="u_wu")
    html = await (await client.get(f"/console/requests/{req.id}?as=u_wu")).text()
    assert "审批中" in html and "进行中" in html and "待处理" in html and "提交" in html
    shown = re.sub(r"<[^>]+>", " ", html)
    for code in ("running", "active", "pending", "submitted", "step_started", "system"):
        assert code not in shown, code
    for table, codes in ((STEP_STATUS_LABEL, StepStatus), (TASK_STATUS_LABEL, TaskStatus)):
        assert set(table) == set(codes)
