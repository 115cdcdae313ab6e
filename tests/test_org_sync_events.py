"""Contact events on the existing callback URLs: a WeCom `change_contact` or a DingTalk
`user_*_org` / `org_dept_*` event schedules one re-read of that person or department (an
`org_refresh` timer), once however often the platform delivers it, and never applies what the
event body says; with directory sync off it is acknowledged and ignored. Real crypto: WeCom
callbacks are sealed with wechatpy, DingTalk ones with dingtalk-sdk."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from dingtalk_stream import AckMessage, EventMessage
from sqlalchemy import select

from approvals.clock import ManualClock
from bot.app import create_app
from bot.platforms.dingtalk.inbound import contact_rereads
from bot.platforms.dingtalk.stream import StreamConnection
from bot.platforms.wecom.inbound import contact_changes
from bot.settings import DingTalkSettings, WeComSettings
from storage.db import Database
from storage.org_repo import load_org
from storage.timer_models import TimerRow
from tests.conftest import settings_for
from tests.fake_dingtalk import AES_KEY, APP_KEY, APP_SECRET, EVENT_TOKEN, sealed_callback
from tests.fake_wecom import WeComCallbacks

WECOM = WeComSettings(
    corp_id="ww0123456789abcdef",
    agent_id=1000002,
    secret="s",
    token="cbtoken",
    aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    api_base="http://127.0.0.1:9",
)
DINGTALK = DingTalkSettings(
    app_key=APP_KEY,
    app_secret=APP_SECRET,
    token=EVENT_TOKEN,
    aes_key=AES_KEY,
    mode="http",
    api_base="http://127.0.0.1:9",
    oapi_base="http://127.0.0.1:9",
)


async def refreshes(db: Database) -> list[dict[str, Any]]:
    async with db.session() as s:
        rows = (await s.execute(select(TimerRow).where(TimerRow.kind == "org_refresh"))).scalars().all()  # type: ignore[arg-type]
    return sorted((dict(r.data) for r in rows), key=lambda d: (d["scope"], d["id"]))


@pytest.mark.parametrize("sync", ["wecom", ""])
async def test_a_wecom_contact_change_schedules_one_re_read(
    org_db: Database, aiohttp_client: Any, clock: ManualClock, sync: str
) -> None:
    client = await aiohttp_client(create_app(settings_for(org_db, wecom=WECOM, org_sync=sync), clock=clock))
    cb = WeComCallbacks(
        WECOM.token, WECOM.aes_key, WECOM.corp_id, WECOM.agent_id, now=lambda: clock.now().timestamp()
    )
    changed = cb.contact_change_xml("update_user", user="wuhao")
    for _ in range(3):  # WeCom retries an unanswered callback unchanged
        query, body = cb.seal(changed)
        resp = await client.post("/callbacks/wecom", params=query, data=body)
        assert resp.status == 200 and await resp.text() == ""
    query, body = cb.seal(cb.contact_change_xml("delete_party", party="7"))
    assert (await client.post("/callbacks/wecom", params=query, data=body)).status == 200

    found = await refreshes(org_db)
    if not sync:
        assert found == []
        return
    assert found == [
        {"platform": "wecom", "scope": "department", "id": "7", "event": "delete_party"},
        {"platform": "wecom", "scope": "person", "id": "wuhao", "event": "update_user"},
    ]
    async with org_db.session() as s:
        assert (await load_org(s)).users["u_wu"].title != "随便写的"  # the event body is not applied


@pytest.mark.parametrize("sync", ["dingtalk", ""])
async def test_a_dingtalk_contact_event_schedules_one_re_read_per_person(
    org_db: Database, aiohttp_client: Any, clock: ManualClock, sync: str
) -> None:
    client = await aiohttp_client(
        create_app(settings_for(org_db, dingtalk=DINGTALK, org_sync=sync), clock=clock)
    )
    stamp = int(clock.now().timestamp() * 1000)
    event = {
        "EventType": "user_leave_org",
        "UserId": ["010008", "010009"],
        "CorpId": "ding1",
        "TimeStamp": stamp,
    }
    cb = sealed_callback(event, timestamp_ms=stamp, nonce="n-1")
    for _ in range(2):  # a redelivery of the same callback
        resp = await client.post(
            f"/callbacks/dingtalk?{cb.query}", data=cb.body, headers={"Content-Type": "application/json"}
        )
        assert resp.status == 200
    dept = sealed_callback({"EventType": "org_dept_modify", "DeptId": [42]}, timestamp_ms=stamp, nonce="n-2")
    await client.post(
        f"/callbacks/dingtalk?{dept.query}", data=dept.body, headers={"Content-Type": "application/json"}
    )

    found = await refreshes(org_db)
    if not sync:
        assert found == []
        return
    assert found == [
        {"platform": "dingtalk", "scope": "department", "id": "42", "event": "org_dept_modify"},
        {"platform": "dingtalk", "scope": "person", "id": "010008", "event": "user_leave_org"},
        {"platform": "dingtalk", "scope": "person", "id": "010009", "event": "user_leave_org"},
    ]
    async with org_db.session() as s:
        assert (await load_org(s)).users["u_wu"].active  # leaving is re-read, never taken from the event


def test_a_userid_renamed_in_wecom_re_reads_the_old_and_the_new_one() -> None:
    fields = {
        "MsgType": "event",
        "Event": "change_contact",
        "ChangeType": "update_user",
        "UserID": "old",
        "NewUserID": "new",
        "CreateTime": "1",
    }
    assert [(c.scope, c.ident) for c in contact_changes(fields) or []] == [
        ("person", "old"),
        ("person", "new"),
    ]
    assert contact_changes({"MsgType": "event", "Event": "enter_agent"}) is None
    assert contact_changes({**fields, "ChangeType": "update_tag"}) == []


def test_dingtalk_events_that_are_not_about_contacts_are_left_alone() -> None:
    assert contact_rereads({"EventType": "check_url"}, delivery_id="x") is None
    assert contact_rereads({"EventType": "org_dept_remove", "DeptId": ["abc", 3]}, delivery_id="x") == [
        ("department", "3", "org_dept_remove", "org_dept_remove:3:x")
    ]


async def test_a_stream_contact_event_schedules_re_reads_and_is_acked() -> None:
    scheduled: list[tuple[str, str, str, str]] = []

    async def on_contact(scope: str, ident: str, event: str, key: str) -> bool:
        scheduled.append((scope, ident, event, key))
        return True

    settings = DingTalkSettings(app_key="dingkey", app_secret="secret", api_base="http://127.0.0.1:9")
    async with httpx.AsyncClient() as http:
        stream = StreamConnection(
            settings, http, _never, now=lambda: datetime.now(UTC), on_contact=on_contact
        )
        assert stream.event_handler is not None
        raw = {
            "specVersion": "1.0",
            "type": "EVENT",
            "headers": {"eventType": "user_modify_org", "eventId": "ev-1", "messageId": "m-1", "topic": "*"},
            "data": json.dumps({"userId": ["010008"], "optStaffId": "010001"}),
        }
        ack = await stream.event_handler.raw_process(EventMessage.from_dict(raw))
        other = {**raw, "headers": {**raw["headers"], "eventType": "chat_update_title"}}
        ack_other = await stream.event_handler.raw_process(EventMessage.from_dict(other))
    assert ack.code == ack_other.code == AckMessage.STATUS_OK
    assert scheduled == [("person", "010008", "user_modify_org", "user_modify_org:010008:ev-1")]


async def _never(event: object) -> bool:
    raise AssertionError("a contact event is not a chat event")
