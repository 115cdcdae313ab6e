"""Neutral cards as WeCom template cards, the card task_id round trip, and decrypted callback
XML as neutral events (pure functions, no I/O)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.platforms.wecom.cards import (
    CardIdError,
    CardKey,
    card_task_id,
    close_card_body,
    parse_card_task_id,
    send_card_body,
    task_card,
    text_body,
)
from bot.platforms.wecom.inbound import MalformedMessage, parse_xml, to_inbound
from handlers.events import CardAction, EnterChat, LocationShared, Sender, TextMessage

CARD: dict[str, Any] = {
    "title": "用章申请",
    "urgency": "紧急",
    "subtitle": "公章 用章 · 签署合作协议",
    "initiator": "吴昊",
    "step": "直属领导审批",
    "acting_for": "孙丽",
    "acting_for_label": "代孙丽审批",
    "fields": [
        {"label": "印章名称", "value": "公章"},
        {"label": "用章事由", "value": "签署合作协议"},
        {"label": "用章时间", "value": "2026-11-24 10:00"},
        {"label": "用印份数", "value": "2"},
        {"label": "印章带出", "value": "否"},
        {"label": "用印文件", "value": "合作协议.pdf、授权委托书.pdf"},
    ],
    "deadline": "11-23 14:00",
    "waiting": "吴昊 于 11-23 10:00 提交，等待您处理",
    "buttons": [
        {"action": "reject", "label": "驳回", "style": "danger"},
        {"action": "approve", "label": "同意", "style": "primary"},
    ],
    "link": "https://oa.example.com/console/requests/20261123-3f9a1c2b",
}
TASK = "20261123-3f9a1c2b-1"


# -- task_id -----------------------------------------------------------------------------------
def test_card_task_id_round_trips_task_and_version() -> None:
    card_id = card_task_id(TASK, 3, "u_wang")

    assert parse_card_task_id(card_id) == CardKey(task_id=TASK, version=3)
    assert re.fullmatch(r"[0-9A-Za-z_\-@]{1,128}", card_id)


def test_card_task_id_is_unique_per_task_version_and_recipient() -> None:
    ids = {
        card_task_id(t, v, u)
        for t in (TASK, "20261123-3f9a1c2b-2")
        for v in (1, 2)
        for u in ("u_wang", "u_li")
    }
    assert len(ids) == 8


@pytest.mark.parametrize("task", ["bad_task", "has space", "x" * 130, "中文"])
def test_task_ids_outside_wecoms_charset_or_length_are_refused(task: str) -> None:
    with pytest.raises(CardIdError):
        card_task_id(task, 1, "u_wang")


@pytest.mark.parametrize(
    "card_id",
    [
        "",
        "approval-42",
        "oa_x_1",
        "oa_20261123-3f9a1c2b-1_v1_0123abcd",
        "zz_a-1_1_0123abcd",
        "oa_a-1_1_XYZ",
        "oa_a b_1_0123abcd",
    ],
)
def test_task_ids_not_made_by_oabot_are_not_ours(card_id: str) -> None:
    assert parse_card_task_id(card_id) is None


# -- the card ----------------------------------------------------------------------------------
def test_task_card_is_a_button_interaction_card_with_title_fields_deadline_and_waiting() -> None:
    card = task_card(CARD, card_id="oa_x-1_1_0123abcd")

    assert card["card_type"] == "button_interaction"
    assert card["source"]["desc"] == "oabot 审批"
    assert card["main_title"] == {"title": "用章申请·紧急", "desc": "吴昊 提交 · 直属领导审批"}
    assert card["sub_title_text"].splitlines() == [
        "公章 用章 · 签署合作协议",
        "（代孙丽审批）",
        "吴昊 于 11-23 10:00 提交，等待您处理",
    ]
    assert len(card["horizontal_content_list"]) == 6
    assert card["horizontal_content_list"][-1] == {"keyname": "截止", "value": "11-23 14:00"}
    assert card["horizontal_content_list"][0] == {"keyname": "印章名称", "value": "公章"}
    assert card["task_id"] == "oa_x-1_1_0123abcd"
    assert card["card_action"] == {"type": 1, "url": CARD["link"]}


def test_the_positive_action_comes_first_and_keys_are_the_actions() -> None:
    buttons = task_card(CARD, card_id="c")["button_list"]

    assert [(b["key"], b["text"]) for b in buttons] == [("approve", "同意"), ("reject", "驳回")]
    assert buttons[0]["style"] == 1 and buttons[1]["style"] != 1
    assert all(b["type"] == 0 for b in buttons)


def test_without_a_deadline_six_fields_fit() -> None:
    card = task_card({**CARD, "deadline": None}, card_id="c")
    assert [h["keyname"] for h in card["horizontal_content_list"]][-1] == "用印文件"


def test_long_texts_are_cut_to_wecoms_suggested_lengths() -> None:
    card = task_card(
        {**CARD, "title": "很长的模板名称" * 10, "fields": [{"label": "事由", "value": "长" * 100}]},
        card_id="c",
    )

    assert len(card["main_title"]["title"]) <= 26 and card["main_title"]["title"].endswith("…")
    assert len(card["horizontal_content_list"][0]["value"]) <= 26


def test_at_most_six_buttons() -> None:
    many = [{"action": f"a{i}", "label": f"按钮{i}", "style": "default"} for i in range(9)]
    assert len(task_card({**CARD, "buttons": many}, card_id="c")["button_list"]) == 6


def test_message_bodies() -> None:
    assert send_card_body({"task_id": "c"}, account="wangfang", agent_id=1000002) == {
        "touser": "wangfang",
        "msgtype": "template_card",
        "agentid": 1000002,
        "template_card": {"task_id": "c"},
    }
    assert close_card_body(
        account="wangfang", agent_id=1000002, response_code="rc", outcome="已同意 · 王芳 · 11-23 10:42"
    ) == {
        "userids": ["wangfang"],
        "agentid": 1000002,
        "response_code": "rc",
        "button": {"replace_name": "已同意 · 王芳 · 11-23 10:42"},
    }
    text = text_body("好" * 1000, account="lina", agent_id=1)
    assert text["msgtype"] == "text" and len(text["text"]["content"].encode()) <= 2048


# -- inbound XML → neutral events --------------------------------------------------------------
def xml(**fields: object) -> dict[str, str]:
    inner = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items())
    return parse_xml(f"<xml>{inner}</xml>")


BASE = {"ToUserName": "ww1", "FromUserName": "wangfang", "CreateTime": "1795000000", "AgentID": "1000002"}
AT = datetime.fromtimestamp(1795000000, UTC)


def test_text_message_becomes_a_text_event_keyed_by_msgid() -> None:
    inbound = to_inbound(xml(**BASE, MsgType="text", Content="待办", MsgId="7000000000000000001"))

    assert inbound is not None and inbound.click is None
    assert inbound.event == TextMessage(Sender("wecom", "wangfang"), "msg:7000000000000000001", "待办", at=AT)


def test_location_message_puts_x_as_latitude_and_y_as_longitude() -> None:
    inbound = to_inbound(
        xml(
            **BASE,
            MsgType="location",
            Location_X="31.2304",
            Location_Y="121.4737",
            Scale="15",
            Label="集团总部",
            MsgId="9",
        )
    )

    assert inbound is not None
    assert inbound.event == LocationShared(
        Sender("wecom", "wangfang"), "msg:9", lat=31.2304, lng=121.4737, label="集团总部", at=AT
    )


def test_location_report_event_becomes_a_location_keyed_by_sender_and_time() -> None:
    inbound = to_inbound(
        xml(**BASE, MsgType="event", Event="LOCATION", Latitude="31.22", Longitude="121.54", Precision="30.5")
    )

    assert inbound is not None
    event = inbound.event
    assert isinstance(event, LocationShared)
    assert (event.event_id, event.lat, event.lng, event.accuracy_m, event.coord_system) == (
        "loc:wangfang:1795000000",
        31.22,
        121.54,
        30.5,
        "gcj02",
    )


def test_card_click_names_task_version_and_action_and_keeps_the_response_code() -> None:
    card_id = card_task_id(TASK, 2, "u_wang")
    fields = xml(
        **BASE,
        MsgType="event",
        Event="template_card_event",
        EventKey="approve",
        TaskId=card_id,
        CardType="button_interaction",
        ResponseCode="rc-1",
    )

    inbound = to_inbound(fields)

    assert inbound is not None
    event = inbound.event
    assert isinstance(event, CardAction)
    assert (event.task_id, event.version, event.action, event.sender) == (
        TASK,
        2,
        "approve",
        Sender("wecom", "wangfang"),
    )
    assert event.event_id.startswith(f"card:{TASK}:") and len(event.event_id) <= 200
    assert (
        inbound.click is not None
        and inbound.click.response_code == "rc-1"
        and inbound.click.card_id == card_id
    )
    assert to_inbound(fields) == inbound  # a retried delivery is the same event


def test_two_clicks_in_the_same_second_are_two_events() -> None:
    card_id = card_task_id(TASK, 2, "u_wang")
    common = {**BASE, "MsgType": "event", "Event": "template_card_event", "TaskId": card_id}
    a = to_inbound(xml(**common, EventKey="approve", ResponseCode="rc-1"))
    b = to_inbound(xml(**common, EventKey="approve", ResponseCode="rc-2"))
    c = to_inbound(xml(**common, EventKey="reject", ResponseCode="rc-1"))

    assert a and b and c
    assert len({a.event.event_id, b.event.event_id, c.event.event_id}) == 3


def test_enter_agent_becomes_enter_chat() -> None:
    inbound = to_inbound(xml(**BASE, MsgType="event", Event="enter_agent", EventKey=""))
    assert inbound is not None and inbound.event == EnterChat(
        Sender("wecom", "wangfang"), "enter:wangfang:1795000000"
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"MsgType": "image", "PicUrl": "x", "MsgId": "1"},
        {"MsgType": "event", "Event": "subscribe"},
        {
            "MsgType": "event",
            "Event": "template_card_menu_event",
            "TaskId": "oa_x-1_1_0123abcd",
            "EventKey": "k",
        },
        {
            "MsgType": "event",
            "Event": "template_card_event",
            "TaskId": "someone-elses-card",
            "EventKey": "ok",
        },
    ],
    ids=["image", "subscribe", "card_menu", "foreign_card"],
)
def test_kinds_oabot_does_not_handle_are_ignored(fields: dict[str, str]) -> None:
    assert to_inbound(xml(**BASE, **fields)) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"FromUserName": "", "MsgType": "text"},
        {"CreateTime": "yesterday", "MsgType": "text"},
        {"MsgType": "location", "Location_X": "north", "Location_Y": "1", "MsgId": "1"},
        {"MsgType": "location", "Location_X": "91", "Location_Y": "1", "MsgId": "1"},
        {"MsgType": "event", "Event": "LOCATION", "Latitude": "nan", "Longitude": "1"},
        {"MsgType": "event", "Event": "template_card_event", "TaskId": "oa_x-1_1_0123abcd"},
    ],
    ids=["no_sender", "bad_time", "bad_latitude", "latitude_out_of_range", "nan", "click_without_key"],
)
def test_malformed_messages_are_refused(fields: dict[str, str]) -> None:
    with pytest.raises(MalformedMessage):
        to_inbound(xml(**{**BASE, **fields}))


@pytest.mark.parametrize(
    "data",
    [
        b"<xml><Encrypt>abc",
        b"<notxml><Encrypt>abc</Encrypt></notxml>",
        b'<!DOCTYPE x [<!ENTITY a "boom">]><xml><Encrypt>&a;</Encrypt></xml>',
        b'<!DOCTYPE x SYSTEM "file:///etc/passwd"><xml/>',
        b"",
    ],
    ids=["truncated", "wrong_root", "entity", "external_dtd", "empty"],
)
def test_unsafe_or_broken_xml_is_refused(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse_xml(data)
