"""Neutral task cards as DingTalk card data, and card callbacks back as taps."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from dingtalk_stream import CardCallbackMessage

from bot.platforms.dingtalk import inbound
from bot.platforms.dingtalk.cards import (
    TEMPLATE_VARIABLES,
    MalformedCardCallback,
    closed_card_params,
    create_and_deliver_body,
    open_card_params,
    out_track_id,
    parse_card_callback,
    parse_out_track_id,
    update_body,
)

CARD = {
    "title": "用章申请",
    "urgency": "一般",
    "subtitle": "签署合作协议",
    "initiator": "吴昊",
    "step": "部门负责人",
    "acting_for": None,
    "acting_for_label": None,
    "fields": [{"label": "印章", "value": "公章"}, {"label": "份数", "value": 2}],
    "deadline": "11-23 14:00",
    "waiting": "吴昊 于 11-23 10:00 提交，等待您处理",
    "buttons": [
        {"action": "approve", "label": "同意", "style": "primary"},
        {"action": "reject", "label": "驳回", "style": "danger"},
    ],
    "link": "http://oabot.test/console/requests/20261123-abcd1234",
}
AT = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def test_out_track_id_names_the_task_and_version() -> None:
    track = out_track_id("20261123-abcd1234-3", 2)
    assert track == "oabot_20261123-abcd1234-3_v2"
    assert parse_out_track_id(track) == ("20261123-abcd1234-3", 2)


@pytest.mark.parametrize("track", ["other_123", "oabot_", "oabot_task", "oabot_task_vX", "oabot__v3"])
def test_foreign_or_broken_out_track_ids_are_refused(track: str) -> None:
    with pytest.raises(MalformedCardCallback):
        parse_out_track_id(track)


def test_card_params_are_all_strings_and_cover_the_documented_variables() -> None:
    params = open_card_params(CARD, task_id="20261123-abcd1234-1", version=1)

    assert all(isinstance(v, str) for v in params.values())
    assert set(params) == set(TEMPLATE_VARIABLES)
    assert params["fields"] == "**印章**：公章\n**份数**：2"
    assert json.loads(params["fields_json"])[1] == {"label": "份数", "value": "2"}
    assert (params["show_approve"], params["approve_label"]) == ("true", "同意")
    assert (params["show_reject"], params["show_acknowledge"]) == ("true", "false")
    assert params["acting_for_label"] == "" and params["status"] == "pending" and params["version"] == "1"


def test_closing_a_card_hides_every_button_and_shows_the_outcome() -> None:
    params = closed_card_params("已同意 · 孙丽 · 11-23 10:05")
    assert params["status"] == "closed" and params["outcome"].startswith("已同意")
    assert {params[f"show_{a}"] for a in ("approve", "reject", "acknowledge")} == {"false"}
    body = update_body("oabot_t_v1", params)
    assert body["cardUpdateOptions"]["updateCardDataByKey"] is True and body["outTrackId"] == "oabot_t_v1"


def test_create_and_deliver_goes_to_the_persons_robot_chat() -> None:
    body = create_and_deliver_body(
        template_id="tpl.schema",
        track_id="oabot_t_v1",
        staff_id="010008",
        params={},
        robot_code="dingkey",
        callback_type="HTTP",
    )
    assert body["openSpaceId"] == "dtv1.card//IM_ROBOT.010008"
    assert body["imRobotOpenDeliverModel"] == {"spaceType": "IM_ROBOT", "robotCode": "dingkey"}
    assert body["callbackRouteKey"] == "oabot_card"
    stream = create_and_deliver_body(
        template_id="tpl.schema",
        track_id="oabot_t_v1",
        staff_id="010008",
        params={},
        robot_code="dingkey",
        callback_type="STREAM",
    )
    assert "callbackRouteKey" not in stream and stream["callbackType"] == "STREAM"


def sdk_callback(
    track: str, user: str, params: dict[str, str], action_ids: list[str] | None = None
) -> dict[str, object]:
    """Callback data as the dingtalk-stream SDK itself serialises a card callback."""
    msg = CardCallbackMessage()
    msg.card_instance_id = track
    msg.user_id = user
    msg.corp_id = "dingcorp"
    msg.content = {"cardPrivateData": {"actionIds": action_ids or [], "params": params}}
    return msg.to_dict()  # type: ignore[no-any-return]


def test_a_tap_names_task_version_person_and_button() -> None:
    tap = parse_card_callback(
        sdk_callback("oabot_20261123-abcd1234-1_v3", "010008", {"action": "reject", "comment": " 用途不明 "})
    )
    assert (tap.task_id, tap.version, tap.staff_id, tap.action) == (
        "20261123-abcd1234-1",
        3,
        "010008",
        "reject",
    )
    assert tap.comment == " 用途不明 "


def test_the_button_may_be_named_by_its_component_id() -> None:
    tap = parse_card_callback(sdk_callback("oabot_t-1_v1", "010008", {}, action_ids=["acknowledge"]))
    assert tap.action == "acknowledge"


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"outTrackId": "oabot_t-1_v1"},
        {"outTrackId": "oabot_t-1_v1", "userId": "010008", "content": "{not json"},
        {
            "outTrackId": "oabot_t-1_v1",
            "userId": "010008",
            "content": json.dumps({"cardPrivateData": {"params": {"action": "delete_all"}}}),
        },
        {"outTrackId": "someone_elses", "userId": "010008", "content": "{}"},
    ],
)
def test_callbacks_that_name_no_known_card_or_button_are_malformed(data: dict[str, object]) -> None:
    with pytest.raises(MalformedCardCallback):
        parse_card_callback(data)


def test_redeliveries_share_an_event_id_and_separate_taps_do_not() -> None:
    data = sdk_callback("oabot_t-1_v1", "010008", {"action": "approve"})
    first = inbound.card_action(data, delivery_id="m1", at=AT)
    again = inbound.card_action(data, delivery_id="m1", at=AT)
    second_tap = inbound.card_action(data, delivery_id="m2", at=AT)

    assert first.event_id == again.event_id != second_tap.event_id
    assert first.sender.platform == "dingtalk" and first.sender.account == "010008"
    assert len(inbound.card_action(data, delivery_id="x" * 400, at=AT).event_id) <= 190


def test_robot_messages_become_text_and_others_are_skipped() -> None:
    text = inbound.robot_text(
        {"msgId": "m1", "senderStaffId": "010008", "msgtype": "text", "text": {"content": " 待办 "}}, at=AT
    )
    assert text is not None and text.text == "待办" and text.event_id == "msg:m1"
    rich = inbound.robot_text(
        {
            "msgId": "m2",
            "senderStaffId": "010008",
            "msgtype": "richText",
            "content": {"richText": [{"text": "帮"}, {"downloadCode": "x"}, {"text": "助"}]},
        },
        at=AT,
    )
    assert rich is not None and rich.text == "帮助"
    assert (
        inbound.robot_text(
            {"msgId": "m3", "senderStaffId": "010008", "msgtype": "picture", "content": {}}, at=AT
        )
        is None
    )
    assert inbound.robot_text({"msgId": "m4", "msgtype": "text", "text": {"content": "hi"}}, at=AT) is None
