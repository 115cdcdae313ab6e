"""Directory sync end to end: the real `oabot serve` process and `oabot org sync` / `oabot org
history` commands against a fake WeCom and a fake DingTalk (contact APIs on 127.0.0.1) with 250
members in 6 departments on 3 levels, listed over several pages.

The office syncs; two expense requests wait on u020; u020 leaves, u010 moves and 平台组 is
renamed; the dry run says so and writes nothing, the sync applies exactly that and u020's two
cards reach their manager u001 in WeCom (DingTalk: interactive cards); a `change_contact`
(DingTalk: `user_modify_org`) event for one person makes the server re-read only that person. Runs on SQLite, and on PostgreSQL when configured.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PG_URL, REDIS_URL, ROOT, create_pg_schema, drop_pg_schema
from tests.directory_fakes import Company
from tests.e2e_harness import ServerProcess, base_env, wait_until
from tests.fake_dingtalk import FakeDingTalk, dingtalk_env, sealed_callback
from tests.fake_wecom import FakeWeCom, WeComCallbacks

CORP_ID = "ww0e2e0123456789ab"
AGENT_ID = 1000002
SECRET = "fake-app-secret"
TOKEN = "e2eCallbackToken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
AUTH = {"Authorization": "Bearer e2e-token-0123456789"}
OVERLAY = """\
# What WeCom does not know: who reviews expenses, and the GM's role.
users:
  u000: {roles: [gm]}
  u020: {roles: [expense_reviewer]}
"""
TEMPLATE = """\
key: team_expense
name: 团队报销
title: "团队报销 · {reason}"
fields:
  - {key: reason, label: 事由, type: text, required: true}
steps:
  - key: review
    name: 报销审核
    approvers: [{role: expense_reviewer}]
"""


@pytest.fixture(params=["sqlite", "postgres"])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "team_expense.yaml").write_text(TEMPLATE, encoding="utf-8")
    (tmp_path / "overlay.yaml").write_text(OVERLAY, encoding="utf-8")
    extra = {
        "OABOT_TEMPLATES_DIR": str(templates),
        "OABOT_ORG_OVERLAY": str(tmp_path / "overlay.yaml"),
        "OABOT_ORG_SYNC": "wecom",
        "OABOT_TIMER_SCAN_INTERVAL_S": "0.2",
    }
    if request.param == "sqlite":
        yield {"OABOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/e2e.db", **extra}
        return
    if PG_URL is None:
        pytest.skip("OABOT_TEST_DATABASE_URL is not set")
    schema = await create_pg_schema(PG_URL)
    env = {"OABOT_DATABASE_URL": f"{PG_URL}?options=-csearch_path%3D{schema}", **extra}
    if REDIS_URL:
        env.update(OABOT_REDIS_URL=REDIS_URL, OABOT_REDIS_PREFIX=f"oabot-e2e:{uuid.uuid4().hex[:12]}:")
    try:
        yield env
    finally:
        await drop_pg_schema(PG_URL, schema)


@pytest.fixture
async def wecom() -> AsyncIterator[FakeWeCom]:
    fake = await FakeWeCom(
        corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID, directory=Company.made_up()
    ).start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def server(env: dict[str, str], wecom: FakeWeCom, tmp_path: Path) -> AsyncIterator[ServerProcess]:
    full = base_env(
        env["OABOT_DATABASE_URL"],
        **env,
        OABOT_WECOM_CORP_ID=CORP_ID,
        OABOT_WECOM_AGENT_ID=str(AGENT_ID),
        OABOT_WECOM_SECRET=SECRET,
        OABOT_WECOM_TOKEN=TOKEN,
        OABOT_WECOM_AES_KEY=AES_KEY,
        OABOT_WECOM_API_BASE=wecom.base_url,
    )
    async with ServerProcess(full, tmp_path) as proc:
        yield proc


async def oabot(server: ServerProcess, *args: str) -> tuple[int, str, str]:
    """Run `oabot ARGS` as the operator would, with the server's settings."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=ROOT,
        env=server.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return int(proc.returncode or 0), out.decode(), err.decode()


async def submit(server: ServerProcess, initiator: str, reason: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.post(
            f"{server.base_url}/api/v1/requests",
            json={"template": "team_expense", "initiator": initiator, "form": {"reason": reason}},
            headers=AUTH,
        )
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def trail(server: ServerProcess, request_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.get(f"{server.base_url}/api/v1/requests/{request_id}", headers=AUTH)
    return list(resp.json()["trail"])


async def test_sync_leaver_hand_over_and_contact_event_end_to_end(
    server: ServerProcess, wecom: FakeWeCom
) -> None:
    company = wecom.directory
    assert company is not None
    code, out, err = await oabot(server, "org", "sync", "--from", "wecom")
    assert code == 0, err
    assert "Synced from wecom: 250 people in 6 departments." in out
    assert [c for c in company.calls if c.startswith("user/list_id")] == [
        "user/list_id:",
        "user/list_id:100",
        "user/list_id:200",
    ]

    first = [await submit(server, "u030", "差旅"), await submit(server, "u031", "招待")]
    await wait_until(lambda: len(wecom.cards_to("u020")) == 2)

    company.members["u010"].dept = "6"
    company.departments["4"] = ("基础平台组", "2", "u003")
    del company.members["u020"]
    code, dry, err = await oabot(server, "org", "sync", "--from", "wecom", "--dry-run")
    assert code == 0, err
    assert "People: 0 added, 1 changed (1 moved), 1 deactivated, 0 reactivated" in dry
    assert (
        "  - u020 员工020: deactivated, sign-in and API tokens end; 2 open tasks would move to 员工001 (u001)"
        in dry
    )
    assert "  ~ wecom-4: 平台组 -> 基础平台组" in dry
    assert "Dry run: nothing was written." in dry
    await asyncio.sleep(0.5)
    assert wecom.cards_to("u001") == []  # the dry run moved nothing

    code, out, err = await oabot(server, "org", "sync", "--from", "wecom")
    assert code == 0, err
    cards = await wait_until(lambda: len(wecom.cards_to("u001")) == 2 and wecom.cards_to("u001"))
    assert len(cards) == 2
    for r in first:
        kinds = [(e["kind"], e.get("before"), e.get("after")) for e in await trail(server, r["id"])]
        assert ("handed_over", "u020", "u001") in kinds

    company.calls.clear()
    company.members["u042"].title = "高级工程师"
    callbacks = WeComCallbacks(TOKEN, AES_KEY, CORP_ID, AGENT_ID)
    query, body = callbacks.seal(callbacks.contact_change_xml("update_user", user="u042"))
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.post(f"{server.base_url}/callbacks/wecom", params=query, content=body)
    assert resp.status_code == 200

    await wait_until(lambda: company.calls)
    for _ in range(20):
        code, history, _ = await oabot(server, "org", "history")
        if "event:update_user:u042" in history:
            break
        await asyncio.sleep(0.3)
    else:
        raise AssertionError(f"the event was not applied; server log:\n{server.logs()[-3000:]}")
    assert company.calls == ["user/get:u042"]  # only that person was read again
    lines = history.splitlines()
    assert len(lines) == 3 and "wecom person applied" in lines[0] and "wecom all applied" in lines[1]


@pytest.fixture
async def dingtalk() -> AsyncIterator[FakeDingTalk]:
    fake = await FakeDingTalk(directory=Company.made_up()).start()
    try:
        yield fake
    finally:
        await fake.stop()


async def test_dingtalk_sync_hand_over_and_contact_event_end_to_end(
    env: dict[str, str], dingtalk: FakeDingTalk, tmp_path: Path
) -> None:
    company = dingtalk.directory
    assert company is not None
    full = base_env(
        env["OABOT_DATABASE_URL"], **{**env, "OABOT_ORG_SYNC": "dingtalk"}, **dingtalk_env(dingtalk)
    )
    async with ServerProcess(full, tmp_path) as server:
        code, out, err = await oabot(server, "org", "sync", "--from", "dingtalk")
        assert code == 0, err
        assert "Synced from dingtalk: 250 people in 6 departments." in out
        assert sum(1 for c in company.calls if c.startswith("user/list:")) > 12  # 20 a page

        first = [await submit(server, "u030", "差旅"), await submit(server, "u031", "招待")]
        await wait_until(lambda: len(dingtalk.cards_for("u020")) == 2)
        del company.members["u020"]
        code, out, err = await oabot(server, "org", "sync", "--from", "dingtalk")
        assert code == 0, err
        assert (
            "  - u020 员工020: deactivated, sign-in and API tokens end; 2 open tasks moved to 员工001 (u001), 离职交接"
            in out
        )
        await wait_until(lambda: len(dingtalk.cards_for("u001")) == 2)
        for r in first:
            kinds = [(e["kind"], e.get("before"), e.get("after")) for e in await trail(server, r["id"])]
            assert ("handed_over", "u020", "u001") in kinds

        company.calls.clear()
        company.members["u042"].title = "高级工程师"
        event = {"EventType": "user_modify_org", "UserId": ["u042"], "CorpId": "dingcorp", "TimeStamp": "1"}
        cb = sealed_callback(event)
        async with httpx.AsyncClient(timeout=10) as http:
            resp = await http.post(
                f"{server.base_url}/callbacks/dingtalk?{cb.query}",
                content=cb.body,
                headers={"Content-Type": "application/json"},
            )
        assert resp.status_code == 200
        await wait_until(lambda: company.calls)
        for _ in range(20):
            code, history, _ = await oabot(server, "org", "history")
            if "event:user_modify_org:u042" in history:
                break
            await asyncio.sleep(0.3)
        else:
            raise AssertionError(f"the event was not applied; server log:\n{server.logs()[-3000:]}")
        assert company.calls == ["user/get:u042"]
        assert "dingtalk person applied" in history.splitlines()[0]
