"""The notices REST API `/api/v1/notices`: publish, list (inbox / sent), read (which records opened),
已收到, the author's progress, 催办, 收回 (refused once someone opened it, naming them); a personal
token acts and reads only as its person; bad input is a 422 naming the field, in Chinese, and
changes nothing. Answers fit the OpenAPI document. SQLite and PostgreSQL (the `api` fixture)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from approvals.clock import ManualClock
from bot.keys import API_TOKENS
from bot.web.openapi import document
from tests.conftest import Api

NOTICE = {
    "kind": "notice",
    "title": "关于年底安全检查的通知",
    "body": "请各位于本周五前完成办公区域的安全自查。",
    "audience": {"people": ["u_wu", "u_chen"]},
}


async def token(api: Api, name: str, scopes: str, user: str | None = None) -> dict[str, str]:
    _, secret = await api.app[API_TOKENS].create(name=name, scopes=scopes.split(","), user=user)  # type: ignore[index]
    return {"Authorization": f"Bearer {secret}"}


async def call(
    api: Api, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None
) -> tuple[int, Any]:
    resp = await api.client.request(  # type: ignore[attr-defined]
        method, "/api/v1" + path, json=body, headers=headers or api.headers
    )
    return resp.status, await resp.json()


def fits(component: str, instance: Any) -> None:
    doc = document()
    schema = {"$ref": f"#/components/schemas/{component}", "components": doc["components"]}
    errors = list(Draft202012Validator(schema).iter_errors(instance))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


async def publish(api: Api, author: str = "u_sun", **changes: Any) -> dict[str, Any]:
    status, body = await call(api, "POST", "/notices", body={**NOTICE, "author": author, **changes})
    assert status == 201, body
    fits("Notice", body)
    return body  # type: ignore[no-any-return]


# -- the whole round -----------------------------------------------------------------------------


async def test_a_notice_is_published_listed_opened_acknowledged_and_its_author_sees_progress(
    api: Api,
) -> None:
    created = await publish(api)
    assert created["status"] == "published" and created["total"] == 2 and created["author"] == "u_sun"
    assert created["page"].endswith(f"/m/n/{created['id']}")

    status, inbox = await call(api, "GET", "/notices?person=u_wu")
    assert status == 200, inbox
    fits("NoticeList", inbox)
    (line,) = [i for i in inbox["items"] if i["id"] == created["id"]]
    assert line["my_state"] == "sent" and line["title"] == NOTICE["title"]

    status, read = await call(api, "GET", f"/notices/{created['id']}?person=u_wu")
    assert status == 200, read
    assert read["body"] == NOTICE["body"] and read["my_receipt"]["state"] == "opened"
    assert read["my_receipt"]["opened_via"] == "api" and read["can_acknowledge"] is True

    status, receipt = await call(api, "POST", f"/notices/{created['id']}/ack", body={"person": "u_wu"})
    assert status == 200, receipt
    fits("Receipt", receipt)
    assert receipt["state"] == "acknowledged" and receipt["acknowledged_via"] == "api"

    status, progress = await call(api, "GET", f"/notices/{created['id']}/receipts?person=u_sun")
    assert status == 200, progress
    fits("Receipts", progress)
    assert (progress["total"], progress["acknowledged"], progress["unanswered"]) == (2, 1, 1)
    assert [p["person"] for p in progress["pending"]] == ["u_chen"]

    status, sent = await call(api, "GET", "/notices?person=u_sun&box=sent")
    assert status == 200 and [i["id"] for i in sent["items"]] == [created["id"]]
    assert sent["items"][0]["acknowledged"] == 1


async def test_acknowledging_twice_changes_nothing_the_second_time(api: Api) -> None:
    created = await publish(api)
    first = await call(api, "POST", f"/notices/{created['id']}/ack", body={"person": "u_wu"})
    again = await call(api, "POST", f"/notices/{created['id']}/ack", body={"person": "u_wu"})

    assert first[0] == 200
    assert again[0] in (200, 409), again
    if again[0] == 200:
        assert again[1]["acknowledged_at"] == first[1]["acknowledged_at"]
    _, progress = await call(api, "GET", f"/notices/{created['id']}/receipts?person=u_sun")
    assert progress["acknowledged"] == 1


async def test_recall_works_before_anyone_opened_it_and_is_refused_naming_who_opened_it(api: Api) -> None:
    quiet = await publish(api)
    status, recalled = await call(api, "POST", f"/notices/{quiet['id']}/recall", body={"author": "u_sun"})
    assert status == 200, recalled
    assert recalled["status"] == "recalled" and recalled["recalled_at"]
    status, refused = await call(api, "POST", f"/notices/{quiet['id']}/ack", body={"person": "u_wu"})
    assert status == 409, refused

    read = await publish(api)
    await call(api, "GET", f"/notices/{read['id']}?person=u_wu")
    status, refused = await call(api, "POST", f"/notices/{read['id']}/recall", body={"author": "u_sun"})

    assert status == 409, refused
    assert "吴昊" in refused["message"]
    _, still = await call(api, "GET", f"/notices/{read['id']}?person=u_sun")
    assert still["status"] == "published"


async def test_urge_reminds_those_who_have_not_answered_once_per_half_hour(
    api: Api, clock: ManualClock
) -> None:
    created = await publish(api)
    await call(api, "POST", f"/notices/{created['id']}/ack", body={"person": "u_wu"})

    status, urged = await call(api, "POST", f"/notices/{created['id']}/urge", body={"author": "u_sun"})
    assert status == 200, urged
    assert urged["reminded"] == ["u_chen"] and urged["names"] == ["陈静"]

    status, again = await call(api, "POST", f"/notices/{created['id']}/urge", body={"author": "u_sun"})
    assert status == 429, again
    clock.advance(timedelta(minutes=31))
    assert (await call(api, "POST", f"/notices/{created['id']}/urge", body={"author": "u_sun"}))[0] == 200


async def test_only_the_author_sees_progress_recalls_or_urges(api: Api) -> None:
    created = await publish(api)
    for method, path, body in (
        ("GET", f"/notices/{created['id']}/receipts?person=u_wu", None),
        ("POST", f"/notices/{created['id']}/recall", {"author": "u_wu"}),
        ("POST", f"/notices/{created['id']}/urge", {"author": "u_wu"}),
    ):
        status, answer = await call(api, method, path, body=body)
        assert status == 403, (path, answer)
        assert answer["message"] and not answer["message"].isascii()


async def test_someone_not_addressed_cannot_read_or_acknowledge_it(api: Api) -> None:
    created = await publish(api)
    status, answer = await call(api, "GET", f"/notices/{created['id']}?person=u_zheng")
    assert status == 403, answer
    status, answer = await call(api, "POST", f"/notices/{created['id']}/ack", body={"person": "u_zheng"})
    assert status in (403, 409), answer


# -- personal tokens -----------------------------------------------------------------------------


async def test_a_personal_token_acts_and_reads_only_as_its_person(api: Api) -> None:
    created = await publish(api)
    wu = await token(api, "wu-phone", "read,act,admin", user="u_wu")

    status, read = await call(api, "GET", f"/notices/{created['id']}", wu)
    assert status == 200 and read["my_receipt"]["person"] == "u_wu"
    status, receipt = await call(api, "POST", f"/notices/{created['id']}/ack", wu, {})
    assert status == 200 and receipt["person"] == "u_wu"
    status, inbox = await call(api, "GET", "/notices", wu)
    assert status == 200 and inbox["person"] == "u_wu"

    for method, path, body, field in (
        ("POST", f"/notices/{created['id']}/ack", {"person": "u_chen"}, "person"),
        ("POST", f"/notices/{created['id']}/ack", {"on_behalf_of": "u_chen"}, "on_behalf_of"),
        ("POST", "/notices", {**NOTICE, "author": "u_sun"}, "author"),
        ("POST", f"/notices/{created['id']}/recall", {"author": "u_sun"}, "author"),
        ("POST", f"/notices/{created['id']}/urge", {"author": "u_sun"}, "author"),
        ("GET", f"/notices/{created['id']}?person=u_chen", None, "person"),
        ("GET", "/notices?person=u_chen", None, "person"),
        ("GET", f"/notices/{created['id']}/receipts?person=u_sun", None, "person"),
    ):
        status, answer = await call(api, method, path, wu, body)
        assert status == 403, (path, answer)
        assert "只能以 u_wu 的身份操作" in answer["message"], answer
        assert answer["details"]["field"] == field

    _, progress = await call(api, "GET", f"/notices/{created['id']}/receipts?person=u_sun")
    assert [p["person"] for p in progress["pending"]] == ["u_chen"]  # nothing done for 陈静
    _, sent = await call(api, "GET", "/notices?person=u_sun&box=sent")
    assert len(sent["items"]) == 1  # nothing published as 孙丽


async def test_a_personal_token_publishes_as_its_person(api: Api) -> None:
    sun = await token(api, "sun-phone", "read,act", user="u_sun")
    status, created = await call(api, "POST", "/notices", sun, NOTICE)
    assert status == 201 and created["author"] == "u_sun", created


async def test_an_integration_must_name_the_person_and_needs_admin_to_open_for_them(api: Api) -> None:
    created = await publish(api)
    reader = await token(api, "dashboard", "read")

    status, answer = await call(api, "GET", "/notices", reader)
    assert status == 422 and "person" in answer["details"], answer
    assert (await call(api, "GET", "/notices?person=u_wu", reader))[0] == 200
    status, answer = await call(api, "GET", f"/notices/{created['id']}?person=u_wu", reader)
    assert status == 403 and answer["details"]["missing"] == "scope admin", answer
    _, progress = await call(api, "GET", f"/notices/{created['id']}/receipts?person=u_sun")
    assert progress["opened"] == 0  # the refused read recorded nothing


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"title": ""}, "title"),
        ({"title": "长" * 500}, "title"),
        ({"kind": "memo"}, "kind"),
        ({"confidentiality": "very"}, "confidentiality"),
        ({"audience": {"people": "u_wu"}}, "audience"),
        ({"audience": {"people": ["u_wu"], "teams": ["x"]}}, "audience"),
        ({"kind": "meeting"}, "meeting"),
        ({"kind": "poll", "poll": {"questions": []}}, "poll"),
        ({"pinned_until": "2026-12-31T00:00:00+08:00"}, "pinned_until"),
        ({"ack_deadline": "tomorrow"}, "ack_deadline"),
        ({"ack_deadline": "2026-12-01T10:00:00"}, "ack_deadline"),
        ({"named_only": "yes"}, "named_only"),
    ],
)
async def test_a_bad_notice_is_a_422_naming_the_field_and_publishes_nothing(
    api: Api, changes: dict[str, Any], field: str
) -> None:
    status, answer = await call(api, "POST", "/notices", body={**NOTICE, "author": "u_sun", **changes})

    assert status == 422, answer
    assert answer["error"] == "invalid" and field in answer["details"], answer
    assert answer["message"].startswith("请求参数有误")
    if "teams" in str(changes):
        assert answer["details"]["audience"] == "unknown field audience.teams"
    _, sent = await call(api, "GET", "/notices?person=u_sun&box=sent")
    assert sent["items"] == []


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"audience": {}}, 422),  # nobody addressed
        ({"audience": {"people": ["u_nobody"]}}, 422),
        ({"audience": {"departments": [{"id": "no_such_dept"}]}}, 422),
        ({"confidentiality": "confidential"}, 400),  # 机密 does not go through the system
        ({"confidentiality": "secret", "audience": {"departments": [{"id": "marketing"}]}}, 422),
        # a poll nobody could answer: a question with no options and no free text
        ({"kind": "poll", "poll": {"questions": [{"text": "意见？"}]}}, 422),
        # two questions with one id: a ballot could answer only one of them
        (
            {
                "kind": "poll",
                "poll": {
                    "questions": [
                        {"id": "q1", "text": "哪天？", "options": ["周五", "周六"]},
                        {"id": "q1", "text": "哪里？", "options": ["食堂", "酒店"]},
                    ]
                },
            },
            422,
        ),
    ],
)
async def test_the_service_refusals_are_chinese_and_publish_nothing(
    api: Api, changes: dict[str, Any], status: int
) -> None:
    got, answer = await call(api, "POST", "/notices", body={**NOTICE, "author": "u_sun", **changes})

    assert got == status, answer
    assert answer["message"] and not answer["message"].isascii(), answer
    _, sent = await call(api, "GET", "/notices?person=u_sun&box=sent")
    assert sent["items"] == []


async def test_unknown_notices_and_bad_queries_are_4xx(api: Api) -> None:
    assert (await call(api, "GET", "/notices/n20261123-00000000?person=u_wu"))[0] == 404
    assert (await call(api, "POST", "/notices/nonsense/ack", body={"person": "u_wu"}))[0] == 404
    status, answer = await call(api, "GET", "/notices?person=u_wu&box=all")
    assert status == 422 and "box" in answer["details"]
    status, answer = await call(api, "GET", "/notices?person=u_wu&colour=red")
    assert status == 422 and "colour" in answer["details"]
    status, answer = await call(api, "POST", "/notices/x/ack", body={"person": "u_wu", "extra": 1})
    assert status == 422 and "extra" in answer["details"]


# -- meetings and polls ----------------------------------------------------------------------------
MEETING = {
    "starts_at": "2026-11-25T14:00:00+08:00",
    "ends_at": "2026-11-25T15:30:00+08:00",
    "place": "三楼会议室",
    "agenda": "年终总结",
}
POLL = {
    "questions": [{"text": "年会安排在哪天？", "options": ["周五", "周六", "下周一"]}],
    "anonymous": False,
}


async def test_a_meeting_notice_takes_rsvps_and_a_delegate_joins_the_list(api: Api) -> None:
    created = await publish(api, kind="meeting", title="年终总结会", meeting=MEETING)
    assert created["meeting"]["place"] == "三楼会议室" and created["meeting"]["organiser"] == "u_sun"
    nid = created["id"]

    status, answer = await call(
        api, "POST", f"/notices/{nid}/rsvp", body={"person": "u_wu", "answer": "decline"}
    )
    assert status == 422 and not answer["message"].isascii(), answer  # a reason is required
    status, answer = await call(
        api, "POST", f"/notices/{nid}/rsvp", body={"person": "u_wu", "answer": "attend"}
    )
    assert status == 200, answer
    fits("RsvpResult", answer)
    assert answer["answer"] == "attend" and answer["message"]

    status, answer = await call(
        api,
        "POST",
        f"/notices/{nid}/rsvp",
        body={"person": "u_chen", "answer": "delegate", "delegate": "u_liu"},
    )
    assert status == 200, answer
    _, progress = await call(api, "GET", f"/notices/{nid}/receipts?person=u_sun")
    assert "u_liu" in [r["person"] for r in progress["receipts"]]
    status, answer = await call(
        api, "POST", f"/notices/{nid}/rsvp", body={"person": "u_wu", "answer": "maybe"}
    )
    assert status == 422 and "answer" in answer["details"]


async def test_a_poll_is_voted_and_its_results_counted_once_per_person(api: Api) -> None:
    created = await publish(api, kind="poll", title="年会时间调查", poll=POLL)
    nid = created["id"]
    question = created["poll"]["questions"][0]["id"]

    status, hidden = await call(api, "GET", f"/notices/{nid}/results?person=u_wu")
    assert status == 403, hidden  # vote first
    for person, choice in (("u_wu", 0), ("u_chen", 1), ("u_wu", 1)):  # 吴昊 changes his vote
        status, results = await call(
            api,
            "POST",
            f"/notices/{nid}/vote",
            body={"person": person, "answers": [{"question": question, "choices": [choice]}]},
        )
        assert status == 200, results
    fits("PollResults", results)
    counts = [o["count"] for o in results["questions"][0]["options"]]
    assert results["voters"] == 2 and counts == [0, 2, 0]
    assert results["questions"][0]["svg"].startswith("<svg")

    status, mine = await call(api, "GET", f"/notices/{nid}/results?person=u_sun")
    assert status == 200 and mine["is_author"] and mine["who"] is not None

    status, answer = await call(
        api,
        "POST",
        f"/notices/{nid}/vote",
        body={"person": "u_wu", "answers": [{"question": question, "choices": [7]}]},
    )
    assert status == 422 and not answer["message"].isascii(), answer
    status, answer = await call(
        api,
        "POST",
        f"/notices/{nid}/vote",
        body={"person": "u_wu", "answers": [{"question": question}, {"question": question}]},
    )
    assert status == 422 and "answers" in answer["details"]
    wu = await token(api, "wu-phone", "read,act", user="u_wu")
    status, answer = await call(
        api,
        "POST",
        f"/notices/{nid}/vote",
        wu,
        {"person": "u_chen", "answers": [{"question": question, "choices": [0]}]},
    )
    assert status == 403 and "只能以 u_wu 的身份操作" in answer["message"]
    status, answer = await call(api, "GET", f"/notices/{nid}/results?person=u_chen", wu)
    assert status == 403
